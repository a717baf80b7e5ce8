"""Score the matcher as a person would see it, and search its calibration on the tune sets.

    python bench/tune_matcher.py            figures on every set with the calibration in bot/matcher.py
    python bench/tune_matcher.py --search   also search the calibration on the TUNE sets only
    python bench/tune_matcher.py --misses   print the misses of the tune sets (never of the sealed set)

Figures, per set (the issue's table): answered right; right topic at most one tap away
(answered, or among the choices offered); answered with a wrong topic; out-of-scope
messages answered; danger messages answered with the emergency lines first; ordinary
messages answered with the emergency lines (false alarms). The sealed set
(tests/data/sealed/) is scored, never searched on, and its misses are never printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.content import EMERGENCY, load_content  # noqa: E402
from bot.matcher import ACK, Calibration, Match, Matcher, _ranked, _sureness  # noqa: E402
from bot.model import _fit  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402

SHARED = ROOT.parent / "shared"
TUNE_SETS = {
    "tune": ROOT / "tests/data/tune/tune.jsonl",
    "dev": SHARED / "eval/dev.jsonl",
    "team": ROOT / "tests/data/queries_es.jsonl",
    "team-oos": ROOT / "tests/data/out_of_scope_es.txt",
}
SEALED = {"sealed": ROOT / "tests/data/sealed/sealed.jsonl"}


@dataclass
class Row:
    text: str
    lang: str
    expected: str | None
    also: tuple[str, ...]
    kind: str


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


def score(matcher: Matcher, evidence: list[tuple[Row, object]], calibration: Calibration, misses: list[str] | None = None) -> Figures:
    figures = Figures()
    for row, found in evidence:
        got = matcher.decide(found, calibration)  # type: ignore[arg-type]
        miss = figures.add(row, got)
        if miss and misses is not None:
            misses.append(f"{miss:<90} [{row.lang}] {row.text}   {got.candidates}")
    return figures


def objective(f: Figures) -> float:
    """Right answers count; wrong answers, false alarms and answered out-of-scope cost more."""
    return (
        f.right / f.n_in
        + 0.5 * f.one_tap / f.n_in
        - 3.0 * max(0.0, f.wrong / f.n_in - 0.015)
        - 1.0 * f.wrong / f.n_in
        - 2.0 * max(0.0, f.oos_answered / f.n_oos - 0.02)
        - 2.0 * max(0.0, 1 - f.danger_first / max(f.n_danger, 1) - 0.04)
        - 4.0 * max(0.0, f.false_alarm / max(f.n_ordinary, 1) - 0.005)
    )


def fit_sureness(matcher: Matcher, tune: list[tuple[Row, object]], model_weight: float) -> tuple[float, ...]:
    """Fit the logistic regression that tells how likely the best entry is right."""
    features, labels = [], []
    for row, evidence in tune:
        if row.expected == "emergencia":
            continue  # danger has its own threshold
        ranked = [(e, s) for e, s in _ranked(evidence, model_weight) if e != "emergencia"]  # type: ignore[arg-type]
        if not ranked:
            continue
        best = ranked[0][0]
        features.append(_sureness(evidence, ranked, best))  # type: ignore[arg-type]
        labels.append(int(row.expected is not None and best in {row.expected, *row.also} and best != ACK))
    matrix = sparse.csr_matrix(np.array(features))
    weights, bias = _fit(matrix, np.array(labels), 2, 1e-3)
    coefficients = weights[:, 1] - weights[:, 0]
    return (*(round(float(w), 3) for w in coefficients), round(float(bias[1] - bias[0]), 3))


def search(matcher: Matcher, tune: list[tuple[Row, object]], start: Calibration) -> Calibration:
    best = (objective(score(matcher, tune, start)), start)
    for model_weight in (0.4, 0.5, 0.6, 0.7):
        sure = fit_sureness(matcher, tune, model_weight)
        for answer, offer, emergency in itertools.product(
            (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75), (10.0, 15.0, 20.0, 25.0), (25.0, 30.0, 35.0, 40.0)
        ):
            candidate = replace(start, model_weight=model_weight, sure=sure, answer=answer, offer=offer, emergency=emergency)
            value = objective(score(matcher, tune, candidate))
            if value > best[0]:
                best = (value, candidate)
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--sealed", action="store_true", help="also score the sealed set (aggregate only)")
    args = parser.parse_args()
    started = time.perf_counter()
    content = load_content(ROOT / "content")
    matcher = Matcher(content)
    print(f"content load + training {time.perf_counter() - started:.2f} s")
    paths = {**TUNE_SETS, **(SEALED if args.sealed else {})}
    sets = {name: read(path) for name, path in paths.items() if path.exists()}
    evidence = {name: [(row, matcher.evidence(row.text, row.lang)) for row in rows] for name, rows in sets.items()}
    tune = [item for name in TUNE_SETS for item in evidence.get(name, [])]

    calibration = matcher.calibration
    if args.search:
        calibration = search(matcher, tune, calibration)
        print(f"best on the tune sets: {calibration}")

    for name in sets:
        print(f"{name:>9}: {score(matcher, evidence[name], calibration).line()}")
    print(f"{'all tune':>9}: {score(matcher, tune, calibration).line()}")
    if args.misses:
        for name in TUNE_SETS:
            if name in evidence:
                misses: list[str] = []
                score(matcher, evidence[name], calibration, misses)
                print(f"\n== misses in {name} ({len(misses)})")
                print("\n".join(misses))


if __name__ == "__main__":
    main()
