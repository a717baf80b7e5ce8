"""The storage: schema upgrades in place, the durable inbox, remembered dialogue state, on both backends.

Tests that take `db_target` run on a SQLite file and on PostgreSQL (a schema of its own;
skipped with the reason when no server answers: .ci/run starts one).
"""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.conversation import StoredStates, dump_state
from bot.dialogue import State, Step
from bot.errors import PreguntaError
from bot.storage import (
    MESSAGE_KEEP_HOURS,
    ClaimFor,
    Finished,
    NewMessage,
    Storage,
    StorageUnavailable,
    digest,
    open_storage,
)
from bot.storage.sqlite import SCHEMA_VERSION, SqliteStorage, schema_version

# The first released schema, written out here as it was, not imported: the upgrade test
# must start from what old installations really have on disk.
VERSION_1 = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied REAL NOT NULL);
INSERT INTO schema_version VALUES (1, 1767225600.0);
CREATE TABLE events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, day TEXT NOT NULL, channel TEXT NOT NULL,
    lang TEXT NOT NULL, kind TEXT NOT NULL, topic TEXT, score REAL, latency_ms REAL,
    user_key TEXT NOT NULL, query TEXT
);
CREATE INDEX events_day ON events (day);
CREATE TABLE daily (
    day TEXT NOT NULL, channel TEXT NOT NULL, lang TEXT NOT NULL, kind TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '', events INTEGER NOT NULL,
    PRIMARY KEY (day, channel, lang, kind, topic)
) WITHOUT ROWID;
INSERT INTO events VALUES (1, 1767290400.0, '2026-01-01', 'whatsapp', 'es', 'topic', 'pasaporte-vigencia', 91.0, 3.2, 'aaaa', NULL);
INSERT INTO events VALUES (2, 1767290460.0, '2026-01-01', 'whatsapp', 'es', 'not_sure', NULL, 20.0, 4.1, 'aaaa', 'receta de pepian');
INSERT INTO events VALUES (3, 1767376800.0, '2026-01-02', 'telegram', 'quc', 'menu', 'menu', NULL, 1.0, 'bbbb', NULL);
INSERT INTO daily VALUES ('2025-06-01', 'whatsapp', 'es', 'topic', 'pasaporte-vigencia', 42);
"""


def make_version_1(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_1)
    db.close()



@pytest.fixture
async def store(db_target: Path | str) -> AsyncIterator[Storage]:
    db = await open_storage(db_target)
    try:
        yield db
    finally:
        await db.close()


def message(n: int, person: str = "p1", channel: str = "whatsapp", address: str = "50255512345", at: float | None = None) -> NewMessage:
    return NewMessage(channel, digest(channel, f"wamid.{n}"), person, address, f'{{"text": "m{n}"}}', time.time() if at is None else at)


async def test_new_file_is_wal_private_and_current(db_path: Path) -> None:
    db = await open_storage(db_path)
    try:
        assert isinstance(db, SqliteStorage)
        assert await db.pragma("journal_mode") == [("wal",)]
        assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
        tables = {r[0] for r in await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"events", "daily", "daily_users", "inbox", "user_state", "schema_version"} <= tables
    finally:
        await db.close()


async def test_reopening_changes_nothing(db_target: Path | str) -> None:
    for _ in range(3):
        db = await open_storage(db_target)
        versions = [r[0] for r in await db.fetch("SELECT version FROM schema_version ORDER BY version")]
        await db.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def test_version_1_file_is_upgraded_in_place_keeping_every_row(db_path: Path) -> None:
    make_version_1(db_path)
    db = await open_storage(db_path)
    try:
        events = await db.fetch("SELECT id, day, kind, topic, query FROM events ORDER BY id")
        assert events == [
            (1, "2026-01-01", "topic", "pasaporte-vigencia", None),
            (2, "2026-01-01", "not_sure", None, "receta de pepian"),
            (3, "2026-01-02", "menu", "menu", None),
        ]
        assert await db.fetch("SELECT day, events, changes FROM daily") == [("2025-06-01", 42, 0)]
        # the tables of later versions work on the upgraded file
        assert (await db.put_messages([message(1)]))[0] == [True]
        await StoredStates(db).put("k", State(Step.READY, "quc"))
        assert await StoredStates(db).get("k") == State(Step.READY, "quc")
        applied = [r[0] for r in await db.fetch("SELECT version FROM schema_version ORDER BY version")]
        assert applied == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await db.close()
    with sqlite3.connect(db_path) as raw:
        assert schema_version(raw) == SCHEMA_VERSION
    raw.close()


async def test_message_ids_seen_before_the_upgrade_stay_recognised(db_path: Path) -> None:
    """Schema 5 carries the dedup of schema 2 (seen_messages) into the inbox: no redelivery answered twice."""
    make_version_1(db_path)
    with sqlite3.connect(db_path) as raw:
        raw.executescript("""
            CREATE TABLE seen_messages (channel TEXT NOT NULL, digest TEXT NOT NULL, at REAL NOT NULL,
                                        PRIMARY KEY (channel, digest)) WITHOUT ROWID;
            CREATE TABLE user_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL) WITHOUT ROWID;
            INSERT INTO schema_version VALUES (2, 0);
        """)
        raw.execute("INSERT INTO seen_messages VALUES ('whatsapp', ?, ?)", (digest("whatsapp", "wamid.1"), time.time()))
    raw.close()
    db = await open_storage(db_path)
    try:
        assert (await db.put_messages([message(1), message(2)]))[0] == [False, True]
    finally:
        await db.close()


async def test_language_choices_of_an_old_file_are_kept_as_choices(db_path: Path) -> None:
    """Version 4 marks the language chosen in a turn; older rows of the language menu become choices."""
    make_version_1(db_path)
    with sqlite3.connect(db_path) as raw:
        raw.execute("INSERT INTO events VALUES (4, 1767376900.0, '2026-01-02', 'telegram', 'mam', 'language', 'mam', NULL, 1.0, 'bbbb', NULL)")
        raw.execute("INSERT INTO events VALUES (5, 1767376950.0, '2026-01-02', 'telegram', 'mam', 'language', NULL, NULL, 1.0, 'cccc', NULL)")
        raw.execute("INSERT INTO daily VALUES ('2025-06-01', 'whatsapp', 'quc', 'language', 'quc', 7)")
    raw.close()
    db = await open_storage(db_path)
    try:
        chosen = await db.fetch("SELECT id, chose_lang FROM events ORDER BY id")
        assert chosen == [(1, None), (2, None), (3, None), (4, "mam"), (5, None)]
        daily = await db.fetch("SELECT kind, events, choices FROM daily ORDER BY kind")
        assert daily == [("language", 7, 7), ("topic", 42, 0)]
    finally:
        await db.close()


async def test_newer_schema_is_refused_and_left_alone(db_target: Path | str) -> None:
    db = await open_storage(db_target)
    await db.execute("INSERT INTO schema_version VALUES (99, 0)")
    await db.close()
    with pytest.raises(PreguntaError, match="schema version 99, newer than this program"):
        await open_storage(db_target)


async def test_unopenable_places_are_one_readable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(PreguntaError, match="cannot open database"):
        await open_storage(blocker / "pregunta.sqlite3")
    with pytest.raises(PreguntaError, match=r"cannot open database postgresql://nobody:\*\*\*@127\.0\.0\.1:9/x"):
        await open_storage("postgresql://nobody:secret@127.0.0.1:9/x")


# -- the inbox ---------------------------------------------------------------------------


async def test_a_message_is_new_once_per_channel(store: Storage) -> None:
    assert (await store.put_messages([message(1), message(1), message(2)]))[0] == [True, False, True]
    assert (await store.put_messages([message(1)]))[0] == [False]
    assert (await store.put_messages([message(1, channel="telegram")]))[0] == [True]  # ids are per channel
    assert await store.pending() == 3


async def test_storing_claims_each_persons_next_message_at_once(store: Storage) -> None:
    """The process that receives a message answers it without a second transaction, unless
    the person's previous message is still being answered (then it waits its turn)."""
    how = ClaimFor("w1", ("whatsapp",), 10, 30.0, 10.0)
    new, claimed = await store.put_messages([message(1, "ana"), message(2, "ana"), message(3, "luis")], claim=how)
    assert new == [True, True, True] and [(c.person, c.body) for c in claimed] == [("ana", '{"text": "m1"}'), ("luis", '{"text": "m3"}')]
    new, claimed = await store.put_messages([message(4, "luis"), message(5, "eva")], claim=ClaimFor("w2", ("whatsapp",), 10, 30.0, 10.0))
    assert [c.person for c in claimed] == ["eva"]  # luis is w1's until his first message is done
    assert await store.claim("w2", ["whatsapp"], limit=10, lease=30, flood_window=10) == []


