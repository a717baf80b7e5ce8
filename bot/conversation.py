"""Around the pure dialogue: who is talking, what they chose before, how fast they write.

Channels call `Conversations.handle(channel, user_id, incoming)` and render the reply.
Here, and only here, the raw user id is seen: it becomes keyed pseudonyms at once, one
stable (to remember the chosen language) and one per month (for the usage log, so
months cannot be linked). Knows nothing of matching internals or of any channel.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from bot.clock import GUATEMALA
from bot.dialogue import State, respond, slow_down
from bot.locks import KeyedLocks
from bot.matcher import Matcher
from bot.metrics import Metrics
from bot.privacy import pseudonym
from bot.replies import Incoming, Kind, Reply

__all__ = ["Conversations", "FloodGuard", "MemoryStates", "StateStore", "Turn", "UsageSink"]

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
        self._key = pseudonym_key
        self._locks: KeyedLocks[str] = KeyedLocks()  # per person

    async def handle(self, channel: str, user_id: str, incoming: Incoming) -> Reply | None:
        """The reply to send, or None when a flooding user is being ignored."""
        started = time.perf_counter()
        state_key = pseudonym(self._key, "state", channel, str(user_id))
        # One turn at a time per person (their state is read, then written); a lock lives
        # only while someone holds or waits for it, so the table stays as small as the traffic.
        async with self._locks(state_key):
            reply, chose_lang = await self._turn(state_key, incoming)
        if reply is not None:
            self.metrics.answers.labels(reply.kind.value).inc()
            if reply.kind is Kind.NOT_SURE:
                self.metrics.not_sure.inc()
            self.metrics.latency.labels(channel).observe(time.perf_counter() - started)
            self._record(channel, str(user_id), reply, started, chose_lang)
        return reply

    async def _turn(self, state_key: str, incoming: Incoming) -> tuple[Reply | None, str | None]:
        matcher = self.matcher
        state = await self.states.get(state_key) or State()
        verdict = self.flood.check(state_key, time.monotonic())
        if verdict == "drop":
            return None, None
        if verdict == "warn":
            return slow_down(state, matcher.content), None
        if incoming.at is None:
            incoming = replace(incoming, at=time.time())
        new_state, reply = respond(state, incoming, matcher)
        if new_state != state:
            await self.states.put(state_key, new_state)
        return reply, reply.chose_lang or (reply.topic if reply.kind is Kind.LANGUAGE else None)

    def _record(self, channel: str, user_id: str, reply: Reply, started: float, chose_lang: str | None = None) -> None:
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
            latency_ms=(time.perf_counter() - started) * 1000,
            user_key=pseudonym(self._key, "usage", now.strftime("%Y-%m"), channel, user_id),
            query=reply.query if reply.kind in (Kind.NOT_SURE, Kind.CHOICES) else None,
            chose_lang=chose_lang,
        )
        try:
            self.usage.record(turn)
        except Exception:  # the log must never break a reply
            log.exception("usage log refused a turn")
