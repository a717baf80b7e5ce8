"""The staff's view of the translations: each topic × language, and what to verify.

A cell is `missing` (no file in that language), `draft` or `reviewed`, with `+audio`
when the entry names a recording. Spanish is the original: its entries count as
reviewed. The emergency entry gets its own row, outside the totals.

Two dates, two meanings: `written` is when a text was written from its sources;
`verified` is when a person last checked its facts (phones, fees, requirements) against
the source. An entry that gives facts (every Spanish topic and the emergency entry; in
another language, an entry with an answer of its own) is listed when it was never
verified, and when its `verified` is more than six months old, so that phone numbers
and requirements are checked before and during a campaign. The phone lines of
content/phones.yaml are listed the same way. Knows nothing of matching, channels or the
command line.
"""

from __future__ import annotations

import calendar
import csv
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from bot.content import EMERGENCY, PHONES_FILE, Content, Emergency, Topic

__all__ = [
    "RECHECK_MONTHS",
    "STATES",
    "Cell",
    "Row",
    "Stale",
    "Status",
    "Unverified",
    "build",
    "iso_day",
    "months_before",
    "table",
    "write_csv",
]

STATES = ("reviewed", "draft", "missing")
RECHECK_MONTHS = 6


@dataclass(frozen=True)
class Cell:
    state: str  # one of STATES
    audio: bool = False

    def __str__(self) -> str:
        return self.state + ("+audio" if self.audio else "")


@dataclass(frozen=True)
class Row:
    topic: str  # a topic id, or EMERGENCY for the emergency entry
    cells: tuple[Cell, ...]  # one per language, in the order of Status.languages
    verified: date | None  # the oldest `verified` among the entries that give facts
    written: date | None = None  # the Spanish text's `written`
    unverified: tuple[str, ...] = ()  # language codes whose entry gives facts and was never verified
    recheck: bool = False  # some entry was never verified, or verified before the cutoff


@dataclass(frozen=True)
class Stale:
    """An entry whose facts were last verified before the cutoff."""

    lang: str
    topic: str
    verified: date
    path: Path


@dataclass(frozen=True)
class Unverified:
    """An entry that gives facts nobody has checked against the source yet."""

    lang: str
    topic: str
    written: date | None
    path: Path


@dataclass(frozen=True)
class Status:
    as_of: date
    cutoff: date  # entries verified before this day are stale
    languages: tuple[tuple[str, str], ...]  # (code, name) in menu order
    rows: tuple[Row, ...]  # the topics
    stale: tuple[Stale, ...]
    unverified: tuple[Unverified, ...] = ()
    emergency: Row | None = None
    phones_unverified: tuple[str, ...] = ()  # numbers in content/phones.yaml nobody has checked
    phones_stale: tuple[tuple[str, date], ...] = ()  # (number, verified) before the cutoff
    phones_path: Path | None = None

    def totals(self) -> dict[str, Counter[str]]:
        """Per language code: how many topics in each state, and how many with audio."""
        out: dict[str, Counter[str]] = {code: Counter() for code, _ in self.languages}
        for row in self.rows:
            for (code, _), cell in zip(self.languages, row.cells, strict=True):
                out[code][cell.state] += 1
                out[code]["audio"] += cell.audio
        return out


