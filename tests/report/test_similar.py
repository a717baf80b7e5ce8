"""Grouping not-sure questions: similar ones together, different ones apart, k distinct users."""

from __future__ import annotations

import random

import pytest

from bot.report.similar import GAP, group_queries

SAME = [
    ("typo", "como saco la visa de trabajo", "cómo sacó la bisa de trabajo?"),
    ("missing-word", "como saco la visa de trabajo", "como saco visa de trabajo"),
    ("greeting", "receta de pepian", "Hola, buenas tardes, receta de pepián"),
    ("abbreviation", "que necesito para el pasaporte", "q necesito para el pasaporte"),
    ("letter-flood", "ayudaaaa con el asilo", "ayuda con el asilo"),
]
DIFFERENT = [
    ("other-document", "cuanto cuesta la visa", "cuanto cuesta el pasaporte"),
    ("other-dish", "receta de pepian", "receta de jocon"),
    ("other-country", "quiero ir a canada", "quiero ir a espana"),
]


@pytest.mark.parametrize(("a", "b"), [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_similar_questions_are_one_group(a: str, b: str) -> None:
    groups, hidden = group_queries([(a, "u1"), (b, "u2")], k=2)
    assert len(groups) == 1 and groups[0].users == 2 and hidden == 0


@pytest.mark.parametrize(("a", "b"), [c[1:] for c in DIFFERENT], ids=[c[0] for c in DIFFERENT])
def test_different_questions_stay_apart(a: str, b: str) -> None:
    groups, hidden = group_queries([(a, "u1"), (b, "u2")], k=1)
    assert len(groups) == 2 and hidden == 0


def test_k_counts_distinct_people_not_messages() -> None:
    rows = [("donde queda el consulado", "same-person")] * 20
    rows += [(f"donde queda el consulado{'?' * i}", f"u{i}") for i in range(3)]  # four people in all
    groups, hidden = group_queries(rows, k=5)
    assert groups == [] and hidden == 1
    groups, _ = group_queries([*rows, ("donde queda el consulado", "fifth")], k=5)
    assert [(g.text, g.users, g.messages) for g in groups] == [("donde queda el consulado", 5, 24)]


def test_groups_are_shown_by_their_most_asked_folded_form() -> None:
    rows = [("Cómo saco la VISA de trabajo??", f"a{i}") for i in range(3)] + [("como saco visa de trabajo", "b")]
    (group,), _ = group_queries(rows, k=1)
    assert group.text == "como saco la visa de trabajo" and group.variants == 2


def test_many_questions_of_common_words_stay_bounded() -> None:
    rng = random.Random(3)
    vocabulary = "quiero saber como donde puedo hijo trabajo papeles dinero casa ayuda".split()
    rows = [(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(2, 9))), f"u{i}") for i in range(20_000)]
    seen: list[tuple[int, int]] = []
    groups, hidden = group_queries(rows, k=5, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert sum(g.users for g in groups) <= 20_000 and hidden >= 0


def test_blank_questions_are_ignored() -> None:
    assert group_queries([("", "u1"), ("?!", "u2")], k=1) == ([], 0)


def test_a_group_shows_only_words_k_people_wrote() -> None:
    """Issue 15.5: five people, one sentence, five surnames: the surnames never show."""
    surnames = ["tzoc", "batz", "ical", "quej", "tiul"]
    rows = [(f"mi primo {name} quiere la receta de pepian", f"u{i}") for i, name in enumerate(surnames)]
    (group,), hidden = group_queries(rows, k=5)
    assert group.text == f"mi primo {GAP} quiere la receta de pepian" and group.users == 5 and hidden == 0
    assert not any(name in group.text for name in surnames)


def test_a_word_four_of_five_people_wrote_is_a_gap_and_gaps_do_not_repeat() -> None:
    rows = [("necesito la receta de pepian ya", f"u{i}") for i in range(4)]
    rows += [("necesito la receta de pepian", "u4"), ("necesito la receta de pepian", "u5")]
    (group,), _ = group_queries(rows, k=5)
    assert group.text == f"necesito la receta de pepian {GAP}"  # "ya": four people only
    rows = [(f"la receta {a} {b} de pepian", f"u{i}") for i, (a, b) in enumerate(zip("vwxyz", "abcde", strict=True))]
    (group,), _ = group_queries(rows, k=5, cutoff=60)
    assert group.text == f"la receta {GAP} de pepian"


def test_placeholders_stay_whole() -> None:
    rows = [(f"hola me llamo [nombre] y mi cel es [teléfono], {i}", f"u{i}") for i in range(5)]
    (group,), _ = group_queries(rows, k=5)
    assert group.text.startswith("me llamo [nombre] y mi cel es [teléfono]")
