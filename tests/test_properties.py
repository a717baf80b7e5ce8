"""Properties on any Unicode text: the normaliser, the matcher and the dialogue never
raise, and give the same answer twice."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from bot.dialogue import State, Step, respond
from bot.matcher import Calibration, Matcher
from bot.normalize import canon, fold, mayan_key, sound, spanish_key, words
from bot.replies import Incoming

THRESHOLD = Calibration().answer

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300) | st.text(max_size=50)
RUN = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@RUN
@given(TEXT)
def test_normaliser_total_and_idempotent(text: str) -> None:
    once = canon(text)
    assert canon(once) == once
    folded = fold(text)
    assert fold(folded) == folded
    assert folded == folded.strip() and "  " not in folded
    for word in words(text):
        assert word and " " not in word
        assert isinstance(sound(word), str) and isinstance(spanish_key(word), str) and isinstance(mayan_key(word), str)


@RUN
@given(text=TEXT, lang=st.sampled_from(["es", "quc", "kek", "mam", "xx"]))
def test_matcher_total_and_deterministic(matcher: Matcher, text: str, lang: str) -> None:
    first = matcher.match(text, lang)
    matcher._cached.cache_clear()
    assert matcher.match(text, lang) == first
    assert first.id is None or first.score >= THRESHOLD
    assert all(0 <= score <= 100 for _, score in first.candidates)


@RUN
@given(text=TEXT, step=st.sampled_from(list(Step)), lang=st.sampled_from(["es", "quc", "kek", "mam"]))
def test_dialogue_always_leaves_a_way_forward(matcher: Matcher, text: str, step: Step, lang: str) -> None:
    state, reply = respond(State(step, lang), Incoming(text=text), matcher)
    assert reply.text.strip() and reply.options
    assert state.lang in matcher.content.languages


@RUN
@given(payload=TEXT)
def test_any_button_payload_is_safe(matcher: Matcher, payload: str) -> None:
    _state, reply = respond(State(Step.READY, "es"), Incoming(payload=payload or "x"), matcher)
    assert reply.text.strip() and reply.options


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    choices=st.lists(
        st.tuples(st.sampled_from(["ana", "luis", "5025550001", "7001"]), st.sampled_from(["1", "2", "3", "4"])),
        min_size=1,
        max_size=12,
    )
)
def test_each_users_language_survives_a_restart(matcher: Matcher, choices: list[tuple[str, str]]) -> None:
    """Users pick languages in any order; after a restart (a new connection and store on
    the same file) everyone's last choice is still theirs."""
    import asyncio
    import tempfile
    from pathlib import Path

    from bot.conversation import Conversations, FloodGuard, StoredStates
    from bot.storage import open_storage

    codes = list(matcher.content.languages)

    async def scenario(path: Path) -> None:
        expected: dict[str, str] = {}
        db = await open_storage(path)
        talk = Conversations(matcher, StoredStates(db), pseudonym_key=b"key", flood=FloodGuard(limit=1000))
        for user, number in choices:
            await talk.handle("telegram", user, Incoming(text="hola"))
            await talk.handle("telegram", user, Incoming(text="idioma"))
            await talk.handle("telegram", user, Incoming(text=number))
            expected[user] = codes[int(number) - 1]
        await db.close()

        db = await open_storage(path)  # the restart
        talk = Conversations(matcher, StoredStates(db), pseudonym_key=b"key")
        for user, lang in expected.items():
            reply = await talk.handle("telegram", user, Incoming(text="menu"))
            assert reply is not None and reply.lang == lang, (user, lang)
        await db.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(Path(folder) / "pregunta.sqlite3"))
