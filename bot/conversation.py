"""Around the pure dialogue: who is talking, what they chose before, how fast they write.

Channels call `Conversations.handle(channel, user_id, incoming)` and render the reply, or,
when a message comes from the durable inbox, `begin` (the reply, nothing written yet)
and, once the reply is sent, `end` (the new state saved together with the inbox's done
mark, the turn logged). A turn that was cut short (a crash before the reply went out) is
then replayed from the same state and gives the same reply.

Here, and only here, the raw user id is seen: it becomes keyed pseudonyms at once, one
stable (to remember the chosen language) and one per month (for the usage log, so
months cannot be linked). Knows nothing of matching internals or of any channel.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.clock import GUATEMALA
from bot.dialogue import State, respond, slow_down
from bot.locks import KeyedLocks
from bot.matcher import Matcher
from bot.metrics import Metrics
from bot.privacy import pseudonym
from bot.replies import Incoming, Kind, Option, Reply
from bot.subscriptions import CHANNELS as SUBSCRIBABLE

if TYPE_CHECKING:
    from bot.storage import Storage
    from bot.subscriptions import Subscriptions

__all__ = [
    "Context",
    "Conversations",
    "FloodGuard",
    "MemoryStates",
    "Pending",
    "StateStore",
    "StoredStates",
    "Turn",
    "UsageSink",
    "flood_verdict",
]

log = logging.getLogger(__name__)


class StateStore(Protocol):
    async def get(self, key: str) -> State | None: ...

    async def put(self, key: str, state: State) -> None: ...


class MemoryStates:
    """States in memory, the least recently seen dropped past `limit`: the terminal chat and tests."""

    def __init__(self, limit: int = 100_000) -> None:
        self._states: OrderedDict[str, State] = OrderedDict()
        self._limit = limit

    async def get(self, key: str) -> State | None:
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
        return state

    async def put(self, key: str, state: State) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self._limit:
            self._states.popitem(last=False)


class StoredStates:
    """The StateStore in the database, read through on every turn: several processes share
    it, so no process may answer from a copy another one has since changed.

    A failing or slow database never breaks a reply: each call waits at most `wait`
    seconds, then the turn goes on from what is known (a new person's state) and the
    failure is counted (and shows in /healthz through the storage's health).
    """

    def __init__(self, storage: Storage, *, wait: float = 1.0) -> None:
        self._storage = storage
        self._wait = wait
        self.failed = 0

    async def get(self, key: str) -> State | None:
        try:
            text = await self._storage.get_state(key)
        except Exception:  # noqa: BLE001 - the storage logs once per condition
            self.failed += 1
            return None
        return load_state(text)

    async def put(self, key: str, state: State) -> None:
        try:
            await self._storage.put_state(key, dump_state(state))
        except Exception:  # noqa: BLE001
            self.failed += 1


def dump_state(state: State) -> str:
    return json.dumps(state.to_dict(), ensure_ascii=False, separators=(",", ":"))


def load_state(text: str | None) -> State | None:
    """A stored state; a broken row is a fresh start, never an error."""
    if text is None:
        return None
    try:
        return State.from_dict(json.loads(text))
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Context:
    """What the inbox read of a person with the claim: the state, and the flood guard's verdict."""

    state: State | None
    flood: str  # "ok", "warn" or "drop"


def flood_verdict(recent: int, previous: str | None, limit: int) -> str:
    """The flood guard on counts the database keeps, so every process sees every message.

    `recent`: the person's messages within the window, this one included; `previous`: the
    verdict of their message before this one. As `FloodGuard`: one notice past the
    limit, then silence until they slow down.
    """
    if recent <= limit:
        return "ok"
    return "drop" if previous in ("warn", "drop") else "warn"


@dataclass
class Pending:
    """A turn decided and not yet saved: its reply goes out first (`Conversations.begin`/`end`)."""

    channel: str
    user_id: str
    key: str
    reply: Reply | None
    before: State
    after: State
    verdict: str
    chose_lang: str | None
    started: float
    ready: float = field(default_factory=time.perf_counter)  # when the reply was decided
    saved: bool = field(default=False)

    @property
    def new_state(self) -> str | None:
        """JSON of the state to save, or None when the turn changed nothing."""
        return dump_state(self.after) if self.after != self.before else None


@dataclass(frozen=True)
class Turn:
    """One turn as the usage log sees it: no raw id, no text unless not sure."""

    at: float  # unix time
    channel: str
    lang: str
    kind: Kind
    topic: str | None
    score: float | None
    latency_ms: float
    user_key: str  # monthly pseudonym
    query: str | None  # the text of a not-sure turn, scrubbed by the log before storage
    chose_lang: str | None = None  # a language chosen in this turn (also when it answered a pending question)


class UsageSink(Protocol):
    def record(self, turn: Turn) -> None:
        """Never blocks and never raises: a full queue counts the turn as dropped."""


class FloodGuard:
    """More than `limit` messages in `seconds`: one notice, then silence until they slow down."""

    def __init__(self, limit: int = 20, seconds: float = 10.0, max_users: int = 100_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._warned: set[str] = set()
        self._max_users = max_users

    def check(self, key: str, now: float) -> str:
        """"ok", "warn" (send the notice) or "drop" (say nothing)."""
        # people not seen for a whole window hold no state: forget them (least recent first)
        while self._seen:
            oldest, oldest_times = next(iter(self._seen.items()))
            if oldest == key or (oldest_times and now - oldest_times[-1] <= self.seconds):
                break
            del self._seen[oldest]
            self._warned.discard(oldest)
        times = self._seen.get(key)
        if times is None:
            times = self._seen[key] = deque()
            while len(self._seen) > self._max_users:
                old, _ = self._seen.popitem(last=False)
                self._warned.discard(old)
        self._seen.move_to_end(key)
        while times and now - times[0] > self.seconds:
            times.popleft()
        times.append(now)
        if len(times) <= self.limit:
            self._warned.discard(key)
            return "ok"
        if key in self._warned:
            return "drop"
        self._warned.add(key)
        return "warn"


class Conversations:
    """Runs the dialogue for every channel: state, flood guard, usage log, timing."""

    def __init__(
        self,
        matcher: Matcher,
        states: StateStore,
        *,
        pseudonym_key: bytes,
        usage: UsageSink | None = None,
        flood: FloodGuard | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.matcher = matcher  # replaced whole on a content reload
        self.states = states
        self.usage = usage
        self.flood = flood or FloodGuard()
        self.metrics = metrics or Metrics()
        self.subscriptions: Subscriptions | None = None  # alerts: set by the server (bot.subscriptions)
        self._key = pseudonym_key
        self._locks: KeyedLocks[str] = KeyedLocks()  # per person

    def person(self, channel: str, user_id: str) -> str:
        """The stable pseudonym of a person on a channel: their state's key, and the inbox's."""
        return pseudonym(self._key, "state", channel, str(user_id))

    async def handle(self, channel: str, user_id: str, incoming: Incoming) -> Reply | None:
        """The reply to send, or None when a flooding user is being ignored (state saved at once)."""
        state_key = self.person(channel, user_id)
        # One turn at a time per person (their state is read, then written); a lock lives
        # only while someone holds or waits for it, so the table stays as small as the traffic.
        async with self._locks(state_key):
            pending = await self._decide(channel, str(user_id), state_key, incoming, None)
            await self._save(pending, None)
        return pending.reply

    async def begin(self, channel: str, user_id: str, incoming: Incoming, context: Context | None = None) -> Pending:
        """Decide a turn without saving it: send `pending.reply`, then `await end(pending, save)`.

        With `context` (the inbox's claim) the state and the flood verdict come from the
        database as the claim read them; without, from the state store and the in-process
        flood guard. The caller keeps one turn at a time per person (the inbox's lease,
        or the channel's own per-person lock).
        """
        return await self._decide(channel, str(user_id), self.person(channel, user_id), incoming, context)

    async def end(self, pending: Pending, save: Callable[[Pending], Awaitable[None]] | None = None) -> None:
        """Save the turn's state (through `save`, e.g. with the inbox's done mark) and log it."""
        await self._save(pending, save)

    async def _decide(self, channel: str, user_id: str, key: str, incoming: Incoming, context: Context | None) -> Pending:
        started = time.perf_counter()
        matcher = self.matcher
        if context is None:
            state = await self.states.get(key) or State()
            verdict = self.flood.check(key, time.monotonic())
        else:
            state = context.state or State()
            verdict = context.flood
        if verdict == "drop":
            return Pending(channel, user_id, key, None, state, state, verdict, None, started)
        if verdict == "warn":
            return Pending(channel, user_id, key, slow_down(state, matcher.content), state, state, verdict, None, started)
        if incoming.at is None:
            incoming = replace(incoming, at=time.time())
        new_state, reply = respond(state, incoming, matcher)
        chose = reply.chose_lang or (reply.topic if reply.kind is Kind.LANGUAGE else None)
        if reply.action is not None:
            reply = await self._carry_out(channel, user_id, reply)
        elif chose and self.subscriptions is not None and self.subscriptions.enabled and channel in SUBSCRIBABLE:
            try:  # a subscriber who changes language gets alerts in the new one
                await self.subscriptions.set_language(channel, user_id, chose)
            except Exception:  # noqa: BLE001 - the storage logs once per condition; the reply goes on
                log.debug("a subscriber's language was not updated")
        return Pending(channel, user_id, key, reply, state, new_state, verdict, chose, started)

    async def _carry_out(self, channel: str, user_id: str, reply: Reply) -> Reply:
        """The dialogue's alert action against the subscription store, then the truthful text:
        confirmed, "not available" (no key, or a channel that cannot receive alerts), or "try again"."""
        store, content = self.subscriptions, self.matcher.content
        menu = tuple(o for o in reply.options if o.key == "0")

        def say(key: str) -> Reply:
            return replace(reply, text=content.ui(reply.lang, key), options=menu or (Option("0", "menu:0", content.ui(reply.lang, "menu_option")),))

        if reply.action == "unsubscribe":
            if store is None or channel not in SUBSCRIBABLE:
                return reply  # nothing is kept here: stopping is already true
            try:
                await store.unsubscribe(channel, user_id)
            except Exception:  # noqa: BLE001
                log.warning("an unsubscription could not be saved; the person was asked to try again")
                return say("alerts_failed")
            return reply
        if store is None or not store.enabled or channel not in SUBSCRIBABLE:
            return say("alerts_off")
        if reply.action == "subscribe":
            try:
                await store.subscribe(channel, user_id, reply.lang)
            except Exception:  # noqa: BLE001
                log.warning("a subscription could not be saved; the person was asked to try again")
                return say("alerts_failed")
        return reply

    async def _save(self, pending: Pending, save: Callable[[Pending], Awaitable[None]] | None) -> None:
        if pending.saved:
            return
        pending.saved = True
        if save is not None:
            await save(pending)
        elif pending.after != pending.before:
            await self.states.put(pending.key, pending.after)
        reply = pending.reply
        if reply is not None:
            self.metrics.answers.labels(reply.kind.value).inc()
            if reply.kind is Kind.NOT_SURE:
                self.metrics.not_sure.inc()
            self.metrics.latency.labels(pending.channel).observe(pending.ready - pending.started)
            self._record(pending.channel, pending.user_id, reply, pending.ready - pending.started, pending.chose_lang)

    def _record(self, channel: str, user_id: str, reply: Reply, seconds: float, chose_lang: str | None = None) -> None:
        if self.usage is None:
            return
        now = datetime.now(GUATEMALA)  # the report's days and months are Guatemala's
        turn = Turn(
            at=now.timestamp(),
            channel=channel,
            lang=reply.lang,
            kind=reply.kind,
            topic=reply.topic,
            score=reply.score,
            latency_ms=seconds * 1000,
            user_key=pseudonym(self._key, "usage", now.strftime("%Y-%m"), channel, user_id),
            query=reply.query if reply.kind in (Kind.NOT_SURE, Kind.CHOICES) else None,
            chose_lang=chose_lang,
        )
        try:
            self.usage.record(turn)
        except Exception:  # the log must never break a reply
            log.exception("usage log refused a turn")

