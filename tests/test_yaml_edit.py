"""Surgical YAML edits: the values asked for change, every other character stays."""

from __future__ import annotations

from datetime import date

import pytest

from bot.yaml_edit import Edit, YamlEditError, apply_edits

TOPIC = """\
# BORRADOR: pendiente de revisión.
id: remesas
title: Enviar remesas   # en español hasta que se revise
translation: draft
keywords:
  # en K'iche'
  - pwaq    # dinero
  - remesa
answer: |
  Primera línea.
  Segunda: con dos puntos.

source: 'igual que content/es'
verified:
"""


def test_a_value_changes_and_nothing_else() -> None:
    out = apply_edits(TOPIC, [Edit(("title",), "Taqoj pwaq")])
    assert out == TOPIC.replace("title: Enviar remesas ", "title: Taqoj pwaq ")


def test_a_block_text_keeps_its_style_and_the_blank_line_after_it() -> None:
    out = apply_edits(TOPIC, [Edit(("answer",), "Una línea nueva.\nY otra.")])
    assert "answer: |\n  Una línea nueva.\n  Y otra.\n\nsource: 'igual que content/es'\n" in out
    assert out.startswith(TOPIC.split("answer:")[0])


@pytest.mark.parametrize(
    "loc, value, expected",
    [
        (("source",), "la de content/es", "source: 'la de content/es'\n"),  # single quotes stay
        (("source",), "it's", "source: 'it''s'\n"),
        (("verified",), date(2027, 1, 15), "verified: 2027-01-15\n"),  # an empty value gets one
        (("title",), "Nota: algo", 'title: "Nota: algo"   # en español'),  # plain no more: quoted
        (("translation",), "reviewed", "translation: reviewed\n"),
    ],
)
def test_styles(loc: tuple[str, ...], value: object, expected: str) -> None:
    assert expected in apply_edits(TOPIC, [Edit(loc, value)])


def test_a_new_key_goes_after_its_anchor_and_before_the_next_comments() -> None:
    out = apply_edits(TOPIC, [Edit(("reviewed_by",), "Ana López, hablante", after=("translation",))])
    assert 'translation: draft\nreviewed_by: "Ana López, hablante"\nkeywords:\n  # en K\'iche\'\n' in out
    out = apply_edits(TOPIC, [Edit(("audio",), "audio/remesas.ogg", after=("keywords",))])
    assert "  - remesa\naudio: \"audio/remesas.ogg\"\nanswer: |" in out
    out = apply_edits(TOPIC, [Edit(("warning",), "Ojo", after=("nothing",))])
    assert out == TOPIC + "warning: Ojo\n"


def test_nested_values_and_whole_lists() -> None:
    text = "translation: draft\nsituations:\n  - keywords: [niño]\n    line: \"Uno: 1546\"\n\n# fin\n"
    out = apply_edits(text, [Edit(("situations", 0, "line"), "Jun: 1546")])
    assert out == text.replace('"Uno: 1546"', '"Jun: 1546"')
    out = apply_edits("keywords: [a]\n", [Edit(("situations",), [{"keywords": ["niño", "hijo"], "line": "Línea: 1546"}], after=("keywords",))])
    assert out == 'keywords: [a]\nsituations:\n  - keywords: [niño, hijo]\n    line: "Línea: 1546"\n'


def test_a_place_that_is_not_there_is_refused() -> None:
    with pytest.raises(YamlEditError):
        apply_edits(TOPIC, [Edit(("keywords", 5), "x")])
    with pytest.raises(YamlEditError):
        apply_edits(TOPIC, [Edit(("situations", 0, "line"), "x")])


@pytest.mark.parametrize("value", ["a: b # c", "- lista", "'comillas' y \"dobles\"", "tab\there", "ünïcödé «»", "#1", "yes", "2027-01-01", "123"])
def test_any_text_reads_back_as_written(value: str) -> None:
    import yaml

    for style_key in ("title", "source", "answer"):
        out = apply_edits(TOPIC, [Edit((style_key,), value)])
        assert yaml.safe_load(out)[style_key].strip() == value
