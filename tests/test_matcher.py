"""The matcher on the bundled content: verdicts people rely on, and accuracy floors.

The floors are measured the way a person sees the bot (bot/evaluation.py). The sealed
set (tests/data/sealed/) was written before the engine rework and is never tuned on:
its floor is what CI holds the engine to on wording nobody on the team tuned for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import EMERGENCY
from bot.evaluation import Figures, read, tally
from bot.matcher import ACK, Match, Matcher
from tests.conftest import SHARED

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pasaporte", "pasaporte-requisitos"),
        ("PASAPORTE!!!", "pasaporte-requisitos"),
        ("Ｐａｓａｐｏｒｔｅ", "pasaporte-requisitos"),  # full-width
        ("se me vencio el pasaporte", "pasaporte-vigencia"),
        ("asilo", "asilo-como-solicitar"),
        ("coyote", "trafico-de-migrantes"),
        ("bisa para usa", "visa-requisitos"),  # by sound
        ("hola", "saludo"),
        ("holaaaa", "saludo"),
        ("gracias", "gracias"),
        ("menu", "menu"),
        ("idioma", "idioma"),
        ("hola, como saco el pasaporte?", "pasaporte-requisitos"),  # a topic wins over the greeting
        ("ok y la visa para mexico?", "visa-requisitos"),  # … and over the "ok"
        ("me ofrecieron trabajo en canada en el campo, me piden 3000 para el tramite", "ofertas-trabajo-extranjero"),
        ("cuanto es la cuota del pasaporte", "pasaporte-requisitos"),  # "cuota" is no bribe
    ],
)
def test_answers(matcher: Matcher, text: str, expected: str) -> None:
    assert matcher.match(text, "es").id == expected


@pytest.mark.parametrize("text, expected", [("pasaprote", "pasaporte-requisitos"), ("nesesito pasaporte", "pasaporte-requisitos")])
def test_typos_reach_the_topic(matcher: Matcher, text: str, expected: str) -> None:
    found = matcher.match(text, "es")
    assert found.id == expected or found.offered[:1] == (expected,)


@pytest.mark.parametrize("text", ["", "   ", "😂", "asdfgh", "jajaja", "receta de pepian", "\x00\x01", "x" * 10_000])
def test_not_sure(matcher: Matcher, text: str) -> None:
    found = matcher.match(text, "es")
    assert found.id is None and found.offered == ()


@pytest.mark.parametrize("text", ["ok", "okey", "dale", "si"])
def test_acknowledgements_are_no_answer(matcher: Matcher, text: str) -> None:
    found = matcher.match(text, "es")
    assert found.id == ACK and found.verdict == "ack"


# -- danger first, in every language, and no false alarms ----------------------------------


DANGER = [
    ("es", "me estan pegando"),
    ("es", "me quieren matar"),
    ("es", "emergencia"),
    ("es", "ayuda por favor"),
    ("es", "AUXILIO"),
    ("es", "estoy perdido en el desierto y ya no tengo agua"),
    ("es", "no podemos respirar en el trailer"),
    ("es", "el coyote nos dejo en el monte y mi hijo no puede caminar"),
    ("quc", "tob'anik! emergencia"),
    ("quc", "tobanik"),
    ("kek", "tenq'ankil"),
    ("kek", "auxilio, me estan golpeando"),
    ("mam", "onil"),
    ("mam", "socorro nos secuestraron"),
]


@pytest.mark.parametrize("lang, text", DANGER)
def test_danger_gets_the_emergency_first(matcher: Matcher, lang: str, text: str) -> None:
    found = matcher.match(text, lang)
    assert found.id == EMERGENCY and found.verdict == "emergency", found


def test_danger_with_a_topic_offers_the_topic_after(matcher: Matcher) -> None:
    found = matcher.match("el coyote nos dejo en el monte y mi hijo no puede caminar", "es")
    assert found.id == EMERGENCY and found.offered == ("trafico-de-migrantes",)


@pytest.mark.parametrize(
    "text",
    [
        "mi pasaporte esta vencido, es urgente?",
        "que peligros hay en el camino al norte",
        "me amenazaron las maras en honduras y quiero pedir asilo",
        "mi hermano murio en el desierto, como repatriamos el cuerpo",
        "ayuda con mi tramite de pasaporte",
        "busco a mi hijo desaparecido en mexico ayuda",
    ],
)
def test_no_false_alarm_on_ordinary_questions(matcher: Matcher, text: str) -> None:
    assert matcher.match(text, "es").id != EMERGENCY


# -- choices, context ---------------------------------------------------------------------


def test_a_word_two_topics_share_is_offered_never_picked(matcher: Matcher) -> None:
    found = matcher.match("ak'al", "quc")  # "child": a passport for minors, or children travelling
    assert found.id is None and {"pasaporte-menores", "ninez-migrante"} <= set(found.offered)


@pytest.mark.parametrize(
    "context, text, expected",
    [
        ("pasaporte-requisitos", "q papeles nesesito", "pasaporte-requisitos"),
        ("pasaporte-requisitos", "y cuanto cuesta", "pasaporte-requisitos"),
        ("pasaporte-requisitos", "cuanto tarda en salir", "pasaporte-requisitos"),
        ("pasaporte-requisitos", "y para niños?", "pasaporte-menores"),
        ("asilo-como-solicitar", "y cuanto cuesta?", "asilo-como-solicitar"),
    ],
)
def test_a_short_follow_up_is_read_with_the_last_topic(matcher: Matcher, context: str, text: str, expected: str) -> None:
    assert matcher.match(text, "es").id != expected  # unclear alone …
    assert matcher.match(text, "es", context=context).id == expected  # … clear after that answer


@pytest.mark.parametrize("text", ["receta de pepian", "jajaja", "quien gano el partido de ayer"])
def test_context_never_turns_small_talk_into_the_last_topic(matcher: Matcher, text: str) -> None:
    assert matcher.match(text, "es", context="pasaporte-requisitos").id is None


def test_deterministic(matcher: Matcher) -> None:
    first = matcher.match("me deportaron que hago", "es")
    assert all(matcher.match("me deportaron que hago", "es") == first for _ in range(3))


def test_unknown_language_falls_back_to_spanish(matcher: Matcher) -> None:
    assert matcher.match("pasaporte", "xx").id == "pasaporte-requisitos"


def test_candidates_are_ordered_and_bounded(matcher: Matcher) -> None:
    found = matcher.match("pasaporte para mi hijo menor", "es")
    scores = [score for _, score in found.candidates]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 3
    assert 0 <= found.score <= 100


# -- floors: raise them as the matcher improves ---------------------------------------------


def figures(matcher: Matcher, path: Path) -> Figures:
    rows = read(path)
    return tally([(row, matcher.match(row.text, row.lang)) for row in rows])


FLOORS = {
    # set: (right ≥, one tap ≥, wrong ≤, out of scope answered ≤, danger first ≥, false alarms ≤)
    "sealed/sealed.jsonl": (0.86, 0.94, 0.03, 0.08, 0.93, 0.02),
    "tune/tune.jsonl": (0.85, 0.93, 0.03, 0.08, 0.90, 0.02),
    "queries_es.jsonl": (0.91, 0.97, 0.025, 0.0, 0.0, 0.01),
}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_floors(matcher: Matcher, name: str) -> None:
    got = figures(matcher, DATA / name)
    print(f"\n{name}: {got.line()}")
    right, one_tap, wrong, oos, danger, alarms = FLOORS[name]
    assert got.right >= right * got.n_in and got.one_tap >= one_tap * got.n_in and got.wrong <= wrong * got.n_in
    assert got.oos_answered <= oos * got.n_oos and got.danger_first >= danger * got.n_danger
    assert got.false_alarm <= alarms * max(got.n_ordinary, 1)


def test_dev_set_floor(matcher: Matcher) -> None:
    path = SHARED / "eval" / "dev.jsonl"
    if not path.exists():
        pytest.skip("../shared/eval/dev.jsonl is not beside this checkout")
    got = figures(matcher, path)
    print(f"\ndev: {got.line()}")
    assert got.right >= 0.92 * got.n_in and got.oos_answered <= 0.10 * got.n_oos


def test_own_out_of_scope_set(matcher: Matcher) -> None:
    """Everyday messages that are not about migration: the bot must not answer them."""
    got = figures(matcher, DATA / "out_of_scope_es.txt")
    print(f"\nown out-of-scope: {got.line()}")
    assert got.oos_answered <= 0.06 * got.n_oos


def test_match_is_a_verdict(matcher: Matcher) -> None:
    """`offered` only when not answering (or after the emergency lines)."""
    for text in ("pasaporte", "tramite", "me estan pegando", "receta de pepian"):
        found: Match = matcher.match(text, "es")
        assert found.verdict in ("answer", "emergency", "choices", "not_sure", "ack")
        if found.verdict == "answer":
            assert found.offered == ()
