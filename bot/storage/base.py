"""What every storage backend offers, and the shapes that cross it.

The rest of the program talks to one `Storage`: the inbox of accepted messages, the
dialogue state of each pseudonymous person, the usage events, housekeeping, and plain
queries for the report (written with `?` placeholders; PostgreSQL gets `$n`). Two
backends implement it: `bot.storage.sqlite` (a file, the embedded default) and
`bot.storage.postgres` (a server, for several machines).

Every call has a bounded wait (`wait`, seconds): a locked or slow database makes the call
fail with `StorageUnavailable`, it never holds a reply for longer. Each backend keeps a
`Health`: the last outcome of the real writers, logged once per condition and once on
recovery, which /healthz reports instead of probing the database itself.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import PreguntaError

__all__ = [
    "MESSAGE_KEEP_HOURS",
    "ClaimFor",
    "Claimed",
    "Finished",
    "Health",
    "NewMessage",
    "PurgeCounts",
    "Storage",
    "StorageUnavailable",
    "digest",
    "dollar_params",
]

log = logging.getLogger("bot.storage")

MESSAGE_KEEP_HOURS = 48  # webhook redeliveries come within minutes; two days is generous


class StorageUnavailable(PreguntaError):
    """The database did not answer within the bounded wait, or failed (locked, full, gone)."""


def digest(channel: str, message_id: str) -> str:
    """What the inbox keeps of a platform's message id: a hash (WhatsApp ids embed the phone number)."""
    return hashlib.sha256(f"{channel}\x1f{message_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class NewMessage:
    """An accepted message, as the inbox stores it until it is answered."""

    channel: str
    digest: str  # `digest(channel, platform id)`: the dedup key, kept 48 h after the answer
    person: str  # the stable pseudonym (the user_state key): per-person order and flood counts
    address: str  # the platform's address to answer (phone, chat id): deleted once answered
    body: str  # JSON of what is needed to answer (the message): deleted once answered
    received: float  # unix time


@dataclass(frozen=True)
class ClaimFor:
    """How a process claims: its name, its channels, how many at most, the lease and the flood window."""

    worker: str
    channels: tuple[str, ...]
    limit: int
    lease: float
    flood_window: float


@dataclass(frozen=True)
class Claimed:
    """A message this process now handles (under a lease), with what the database knows of the person."""

    id: int
    channel: str
    person: str
    address: str
    body: str
    received: float
    attempts: int  # claims so far, this one included
    state: str | None  # JSON of the person's dialogue state, read in the same transaction
    recent: int  # the person's messages in the flood window ending at this one (this one included)
    previous: str | None  # the flood verdict of the person's message before this one


@dataclass(frozen=True)
class Finished:
    """A claimed message leaving the inbox: the state to save with it, atomically."""

    id: int
    person: str
    state: str | None  # new state JSON, or None when it did not change
    verdict: str  # "ok", "warn", "drop": the flood verdict (the next message reads it)
    given_up: bool = False  # the reply could not be sent (counted in metrics)


@dataclass(frozen=True)
class PurgeCounts:
    """What one housekeeping pass removed besides the rolled-up events."""

    messages: int  # inbox rows (answered messages) past MESSAGE_KEEP_HOURS
    states: int  # dialogue states of people silent for longer than the retention


class Health:
    """The last outcome of each kind of write (storing messages, saving states, events…):
    ok, or degraded with the reason.

    A kind that failed counts as failing until that same kind works again, `settle`
    seconds after its last failure (on a nearly full disk an UPDATE in place, or an INSERT
    that fits a page, works while the next one fails: that is not a recovery). Logged once
    when a condition starts (or changes) and once when it ends, never once per message: a
    full disk under load used to print thousands of tracebacks.
    """

    def __init__(self, what: str, settle: float = 2.0) -> None:
        self.what = what
        self.settle = settle
        self.errors = 0
        self.since: float | None = None
        self._failing: dict[str, str] = {}  # kind of write → condition
        self._last_failure: dict[str, float] = {}

    @property
    def ok(self) -> bool:
        return not self._failing

    @property
    def reason(self) -> str | None:
        if not self._failing:
            return None
        kind, why = next(iter(self._failing.items()))
        return f"{why} ({kind})"

    def success(self, kind: str = "write") -> None:
        if kind in self._failing and time.monotonic() - self._last_failure.get(kind, 0.0) >= self.settle:
            del self._failing[kind]
            log.warning("%s: %s works again (%d failure(s) so far)", self.what, kind, self.errors)
            if not self._failing:
                self.since = None

    def failure(self, exc: BaseException, kind: str = "write") -> None:
        self.errors += 1
        why = condition(exc)
        if self._failing.get(kind) != why:
            log.warning("%s: %s failed: %s: %s", self.what, kind, type(exc).__name__, str(exc)[:200])
        if not self._failing:
            self.since = time.time()
        self._failing[kind] = why
        self._last_failure[kind] = time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "degraded", "reason": self.reason, "since": self.since, "errors": self.errors}


