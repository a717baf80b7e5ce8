"""The staff's view of the translations: each topic × language, and what to re-check.

A cell is `missing` (no file in that language), `draft` or `reviewed`, with `+audio`
when the entry names a recording. Spanish is the original: its entries count as
reviewed. Entries whose `verified` date is more than six months old are listed, so that
phone numbers and requirements are checked again before and during a campaign.
Knows nothing of matching, channels or the command line.
"""

from __future__ import annotations

import calendar
import csv
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from bot.content import Content, Topic

__all__ = ["STATES", "Cell", "Row", "Stale", "Status", "build", "iso_day", "months_before", "table", "write_csv"]

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
    topic: str
    cells: tuple[Cell, ...]  # one per language, in the order of Status.languages
    verified: date | None  # the oldest `verified` among the topic's entries


@dataclass(frozen=True)
class Stale:
    """An entry whose facts were last verified before the cutoff."""

    lang: str
    topic: str
    verified: date
    path: Path


@dataclass(frozen=True)
class Status:
    as_of: date
    cutoff: date  # entries verified before this day are stale
    languages: tuple[tuple[str, str], ...]  # (code, name) in menu order
    rows: tuple[Row, ...]
    stale: tuple[Stale, ...]

    def totals(self) -> dict[str, Counter[str]]:
        """Per language code: how many entries in each state, and how many with audio."""
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


def build(content: Content, as_of: date | None = None) -> Status:
    """The status of every topic in every language of `content`, as of a day (default today)."""
    as_of = as_of or date.today()
    cutoff = months_before(as_of, RECHECK_MONTHS)
    ids = list(content.menu) + sorted(set(content.spanish.topics) - set(content.menu))
    rows = []
    for topic_id in ids:
        entries = {code: pack.topics.get(topic_id) for code, pack in content.languages.items()}
        dates = [topic.verified for topic in entries.values() if topic and topic.verified]
        cells = tuple(_cell(code, topic) for code, topic in entries.items())
        rows.append(Row(topic_id, cells, min(dates, default=None)))
    stale = [
        Stale(code, topic.id, topic.verified, pack.folder / "topics" / f"{topic.id}.yaml")
        for code, pack in content.languages.items()
        for topic in pack.topics.values()
        if topic.verified is not None and topic.verified < cutoff
    ]
    stale.sort(key=lambda s: (s.verified, s.topic, s.lang))
    languages = tuple((code, pack.name) for code, pack in content.languages.items())
    return Status(as_of, cutoff, languages, tuple(rows), tuple(stale))


def _cell(code: str, topic: Topic | None) -> Cell:
    if topic is None:
        return Cell("missing")
    state = "reviewed" if code == "es" or topic.translation == "reviewed" else "draft"
    return Cell(state, topic.audio is not None)


def table(status: Status) -> str:
    """The matrix as fixed-width text for a terminal, then the totals and the entries to re-check."""
    codes = [code for code, _ in status.languages]
    first = max([len("tema"), len("total reviewed")] + [len(row.topic) for row in status.rows])
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
    out.append("")
    out.append("reviewed: revisado · draft: borrador, se responde en español · missing: no hay archivo")
    out.append("")
    if status.stale:
        out.append(f"Verificar de nuevo (verified antes del {status.cutoff.isoformat()}, hace más de seis meses):")
        topic_width = max(len(entry.topic) for entry in status.stale)
        for entry in status.stale:
            out.append(f"  {entry.verified.isoformat()}  {entry.lang:<4} {entry.topic:<{topic_width}}  {entry.path}")
    else:
        out.append(f"Nada que verificar de nuevo: todo verified desde el {status.cutoff.isoformat()}.")
    return "\n".join(out) + "\n"


def write_csv(status: Status, stream: TextIO) -> None:
    """One row per topic: a column per language code, the oldest `verified` date and `recheck`."""
    stale = {entry.topic for entry in status.stale}
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["topic", *(code for code, _ in status.languages), "verified", "recheck"])
    for row in status.rows:
        verified = row.verified.isoformat() if row.verified else ""
        writer.writerow([row.topic, *(str(cell) for cell in row.cells), verified, "yes" if row.topic in stale else "no"])
