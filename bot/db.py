"""The SQLite file: opened in WAL mode, its schema made and upgraded in place by the program.

One file (PREGUNTA_DB) holds the usage events, their daily rollups, the webhook message
ids already processed and the dialogue state of each pseudonymous user. Migrations only
add: a database made by an older version is upgraded, never dropped, and one made by a
newer version is refused rather than misread. Deleted rows are overwritten
(`secure_delete`), so a purge really forgets. Knows nothing of channels or dialogues
beyond the shapes it stores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections import OrderedDict
from pathlib import Path

import aiosqlite

from bot.dialogue import State
from bot.errors import PreguntaError

__all__ = [
    "MESSAGE_KEEP_HOURS",
    "SCHEMA_VERSION",
    "Failures",
    "SqliteStates",
    "forget_messages",
    "open_db",
    "remember_message",
    "schema_version",
]

log = logging.getLogger(__name__)

MESSAGE_KEEP_HOURS = 48  # webhook redeliveries come within minutes; two days is generous

# Each step is applied once, in order, in one transaction. Never edit a released step:
# add a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the usage log: one row per turn, and daily counts that outlive the rows
    (
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,            -- unix time of the reply
            day TEXT NOT NULL,           -- YYYY-MM-DD in Guatemala
            channel TEXT NOT NULL,
            lang TEXT NOT NULL,
            kind TEXT NOT NULL,          -- bot.replies.Kind
            topic TEXT,                  -- topic or intent id, chosen language, non-text type
            score REAL,
            latency_ms REAL,
            user_key TEXT NOT NULL,      -- monthly pseudonym
            query TEXT                   -- scrubbed text of a not-sure turn, else NULL
        )""",
        "CREATE INDEX events_day ON events (day)",
        """CREATE TABLE daily (
            day TEXT NOT NULL,
            channel TEXT NOT NULL,
            lang TEXT NOT NULL,
            kind TEXT NOT NULL,
            topic TEXT NOT NULL DEFAULT '',
            events INTEGER NOT NULL,
            PRIMARY KEY (day, channel, lang, kind, topic)
        ) WITHOUT ROWID""",
    ),
    # 2: webhook redeliveries recognised; the chosen language survives a restart
    (
        """CREATE TABLE seen_messages (
            channel TEXT NOT NULL,
            digest TEXT NOT NULL,        -- a hash: WhatsApp message ids embed the phone number
            at REAL NOT NULL,
            PRIMARY KEY (channel, digest)
        ) WITHOUT ROWID""",
        "CREATE INDEX seen_messages_at ON seen_messages (at)",
        """CREATE TABLE user_state (
            key TEXT PRIMARY KEY,        -- stable pseudonym of channel + user id
            state TEXT NOT NULL,         -- JSON of bot.dialogue.State
            updated REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 3: purged days keep their distinct users and language changes
    (
        "ALTER TABLE daily ADD COLUMN changes INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE daily_users (
            day TEXT NOT NULL,
            channel TEXT NOT NULL,
            lang TEXT NOT NULL,          -- '*' = every language
            kind TEXT NOT NULL,          -- '*' = every kind
            users INTEGER NOT NULL,
            PRIMARY KEY (day, channel, lang, kind)
        ) WITHOUT ROWID""",
    ),
    # 4: a language chosen in the same turn as a pending question is answered counts as a choice
    (
        "ALTER TABLE events ADD COLUMN chose_lang TEXT",  # the language chosen in this turn, else NULL
        "UPDATE events SET chose_lang = topic WHERE kind = 'language' AND topic IS NOT NULL",
        "ALTER TABLE daily ADD COLUMN choices INTEGER NOT NULL DEFAULT 0",
        "UPDATE daily SET choices = events WHERE kind = 'language' AND topic != ''",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


async def open_db(path: Path, *, busy_timeout: float = 5.0) -> aiosqlite.Connection:
    """An autocommit connection in WAL mode with the schema at SCHEMA_VERSION; close it when done."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)  # pseudonymous data: readable by the service only
    except OSError as exc:
        raise PreguntaError(f"cannot open database {path}: {exc.strerror or exc}") from None
    db: aiosqlite.Connection | None = None
    try:
        db = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA secure_delete = ON")
        await _migrate(db, path)
    except sqlite3.Error as exc:
        if db is not None:
            await db.close()
        raise PreguntaError(f"cannot open database {path}: {exc}") from None
    except BaseException:
        if db is not None:
            await db.close()
        raise
    return db


async def schema_version(db: aiosqlite.Connection) -> int:
    """The version the file is at: 0 for a new file."""
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") as cur:
        if await cur.fetchone() is None:
            return 0
    async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    await db.execute("BEGIN IMMEDIATE")  # two processes starting together: one upgrades
    try:
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied REAL NOT NULL)")
        current = await schema_version(db)
        if current > SCHEMA_VERSION:
            raise PreguntaError(
                f"database {path} is at schema version {current}, newer than this program's {SCHEMA_VERSION}: "
                "upgrade Preguntá before using it"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1]:
                await db.execute(statement)
            await db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
            log.info("database %s upgraded to schema version %d", path, version)
        await db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise


# -- webhook redeliveries -------------------------------------------------------------


async def remember_message(db: aiosqlite.Connection, channel: str, message_id: str, *, now: float | None = None) -> bool:
    """True the first time a channel's message id is seen, False for a redelivery.

    Only a hash of the id is stored (WhatsApp ids carry the sender's phone number), for at
    least MESSAGE_KEEP_HOURS. Raises sqlite3.Error when the database fails: the caller
    decides whether an unknown message is handled or skipped.
    """
    digest = hashlib.sha256(f"{channel}\x1f{message_id}".encode()).hexdigest()[:32]
    at = time.time() if now is None else now
    async with db.execute("INSERT OR IGNORE INTO seen_messages VALUES (?, ?, ?)", (channel, digest, at)) as cur:
        return cur.rowcount == 1


async def forget_messages(db: aiosqlite.Connection, *, now: float | None = None) -> int:
    """Delete message ids older than MESSAGE_KEEP_HOURS; the number deleted."""
    at = time.time() if now is None else now
    async with db.execute("DELETE FROM seen_messages WHERE at < ?", (at - MESSAGE_KEEP_HOURS * 3600,)) as cur:
        return cur.rowcount


# -- dialogue state ---------------------------------------------------------------------


class Failures:
    """Counts database failures and logs them at most once per `interval` seconds."""

    def __init__(self, what: str, interval: float = 60.0) -> None:
        self.what = what
        self.interval = interval
        self.count = 0
        self.last_error: str | None = None
        self._logged_at = -interval
        self._unlogged = 0

    def note(self, exc: BaseException, events: int = 1) -> None:
        self.count += events
        self._unlogged += events
        self.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._logged_at >= self.interval:
            log.warning("%s failed (%d since last report): %s", self.what, self._unlogged, self.last_error)
            self._logged_at = now
            self._unlogged = 0


class SqliteStates:
    """The StateStore in `user_state`, with the most recently seen states cached in memory.

    A failing database never breaks a reply: the cache still answers, the failure is
    counted in `failed` and logged once a minute.
    """

    def __init__(self, db: aiosqlite.Connection, *, cache_limit: int = 100_000) -> None:
        self._db = db
        self._cache: OrderedDict[str, State] = OrderedDict()
        self._limit = cache_limit
        self._failures = Failures("dialogue state store")

    @property
    def failed(self) -> int:
        return self._failures.count

    async def get(self, key: str) -> State | None:
        state = self._cache.get(key)
        if state is not None:
            self._cache.move_to_end(key)
            return state
        try:
            async with self._db.execute("SELECT state FROM user_state WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - a reply must not wait on a broken disk
            self._failures.note(exc)
            return None
        if row is None:
            return None
        try:
            state = State.from_dict(json.loads(row[0]))
        except (ValueError, TypeError):
            return None
        self._remember(key, state)
        return state

    async def put(self, key: str, state: State) -> None:
        self._remember(key, state)
        try:
            await self._db.execute(
                "INSERT INTO user_state VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                (key, json.dumps(state.to_dict(), ensure_ascii=False), time.time()),
            )
        except Exception as exc:  # noqa: BLE001
            self._failures.note(exc)

    def _remember(self, key: str, state: State) -> None:
        self._cache[key] = state
        self._cache.move_to_end(key)
        while len(self._cache) > self._limit:
            self._cache.popitem(last=False)