async def test_one_person_at_a_time_oldest_first_others_in_parallel(store: Storage) -> None:
    await store.put_messages([message(1, "ana"), message(2, "ana"), message(3, "luis")])
    first = await store.claim("w1", ["whatsapp"], limit=10, lease=30, flood_window=10)
    assert [(c.person, c.body) for c in first] == [("ana", '{"text": "m1"}'), ("luis", '{"text": "m3"}')]
    assert await store.claim("w2", ["whatsapp"], limit=10, lease=30, flood_window=10) == []  # both people are taken
    ana = first[0]
    assert (ana.address, ana.attempts, ana.state, ana.recent, ana.previous) == ("50255512345", 1, None, 1, None)
    assert await store.finish("w1", [Finished(ana.id, "ana", dump_state(State(Step.READY, "quc")), "ok")]) == [True]
    [second] = await store.claim("w2", ["whatsapp"], limit=10, lease=30, flood_window=10)
    assert second.body == '{"text": "m2"}' and second.recent == 2 and second.previous == "ok"
    assert second.state == dump_state(State(Step.READY, "quc"))  # the state saved with the first, read with the claim
    assert await store.claim("w2", ["telegram"], limit=10, lease=30, flood_window=10) == []  # another channel's worker


async def test_an_expired_lease_is_claimed_again_and_the_late_finish_is_refused(store: Storage) -> None:
    await store.put_messages([message(1)])
    [lost] = await store.claim("crashed", ["whatsapp"], limit=1, lease=0.01, flood_window=10)
    time.sleep(0.05)
    [again] = await store.claim("alive", ["whatsapp"], limit=1, lease=30, flood_window=10)
    assert again.id == lost.id and again.attempts == 2
    assert await store.finish("crashed", [Finished(lost.id, "p1", dump_state(State(Step.READY, "mam")), "ok")]) == [False]
    assert await store.get_state("p1") is None  # the late process's state was not written
    assert await store.finish("alive", [Finished(again.id, "p1", None, "ok")]) == [True]
    assert await store.pending() == 0