def months_before(day: date, months: int) -> date:
    """The same day `months` earlier (the month's last day when it has fewer days)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def iso_day(text: str) -> date:
    """A YYYY-MM-DD day, for the command line."""
    return date.fromisoformat(text)


Entry = Topic | Emergency


def _gives_facts(code: str, entry: Entry | None) -> bool:
    """Spanish entries always; a translation once it has an answer of its own (with the facts in it)."""
    return entry is not None and (code == "es" or bool(entry.answer))


def build(content: Content, as_of: date | None = None) -> Status:
    """The status of every topic in every language of `content`, as of a day (default today)."""
    as_of = as_of or date.today()
    cutoff = months_before(as_of, RECHECK_MONTHS)
    stale: list[Stale] = []
    unverified: list[Unverified] = []

    def row(entry_id: str, entries: dict[str, tuple[Entry | None, Path]]) -> Row:
        facts = {code: (entry, path) for code, (entry, path) in entries.items() if entry and _gives_facts(code, entry)}
        never = []
        for code, (fact, path) in facts.items():
            if fact is not None and fact.verified is None:
                written = fact.written or _spanish_written(entries)
                unverified.append(Unverified(code, entry_id, written, path))
                never.append(code)
        for code, (dated, path) in entries.items():  # a dated entry counts, facts or not
            if dated is not None and dated.verified is not None and dated.verified < cutoff:
                stale.append(Stale(code, entry_id, dated.verified, path))
        dates = [entry.verified for entry, _ in entries.values() if entry and entry.verified]
        cells = tuple(_cell(code, entry) for code, (entry, _) in entries.items())
        old = any(entry.verified is not None and entry.verified < cutoff for entry, _ in entries.values() if entry)
        return Row(entry_id, cells, min(dates, default=None), _spanish_written(entries), tuple(never), bool(never) or old)

    ids = list(content.menu) + sorted(set(content.spanish.topics) - set(content.menu))
    rows = []
    for topic_id in ids:
        rows.append(
            row(
                topic_id,
                {
                    code: (pack.topics.get(topic_id), pack.folder / "topics" / f"{topic_id}.yaml")
                    for code, pack in content.languages.items()
                },
            )
        )
    emergency = None
    if content.spanish.emergency is not None:
        emergency = row(
            EMERGENCY,
            {code: (pack.emergency, pack.folder / "emergency.yaml") for code, pack in content.languages.items()},
        )
    stale.sort(key=lambda s: (s.verified, s.topic, s.lang))
    languages = tuple((code, pack.name) for code, pack in content.languages.items())
    return Status(
        as_of,
        cutoff,
        languages,
        tuple(rows),
        tuple(stale),
        tuple(unverified),
        emergency,
        tuple(line.number for line in content.phones if line.verified is None),
        tuple((line.number, line.verified) for line in content.phones if line.verified and line.verified < cutoff),
        content.root / PHONES_FILE,
    )


def _spanish_written(entries: dict[str, tuple[Entry | None, Path]]) -> date | None:
    spanish = entries.get("es", (None, Path()))[0]
    return spanish.written if spanish is not None else None


def _cell(code: str, entry: Entry | None) -> Cell:
    if entry is None:
        return Cell("missing")
    state = "reviewed" if code == "es" or entry.translation == "reviewed" else "draft"
    return Cell(state, getattr(entry, "audio", None) is not None)


def table(status: Status) -> str:
    """The matrix as fixed-width text for a terminal, then the totals and the entries to verify."""
    codes = [code for code, _ in status.languages]
    labels = [row.topic for row in status.rows] + ([status.emergency.topic] if status.emergency else [])
    first = max([len("tema"), len("total reviewed")] + [len(label) for label in labels])
    width = max([len("reviewed+audio")] + [len(code) for code in codes]) + 2

    def line(label: str, values: list[str]) -> str:
        return (label.ljust(first + 2) + "".join(v.ljust(width) for v in values)).rstrip()

    names = " · ".join(f"{code} {name}" for code, name in status.languages)
    out = [f"Traducciones al {status.as_of.isoformat()} ({names})", "", line("tema", codes)]
    out += [line(row.topic, [str(cell) for cell in row.cells]) for row in status.rows]
    out.append("")
    totals = status.totals()
    for key in (*STATES, "audio"):
        out.append(line(f"total {key}", [str(totals[code][key]) for code in codes]))
    if status.emergency:
        out.append("")
        out.append(line(status.emergency.topic, [str(cell) for cell in status.emergency.cells]))
    out.append("")
    out.append("reviewed: revisado · draft: borrador, se responde en español · missing: no hay archivo")
    out.append("")
    out += _verification(status)
    return "\n".join(out) + "\n"


def _verification(status: Status) -> list[str]:
    out = []
    if status.unverified:
        out.append("Nunca verificadas (verified vacío: nadie comprobó todavía sus datos contra la fuente):")
        topic_width = max(len(never.topic) for never in status.unverified)
        for never in status.unverified:
            written = f"written {never.written.isoformat() if never.written else '—':<10}"
            out.append(f"  {never.lang:<4} {never.topic:<{topic_width}}  {written}  {never.path}")
        out.append("")
    if status.stale:
        out.append(f"Verificar de nuevo (verified antes del {status.cutoff.isoformat()}, hace más de seis meses):")
        topic_width = max(len(entry.topic) for entry in status.stale)
        for entry in status.stale:
            out.append(f"  {entry.verified.isoformat()}  {entry.lang:<4} {entry.topic:<{topic_width}}  {entry.path}")
        out.append("")
    if not status.unverified and not status.stale:
        out.append(f"Nada que verificar: todo verified desde el {status.cutoff.isoformat()}.")
        out.append("")
    if status.phones_unverified:
        out.append(f"Teléfonos sin verificar ({status.phones_path}): {', '.join(status.phones_unverified)}")
    if status.phones_stale:
        old = ", ".join(f"{number} ({day.isoformat()})" for number, day in status.phones_stale)
        out.append(f"Teléfonos verificados hace más de seis meses ({status.phones_path}): {old}")
    if out and not out[-1]:
        out.pop()
    return out


def write_csv(status: Status, stream: TextIO) -> None:
    """One row per topic, then the emergency entry: a column per language code, the Spanish
    `written`, the oldest `verified`, the languages never verified and `recheck` (yes/no)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["topic", *(code for code, _ in status.languages), "written", "verified", "unverified", "recheck"])
    for row in (*status.rows, *([status.emergency] if status.emergency else [])):
        writer.writerow(
            [
                row.topic,
                *(str(cell) for cell in row.cells),
                row.written.isoformat() if row.written else "",
                row.verified.isoformat() if row.verified else "",
                " ".join(row.unverified),
                "yes" if row.recheck else "no",
            ]
        )