def condition(exc: BaseException) -> str:
    """A short, stable name for a database failure (what the log and /healthz show)."""
    text = str(exc).lower()
    for words, name in (
        (("full",), "disk full"),
        (("locked", "lock timeout", "lock_timeout", "canceling statement"), "database locked"),
        (("timed out", "timeout", "bounded wait"), "database too slow"),
        (("readonly", "read-only", "read only"), "database read-only"),
        (("disk i/o", "i/o error"), "disk I/O error"),
        (("closed", "connection", "not open"), "database not reachable"),
    ):
        if any(word in text for word in words):
            return name
    return type(exc).__name__


_KINDS = {
    "put": "storing messages", "finish": "saving states", "save_state": "saving states",
    "claim": "claiming messages", "renew": "claiming messages", "release": "claiming messages", "later": "claiming messages",
    "write": "writing usage events", "run": "housekeeping",
}  # fmt: skip


def _kind(job: object) -> str:
    """What a backend's job does, for Health: its function's name in words."""
    return _KINDS.get(getattr(job, "__name__", ""), "writing")


_PLACEHOLDER = re.compile(r"\?(\d*)")


def dollar_params(sql: str) -> str:
    """SQLite's `?` and `?N` placeholders as PostgreSQL's `$N` (string literals hold none here)."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(1):
            return f"${match.group(1)}"
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(number, sql)


class Storage(Protocol):
    """One database, whichever the backend. Every method may raise `StorageUnavailable`."""

    kind: str  # "sqlite" or "postgresql"
    where: str  # the file or the server, for messages (never the password)
    health: Health

    # -- the inbox ---------------------------------------------------------------------

    async def put_messages(
        self, messages: Sequence[NewMessage], *, wait: float | None = None, claim: ClaimFor | None = None
    ) -> tuple[list[bool], list[Claimed]]:
        """Store accepted messages; for each, True when new, False when already in the inbox or
        answered. With `claim`, the new ones that are their person's next message are claimed
        in the same transaction (the process that received them answers them at once)."""
        ...

    async def claim(
        self, worker: str, channels: Sequence[str], *, limit: int, lease: float, flood_window: float
    ) -> list[Claimed]:
        """Lease the oldest pending message of up to `limit` people nobody else is handling."""
        ...

    async def finish(self, worker: str, done: Sequence[Finished]) -> list[bool]:
        """Messages answered (or given up): saved state and done mark in one transaction; False where
        the lease was lost to another process (its state is then not written)."""
        ...

    async def renew(self, worker: str, lease: float) -> int: ...

    async def release(self, worker: str) -> int:
        """Unfinished claims of this process back to pending (a clean shutdown)."""
        ...

    async def retry_later(self, worker: str, message_id: int, delay: float) -> None:
        """A claim that failed: back to pending, not to be claimed again for `delay` seconds."""
        ...

    async def pending(self) -> int: ...

    # -- dialogue state (callers outside the inbox: the terminal chat, tests) -------------

    async def get_state(self, key: str) -> str | None: ...

    async def put_state(self, key: str, state: str) -> None: ...

    # -- usage log, report, housekeeping -----------------------------------------------

    async def write_events(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...

    async def script(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Several statements in one write transaction; the row count of each."""
        ...

    async def forget(self, *, now: float, retention_days: int, batch: int = 5000) -> PurgeCounts:
        """Delete answered messages past MESSAGE_KEEP_HOURS and stale states, in small transactions."""
        ...

    async def compact(self) -> None:
        """Give deleted pages back (SQLite: checkpoint the WAL); nothing on PostgreSQL."""
        ...

    async def close(self) -> None: ...
