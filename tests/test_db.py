"""The SQLite file: WAL, schema upgrades in place, webhook dedup, and remembered dialogue state."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import aiosqlite
import pytest

from bot.db import (
    MESSAGE_KEEP_HOURS,
    SCHEMA_VERSION,
    SqliteStates,
    forget_messages,
    open_db,
    remember_message,
    schema_version,
)
from bot.dialogue import State, Step
from bot.errors import PreguntaError

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


async def test_new_file_is_wal_private_and_current(usage_db: aiosqlite.Connection, db_path: Path) -> None:
    assert await schema_version(usage_db) == SCHEMA_VERSION
    rows = await usage_db.execute_fetchall("PRAGMA journal_mode")
    assert next(iter(rows))[0] == "wal"
    rows = await usage_db.execute_fetchall("PRAGMA busy_timeout")
    assert next(iter(rows))[0] == 5000
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    tables = {r[0] for r in await usage_db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "daily", "daily_users", "seen_messages", "user_state", "schema_version"} <= tables


async def test_reopening_changes_nothing(db_path: Path) -> None:
    for _ in range(3):
        db = await open_db(db_path)
        versions = [r[0] for r in await db.execute_fetchall("SELECT version FROM schema_version ORDER BY version")]
        await db.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def test_version_1_file_is_upgraded_in_place_keeping_every_row(db_path: Path) -> None:
    make_version_1(db_path)
    db = await open_db(db_path)
    try:
        assert await schema_version(db) == SCHEMA_VERSION
        events = await db.execute_fetchall("SELECT id, day, kind, topic, query FROM events ORDER BY id")
        assert [tuple(r) for r in events] == [
            (1, "2026-01-01", "topic", "pasaporte-vigencia", None),
            (2, "2026-01-01", "not_sure", None, "receta de pepian"),
            (3, "2026-01-02", "menu", "menu", None),
        ]
        daily = await db.execute_fetchall("SELECT day, events, changes FROM daily")
        assert [tuple(r) for r in daily] == [("2025-06-01", 42, 0)]
        # the tables of later versions work on the upgraded file
        assert await remember_message(db, "whatsapp", "wamid.1") is True
        await SqliteStates(db).put("k", State(Step.READY, "quc"))
        assert await SqliteStates(db).get("k") == State(Step.READY, "quc")
        applied = [r[0] for r in await db.execute_fetchall("SELECT version FROM schema_version ORDER BY version")]
        assert applied == list(range(1, SCHEMA_VERSION + 1))
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
    db = await open_db(db_path)
    try:
        chosen = await db.execute_fetchall("SELECT id, chose_lang FROM events ORDER BY id")
        assert [tuple(r) for r in chosen] == [(1, None), (2, None), (3, None), (4, "mam"), (5, None)]
        daily = await db.execute_fetchall("SELECT kind, events, choices FROM daily ORDER BY kind")
        assert [tuple(r) for r in daily] == [("language", 7, 7), ("topic", 42, 0)]
    finally:
        await db.close()


async def test_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    make_version_1(db_path)
    with sqlite3.connect(db_path) as raw:
        raw.execute("INSERT INTO schema_version VALUES (99, 0)")
    raw.close()
    with pytest.raises(PreguntaError, match="schema version 99, newer than this program"):
        await open_db(db_path)
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM events").fetchone() == (3,)
    raw.close()


async def test_unopenable_path_is_one_readable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(PreguntaError, match="cannot open database"):
        await open_db(blocker / "pregunta.sqlite3")


async def test_remember_message_true_once_then_false(usage_db: aiosqlite.Connection) -> None:
    assert await remember_message(usage_db, "whatsapp", "wamid.A") is True
    assert await remember_message(usage_db, "whatsapp", "wamid.A") is False
    assert await remember_message(usage_db, "telegram", "wamid.A") is True  # ids are per channel
    assert await remember_message(usage_db, "whatsapp", "wamid.B") is True


async def test_message_ids_kept_at_least_48_hours(usage_db: aiosqlite.Connection) -> None:
    t0 = 1_800_000_000.0
    assert await remember_message(usage_db, "whatsapp", "wamid.old", now=t0)
    assert await forget_messages(usage_db, now=t0 + (MESSAGE_KEEP_HOURS - 1) * 3600) == 0
    assert await remember_message(usage_db, "whatsapp", "wamid.old", now=t0 + 47 * 3600) is False
    assert await forget_messages(usage_db, now=t0 + (MESSAGE_KEEP_HOURS + 1) * 3600) == 1
    assert await remember_message(usage_db, "whatsapp", "wamid.old") is True


async def test_message_ids_are_stored_hashed(usage_db: aiosqlite.Connection, db_path: Path) -> None:
    # A real WhatsApp id: base64 of the sender's number (50255512345) and a random part.
    wamid = "wamid.HBgLNTAyNTU1MTIzNDUVAgASGBQzQUVCNkE0RjY4MzE3QTIzMEU4MAA="
    await remember_message(usage_db, "whatsapp", wamid)
    await usage_db.execute("PRAGMA wal_checkpoint(FULL)")
    for file in db_path.parent.iterdir():
        data = file.read_bytes()
        assert wamid.encode() not in data and b"HBgLNTAyNTU1MTIzNDU" not in data, file


async def test_states_survive_a_restart(db_path: Path) -> None:
    db = await open_db(db_path)
    await SqliteStates(db).put("user-a", State(Step.READY, "quc", ("topic:x",)))
    await db.close()
    db = await open_db(db_path)
    try:
        states = SqliteStates(db)
        assert await states.get("user-a") == State(Step.READY, "quc", ("topic:x",))
        assert await states.get("nobody") is None
    finally:
        await db.close()


async def test_states_cache_answers_when_the_database_fails(db_path: Path) -> None:
    db = await open_db(db_path)
    states = SqliteStates(db, cache_limit=2)
    await states.put("a", State(Step.READY, "quc"))
    await db.close()  # from now on every query fails
    assert await states.get("a") == State(Step.READY, "quc")  # the cache
    assert await states.get("b") is None
    await states.put("c", State(Step.READY, "es"))  # never raises
    assert states.failed == 2


async def test_cache_is_bounded(usage_db: aiosqlite.Connection) -> None:
    states = SqliteStates(usage_db, cache_limit=2)
    for key in "abc":
        await states.put(key, State(Step.READY, "es"))
    assert len(states._cache) == 2
    assert await states.get("a") == State(Step.READY, "es")  # read back from the file


async def test_corrupt_state_row_is_a_fresh_start(usage_db: aiosqlite.Connection) -> None:
    await usage_db.execute("INSERT INTO user_state VALUES ('x', 'not json', 0)")
    await usage_db.execute("INSERT INTO user_state VALUES ('y', '{\"step\": \"nonsense\"}', 0)")
    states = SqliteStates(usage_db)
    assert await states.get("x") is None
    assert await states.get("y") == State()
