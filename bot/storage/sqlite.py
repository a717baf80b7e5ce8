"""The SQLite backend: one file, WAL mode, every transaction one hop to its own thread.

The embedded default (PREGUNTA_DB a path). Each call runs whole in the connection's
thread (a `BEGIN IMMEDIATE … COMMIT` and its reads in one go), so no cursor is ever held
across an `await` and a write never upgrades a read snapshot (which SQLite refuses at
once with "database is locked" when another process wrote in between). A call's wait is
bounded: the busy timeout is cut to what is left of it, and a call that waited its turn
past the bound fails without touching the file. Several processes may share the file;
writers take turns.

The schema is made and upgraded by the program. Migrations only add: a database made by
an older version is upgraded in place, one made by a newer version is refused rather
than misread. Deleted rows are overwritten (`secure_delete`), so a purge really forgets.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import PreguntaError
from bot.storage.base import (
    MESSAGE_KEEP_HOURS,
    Claimed,
    ClaimFor,
    Finished,
    Health,
    NewMessage,
    PurgeCounts,
    StorageUnavailable,
    _kind,
    log,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStorage", "open_sqlite"]

T = TypeVar("T")

# Each step is applied once, in order, in one transaction. Never edit a released step:
# add a new one (and the same step to bot.storage.postgres).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    # 5: the durable inbox: a message is stored before the webhook is acknowledged and
    # leaves only once answered; its row (without address or text) then serves as the
    # webhook dedup for MESSAGE_KEEP_HOURS and as the flood guard's count
    (
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            digest TEXT NOT NULL,        -- hash of the platform's message id
            person TEXT NOT NULL,        -- stable pseudonym (the user_state key); '' for ids carried over
            received REAL NOT NULL,
            address TEXT,                -- whom to answer (phone, chat id): NULL once done
            body TEXT,                   -- JSON of the message, what is needed to answer: NULL once done
            claimed_by TEXT,             -- the process handling it
            lease_until REAL,            -- its claim expires then (a crashed process)
            attempts INTEGER NOT NULL DEFAULT 0,
            done REAL,                   -- when it was answered or given up; NULL while pending
            verdict TEXT,                -- the flood guard's: ok, warn, drop
            given_up INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE UNIQUE INDEX inbox_message ON inbox (channel, digest)",
        "CREATE INDEX inbox_person ON inbox (person, id)",
        "CREATE INDEX inbox_pending ON inbox (person, id) WHERE done IS NULL",
        "CREATE INDEX inbox_done ON inbox (done) WHERE done IS NOT NULL",
        """INSERT INTO inbox (channel, digest, person, received, done, verdict)
            SELECT channel, digest, '', at, at, 'ok' FROM seen_messages""",
    ),
    # 6: alerts ("avisos"): who asked for them (the only place an address is kept, encrypted),
    # what each alert did for each of them (never twice), and subscribers over time
    (
        """CREATE TABLE subscriptions (
            person TEXT PRIMARY KEY,     -- keyed pseudonym of channel + user id: found without decrypting
            channel TEXT NOT NULL,       -- telegram, whatsapp (counts per channel)
            lang TEXT NOT NULL,          -- the language alerts go out in
            token TEXT NOT NULL,         -- Fernet token (PREGUNTA_SUBSCRIBERS_KEY) of the channel and address
            since REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE alert_deliveries (
            alert TEXT NOT NULL,         -- the alert's id (content/es/alerts/<id>.yaml)
            person TEXT NOT NULL,        -- the subscription's pseudonym, never the address
            channel TEXT NOT NULL,
            lang TEXT NOT NULL,
            status TEXT NOT NULL,        -- sending (not confirmed), sent, failed, unsubscribed
            run TEXT NOT NULL,           -- which `pregunta alerts send` wrote it
            at REAL NOT NULL,
            detail TEXT,                 -- why it failed: an error code, never an address
            PRIMARY KEY (alert, person)
        ) WITHOUT ROWID""",
        """CREATE TABLE subscription_days (
            day TEXT NOT NULL,           -- YYYY-MM-DD in Guatemala
            channel TEXT NOT NULL,
            joined INTEGER NOT NULL DEFAULT 0,
            stopped INTEGER NOT NULL DEFAULT 0,   -- asked to stop («baja»)
            blocked INTEGER NOT NULL DEFAULT 0,   -- unsubscribed because the platform said they blocked us
            PRIMARY KEY (day, channel)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_HEADS = """
UPDATE inbox SET claimed_by = ?1, lease_until = ?2, attempts = attempts + 1
WHERE id IN (
    SELECT i.id FROM inbox AS i
    JOIN (SELECT MIN(id) AS head FROM inbox WHERE done IS NULL GROUP BY person) AS h ON i.id = h.head
    WHERE (i.lease_until IS NULL OR i.lease_until < ?3) AND i.channel IN ({channels}){only}
    ORDER BY i.id LIMIT ?4
)
RETURNING id, channel, person, address, body, received, attempts
"""
_ANY_CLAIMABLE = "SELECT 1 FROM inbox WHERE done IS NULL AND (lease_until IS NULL OR lease_until < ?) LIMIT 1"
_PERSON = """
SELECT (SELECT state FROM user_state WHERE key = ?1),
       (SELECT COUNT(*) FROM inbox WHERE person = ?1 AND id <= ?2 AND received > ?3),
       (SELECT verdict FROM inbox WHERE person = ?1 AND id < ?2 ORDER BY id DESC LIMIT 1)
"""
_DONE = """
UPDATE inbox SET done = ?, verdict = ?, given_up = ?, address = NULL, body = NULL, claimed_by = NULL, lease_until = NULL
WHERE id = ? AND claimed_by = ? AND done IS NULL
"""
_UPSERT_STATE = (
    "INSERT INTO user_state (key, state, updated) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated = excluded.updated"
)
_INSERT_EVENT = (
    "INSERT INTO events (at, day, channel, lang, kind, topic, score, latency_ms, user_key, query, chose_lang) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteStorage:
    """The `Storage` on one SQLite file. Build it with `await open_sqlite(path)`."""

    kind = "sqlite"

    def __init__(self, path: Path, *, wait: float = 1.0) -> None:
        self.path = path
        self.where = str(path)
        self.wait = wait  # the default bound of every call, in seconds
        self.health = Health(f"database {path}")
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None
        self._busy_ms = int(wait * 1000)
        self._closed = False

    # -- the thread ------------------------------------------------------------------

    async def _run(self, job: Callable[[sqlite3.Connection], T], *, wait: float | None = None, write: bool = True) -> T:
        """`job(connection)` in the connection's thread, within the bounded wait; failures noted in `health`."""
        if self._closed:
            raise StorageUnavailable(f"database {self.path} is closed")
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._pool, self._call, job, deadline)
        except sqlite3.Error as exc:
            if write:
                self.health.failure(exc, _kind(job))
            raise StorageUnavailable(f"database {self.path}: {exc}") from exc
        except StorageUnavailable as exc:
            if write:
                self.health.failure(exc, _kind(job))
            raise
        if write:
            self.health.success(_kind(job))
        return result

    def _call(self, job: Callable[[sqlite3.Connection], T], deadline: float) -> T:
        db = self._db
        if db is None:
            raise StorageUnavailable(f"database {self.path} is not open")
        left = deadline - time.monotonic()
        if left <= 0:
            raise StorageUnavailable(f"database {self.path}: timed out waiting its turn (bounded wait)")
        busy = min(self._busy_ms, max(1, int(left * 1000)))
        if busy != self._busy_ms:
            db.execute(f"PRAGMA busy_timeout = {busy}")
        try:
            return job(db)
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        finally:
            if busy != self._busy_ms:
                db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self.wait)
        try:
            db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA secure_delete = ON")
            migrate(db, self.path)
        except BaseException:
            db.close()
            raise
        self._db = db

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)

    # -- the inbox -------------------------------------------------------------------

    async def put_messages(
        self, messages: Sequence[NewMessage], *, wait: float | None = None, claim: ClaimFor | None = None
    ) -> tuple[list[bool], list[Claimed]]:
        rows = [(m.channel, m.digest, m.person, m.received, m.address, m.body) for m in messages]

        def put(db: sqlite3.Connection) -> tuple[list[bool], list[Claimed]]:
            db.execute("BEGIN IMMEDIATE")
            new: list[bool] = []
            ids: list[int] = []
            for row in rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO inbox (channel, digest, person, received, address, body) VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
                new.append(cursor.rowcount == 1)
                if cursor.rowcount == 1:
                    assert cursor.lastrowid is not None  # the row just inserted has its id
                    ids.append(cursor.lastrowid)
            claimed = _claim_heads(db, claim, ids) if claim is not None and ids else []
            db.execute("COMMIT")
            return new, claimed

        return await self._run(put, wait=wait)

    async def claim(
        self, worker: str, channels: Sequence[str], *, limit: int, lease: float, flood_window: float
    ) -> list[Claimed]:
        if not channels or limit <= 0:
            return []
        how = ClaimFor(worker, tuple(channels), limit, lease, flood_window)

        def claim(db: sqlite3.Connection) -> list[Claimed]:
            if db.execute(_ANY_CLAIMABLE, (time.time(),)).fetchone() is None:
                return []  # idle: no write lock taken
            db.execute("BEGIN IMMEDIATE")
            found = _claim_heads(db, how, None)
            db.execute("COMMIT")
            return found

        return await self._run(claim)

    async def finish(self, worker: str, done: Sequence[Finished]) -> list[bool]:
        def finish(db: sqlite3.Connection) -> list[bool]:
            now = time.time()
            db.execute("BEGIN IMMEDIATE")
            kept = []
            for item in done:
                cursor = db.execute(_DONE, (now, item.verdict, int(item.given_up), item.id, worker))
                ours = cursor.rowcount == 1
                if ours and item.state is not None:
                    db.execute(_UPSERT_STATE, (item.person, item.state, now))
                kept.append(ours)
            db.execute("COMMIT")
            return kept

        return await self._run(finish)

    async def renew(self, worker: str, lease: float) -> int:
        def renew(db: sqlite3.Connection) -> int:
            sql = "UPDATE inbox SET lease_until = ? WHERE claimed_by = ? AND done IS NULL"
            return db.execute(sql, (time.time() + lease, worker)).rowcount

        return await self._run(renew)

    async def release(self, worker: str) -> int:
        def release(db: sqlite3.Connection) -> int:
            sql = "UPDATE inbox SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ? AND done IS NULL"
            return db.execute(sql, (worker,)).rowcount

        return await self._run(release)

    async def retry_later(self, worker: str, message_id: int, delay: float) -> None:
        def later(db: sqlite3.Connection) -> None:
            sql = "UPDATE inbox SET claimed_by = NULL, lease_until = ? WHERE id = ? AND claimed_by = ? AND done IS NULL"
            db.execute(sql, (time.time() + delay, message_id, worker))

        await self._run(later)

    async def pending(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COUNT(*) FROM inbox WHERE done IS NULL").fetchone()[0])

        return await self._run(count, write=False)

    # -- dialogue state --------------------------------------------------------------

    async def get_state(self, key: str) -> str | None:
        def get(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT state FROM user_state WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(get, write=False)

    async def put_state(self, key: str, state: str) -> None:
        def save_state(db: sqlite3.Connection) -> None:
            db.execute(_UPSERT_STATE, (key, state, time.time()))

        await self._run(save_state)

    # -- usage log, report, housekeeping ------------------------------------------------

    async def write_events(self, rows: Sequence[tuple[Any, ...]]) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(_INSERT_EVENT, rows)
            db.execute("COMMIT")

        await self._run(write)

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(lambda db: [tuple(row) for row in db.execute(sql, tuple(args)).fetchall()], write=False)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return await self._run(lambda db: db.execute(sql, tuple(args)).rowcount)

    async def script(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        def run(db: sqlite3.Connection) -> list[int]:
            db.execute("BEGIN IMMEDIATE")
            counts = [db.execute(sql, tuple(args)).rowcount for sql, args in statements]
            db.execute("COMMIT")
            return counts

        return await self._run(run)

    async def forget(self, *, now: float, retention_days: int, batch: int = 5000) -> PurgeCounts:
        messages = await self._batched("inbox", "done IS NOT NULL AND done < ?", now - MESSAGE_KEEP_HOURS * 3600, batch)
        await self.execute("DELETE FROM seen_messages WHERE at < ?", (now - MESSAGE_KEEP_HOURS * 3600,))  # before schema 5
        states = await self._batched("user_state", "updated < ?", now - retention_days * 86400, batch, key="key")
        return PurgeCounts(messages, states)

    async def _batched(self, table: str, where: str, bound: float, batch: int, key: str = "id") -> int:
        """DELETE in transactions of `batch` rows: other writers get the lock in between."""
        sql = f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {where} LIMIT ?)"
        total = 0
        while True:
            deleted = await self._run(lambda db: db.execute(sql, (bound, batch)).rowcount, wait=max(self.wait, 5.0))
            total += deleted
            if deleted < batch:
                return total
            await asyncio.sleep(0.01)

    async def compact(self) -> None:
        def checkpoint(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        await self._run(checkpoint, wait=max(self.wait, 5.0), write=False)

    # -- for tests and tools -----------------------------------------------------------

    async def pragma(self, statement: str) -> list[tuple[Any, ...]]:
        """Run a PRAGMA on this connection (tests cap the file with max_page_count)."""
        return await self._run(lambda db: [tuple(r) for r in db.execute(f"PRAGMA {statement}").fetchall()], write=False)


def _claim_heads(db: sqlite3.Connection, how: ClaimFor, only: list[int] | None) -> list[Claimed]:
    """Within a write transaction: lease the oldest pending message of people nobody handles
    (of the messages `only`, when given), and read each person's state and flood counts."""
    now = time.time()
    marks = ", ".join("?" + str(5 + n) for n in range(len(how.channels)))
    restrict = ""
    if only is not None:
        first = 5 + len(how.channels)
        restrict = " AND i.id IN (" + ", ".join("?" + str(first + n) for n in range(len(only))) + ")"
    sql = _HEADS.format(channels=marks, only=restrict)
    rows = db.execute(sql, (how.worker, now + how.lease, now, how.limit, *how.channels, *(only or ()))).fetchall()
    found = []
    for id_, channel, person, address, body, received, attempts in sorted(rows):
        state, recent, previous = db.execute(_PERSON, (person, id_, received - how.flood_window)).fetchone()
        found.append(Claimed(id_, channel, person, address or "", body or "", received, attempts, state, recent, previous))
    return found


async def open_sqlite(path: Path, *, wait: float = 1.0) -> SqliteStorage:
    """The file at `path`, made private (0600), in WAL mode and at SCHEMA_VERSION; close it when done."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)  # pseudonymous data: readable by the service only
    except OSError as exc:
        raise PreguntaError(f"cannot open database {path}: {exc.strerror or exc}") from None
    storage = SqliteStorage(path, wait=wait)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(storage._pool, storage._connect)
    except sqlite3.Error as exc:
        storage._pool.shutdown(wait=False)
        raise PreguntaError(f"cannot open database {path}: {exc}") from None
    except BaseException:
        storage._pool.shutdown(wait=False)
        raise
    return storage


def schema_version(db: sqlite3.Connection) -> int:
    """The version the file is at: 0 for a new file."""
    if db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone() is None:
        return 0
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the file to SCHEMA_VERSION; two processes starting together: one upgrades, the other waits."""
    previous = db.execute("PRAGMA busy_timeout").fetchone()[0]
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied REAL NOT NULL)")
        current = schema_version(db)
        if current > SCHEMA_VERSION:
            raise PreguntaError(
                f"database {path} is at schema version {current}, newer than this program's {SCHEMA_VERSION}: "
                "upgrade Preguntá before using it"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
            log.info("database %s upgraded to schema version %d", path, version)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.execute(f"PRAGMA busy_timeout = {previous}")

