"""What every channel shares, so that a new channel is a parser, a renderer and a sender.

- `Channel`: what the server mounts, starts and stops.
- Text: a `Reply` as plain text (`as_text`, `numbered`) and split to a length (`split_text`).
- Webhooks in: `read_body` (bounded in size, time and, across requests, memory: refused
  with the right status before reading when it can be), `parse_json` (broken or absurdly
  nested JSON is a 400, never a 500), `Dedup` (platforms deliver at least once),
  `Background` (work after the acknowledgement, drained on stop).
- Calls out: `RetryPolicy` (backoff, a server's Retry-After within a ceiling) and
  `translate` (a table from a library's exceptions to `ChannelError`, instead of an
  isinstance chain in each caller).
- `Presence`: when to send "seen" or "typing…" at all (only when the reply is not
  immediate), per person, in bounded memory.

Per-person ordering uses `bot.locks.KeyedLocks`. Channels never import the matcher or
the dialogue's internals; this module knows no platform.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from bot.errors import ChannelError
from bot.replies import Option, Reply

__all__ = [
    "BODY_BUDGET",
    "BODY_TIMEOUT",
    "MAX_BODY",
    "Background",
    "BodyBudget",
    "Channel",
    "Dedup",
    "ErrorTable",
    "MemoryDedup",
    "Presence",
    "Refused",
    "RememberedDedup",
    "RetryPolicy",
    "Watch",
    "as_text",
    "numbered",
    "parse_json",
    "read_body",
    "split_text",
    "translate",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E")

MAX_BODY = 1024 * 1024  # bytes of a webhook body we read; Meta's and Telegram's are a few KB
BODY_TIMEOUT = 10.0  # seconds a client gets to send a body once its headers are in


class Channel(Protocol):
    """A messaging platform. The server mounts its routes and starts and stops it.

    Built as `Channel(settings, conversations, metrics, ...)`, with no I/O in the constructor.
    """

    name: str

    def routes(self) -> list[BaseRoute]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# -- text ------------------------------------------------------------------------------


def numbered(options: tuple[Option, ...]) -> str:
    """Options as lines a person can answer by number: "1 Pasaporte"."""
    return "\n".join(f"{option.key} {option.title}" for option in options)


def as_text(reply: Reply) -> str:
    """The whole reply as plain text, options numbered at the end."""
    if not reply.options:
        return reply.text
    return f"{reply.text}\n\n{numbered(reply.options)}"


def split_text(text: str, limit: int = 4096) -> list[str]:
    """Split on paragraph boundaries (then lines, then spaces) so no part exceeds `limit`."""
    parts: list[str] = []
    current = ""
    for piece in text.split("\n\n"):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(piece) > limit:
            cut = piece.rfind("\n", 0, limit)
            if cut <= 0:
                cut = piece.rfind(" ", 0, limit)
            if cut <= 0:
                cut = limit
            parts.append(piece[:cut].rstrip())
            piece = piece[cut:].lstrip()
        current = piece
    if current or not parts:
        parts.append(current)
    return parts


# -- webhooks in ------------------------------------------------------------------------


class Refused(Exception):
    """A webhook request refused before any work: the status and a short reason for the caller.

    The response closes the connection: the body may be unread, and a client refused once
    has nothing more to send on it that we want to read."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = {"Connection": "close", **(headers or {})}

    def response(self) -> Response:
        return PlainTextResponse(self.reason, status_code=self.status, headers=self.headers)


