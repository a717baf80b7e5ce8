"""Normalisation tables: what people type → the keys the matcher compares."""

from __future__ import annotations

import pytest

from bot.normalize import canon, fold, mayan_key, sound, spanish_key, words


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("b´e", "b'e"),  # ´ before NFKC, or it becomes a space and a combining accent
        ("bʼe", "b'e"),
        ("b’e", "b'e"),
        ("b‘e", "b'e"),
        ("bˈe", "b'e"),
        ("b`e", "b'e"),
        ("b′e", "b'e"),
        ("b＇e", "b'e"),
        ("bʻe", "b'e"),
        ("Ｐａｓａｐｏｒｔｅ", "pasaporte"),  # full-width letters
        ("  HOLA\t\n mundo ", "hola mundo"),
        ("pasa\u200bporte", "pasaporte"),  # zero-width space
        ("\u202ehola\u202c", "hola"),  # right-to-left override
        ("a\x00b\x07c", "a b c"),  # control bytes
    ],
    ids=lambda v: repr(v),
)
def test_canon(typed: str, expected: str) -> None:
    assert canon(typed) == expected


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("¿Cómo estás?", "como estas"),
        ("¡¡PASAPORTE!!", "pasaporte"),
        ("niño 😂😂", "nino"),
        ("Q'eqchi'", "q'eqchi'"),
    ],
)
def test_fold(typed: str, expected: str) -> None:
    assert fold(typed) == expected


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("holaaaa", ["hola"]),
        ("q onda", ["que", "onda"]),
        ("k pasa", ["que", "pasa"]),
        ("xq no", ["porque", "no"]),
        ("pq si", ["porque", "si"]),
        ("x favor", ["por", "favor"]),
        ("tmb", ["tambien"]),
        ("info porfa", ["informacion", "por", "favor"]),
        ("4214-9091", ["4214", "9091"]),
        ("😂", []),
        ("", []),
    ],
)
def test_words(typed: str, expected: list[str]) -> None:
    assert words(typed) == expected


@pytest.mark.parametrize(
    "a, b",
    [
        ("visa", "bisa"),
        ("vencido", "bencido"),
        ("cita", "sita"),
        ("cita", "zita"),
        ("llegar", "yegar"),
        ("hermano", "ermano"),
        ("quiero", "kiero"),
        ("casa", "kasa"),
        ("gente", "jente"),
    ],
)
def test_spellings_by_sound_meet(a: str, b: str) -> None:
    assert sound(a) == sound(b)


def test_spanish_key_joins_word_forms() -> None:
    assert spanish_key("trabajar") == spanish_key("trabajo")
    assert spanish_key("pasaportes") == spanish_key("pasaporte")
    assert spanish_key("deportado") == spanish_key("deportados")


@pytest.mark.parametrize(
    "a, b",
    [
        ("k'anjel", "kanjel"),  # apostrophe dropped
        ("b'e", "bee"),  # Q'eqchi' long vowel
        ("q'ij", "k'ij"),  # old spelling
        ("pwaq", "puak"),
        ("winaq", "winak"),
    ],
)
def test_mayan_loose_keys_meet(a: str, b: str) -> None:
    assert mayan_key(words(a)[0]) == mayan_key(words(b)[0])
