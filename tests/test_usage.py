"""The usage log: what a turn becomes on disk, and that logging never slows or breaks a reply."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.conversation import Conversations, MemoryStates, StoredStates, Turn
from bot.matcher import Matcher
from bot.privacy import load_or_create_key
from bot.replies import Incoming, Kind, Reply
from bot.storage import Finished, NewMessage, Storage, digest, open_storage
from bot.usage import UsageLog, event_of
from tests.conftest import FIXTURE_CONTENT, ROOT

NOW = 1_790_000_000.0  # 2026-09-21


def turn(
    *,
    at: float = NOW,
    channel: str = "whatsapp",
    lang: str = "es",
    kind: Kind = Kind.TOPIC,
    topic: str | None = "pasaporte-vigencia",
    user: str = "u1",
    query: str | None = None,
) -> Turn:
    return Turn(at, channel, lang, kind, topic, 91.234, 3.456, user, query)


def rows(path: Path, sql: str = "SELECT COUNT(*) FROM events") -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        found = db.execute(sql).fetchall()
    db.close()
    return found


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def make_log() -> AsyncIterator[Callable[..., UsageLog]]:
    """UsageLog factory; every log is closed at teardown, even when a test fails midway
    (an open aiosqlite connection keeps a thread, and the test process, alive)."""
    made: list[UsageLog] = []

    def make(path: Path, **options: Any) -> UsageLog:
        made.append(UsageLog(path, **options))
        return made[-1]

    yield make
    for log in made:
        await log.close()


async def say(conversations: Conversations, channel: str, user: str, *messages: str | Incoming) -> list[Reply | None]:
    replies = []
    for message in messages:
        incoming = message if isinstance(message, Incoming) else Incoming(text=message)
        replies.append(await conversations.handle(channel, user, incoming))
    return replies


# -- the event --------------------------------------------------------------------------------


def test_not_sure_keeps_its_text_scrubbed() -> None:
    event = event_of(turn(kind=Kind.NOT_SURE, topic=None, query="me llamo Ana Xoquic, mi cel 5555 1234, receta de pepian"))
    assert event.query == "me llamo [nombre], mi cel [teléfono], receta de pepian"
    assert event.kind == "not_sure" and event.topic is None


def test_answered_turns_keep_no_text() -> None:
    assert event_of(turn(kind=Kind.TOPIC, query="se me vencio el pasaporte")).query is None


def test_event_fields_match_the_issue() -> None:
    event = event_of(turn(at=1_767_247_199.6))
    assert event.day == "2025-12-31"  # a Guatemalan day
    assert (event.channel, event.lang, event.kind, event.topic) == ("whatsapp", "es", "topic", "pasaporte-vigencia")
    assert (event.score, event.latency_ms, event.user_key, event.at) == (91.2, 3.5, "u1", 1_767_247_200.0)


def test_an_endless_not_sure_message_is_capped() -> None:
    event = event_of(turn(kind=Kind.NOT_SURE, query="x" * 20_000))
    assert event.query is not None and len(event.query) <= 300


# -- queue and writer ---------------------------------------------------------------------------


async def test_close_writes_a_whole_burst(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    log = make_log(db_path, batch_size=100)
    await log.start()
    for i in range(2_000):
        log.record(turn(user=f"u{i}"))
    await log.close()
    assert rows(db_path) == [(2_000,)]
    assert (log.written, log.dropped, log.failed) == (2_000, 0, 0)


async def test_stopped_in_the_middle_of_a_burst_nothing_is_lost_silently(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    log = make_log(db_path, batch_size=50)
    await log.start()
    recorded = 0

    async def burst() -> None:
        nonlocal recorded
        for i in range(5_000):
            log.record(turn(user=f"u{i}"))
            recorded += 1
            if i % 10 == 0:
                await asyncio.sleep(0)

    producer = asyncio.create_task(burst())
    await until(lambda: recorded >= 1_000)
    await log.close()  # shutdown arrives while turns are still coming in
    await producer
    stored = rows(db_path)[0][0]
    assert stored == log.written >= 1_000
    assert log.written + log.dropped == recorded == 5_000
    assert log.failed == 0


async def test_full_queue_drops_and_counts_without_blocking(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    log = make_log(db_path, queue_size=10)  # not started: nothing drains the queue
    for i in range(25):
        log.record(turn(user=f"u{i}"))  # a plain call: it cannot wait
    assert (log.queued, log.dropped) == (10, 15)
    await log.close()
    assert rows(db_path) == [(10,)]
    assert log.counters().written == 10 and log.counters().dropped == 15


async def test_record_after_close_is_dropped(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    log = make_log(db_path)
    await log.start()
    await log.close()
    log.record(turn())
    assert log.dropped == 1


async def test_locked_database_keeps_events_and_writes_them_later(make_log: Callable[..., UsageLog], db_path: Path, fixture_matcher: Matcher) -> None:
    log = make_log(db_path, busy_timeout=0.05, max_pause=0.05)
    await log.start()
    assert log.storage is not None
    log.storage.health.settle = 0.0  # ok again at the first write that works
    conversations = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k", usage=log)
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        replies = await say(conversations, "telegram", "1", "hola", "1", "se me vencio el pasaporte", "receta de pepian")
        assert all(reply is not None for reply in replies)
        await until(lambda: log.failed >= 1)
        assert log.written == 0 and log.queued == 4 and "locked" in str(log.counters().last_error)
        assert log.health()["status"] == "degraded"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    replies = await say(conversations, "telegram", "1", "0", "gracias")
    assert all(reply is not None for reply in replies)
    await until(lambda: log.written == 6)
    assert log.health()["status"] == "ok" and log.counters().last_error is None
    await log.close()
    assert (log.written, log.dropped) == (6, 0)
    assert rows(db_path) == [(6,)]


async def test_events_kept_in_memory_are_bounded_and_the_excess_counted(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    log = make_log(db_path, busy_timeout=0.01, keep=50, batch_size=20, max_pause=0.01)
    await log.start()
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(200):
            log.record(turn(user=f"u{i}"))
        await until(lambda: log.queued <= 50 and log.dropped == 150)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await until(lambda: log.written == 50)
    await log.close()
    assert (log.written, log.dropped) == (50, 150) and rows(db_path) == [(50,)]


async def test_unusable_database_path_never_reaches_the_reply(make_log: Callable[..., UsageLog], tmp_path: Path, fixture_matcher: Matcher) -> None:
    (tmp_path / "data").write_text("a file where the data folder should be")
    log = make_log(tmp_path / "data" / "pregunta.sqlite3")
    await log.start()
    conversations = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k", usage=log)
    replies = await say(conversations, "telegram", "1", "hola", "1")
    assert all(reply is not None for reply in replies)
    assert log.health()["status"] == "degraded"
    await log.close()
    assert (log.written, log.dropped) == (0, 2)  # never written, and said so


async def test_daily_purge_runs_inside_a_long_lived_log(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    old = make_log(db_path)
    for i in range(3):
        old.record(turn(at=NOW - 400 * 86400, user=f"u{i}"))
    old.record(turn(at=time.time()))
    await old.close()
    log = make_log(db_path, retention_days=180)
    await log.start()
    await until(lambda: rows(db_path) == [(1,)])
    await log.close()
    assert rows(db_path, "SELECT SUM(events) FROM daily") == [(3,)]
    assert rows(db_path, "SELECT users FROM daily_users WHERE lang = '*' AND kind = '*'") == [(3,)]


# -- nothing personal reaches the disk ----------------------------------------------------------

PHONE = "50255512345"
TELEGRAM_ID = "987654321012"
PERSONAL = [
    PHONE, "55512345", "5551 2345", "5551-2345", "+502 5551 2345", TELEGRAM_ID,
    "Juana", "juana", "Xoquic", "xoquic", "Pérez", "juana.xoquic@example.com", "2345678900101", "2345 67890 0101",
]


# A WhatsApp message id: base64 of the sender's phone number, among other bytes.
WAMID = "wamid." + base64.b64encode(f"\x1c\x18\x0b{PHONE}\x15\x02\x00\x12".encode()).decode()


def scan(folder: Path, needles: list[str]) -> list[str]:
    """Every (file, needle) where a needle's bytes appear, in UTF-8 or UTF-16."""
    found = []
    for file in sorted(folder.rglob("*")):
        if not file.is_file():
            continue
        data = file.read_bytes()
        for needle in needles:
            for encoded in (needle.encode("utf-8"), needle.encode("utf-16-le")):
                if encoded in data:
                    found.append(f"{file.name}: {needle!r}")
    return found