async def test_release_and_retry_later(store: Storage) -> None:
    await store.put_messages([message(1, "ana"), message(2, "luis")])
    ana, luis = await store.claim("w1", ["whatsapp"], limit=5, lease=30, flood_window=10)
    assert await store.release("w1") == 2
    await store.retry_later("w1", ana.id, 60)  # no longer ours: nothing happens
    again = await store.claim("w2", ["whatsapp"], limit=5, lease=30, flood_window=10)
    assert [c.id for c in again] == [ana.id, luis.id]
    await store.retry_later("w2", ana.id, 60)
    assert await store.claim("w3", ["whatsapp"], limit=5, lease=30, flood_window=10) == []  # ana waits; luis is w2's
    assert await store.renew("w2", 30) == 1


async def test_flood_counts_every_message_of_the_window(store: Storage) -> None:
    now = time.time()
    old = [message(n, at=now - 60) for n in range(5)]
    recent = [message(n, at=now) for n in range(5, 9)]
    await store.put_messages(old + recent)
    for n in range(8):
        [claimed] = await store.claim("w", ["whatsapp"], limit=1, lease=30, flood_window=10)
        assert claimed.recent == (n + 1 if n < 5 else n - 4)
        await store.finish("w", [Finished(claimed.id, "p1", None, "warn" if n == 6 else "ok")])
    [last] = await store.claim("w", ["whatsapp"], limit=1, lease=30, flood_window=10)
    assert (last.recent, last.previous) == (4, "ok")


