"""Time `pregunta report` on a synthetic database of 1,000,000 usage events.

The database is generated in a temporary folder (never committed): 210 days of turns on
three channels and four languages, about 15 % of them not-sure questions drawn from a few
hundred phrasings with typos, plus one-off questions; then the oldest 30 days are purged
into daily counts, so the report reads both. Prints the time and peak memory of each
step; asserts nothing about them.

Usage: python bench/report_bench.py [--events N] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import GUATEMALA  # noqa: E402
from bot.rollup import purge  # noqa: E402
from bot.storage import open_storage  # noqa: E402

TOPICS = [
    "pasaporte-requisitos", "pasaporte-vigencia", "asilo-como-solicitar", "deportacion-llegada", "dpi-reposicion",
    "remesas-envio", "trabajo-temporal-canada", "tps-guatemaltecos", "menores-no-acompanados", "consulado-contacto",
    "visa-trabajo-eeuu", "estafas-coyotes", "salud-migrantes", "albergues", "denuncias",
]
KINDS = [("topic", 40), ("number", 18), ("not_sure", 15), ("menu", 8), ("intent", 7), ("language", 6),
         ("non_text", 3), ("empty", 2), ("rate_limited", 1)]
CHANNELS = [("whatsapp", 6), ("telegram", 3), ("terminal", 1)]
LANGS = [("es", 80), ("quc", 8), ("mam", 7), ("kek", 5)]
QUESTIONS = [
    "como saco la visa de trabajo", "cuanto cuesta el pasaporte para mi hijo", "donde queda el consulado en houston",
    "me deportaron y perdi mis papeles", "puedo pedir asilo en mexico", "receta de pepian", "como mando dinero a guatemala",
    "mi coyote me pide mas dinero", "cuanto tarda el tps", "necesito un abogado gratis", "hay trabajo en canada para mujeres",
    "como saco el dpi si estoy afuera", "me quitaron el celular en la frontera", "a que hora abre migracion",
    "mi hijo cruzo solo que hago", "donde duermo esta noche", "me robaron en el camino", "puedo viajar con dpi vencido",
]
WORDS = "hola buenas disculpe quiero saber si puedo como donde cuando porque mi hijo esposa trabajo casa dinero papeles".split()


def _weighted(pairs: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    return [p for p, _ in pairs], [w for _, w in pairs]


def _typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 2)):
        i = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.4:
            chars[i] = rng.choice("aeiosnrl")
        elif op < 0.7:
            del chars[i]
        else:
            chars.insert(i, rng.choice("aeiou"))
    return "".join(chars)


def _query(rng: random.Random) -> str:
    if rng.random() < 0.6:
        base = rng.choice(QUESTIONS)
        prefix = rng.choice(["", "", "hola ", "buenas tardes ", "disculpe "])
        return _typo(rng, prefix + base)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + f" {rng.randint(1, 99)}"


def generate(path: Path, events: int, days: int, seed: int = 5) -> None:
    """Write `events` rows spread over the `days` days before today, in batches."""
    rng = random.Random(seed)
    kinds, kind_w = _weighted(KINDS)
    channels, channel_w = _weighted(CHANNELS)
    langs, lang_w = _weighted(LANGS)
    first = datetime.now(GUATEMALA).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    start = first.timestamp()
    span = days * 86400
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    batch: list[tuple[object, ...]] = []
    stamps = sorted(start + rng.random() * span for _ in range(events))
    for at in stamps:
        kind = rng.choices(kinds, kind_w)[0]
        lang = rng.choices(langs, lang_w)[0]
        channel = rng.choices(channels, channel_w)[0]
        topic: str | None = None
        query = None
        score = None
        if kind in ("topic", "number"):
            topic = rng.choice(TOPICS)
            score = round(rng.uniform(45, 100), 1) if kind == "topic" else None
        elif kind == "not_sure":
            query = _query(rng)
            score = round(rng.uniform(10, 45), 1)
        elif kind == "language":
            topic = rng.choice([None, rng.choices(langs, lang_w)[0]])
        elif kind == "non_text":
            topic = rng.choice(["voice", "photo", "sticker", "video", "document"])
        elif kind in ("menu", "intent"):
            topic = "menu" if kind == "menu" else rng.choice(["saludo", "gracias", "despedida", "ayuda-humana"])
        local = datetime.fromtimestamp(at, GUATEMALA)
        user = f"{local:%Y%m}-{rng.randrange(20_000):05d}-{channel}"
        chose = topic if kind == "language" else None  # what UsageLog writes for a language menu's answer
        batch.append((at, local.date().isoformat(), channel, lang, kind, topic, score, round(rng.uniform(1, 30), 1), user, query, chose))
        if len(batch) >= 50_000:
            db.executemany("INSERT INTO events (at, day, channel, lang, kind, topic, score, latency_ms, user_key, query, chose_lang) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
            db.commit()
            batch.clear()
    if batch:
        db.executemany("INSERT INTO events (at, day, channel, lang, kind, topic, score, latency_ms, user_key, query, chose_lang) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
        db.commit()
    db.close()


async def _create(path: Path) -> None:
    db = await open_storage(path, wait=30.0)
    await db.close()


async def _purge(path: Path, retention: int) -> int:
    db = await open_storage(path, wait=30.0)
    try:
        return (await purge(db, retention)).events
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pregunta-bench-"))
    path = folder / "pregunta.sqlite3"
    try:
        asyncio.run(_create(path))
        began = time.perf_counter()
        generate(path, args.events, days=210)
        print(f"generated {args.events:,} events in {time.perf_counter() - began:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")

        began = time.perf_counter()
        rolled = asyncio.run(_purge(path, 180))
        print(f"purge (retention 180 days): {rolled:,} events rolled up in {time.perf_counter() - began:.1f} s")

        env = {**os.environ, "PREGUNTA_DB": str(path)}
        out = folder / "report.html"
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bot", "report", "--out", str(out), "--csv", str(folder / "csv")],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(done.returncode)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(f"report: {elapsed:.1f} s, peak RSS {peak_mb:.0f} MB, {out.stat().st_size / 1e3:.0f} kB of HTML")
        print("report progress:", " | ".join(line for line in done.stderr.splitlines() if line)[:400])
        print(f"today {date.today()}")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            for file in sorted(folder.rglob("*"), reverse=True):
                file.unlink() if file.is_file() else file.rmdir()
            folder.rmdir()


if __name__ == "__main__":
    main()
