"""What counts as a phone number in a content text, and the allowed list."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.phones import PhoneBook, find_numbers, phone_key

NUMBERS = [
    ("📞 2222-3333", ["2222-3333"]),
    ("2222 3333", ["2222 3333"]),
    ("22223333", ["22223333"]),
    ("+502 2222-3333", ["+502 2222-3333"]),
    ("502 2222 3333", ["502 2222 3333"]),
    ("llamá al 1234", ["1234"]),
    ("Llamá gratis al 1574.", ["1574"]),
    ("línea 1555 (PDH)", ["1555"]),
    ("Teléfono: 2411-2412", ["2411-2412"]),
    ("tel. 7777 8888 o cel. 5555-6666", ["7777 8888", "5555-6666"]),
    ("el 1541 de MINEX", ["1541"]),
    ("(202) 555-0100", ["(202) 555-0100"]),
    ("1-800-555-0100", ["1-800-555-0100"]),
    ("+1 (800) 555-0100", ["+1 (800) 555-0100"]),
    ("WhatsApp 3333-4444", ["3333-4444"]),
    ("Llamá al 110, al 122 o al 1234.", ["110", "122", "1234"]),
]
NOT_NUMBERS = [
    "desde 2022",
    "US$50 por 5 años o US$85 por 10 años",
    "~Q375–390 / ~Q640–652",
    "Decreto 5-2022",
    "Acuerdo Gubernativo 50-2022",
    "Acuerdo IGM-190-2021",
    "163-2021",
    "Acuerdo Ministerial 1753-2019",
    "Acuerdo 2411-2019",
    "art. 61 del Código de Migración",
    "artículo 82",
    "6a avenida 1-27, zona 4",
    "7a Av. 14-44 Zona 9, Of. 15B",
    "64,054 personas",
    "de 2022-2025",
    "Lunes a viernes 7:00–15:00, 24/7",
    "el número de 13 dígitos",
    "CONRED nota 181-2024",
    "del 1 al 15 de marzo de 2025",
    "en la línea de 2024",
    "4,911 certificados",
]


@pytest.mark.parametrize("text, expected", NUMBERS, ids=[t for t, _ in NUMBERS])
def test_phone_numbers(text: str, expected: list[str]) -> None:
    assert [found.text for found in find_numbers(text)] == expected


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_not_phone_numbers(text: str) -> None:
    assert find_numbers(text) == []


def test_a_number_compares_by_its_digits() -> None:
    assert phone_key("+502 4214 9091") == phone_key("4214-9091") == "42149091"
    book = PhoneBook(["4214-9091", "110"])
    assert "+502 4214-9091" in book and "110" in book and "1234" not in book
    assert [n.text for n in book.unknown("📞 4214 9091, llamá al 110 o al 1234, o al 1234 otra vez")] == ["1234"]


def test_issues_name_the_line_inside_a_block() -> None:
    book = PhoneBook(["110"], where="content/phones.yaml")
    text = "Primera línea.\nSegunda.\nLlamá al 📞 2222-3333."
    [issue] = book.issues(text, Path("x.yaml"), "answer", 5, block_start=6)
    assert issue.line == 8 and issue.field == "answer"
    assert str(issue).startswith("x.yaml:8 answer: el teléfono «2222-3333» no está en la lista de teléfonos permitidos (content/phones.yaml)")
    assert book.issues("Decreto 5-2022: llamá al 110.", Path("x.yaml"), "answer", 5) == []