class BodyBudget:
    """Bytes of webhook bodies being read at once, across every request of the process.

    Each read reserves its declared length first; past the budget the request is refused
    (503, Retry-After) before a byte is read. So three hundred clients each declaring a
    megabyte cost at most the budget, not three hundred megabytes, and what was read is
    freed when they go.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.total:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)


BODY_BUDGET = BodyBudget(16 * MAX_BODY)  # sixteen maximal bodies, thousands of real ones


async def read_body(
    request: Request,
    *,
    limit: int = MAX_BODY,
    media_type: str | None = "application/json",
    timeout: float = BODY_TIMEOUT,
    budget: BodyBudget | None = None,
) -> bytes:
    """The body, read only when its declared size is within `limit` and the `budget`,
    and only while it arrives within `timeout` seconds.

    Raises `Refused` before reading anything: 415 for another media type (when one is
    required), 411 without a Content-Length (Meta and Telegram always send one; so do
    nginx and Caddy with request buffering, see docs/operations.md), 400 for a bad one,
    413 past the limit, 503 when the budget is spent. While reading: 408 when the body
    is too slow, 400 when the client goes away, 413 if more comes than declared.
    """
    if media_type is not None:
        given = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if given != media_type:
            raise Refused(415, f"expected {media_type}")
    length = request.headers.get("content-length")
    if length is None:
        raise Refused(411, "content-length required")
    if not length.isdigit() or len(length) > 12:
        raise Refused(400, "bad content-length")
    declared = int(length)
    if declared > limit:
        raise Refused(413, "body too large")
    budget = budget if budget is not None else BODY_BUDGET
    if not budget.take(declared):
        raise Refused(503, "busy", {"Retry-After": "10"})
    # One buffer of the declared size, each chunk copied in and dropped at once: a large
    # buffer is mapped and unmapped as a whole, where a list of chunks would leave the
    # heap fragmented (and the process larger) after a crowd of big bodies.
    body = bytearray(declared)
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                end = size + len(chunk)
                if end > declared:
                    raise Refused(413, "body longer than its content-length")
                body[size:end] = chunk
                size = end
    except TimeoutError:
        raise Refused(408, "body too slow") from None
    except ClientDisconnect:
        raise Refused(400, "incomplete body") from None
    finally:
        budget.give(declared)
    if size < declared:
        raise Refused(400, "incomplete body")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`; `Refused(400)` when it is not JSON or nests too deep
    for the parser (a signed body of ten thousand brackets is a bad request, not a 500)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "malformed JSON") from None


class Dedup(Protocol):
    """Remembers delivery ids; the SQLite one (bot/db.py) also survives a restart."""

    async def first_time(self, message_id: str) -> bool:
        """True the first time an id is seen, False for a re-delivery."""
        ...


class MemoryDedup:
    """Ids seen in the last `ttl` seconds (48 h), at most `limit` of them, in memory."""

    def __init__(self, ttl: float = 48 * 3600.0, limit: int = 200_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.limit = limit
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # id → when it expires, oldest first

    def __len__(self) -> int:
        return len(self._seen)

    async def first_time(self, message_id: str) -> bool:
        now = self._clock()
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[oldest]
        if message_id in self._seen:
            return False
        self._seen[message_id] = now + self.ttl
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True


class RememberedDedup:
    """Adapts a store's `remember(message_id) -> bool` (True when new), e.g.
    `RememberedDedup(functools.partial(db.remember_message, conn, "whatsapp"))`."""

    def __init__(self, remember: Callable[[str], Coroutine[Any, Any, bool]]) -> None:
        self._remember = remember

    async def first_time(self, message_id: str) -> bool:
        return await self._remember(message_id)


class Background:
    """Tasks a channel starts after acknowledging a webhook: tracked, their failures logged
    and counted, and drained on stop (given a grace period, then cancelled)."""

    def __init__(self, name: str, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self._on_error = on_error
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            if self._on_error is not None:
                self._on_error(error)
            log.error("%s: a background task failed", self.name, exc_info=error)

    async def settle(self) -> None:
        """Wait until no task is left, including tasks that tasks started."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, seconds: float) -> int:
        """Give the tasks under way `seconds` to finish, then cancel the rest; how many were cancelled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._tasks and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._tasks), timeout=remaining)  # tasks may spawn tasks: look again
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)


# -- calls out --------------------------------------------------------------------------


ErrorTable = Mapping[type[BaseException], Callable[[Any], E]]


def translate(exc: BaseException, table: ErrorTable[E]) -> E | None:
    """The entry for the most specific class of `exc` in `table` applied to it, or None.

    Walks the exception's MRO, so a subclass listed in the table wins over its base
    (PTB's BadRequest over NetworkError) without ordering an isinstance chain by hand.
    """
    for kind in type(exc).__mro__:
        rule = table.get(kind)
        if rule is not None:
            return rule(exc)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a call: `attempts` in all, waiting `base`·2ⁿ seconds (jittered, at
    most `cap`) between them. A server's Retry-After is honoured up to `ceiling` seconds;
    asked to wait longer, we give the call up rather than hold a person's reply for minutes."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 20.0
    ceiling: float = 60.0

    def delay(self, retry: int, hint: float | None = None) -> float | None:
        """Seconds to wait before retry number `retry` (0-based); None when the hint passes the ceiling."""
        if hint is not None:
            return max(0.0, hint) if hint <= self.ceiling else None
        return min(self.cap, self.base * 2.0**retry) * random.uniform(0.5, 1.0)

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        what: str,
        attempts: int | None = None,
        on_retry: Callable[[], None] | None = None,
        stopping: asyncio.Event | None = None,
    ) -> T:
        """`call()` until it succeeds; it raises `ChannelError` (translated) on failure.

        Raises the last error once it is not retryable, the attempts are spent, the server
        asks for a pause past the ceiling, or `stopping` is set while waiting.
        """
        tries = max(1, attempts or self.attempts)
        retry = 0
        while True:
            try:
                return await call()
            except ChannelError as error:
                if not error.retryable or retry >= tries - 1:
                    raise
                wait = self.delay(retry, error.retry_after)
                if wait is None:
                    log.info("%s: asked to wait %.0f s, past the %.0f s ceiling: given up", what, error.retry_after or 0, self.ceiling)
                    raise
                retry += 1
                if on_retry is not None:
                    on_retry()
                log.info("%s failed (%s); retry %d of %d in %.2f s", what, error, retry, tries - 1, wait)
                if stopping is None:
                    await asyncio.sleep(wait)
                elif await _set_within(stopping, wait):
                    raise ChannelError(f"{what}: shutting down") from error


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


# -- presence: "seen" and "typing…" ------------------------------------------------------


class Presence:
    """Decides when a person is shown that their message arrived ("seen", "typing…").

    A reply that comes within a second needs no such sign: the reply is the sign, and the
    extra call costs as much as the reply. So the sign goes out only

    - at once for the first message after a pause (no reply to that person for `pause`
      seconds), when they may wonder whether anyone is there;
    - after `delay` seconds when the reply is not ready by then.

    Remembers when each person last got a reply, only for `pause` seconds and for at most
    `limit` people (the least recent forgotten first).
    """

    def __init__(
        self, *, pause: float = 30.0, delay: float = 1.0, limit: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pause = pause
        self.delay = delay
        self.limit = limit
        self._clock = clock
        self._replied: OrderedDict[Hashable, float] = OrderedDict()  # person → when they last got a reply

    def __len__(self) -> int:
        return len(self._replied)

    def due_now(self, person: Hashable) -> bool:
        """True when the person got no reply in the last `pause` seconds."""
        now = self._clock()
        self._forget(now)
        last = self._replied.get(person)
        return last is None or now - last >= self.pause

    def replied(self, person: Hashable) -> None:
        self._replied[person] = self._clock()
        self._replied.move_to_end(person)
        while len(self._replied) > self.limit:
            self._replied.popitem(last=False)

    def watch(self, person: Hashable, show: Callable[[], Coroutine[Any, Any, None]], spawn: Background) -> Watch:
        """Start watching one message: `show()` runs now if due, else after `delay` unless `ready()` comes first."""
        watch = Watch(self, person, show, spawn)
        if self.due_now(person):
            watch.fire()
        else:
            watch.timer = asyncio.get_running_loop().call_later(self.delay, watch.fire)
        return watch

    def _forget(self, now: float) -> None:
        replied = self._replied
        while replied:
            oldest = next(iter(replied))
            if now - replied[oldest] < self.pause:
                break
            del replied[oldest]


class Watch:
    """One message under `Presence`: its timer, and the sign's call once it started."""

    __slots__ = ("_done", "_person", "_presence", "_show", "_spawn", "sign", "timer")

    def __init__(
        self, presence: Presence, person: Hashable, show: Callable[[], Coroutine[Any, Any, None]], spawn: Background
    ) -> None:
        self._presence = presence
        self._person = person
        self._show = show
        self._spawn = spawn
        self._done = False
        self.timer: asyncio.TimerHandle | None = None
        self.sign: asyncio.Task[None] | None = None

    def fire(self) -> None:
        self.timer = None
        if self.sign is None and not self._done:
            self.sign = self._spawn.spawn(self._show())

    def close(self) -> None:
        """No reply after all (it failed, or the person is flooding): stop the timer."""
        self._done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    async def ready(self, *, after_sign: bool = False) -> None:
        """The reply is ready: no sign from now on. With `after_sign`, wait for a sign
        already under way, so it reaches the platform before the reply (Telegram would
        otherwise show "typing…" after the answer)."""
        if self._done:
            return
        self._done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._presence.replied(self._person)
        if after_sign and self.sign is not None and not self.sign.done():
            await asyncio.wait([self.sign], timeout=self._presence.delay * 5)
