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
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402

from bot.content import load_content  # noqa: E402
from bot.evaluation import Figures, Row, read, tally  # noqa: E402
from bot.matcher import ACK, Calibration, Matcher, _ranked, _sureness  # noqa: E402
from bot.model import _fit  # noqa: E402

SHARED = ROOT.parent / "shared"
TUNE_SETS = {
    "tune": ROOT / "tests/data/tune/tune.jsonl",
    "dev": SHARED / "eval/dev.jsonl",
    "team": ROOT / "tests/data/queries_es.jsonl",
    "team-oos": ROOT / "tests/data/out_of_scope_es.txt",
}
SEALED = {"sealed": ROOT / "tests/data/sealed/sealed.jsonl"}


def score(matcher: Matcher, evidence: list[tuple[Row, object]], calibration: Calibration) -> Figures:
    """Figures of `decide` alone on stored evidence: fast enough to search with."""
    return tally([(row, matcher.decide(found, calibration)) for row, found in evidence])  # type: ignore[arg-type]


def objective(f: Figures) -> float:
    """How far the figures fall short of the issue's goals (0 when all are met): every
    point short counts, the safety goals (wrong answers, danger, false alarms) twice."""
    shortfall = (
        max(0.0, 0.90 - f.right / f.n_in)
        + max(0.0, 0.98 - f.one_tap / f.n_in)
        + 2.0 * max(0.0, f.wrong / f.n_in - 0.02)
        + max(0.0, f.oos_answered / max(f.n_oos, 1) - 0.03)
        + 2.0 * max(0.0, 0.95 - f.danger_first / f.n_danger if f.n_danger else 0.0)
        + 2.0 * max(0.0, f.false_alarm / max(f.n_ordinary, 1) - 0.01)
    )
    # past the goals, more right answers and fewer wrong ones still count, a little
    return -shortfall + 0.1 * (f.right - f.wrong) / f.n_in


def weighted(matcher: Matcher, tune: list[tuple[Row, object]], calibration: Calibration) -> float:
    """The objective on the realistic tune set counts most; the older sets keep it honest."""
    realistic = [item for item in tune if item[0].source == "tune"]
    older = [item for item in tune if item[0].source != "tune"]
    return 0.6 * objective(score(matcher, realistic, calibration)) + 0.4 * objective(score(matcher, older, calibration))


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
    best = (weighted(matcher, tune, start), start)
    for model_weight in (0.5, 0.6):
        sure = fit_sureness(matcher, tune, model_weight)
        for answer, offer, emergency, margin in itertools.product(
            (0.65, 0.7, 0.75, 0.8, 0.85), (10.0, 15.0), (22.0, 24.0, 26.0, 28.0, 30.0), (30.0, 100.0)
        ):
            candidate = replace(
                start, model_weight=model_weight, sure=sure, answer=answer, offer=offer, emergency=emergency, emergency_margin=margin
            )
            value = weighted(matcher, tune, candidate)
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
    sets = {name: [replace(row, source=name) for row in read(path)] for name, path in paths.items() if path.exists()}
    evidence = {name: [(row, matcher.evidence(row.text, row.lang)) for row in rows] for name, rows in sets.items()}
    tune = [item for name in TUNE_SETS for item in evidence.get(name, [])]

    calibration = matcher.calibration
    if args.search:
        calibration = search(matcher, tune, calibration)
        print(f"best on the tune sets: {calibration}")

    # the figures through `match`, the whole path `pregunta match` and the dialogue take
    matcher = Matcher(content, calibration)
    whole = {name: [(row, matcher.match(row.text, row.lang)) for row in rows] for name, rows in sets.items()}
    for name in sets:
        print(f"{name:>9}: {tally(whole[name]).line()}")
    print(f"{'all tune':>9}: {tally([item for name in TUNE_SETS for item in whole.get(name, [])]).line()}")
    if args.misses:
        for name in TUNE_SETS:
            if name in whole:
                misses: list[str] = []
                tally(whole[name], misses)
                print(f"\n== misses in {name} ({len(misses)})")
                print("\n".join(misses))


if __name__ == "__main__":
    main()
