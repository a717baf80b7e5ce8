"""Which phone numbers a text gives, and whether each is on the allowed list.

A wrong number in an answer can send a person in danger to a stranger, so the numbers
the bot may give are content of their own (`content/phones.yaml`, each with who answers
it and its source) and every text people read is checked against that list.

What counts as a phone number (and what does not), the rule staff are told:

1. `+` and at least seven digits, in groups: "+502 2222-3333", "+1 (800) 555-0100".
2. Eight digits, alone or as two groups of four joined by a space, hyphen or dot, with or
   without "502" in front: "2222-3333", "2222 3333", "22223333", "502 2222 3333";
   but not two years ("2022-2025"), not starting with 0 or 1 (no Guatemalan number
   does: "Acuerdo Ministerial 1753-2019"), and not four digits and a year after the name
   of a legal text ("Acuerdo 2411-2019", "Decreto", "Ley", "Resolución", "nota", "No.").
3. The North American shape 3-3-4 digits, with or without "1-" in front: "(202) 555-0100".
4. Three to five digits after a word that announces a number, in the same phrase:
   📞, ☎, llamá / llamar / llame, marcá, teléfono, tel., cel., celular, línea, número,
   WhatsApp, PBX: "llamá al 1234", "📞 1546", "línea 1555", and the numbers listed right
   after it ("llamá al 110 o al 1234"). Years (1900-2099) are not.
5. A four-digit 15xx on its own (Guatemala's short public-service lines): "1541".

Never numbers: years (2022), amounts (US$50, Q375), decrees and agreements
("Decreto 5-2022", "Acuerdo Gubernativo 50-2022", "163-2021"), articles ("art. 61"),
addresses ("6a avenida 1-27"), dates and times. A number compares by its digits, "502"
in front dropped: "+502 4214 9091" is the listed "4214-9091".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ContentIssue

__all__ = ["FoundNumber", "PhoneBook", "find_numbers", "phone_key"]

_NOT_BEFORE = r"(?<![\w$€£/+\-])(?<!\d[.,])"  # not inside a word, an amount, a reference or a longer number
_NOT_AFTER = r"(?![\w/\-])(?![.,:]\d)"

_INTERNATIONAL = re.compile(_NOT_BEFORE + r"\+\s?\(?\d{1,3}\)?(?:[ .\-]?\(?\d+\)?){1,6}" + _NOT_AFTER)
_EIGHT = re.compile(_NOT_BEFORE + r"(?:\(?502\)?[ .\-]?)?(\d{4})([ .\-]?)(\d{4})" + _NOT_AFTER)
_NANP = re.compile(_NOT_BEFORE + r"(?:1[ .\-])?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}" + _NOT_AFTER)
_CUE = (
    r"(?:📞|☎|\b(?:llam(?:á|a|e|en|ar|ame|anos|ando|adas?)|marc(?:á|a|ar|ando|ale)|tel(?:é|e)fonos?|tel|cel"
    r"|celular(?:es)?|l(?:í|i)neas?|n(?:ú|u)meros?|whats ?app|pbx)\b\.?)"
)
_AFTER_CUE = re.compile(_CUE + r"[^\d\n.!?;]{0,30}?" + _NOT_BEFORE + r"(\d{3,5})" + _NOT_AFTER, re.IGNORECASE)
_CHAIN = re.compile(r"(?:\s*(?:[,/·]|\b(?:o|y|u|al|el|la|del)\b)\s*)+(\d{3,5})" + _NOT_AFTER, re.IGNORECASE)
_SHORT_LINE = re.compile(_NOT_BEFORE + r"(15\d\d)" + _NOT_AFTER)
_REFERENCE = re.compile(
    r"\b(?:acuerdo|decreto|ley|resoluci[oó]n|nota|oficio|expediente|circular|reglamento|art(?:[íi]culo)?|no|n[úu]m)\b\.?"
    r"(?:\W+[^\W\d]+){0,2}\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FoundNumber:
    """A phone number as written in a text, where it starts, and why it counts as one."""

    text: str
    start: int
    cued: bool = False  # a short number that counts only because of the word before it

    @property
    def key(self) -> str:
        return phone_key(self.text)


def phone_key(number: str) -> str:
    """The digits that identify a number: "+502 4214 9091" and "4214-9091" are one line."""
    digits = re.sub(r"\D", "", number)
    if len(digits) == 11 and digits.startswith("502"):
        digits = digits[3:]
    return digits


def _is_year(digits: str) -> bool:
    return len(digits) == 4 and 1900 <= int(digits) <= 2099


def find_numbers(text: str) -> list[FoundNumber]:
    """Every phone number in `text` by the rule above, in order, each once per place."""
    found: list[FoundNumber] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, cued: bool = False) -> None:
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            return
        taken.append((start, end))
        found.append(FoundNumber(text[start:end], start, cued))

    for match in _INTERNATIONAL.finditer(text):
        if len(re.sub(r"\D", "", match.group())) >= 7:
            add(match.start(), match.end())
    for match in _NANP.finditer(text):
        add(match.start(), match.end())
    for match in _EIGHT.finditer(text):
        first, joint, second = match.groups()
        if joint and _is_year(first) and _is_year(second):
            continue  # "2022-2025": a span of years
        if first[0] in "01" and not match.group().startswith(("502", "(502")):
            continue  # no Guatemalan number starts with 0 or 1: "1753-2019" is a reference
        if joint and _is_year(second) and _REFERENCE.search(text[max(0, match.start() - 40) : match.start()]):
            continue  # "Acuerdo Ministerial 2411-2019": a number and its year
        add(match.start(), match.end())
    for match in _AFTER_CUE.finditer(text):
        if not _is_year(match.group(1)):
            add(match.start(1), match.end(1), cued=True)
        end = match.end(1)
        while chained := _CHAIN.match(text, end):  # "llamá al 110 o al 1234": both
            if not _is_year(chained.group(1)):
                add(chained.start(1), chained.end(1), cued=True)
            end = chained.end(1)
    for match in _SHORT_LINE.finditer(text):
        add(match.start(1), match.end(1))
    found.sort(key=lambda number: number.start)
    return found


class PhoneBook:
    """The allowed numbers; `unknown(text)` lists the numbers of a text that are not among them.

    `where` is the file that holds the list, named in every message so staff know where to look.
    """

    def __init__(self, numbers: Iterable[str], where: Path | str = "content/phones.yaml") -> None:
        self._keys = frozenset(phone_key(number) for number in numbers)
        self.where = where

    def __contains__(self, number: object) -> bool:
        return isinstance(number, str) and phone_key(number) in self._keys

    def unknown(self, text: str) -> list[FoundNumber]:
        """Numbers in `text` that are not allowed, each once (first place it appears)."""
        out: list[FoundNumber] = []
        seen: set[str] = set()
        for number in find_numbers(text):
            if number.key not in self._keys and number.key not in seen:
                seen.add(number.key)
                out.append(number)
        return out

    def issues(
        self, text: str, path: Path, field: str, line: int | None, *, block_start: int | None = None
    ) -> list[ContentIssue]:
        """One issue per number of `text` that is not allowed. Any text with its place: an
        answer, a UI string, an alert. With `block_start` (the first line of a `|` text) the
        issue names the line the number is on."""
        out = []
        for number in self.unknown(text):
            where = line
            if block_start is not None:
                where = block_start + text[: number.start].count("\n")
            out.append(ContentIssue(path, where, field, self.message(number)))
        return out

    def message(self, number: FoundNumber) -> str:
        """What staff read for a number that is not allowed (Spanish)."""
        text = (
            f"el teléfono «{number.text}» no está en la lista de teléfonos permitidos ({self.where}): "
            "si es una línea oficial, agregala allí con quién atiende y su fuente; si no, quitala"
        )
        if number.cued:
            text += " (si no es un teléfono, escribilo sin «llamá», «línea», «número» o «📞» delante)"
        return text
