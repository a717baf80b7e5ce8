"""Score the matcher on labelled queries as a person would see its verdicts.

Used by the tests (accuracy floors) and by bench/tune_matcher.py (tuning). A labelled
query file is JSON lines `{"text", "lang", "expected", "also"?, "kind"?}` (expected null:
out of scope; "emergencia": a danger message), or plain text lines, all out of scope.
The figures are the issue's: answered right; the right topic at most one tap away
(answered, or among the choices offered); answered with a wrong topic; out-of-scope
messages answered; danger messages answered with the emergency lines first; ordinary
messages answered with the emergency lines (false alarms). An acknowledgement ("ok")
is not an answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from bot.content import EMERGENCY
from bot.matcher import ACK, Match

__all__ = ["Figures", "Row", "read", "tally"]


@dataclass
class Row:
    text: str
    lang: str
    expected: str | None
    also: tuple[str, ...]
    kind: str
    source: str = ""  # which file it came from


def read(path: Path) -> list[Row]:
    if path.suffix == ".txt":
        return [Row(line.strip(), "es", None, (), "oos") for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            expected = data["expected"]
            kind = data.get("kind") or ("oos" if expected is None else "danger" if expected == EMERGENCY else "topic")
            rows.append(Row(data["text"], data["lang"], expected, tuple(data.get("also", ())), kind))
    return rows


@dataclass
class Figures:
    n_in: int = 0
    right: int = 0
    one_tap: int = 0
    wrong: int = 0
    n_oos: int = 0
    oos_answered: int = 0
    n_danger: int = 0
    danger_first: int = 0
    n_ordinary: int = 0
    false_alarm: int = 0

    def add(self, row: Row, got: Match) -> str | None:
        """Count one verdict; a description when it is a miss."""
        if got.id == ACK:  # "ok": a nudge, not an answer
            got = replace(got, id=None)
        accepted = {row.expected, *row.also} - {None}
        if row.expected == EMERGENCY:
            self.n_danger += 1
            self.danger_first += got.id == EMERGENCY
        elif row.expected is not None:
            self.n_ordinary += 1
            self.false_alarm += got.id == EMERGENCY and EMERGENCY not in accepted
        if row.expected is None:
            self.n_oos += 1
            self.oos_answered += got.id is not None and got.id != EMERGENCY
            return f"OOS  answered {got.id}" if got.id not in (None, EMERGENCY) else None
        self.n_in += 1
        right = got.id in accepted
        self.right += right
        self.one_tap += right or bool(accepted & set(got.offered))
        self.wrong += got.id is not None and not right
        if right:
            return None
        return f"{'WRONG' if got.id else 'MISS '} want {row.expected} got {got.id} offered {list(got.offered)}"

    def line(self) -> str:
        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:5.1f}%" if b else "    -"

        return (
            f"right {pct(self.right, self.n_in)}  one-tap {pct(self.one_tap, self.n_in)}  wrong {pct(self.wrong, self.n_in)}  "
            f"oos-answered {pct(self.oos_answered, self.n_oos)}  danger-first {pct(self.danger_first, self.n_danger)}  "
            f"false-alarm {pct(self.false_alarm, self.n_ordinary)}  (n={self.n_in}+{self.n_oos})"
        )


def tally(verdicts: list[tuple[Row, Match]], misses: list[str] | None = None) -> Figures:
    figures = Figures()
    for row, got in verdicts:
        miss = figures.add(row, got)
        if miss and misses is not None:
            misses.append(f"{miss:<90} [{row.lang}] {row.text}   {got.candidates}")
    return figures


