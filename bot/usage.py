"""The usage log: every turn becomes one row in the database, and no reply ever waits for it.

`record` scrubs the text of a not-sure turn (answered turns keep none) and puts the
event on a bounded queue; that is all a reply pays. A background task writes batches on
a connection of its own (`bot.storage`, SQLite or PostgreSQL). A failing database
(locked, disk full) keeps the events in memory, up to a bound, and tries again with a
growing pause; past the bound the oldest are dropped and counted. The failure is logged
once per condition and once when writes work again. `close` flushes what it can. With a
retention, the log also purges once a day (`bot.rollup.purge`, in small transactions).
Knows nothing of channels, nor of how reports read the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import astuple, dataclass
from datetime import date
from pathlib import Path

from bot import rollup
from bot.clock import local_day
from bot.conversation import Turn
from bot.privacy import scrub
from bot.replies import Kind
from bot.storage import Storage, StorageUnavailable, describe, open_storage

__all__ = ["Event", "UsageCounters", "UsageLog", "event_of"]

log = logging.getLogger(__name__)

_DAY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Event:
    """One row of `events`: what the issue lists, and nothing that names a person."""

    at: float
    day: str
    channel: str
    lang: str
    kind: str
    topic: str | None
    score: float | None
    latency_ms: float
    user_key: str
    query: str | None
    chose_lang: str | None = None  # the language chosen in this turn, whatever its kind


def event_of(turn: Turn) -> Event:
    """The row for a turn: the query kept (scrubbed) for not-sure turns only, never for an emergency."""
    query = scrub(turn.query) if turn.kind is Kind.NOT_SURE and turn.query else None
    chose = turn.chose_lang or (turn.topic if turn.kind is Kind.LANGUAGE and turn.topic else None)
    return Event(
        at=float(round(turn.at)),
        day=local_day(turn.at),
        channel=turn.channel,
        lang=turn.lang,
        kind=turn.kind.value,
        topic=turn.topic,
        score=None if turn.score is None else round(turn.score, 1),
        latency_ms=round(turn.latency_ms, 1),
        user_key=turn.user_key,
        query=query or None,
        chose_lang=chose,
    )


@dataclass(frozen=True)
class UsageCounters:
    """For /healthz and /metrics: events written, dropped (queue or memory bound, shutdown),
    failed (write attempts that failed), queued (waiting, in the queue or kept after a failure)."""

    written: int
    dropped: int
    failed: int
    queued: int
    last_error: str | None


class UsageLog:
    """The `UsageSink` of the running bot and of the terminal chat.

    `await start()` before the first turn (turns recorded earlier wait in the queue),
    `await close()` on shutdown: it writes what is queued, waiting at most `flush_timeout`.
    """

    def __init__(
        self,
        target: Path | str,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        busy_timeout: float = 5.0,
        flush_timeout: float = 8.0,
        retention_days: int | None = None,
        keep: int = 20_000,
        max_pause: float = 5.0,
    ) -> None:
        self.path = target
        self.retention_days = retention_days  # None: no daily purge (the terminal chat)
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self._busy_timeout = busy_timeout
        self._flush_timeout = flush_timeout
        self._keep = keep  # events kept in memory while the database fails
        self._max_pause = max_pause
        self._kept: list[Event] = []
        self._db: Storage | None = None
        self._lock = asyncio.Lock()  # one transaction at a time on our connection
        self._writer: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        self._closing = False
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._open_error: str | None = None

    # -- counters --------------------------------------------------------------------

    @property
    def written(self) -> int:
        return self._written

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def failed(self) -> int:
        return self._failed

    @property
    def queued(self) -> int:
        return self._queue.qsize() + len(self._kept)

    @property
    def storage(self) -> Storage | None:
        """The log's own connection (tests cap a SQLite file through it)."""
        return self._db

    def health(self) -> dict[str, object]:
        """For /healthz: ok or degraded (with the reason), and the counters."""
        if self._db is not None:
            state = self._db.health.as_dict()
        else:
            state = {"status": "degraded" if self._open_error else "ok", "reason": self._open_error, "since": None, "errors": 0}
        return state

    def counters(self) -> UsageCounters:
        reason = self._db.health.reason if self._db is not None else self._open_error
        return UsageCounters(self._written, self._dropped, self._failed, self.queued, reason)

    # -- the hot path ----------------------------------------------------------------

    def record(self, turn: Turn) -> None:
        """Queue the turn's event; never blocks, never raises. Full or closed: counted as dropped."""
        if self._closing:
            self._dropped += 1
            return
        try:
            self._queue.put_nowait(event_of(turn))
        except asyncio.QueueFull:
            self._dropped += 1
        except Exception:  # a turn the log cannot read must not reach the reply
            self._dropped += 1
            log.exception("usage log could not record a turn")

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database (a failure is noted and retried with the next batch) and start writing."""
        if self._writer is not None:
            return
        async with self._lock:
            await self._connect()
        self._writer = asyncio.create_task(self._run(), name="usage-log-writer")
        if self.retention_days is not None:
            self._purger = asyncio.create_task(self._purge_daily(self.retention_days), name="usage-log-purge")

    async def close(self) -> None:
        """Write everything queued (at most `flush_timeout` seconds), then close the database."""
        if self._closing:
            return
        self._closing = True
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="usage-log-flush")
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)  # wakes a writer waiting on an empty queue
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), self._flush_timeout)
        except TimeoutError:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        lost = self.queued
        if lost:
            self._dropped += lost
            self._kept.clear()
            while not self._queue.empty():
                self._queue.get_nowait()
            log.warning("usage log: %d events not written at shutdown (database failing or too slow)", lost)
        if self._db is not None:
            await self._db.close()
            self._db = None
        if self.failed or self._dropped:
            log.info("usage log closed: %d written, %d dropped, %d failed writes", self._written, self._dropped, self.failed)

    async def purge(self, retention_days: int, *, today: date | None = None) -> rollup.PurgeResult:
        """Roll events older than the retention into daily counts, then delete them."""
        db = await self._connect()
        if db is None:
            raise OSError(self._open_error or "usage database unavailable")
        return await rollup.purge(db, retention_days, today=today)

    # -- the writer ------------------------------------------------------------------

    async def _connect(self) -> Storage | None:
        if self._db is None:
            try:
                self._db = await open_storage(self.path, wait=self._busy_timeout, pool=2)
                self._open_error = None
            except Exception as exc:  # noqa: BLE001 - noted, retried with the next batch
                if self._open_error is None:
                    log.warning("usage log: cannot open %s: %s", describe(self.path), exc)
                self._open_error = f"open: {exc}"
        return self._db

    async def _run(self) -> None:
        pause = 0.0
        while True:
            if pause and not self._closing:
                await asyncio.sleep(pause)
            if self._kept and self._queue.empty() and not self._closing:
                item: Event | None = None
            else:
                item = await self._queue.get()
            batch = [] if item is None else [item]
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is not None:
                    batch.append(item)
            batch = self._kept + batch
            self._kept = []
            if batch:
                if await self._write(batch):
                    pause = 0.0
                else:
                    self._keep_for_later(batch)
                    pause = min(self._max_pause, max(0.05, pause * 2))
                    if self._closing:
                        return
            if self._closing and self._queue.empty() and not self._kept:
                return

    def _keep_for_later(self, batch: list[Event]) -> None:
        """The database failed: keep the newest `keep` events for the next try; the rest are dropped."""
        excess = len(batch) - self._keep
        if excess > 0:
            self._dropped += excess
            batch = batch[excess:]
        self._kept = batch

    async def _write(self, batch: list[Event]) -> bool:
        async with self._lock:
            db = await self._connect()
            if db is None:
                self._failed += 1
                return False
            try:
                await db.write_events([astuple(event) for event in batch])
            except StorageUnavailable:  # locked, disk full, I/O error: noted in db.health, kept, retried
                self._failed += 1
                return False
        self._written += len(batch)
        return True

    async def _purge_daily(self, retention_days: int) -> None:
        while True:
            try:
                result = await self.purge(retention_days)
                if result.events:
                    log.info("purge: %d events before %s rolled into daily counts", result.events, result.before)
            except Exception as exc:  # noqa: BLE001 - tomorrow is another day
                log.warning("purge failed: %s", exc)
            await asyncio.sleep(_DAY_SECONDS)
