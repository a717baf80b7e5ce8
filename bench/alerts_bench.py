"""`pregunta alerts send` to 100,000 subscribers against lean loopback fakes: time, memory, a resume.

Makes a SQLite database in a temporary folder with N subscriptions (half Telegram, half
WhatsApp, encrypted as the server writes them), serves a lean fake Bot API and a lean
fake Graph API (aiohttp, in this process: they count each recipient's messages), then
runs the real command as another process:

1. a whole send at `--rate` messages a second per platform (default: as fast as it goes,
   to measure the sender itself); prints the time, messages a second and the sender's
   peak RSS (VmHWM);
2. the same with a second alert, killed with SIGKILL once half the messages arrived, then
   run again: prints what the resume sent, how many were left unconfirmed (in flight at
   the kill, never sent again) and whether anyone got it twice;
3. `--pace N`: N subscribers at the platforms' own pace (Telegram 30/s, WhatsApp 80/s), to
   show the pace is kept.

Asserts nothing; exits 1 when someone got an alert twice or a send went missing.

Usage: python bench/alerts_bench.py [--people 100000] [--rate 100000] [--pace 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl

from aiohttp import web
from cryptography.fernet import Fernet, MultiFernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.privacy import pseudonym  # noqa: E402
from bot.storage import open_storage  # noqa: E402
from bot.subscriptions import Subscriptions  # noqa: E402

CONTENT = ROOT / "tests" / "data" / "content"
TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
PHONE_ID = "106540352242922"
ALERTS = ("citas-de-pasaporte-en-venta", "otro-aviso-de-prueba")


class Fakes:
    """Lean fake Bot API and Graph API: count each recipient's alerts, answer at once."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.spans: dict[str, list[float]] = {}  # platform → [first, last] arrival (monotonic)
        self.app = web.Application()
        self.app.router.add_post("/bot{token}/{method}", self._telegram)
        self.app.router.add_post("/v22.0/{phone}/messages", self._graph)
        self._ids = 0

    async def _telegram(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "getMe":
            me = {"id": 123456, "is_bot": True, "first_name": "Preguntá", "username": "bench_bot"}
            return web.json_response({"ok": True, "result": me})
        params = dict(parse_qsl((await request.read()).decode()))
        self.received[f"tg:{params['chat_id']}"] += 1
        self._arrived("tg")
        self._ids += 1
        chat = {"id": int(params["chat_id"]), "type": "private"}
        return web.json_response({"ok": True, "result": {"message_id": self._ids, "date": 0, "chat": chat, "text": params.get("text", "")}})

    async def _graph(self, request: web.Request) -> web.Response:
        message = json.loads(await request.read())
        self.received[f"wa:{message['to']}"] += 1
        self._arrived("wa")
        self._ids += 1
        return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": f"wamid.B{self._ids}"}]})

    def _arrived(self, platform: str) -> None:
        now = time.monotonic()
        span = self.spans.setdefault(platform, [now, now])
        span[1] = now

    def rate(self, platform: str) -> float:
        """Messages a second between the platform's first and last arrival."""
        count = sum(n for r, n in self.received.items() if r.startswith(platform + ":"))
        first, last = self.spans.get(platform, [0.0, 0.0])
        return (count - 1) / (last - first) if last > first else 0.0

    def total(self) -> int:
        return sum(self.received.values())


async def subscribe(db_path: Path, key: str, people: int) -> list[str]:
    """N subscriptions written in batches, as `Subscriptions.subscribe` writes each one."""
    storage = await open_storage(db_path, wait=30.0)
    store = Subscriptions(storage, MultiFernet([Fernet(key.encode())]), b"p" * 32)
    recipients = []
    try:
        batch = []
        for n in range(people):
            channel, user = ("telegram", str(7_000_000_000 + n)) if n % 2 else ("whatsapp", f"5025{n:07d}")
            person = pseudonym(b"p" * 32, "subscriber", channel, user)
            batch.append(("INSERT INTO subscriptions (person, channel, lang, token, since) VALUES (?, ?, 'es', ?, ?)",
                          (person, channel, store.seal(channel, user), time.time())))  # fmt: skip
            recipients.append(("tg:" if channel == "telegram" else "wa:") + user)
            if len(batch) == 2000:
                await storage.script(batch)
                batch = []
        if batch:
            await storage.script(batch)
    finally:
        await storage.close()
    return recipients


def peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


async def run_send(env: dict[str, str], alert: str, rate: int | None, *, kill_at: int | None = None, fakes: Fakes) -> tuple[float, int, int]:
    """One `pregunta alerts send`: (seconds, peak MB, exit code); with `kill_at`, SIGKILL once that many arrived."""
    args = [sys.executable, "-m", "bot", "alerts", "send", alert] + (["--rate", str(rate)] if rate else [])
    before = fakes.total()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    peak = 0
    while process.returncode is None:
        peak = max(peak, peak_rss(process.pid))
        if kill_at is not None and fakes.total() - before >= kill_at:
            process.send_signal(signal.SIGKILL)
            await process.wait()
            break
        try:
            await asyncio.wait_for(process.wait(), 0.1)
        except TimeoutError:
            pass
    return time.perf_counter() - started, peak, process.returncode or 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=100_000, help="messages a second per platform for parts 1 and 2")
    parser.add_argument("--pace", type=int, default=2000, help="subscribers of part 3, at the platforms' own pace (0: skip)")
    args = parser.parse_args()
    fakes = Fakes()
    runner = web.AppRunner(fakes.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        key = Fernet.generate_key().decode()
        db = Path(folder) / "data" / "pregunta.sqlite3"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "PREGUNTA_", "WHATSAPP_"))}
        env.update(
            PYTHONPATH=str(ROOT), PREGUNTA_DB=str(db), PREGUNTA_CONTENT=str(CONTENT), PREGUNTA_SUBSCRIBERS_KEY=key,
            PREGUNTA_LOG_LEVEL="WARNING", TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot",
            WHATSAPP_TOKEN="bench", WHATSAPP_PHONE_NUMBER_ID=PHONE_ID, WHATSAPP_API_BASE_URL=f"http://127.0.0.1:{port}/v22.0",
            WHATSAPP_ALERT_TEMPLATE="aviso_pregunta",
        )  # fmt: skip
        started = time.perf_counter()
        recipients = await subscribe(db, key, args.people)
        print(f"{args.people:,} subscriptions written in {time.perf_counter() - started:.1f} s; database {db.stat().st_size / 1e6:.1f} MB")

        seconds, peak, code = await run_send(env, ALERTS[0], args.rate, fakes=fakes)
        got = fakes.total()
        print(f"1. whole send: {got:,} messages in {seconds:.1f} s ({got / seconds:,.0f}/s), sender peak RSS {peak} MB, exit {code}")
        failed |= got != args.people or max(fakes.received.values()) != 1

        fakes.received.clear()
        seconds, peak, code = await run_send(env, ALERTS[1], args.rate, kill_at=args.people // 2, fakes=fakes)
        at_kill = fakes.total()
        resumed, peak2, code2 = await run_send(env, ALERTS[1], args.rate, fakes=fakes)
        with sqlite3.connect(db) as connection:
            [(unconfirmed,)] = connection.execute("SELECT COUNT(*) FROM alert_deliveries WHERE alert = ? AND status = 'sending'", (ALERTS[1],)).fetchall()
        connection.close()
        twice = sum(1 for n in fakes.received.values() if n > 1)
        missing = sum(1 for r in recipients if fakes.received[r] == 0)
        print(f"2. killed (SIGKILL) after {at_kill:,} arrived ({seconds:.1f} s); the resume sent {fakes.total() - at_kill:,} in {resumed:.1f} s "
              f"(peak RSS {peak2} MB, exit {code2}); unconfirmed (in flight at the kill) {unconfirmed}; not received {missing}; twice {twice}")  # fmt: skip
        failed |= twice > 0 or missing > unconfirmed

        if args.pace:
            fakes.received.clear()
            fakes.spans.clear()
            pace_db = Path(folder) / "pace" / "pregunta.sqlite3"
            await subscribe(pace_db, key, args.pace)
            seconds, peak, code = await run_send({**env, "PREGUNTA_DB": str(pace_db)}, ALERTS[0], None, fakes=fakes)
            tg = sum(n for r, n in fakes.received.items() if r.startswith("tg:"))
            wa = sum(n for r, n in fakes.received.items() if r.startswith("wa:"))
            print(f"3. at the platforms' pace: {tg:,} Telegram and {wa:,} WhatsApp messages in {seconds:.1f} s "
                  f"(Telegram {fakes.rate('tg'):.1f}/s, WhatsApp {fakes.rate('wa'):.1f}/s, first to last); exit {code}")  # fmt: skip
    await runner.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
