"""Score the matcher on ../shared/eval/dev.jsonl through `pregunta match`, as evaluation does.

Prints the in-scope accuracy, the out-of-scope false answers and every miss.
Usage: python bench/eval_dev.py [path/to/dev.jsonl] [--quiet]
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def evaluate(path: Path) -> tuple[int, int, int, int, list[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_lang[row["lang"]].append(row)
    right = in_scope = wrong_oos = out_scope = 0
    misses: list[str] = []
    for lang, group in by_lang.items():
        stdin = "\n".join(r["text"].replace("\n", " ") for r in group) + "\n"
        done = subprocess.run(
            [sys.executable, "-m", "bot", "match", "--lang", lang],
            input=stdin, capture_output=True, text=True, check=True, cwd=ROOT,
        )
        for row, line in zip(group, done.stdout.splitlines()):
            got = json.loads(line)
            if row["expected"] is None:
                out_scope += 1
                if got["id"] is not None:
                    wrong_oos += 1
                    misses.append(f"OOS  {got['id']:<38} {got['score']:5.1f}  {row['text']}")
            else:
                in_scope += 1
                if got["id"] == row["expected"] or got["id"] in row.get("also", []):
                    right += 1
                else:
                    misses.append(f"MISS {row['expected']:<38} got {got['id']} {got['score']:5.1f} {got['candidates'][:2]}  {row['text']}")
    return right, in_scope, wrong_oos, out_scope, misses


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0]) if args else ROOT.parent / "shared" / "eval" / "dev.jsonl"
    right, in_scope, wrong_oos, out_scope, misses = evaluate(path)
    if "--quiet" not in sys.argv:
        print("\n".join(misses))
    print(f"in-scope: {right}/{in_scope} right ({right / max(in_scope, 1):.1%}); "
          f"out-of-scope: {wrong_oos}/{out_scope} wrongly answered ({wrong_oos / max(out_scope, 1):.1%})")


if __name__ == "__main__":
    main()