async def test_answered_messages_forget_their_address_and_text(db_path: Path) -> None:
    phone = "50255598765"
    db = await open_storage(db_path)
    try:
        await db.put_messages([message(1, address=phone)])
        [claimed] = await db.claim("w", ["whatsapp"], limit=1, lease=30, flood_window=10)
        await db.finish("w", [Finished(claimed.id, "p1", None, "ok")])
        assert await db.fetch("SELECT address, body, done IS NOT NULL FROM inbox") == [(None, None, 1)]
        await db.compact()
    finally:
        await db.close()
    for file in db_path.parent.iterdir():
        data = file.read_bytes()
        assert phone.encode() not in data and b"wamid.1" not in data, file


async def test_old_answered_messages_and_stale_states_are_forgotten(store: Storage) -> None:
    now = time.time()
    await store.put_messages([message(1, at=now - 100 * 3600), message(2, "ana", at=now - 100 * 3600)])
    [claimed] = [c for c in await store.claim("w", ["whatsapp"], limit=5, lease=30, flood_window=10) if c.person == "p1"]
    await store.finish("w", [Finished(claimed.id, "p1", dump_state(State(Step.READY, "es")), "ok")])
    later = now + (MESSAGE_KEEP_HOURS + 1) * 3600
    counts = await store.forget(now=later, retention_days=180, batch=1)
    assert (counts.messages, counts.states) == (1, 0)  # the pending message of ana stays, whatever its age
    assert await store.pending() == 1
    assert (await store.put_messages([message(1)]))[0] == [True]  # forgotten: a very late redelivery is new again
    counts = await store.forget(now=now + 181 * 86400, retention_days=180)
    assert counts.states == 1


# -- dialogue state ------------------------------------------------------------------------


async def test_states_survive_a_restart(db_target: Path | str) -> None:
    db = await open_storage(db_target)
    await StoredStates(db).put("user-a", State(Step.READY, "quc", ("topic:x",)))
    await db.close()
    db = await open_storage(db_target)
    try:
        states = StoredStates(db)
        assert await states.get("user-a") == State(Step.READY, "quc", ("topic:x",))
        assert await states.get("nobody") is None
    finally:
        await db.close()


async def test_states_are_read_through_not_cached(db_target: Path | str) -> None:
    """Two processes share the database: what one writes, the other reads at once."""
    one, two = await open_storage(db_target), await open_storage(db_target)
    try:
        await StoredStates(one).get("k")
        await StoredStates(two).put("k", State(Step.READY, "mam"))
        assert await StoredStates(one).get("k") == State(Step.READY, "mam")
    finally:
        await one.close()
        await two.close()


async def test_a_failing_database_never_raises_into_a_reply(db_path: Path) -> None:
    db = await open_storage(db_path)
    states = StoredStates(db)
    await db.close()  # from now on every call fails
    assert await states.get("a") is None
    await states.put("c", State(Step.READY, "es"))  # never raises
    assert states.failed == 2


async def test_corrupt_state_row_is_a_fresh_start(store: Storage) -> None:
    await store.put_state("x", "not json")
    await store.put_state("y", '{"step": "nonsense"}')
    states = StoredStates(store)
    assert await states.get("x") is None
    assert await states.get("y") == State()


async def test_a_locked_file_fails_within_the_bound_and_says_so(db_path: Path) -> None:
    db = await open_storage(db_path, wait=0.2)
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the lock
    try:
        with pytest.raises(StorageUnavailable, match="locked"):
            await db.put_messages([message(1)])
        assert db.health.as_dict()["status"] == "degraded" and "locked" in str(db.health.reason)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    db.health.settle = 0.0  # ok again at the first write that works
    assert (await db.put_messages([message(1)]))[0] == [True]
    assert db.health.ok
    await db.close()