async def test_no_raw_id_phone_or_name_on_disk(make_log: Callable[..., UsageLog], db_path: Path, fixture_matcher: Matcher) -> None:
    data = db_path.parent
    key = load_or_create_key(data / "pseudonym.key")
    db = await open_storage(db_path)
    try:
        await _drive_personal_data(db, make_log(db_path), key, fixture_matcher)
    finally:
        await db.close()
    assert scan(data, [*PERSONAL, WAMID, WAMID[6:30]]) == []  # and the checkpointed file
    assert {name.split(":")[0] for name in scan(data, ["receta de pepian"])} == {"pregunta.sqlite3"}
    kept = rows(db_path, "SELECT query FROM events WHERE query IS NOT NULL ORDER BY id")
    assert any("[nombre]" in str(q) and "[teléfono]" in str(q) and "[correo]" in str(q) for (q,) in kept)


async def _drive_personal_data(db: Storage, log: UsageLog, key: bytes, matcher: Matcher) -> None:
    data = Path(log.path).parent
    await log.start()
    conversations = Conversations(matcher, StoredStates(db), pseudonym_key=key, usage=log)
    personal = (
        "me llamo Juana Xoquic Pérez, mi número es +502 5551 2345, mi correo juana.xoquic@example.com "
        "y mi dpi 2345 67890 0101: receta de pepian"
    )
    replies = await say(conversations, "whatsapp", PHONE, "hola", "1", personal, "soy Juana", Incoming(non_text="voice"))
    replies += await say(conversations, "telegram", TELEGRAM_ID, "hola", "2", "mi nombre es juana xoquic", "5551-2345")
    # a message through the inbox: its address and id are kept until it is answered, then deleted
    person = conversations.person("whatsapp", PHONE)
    await db.put_messages([NewMessage("whatsapp", digest("whatsapp", WAMID), person, PHONE, '{"text": "hola"}', time.time())])
    [claimed] = await db.claim("w", ["whatsapp"], limit=1, lease=30, flood_window=10)
    assert claimed.address == PHONE
    await db.finish("w", [Finished(claimed.id, person, None, "ok")])
    await db.compact()  # the WAL's older copy of the row goes with the checkpoint
    await until(lambda: log.written == len(replies) == 9)
    assert (data / "pregunta.sqlite3-wal").exists()
    assert scan(data, [*PERSONAL, WAMID, WAMID[6:30]]) == []  # the WAL, while the bot runs
    assert scan(data, ["receta de pepian"])  # the control: the scan does see what is stored
    await log.close()


