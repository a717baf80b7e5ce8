"""The first-contact language hint: a code only when the message is clearly in (or asks
for) one language; None on one word, on Spanish with a Mayan word, on anything mixed."""

from __future__ import annotations

import pytest

from bot.content import Content
from bot.language_hint import guess_language

CASES = [
    # a sentence with words of one Mayan language
    ("quc-greeting", "la utz awach", "quc"),
    ("quc-greeting-and-thanks", "¿La utz awach? Maltyox chawe", "quc"),
    ("quc-morning", "saqirik, la utz awach?", "quc"),
    ("quc-stems", "wak'al, nuk'ojol, pasaporte", "quc"),  # ak'al inside wak'al; the loan counts for neither
    ("kek-greeting", "ma sa laa ch'ool", "kek"),
    ("kek-apostrophes", "ma sa´ laa ch’ool, b'antiox", "kek"),
    ("kek-no-apostrophes", "ma sa la chool bantiox", "kek"),
    ("mam-greeting", "chjonte, se'nt a'ya", "mam"),
    ("mam-spanish-keyboard", "chjonte, sé'nt á'ya", "mam"),
    # a language asked for by name
    ("name-quiche", "quiché", "quc"),
    ("name-kiche-apostrophes", "Kʼicheʼ", "quc"),
    ("name-kekchi", "kekchí", "kek"),
    ("name-qeqchi", "q'eqchi'", "kek"),
    ("name-qyol-mam", "qyol mam", "mam"),
    ("name-ta-yol-mam", "Ta Yol Mam", "mam"),
    ("name-en-mam", "en mam", "mam"),
    ("name-hablo-mam", "hablo mam", "mam"),
    ("name-in-spanish-request", "quiero hablar en quiché", "quc"),
    ("name-long-request", "buenas tardes, me pueden atender en idioma kekchi por favor", "kek"),
    ("name-in-own-language", "maltyox, k'iche' chawe", "quc"),
    ("name-spanish", "español", "es"),
    ("name-kaxlan-aatin", "kaxlan aatin", "es"),
    # plain Spanish sentences
    ("spanish-question", "quiero sacar mi pasaporte", "es"),
    ("spanish-long", "dónde queda el consulado de guatemala en houston", "es"),
    ("spanish-grandfather-mam", "mi abuelo es mam", "es"),  # "mam" there is not a request
]

UNCLEAR = [
    ("one-ambiguous-word", "mam"),
    ("one-ambiguous-word-capital", "MAM"),
    ("one-mayan-word", "maltyox"),
    ("two-mayan-words", "se'nt a'ya"),  # not yet a sentence
    ("one-spanish-word", "hola"),
    ("two-spanish-words", "hola buenas"),
    ("spanish-with-one-mayan-word", "necesito tumin para el pasaporte"),
    ("spanish-with-one-shared-word", "quiero mandar pwaq a mi familia"),
    ("two-mayan-languages", "la utz awach, b'antiox"),
    ("mayan-asking-for-spanish", "maltyox, ¿kaxlan aatin pasaporte?"),
    ("two-names", "quiché o kekchí"),
    ("place-not-language", "vivo en el quiché, cómo saco el pasaporte"),
    ("name-of-another-language", "la utz awach, ¿hay en mam?"),
    ("only-loans", "pasaporte visa dpi coyote"),
    ("gibberish", "asdf qwerty zxcv"),
    ("mayan-looking-unknown", "ri nutat xb'e pa ri b'e"),  # Mayan, but no word says which
    ("empty", ""),
    ("emoji", "😂🙏"),
    ("numbers", "5555 1234 110"),
]


@pytest.mark.parametrize("text, expected", [pytest.param(t, e, id=i) for i, t, e in CASES])
def test_clear_messages(content: Content, text: str, expected: str) -> None:
    assert guess_language(text, content) == expected


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in UNCLEAR])
def test_unclear_messages(content: Content, text: str) -> None:
    assert guess_language(text, content) is None


def test_only_languages_the_content_has(fixture_content: Content) -> None:
    # The fixture content has Spanish and K'iche' only: the notes still know Q'eqchi',
    # so a Q'eqchi' sentence is not mistaken for K'iche', and is not offered.
    assert guess_language("la utz awach, maltyox", fixture_content) == "quc"
    assert guess_language("ma sa laa ch'ool, b'antiox", fixture_content) is None
    assert guess_language("kekchí", fixture_content) is None


def test_deterministic_and_long_input(content: Content) -> None:
    text = "la utz awach " * 500
    assert {guess_language(text, content) for _ in range(3)} == {"quc"}
    assert guess_language("x" * 10_000, content) is None
