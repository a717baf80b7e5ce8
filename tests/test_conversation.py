"""Around the dialogue: pseudonyms, per-person order, the flood guard, the usage sink."""

from __future__ import annotations

import asyncio

from bot.conversation import Conversations, FloodGuard, MemoryStates, Turn
from bot.matcher import Matcher
from bot.replies import Incoming, Kind


class Sink:
    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def record(self, turn: Turn) -> None:
        self.turns.append(turn)


def test_flood_guard_warns_once_then_drops_until_they_slow_down() -> None:
    guard = FloodGuard(limit=3, seconds=10)
    verdicts = [guard.check("a", float(t)) for t in range(6)]
    assert verdicts == ["ok", "ok", "ok", "warn", "drop", "drop"]
    assert guard.check("b", 5.0) == "ok"  # someone else is not affected
    assert guard.check("a", 30.0) == "ok"  # slowed down: back to normal
    assert guard.check("a", 30.1) == "ok"


async def test_turns_of_one_person_run_in_order_and_locks_are_released(fixture_matcher: Matcher) -> None:
    sink = Sink()
    talk = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k", usage=sink, flood=FloodGuard(100))
    replies = await asyncio.gather(*(talk.handle("whatsapp", "50255501234", Incoming(text=t)) for t in ("hola", "1", "menu")))
    assert [r.kind for r in replies if r] == [Kind.LANGUAGE, Kind.LANGUAGE, Kind.INTENT]
    assert len(talk._locks) == 0
    keys = {turn.user_key for turn in sink.turns}
    assert len(keys) == 1 and "50255501234" not in next(iter(keys))


async def test_pseudonyms_differ_by_channel_and_key(fixture_matcher: Matcher) -> None:
    sink = Sink()
    one = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"one", usage=sink)
    two = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"two", usage=sink)
    await one.handle("telegram", "42", Incoming(text="hola"))
    await one.handle("whatsapp", "42", Incoming(text="hola"))
    await two.handle("telegram", "42", Incoming(text="hola"))
    assert len({turn.user_key for turn in sink.turns}) == 3


async def test_a_failing_usage_sink_never_breaks_a_reply(fixture_matcher: Matcher) -> None:
    class Broken:
        def record(self, turn: Turn) -> None:
            raise RuntimeError("disk full")

    talk = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k", usage=Broken())
    reply = await talk.handle("terminal", "me", Incoming(text="hola"))
    assert reply is not None and reply.kind is Kind.LANGUAGE


def test_flood_guard_forgets_people_idle_for_a_window() -> None:
    guard = FloodGuard(limit=3, seconds=10)
    for person in range(1000):
        guard.check(f"p{person}", float(person) / 1000)
    assert len(guard._seen) == 1000
    guard.check("late", 100.0)
    assert list(guard._seen) == ["late"]  # everyone else was idle for more than 10 s