def test_terminal_chat_logs_every_turn_and_flushes_at_eof(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pregunta.sqlite3"
    lines = ["hola", "1", "se me vencio el pasaporte", "me llamo Juana Xoquic, cel 5551 2345, receta de pepian", "0", "adios"]
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--content", str(FIXTURE_CONTENT)],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PREGUNTA_DB": str(path)},
    )
    assert done.returncode == 0, done.stderr
    kinds = [kind for (kind,) in rows(path, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["language", "language", "topic", "not_sure", "menu", "intent"]
    assert rows(path, "SELECT query FROM events WHERE kind = 'not_sure'") == [
        ("me llamo [nombre], cel [teléfono], receta de pepian",)
    ]
    assert scan(path.parent, PERSONAL) == []


def test_each_terminal_chat_is_a_person_of_its_own(tmp_path: Path) -> None:
    """Every `pregunta chat` used to be the same person ("terminal"): two test sessions counted as one."""
    path = tmp_path / "data" / "pregunta.sqlite3"
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "bot", "chat", "--content", str(FIXTURE_CONTENT), "--lang", "es"],
            input="receta de pepian\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
            env={**os.environ, "PREGUNTA_DB": str(path)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert rows(path, "SELECT COUNT(*), COUNT(DISTINCT user_key) FROM events") == [(4, 2)]


@pytest.mark.parametrize("busy", [0.0, 0.05], ids=["fail-fast", "short-wait"])
async def test_record_is_cheap_while_the_writer_is_stuck(make_log: Callable[..., UsageLog], db_path: Path, busy: float) -> None:
    log = make_log(db_path, busy_timeout=busy, queue_size=1_000)
    await log.start()
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(3_000):
            log.record(turn(user=f"u{i}"))  # returns at once: counted, queued or dropped
        assert log.queued + log.dropped + log.written == 3_000
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await log.close()
    assert log.written + log.dropped == 3_000


async def test_full_disk_counts_failures_and_recovers(make_log: Callable[..., UsageLog], db_path: Path) -> None:
    log = make_log(db_path, batch_size=20, max_pause=0.05)
    await log.start()
    storage = log.storage  # the writer's own connection: cap the file where it stands
    assert storage is not None
    [(pages,)] = await storage.pragma("page_count")  # type: ignore[attr-defined]
    await storage.pragma(f"max_page_count = {pages}")  # type: ignore[attr-defined]
    for i in range(200):
        log.record(turn(user=f"u{i}", kind=Kind.NOT_SURE, topic=None, query=f"pregunta larga número {i} " + "x" * 250))
    await until(lambda: log.failed > 0 and log.written + log.queued == 200)
    assert "full" in str(log.counters().last_error) and log.health()["status"] == "degraded"
    await storage.pragma("max_page_count = 1073741823")  # type: ignore[attr-defined]  # space again
    log.record(turn(user="after"))
    await until(lambda: log.written == 201)  # kept in memory meanwhile, written once there is room
    await log.close()
    assert rows(db_path) == [(201,)] and log.dropped == 0
