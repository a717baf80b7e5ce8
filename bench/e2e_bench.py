"""End to end: `pregunta serve` as a process, webhooks in, replies out to a fake API.

WhatsApp: signed webhooks, replies to a fake Graph API. Telegram in webhook mode: updates
with the secret token, replies to a fake Bot API. The server runs in its own process, so it
has its own core and GIL, with the SQLite usage log on, in a temporary folder. The fake API
and the load generator share this process, on loopback only.

Each user follows a short scripted conversation: a greeting, the language, a question, a
number or a tap. Every user sends one message at a time and waits for its reply, so the
user a reply goes to tells which request it answers. Up to --concurrency users talk at
once. How many API messages a reply makes is learnt first, from one calibration user per
script that waits until its replies stop coming. That run also serves as the warm-up.

Prints messages/s, the reply latency (webhook sent until the reply's last message reaches
the fake), the webhook acknowledgement time, the server's RSS and CPU, and the CPU of this
process. It asserts nothing about speed. It exits 1 when a reply went missing, the usage
log lost a turn, the server logged an error, or it did not exit 0 on SIGTERM.
docs/performance.md has the figures and what limits them.

Usage: python bench/e2e_bench.py [--quick] [--channel whatsapp|telegram|both]
           [--users N] [--concurrency C[,C...]] [--max-seconds S] [--content DIR]
           [--py-spy FILE] [--server-path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import math
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.graph_api import Call as GraphCall  # noqa: E402
from tests.fakes.graph_api import FakeGraph  # noqa: E402
from tests.fakes.serving import free_port, running  # noqa: E402
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN  # noqa: E402
from tests.fakes.telegram_api import FakeBotAPI  # noqa: E402

DATA = ROOT / "tests" / "data"
PHONE_ID = "106540352242922"
WHATSAPP_TOKEN = "bench-token"
APP_SECRET = "bench-app-secret"
TELEGRAM_SECRET = "bench-webhook-secret"
REPLY_TIMEOUT = 30.0  # seconds one reply may take before it counts as missing
QUIET = 0.4  # seconds without a new message that end a reply while calibrating

# Steps: ("text", words), ("button", payload) or ("list", payload), as a person sends them.
Step = tuple[str, str]
SCRIPTS: list[list[Step]] = [
    [("text", "hola"), ("button", "lang:es"), ("text", "cuánto cuesta el pasaporte"), ("text", "2")],
    [("text", "buenas tardes, quiero pedir asilo"), ("text", "1"), ("text", "me deportaron y perdí mis papeles"),
     ("list", "topic:remesas")],
    [("text", "hola"), ("text", "1"), ("list", "topic:visa-requisitos"), ("text", "receta de pepián"), ("text", "gracias")],
    [("text", "Buenos días"), ("button", "lang:es"), ("text", "como saco el dpi si estoy en estados unidos"),
     ("text", "menu"), ("text", "3")],
]


# -- replies, as the fakes receive them ------------------------------------------------------


class Replies:
    """Counts the reply messages each user has received and wakes whoever waits for them."""

    def __init__(self) -> None:
        self.count: defaultdict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}
        self._waiting: dict[str, tuple[int, asyncio.Future[float]]] = {}

    def arrived(self, user: str) -> None:
        now = time.perf_counter()
        self.count[user] += 1
        self.last[user] = now
        waiting = self._waiting.get(user)
        if waiting is not None and self.count[user] >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(now)

    async def until(self, user: str, total: int, timeout: float) -> float:
        """When the user's `total`-th message arrived; TimeoutError if it does not."""
        if self.count[user] >= total:
            return self.last[user]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[user] = (total, future)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(user, None)

    async def settled(self, user: str, before: int, timeout: float) -> int:
        """Wait for the first new message, then until none comes for QUIET seconds."""
        await self.until(user, before + 1, timeout)
        seen = self.count[user]
        while True:
            await asyncio.sleep(QUIET)
            if self.count[user] == seen:
                return seen - before
            seen = self.count[user]


class _Graph(FakeGraph):
    """The fake Graph API, telling `Replies` of every message it accepts (read receipts aside)."""

    def __init__(self, replies: Replies) -> None:
        super().__init__(token=WHATSAPP_TOKEN)
        self.replies = replies

    async def _record(self, call: GraphCall) -> None:
        await super()._record(call)
        if call.endpoint == "messages" and call.status == 200 and not call.is_read and call.user:
            self.replies.arrived(call.user)


class _BotAPI(FakeBotAPI):
    """The fake Bot API, telling `Replies` of every message sent (chat actions and button answers aside)."""

    def __init__(self, replies: Replies) -> None:
        super().__init__(token=TELEGRAM_TOKEN)
        self.replies = replies

    async def _record(self, method: str, params: dict[str, str], files: dict[str, bytes], response: Any) -> Any:
        answer = await super()._record(method, params, files, response)
        if method in ("sendMessage", "sendVoice") and response.status_code == 200 and "chat_id" in params:
            self.replies.arrived(params["chat_id"])
        return answer


# -- the two channels ------------------------------------------------------------------------


class WhatsApp:
    name = "whatsapp"

    def __init__(self) -> None:
        self._text = json.loads((DATA / "whatsapp" / "text.json").read_text())
        self._button = json.loads((DATA / "whatsapp" / "interactive_button_reply.json").read_text())
        self._list = json.loads((DATA / "whatsapp" / "interactive_list_reply.json").read_text())
        self._ids = itertools.count(1)
        self._users = itertools.count(1)

    def fake(self, replies: Replies) -> Any:
        return _Graph(replies)

    def env(self, fake_url: str) -> dict[str, str]:
        return {
            "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench-verify",
            "WHATSAPP_API_BASE_URL": f"{fake_url}/v22.0",
        }

    def new_user(self) -> str:
        return f"5025{next(self._users):08d}"

    def request(self, user: str, step: Step) -> tuple[str, bytes, dict[str, str]]:
        kind, value = step
        data = copy.deepcopy({"text": self._text, "button": self._button, "list": self._list}[kind])
        change = data["entry"][0]["changes"][0]["value"]
        change["contacts"][0]["wa_id"] = user
        message = change["messages"][0]
        message["from"] = user
        message["id"] = f"wamid.BENCH{next(self._ids):010d}"
        message["timestamp"] = str(int(time.time()))
        if kind == "text":
            message["text"] = {"body": value}
        elif kind == "button":
            message["interactive"]["button_reply"] = {"id": value, "title": "1 Español"}
        else:
            message["interactive"]["list_reply"] = {"id": value, "title": "Tema", "description": ""}
        body = json.dumps(data).encode()
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return "/webhooks/whatsapp", body, {"content-type": "application/json", "x-hub-signature-256": signature}


class Telegram:
    name = "telegram"

    def __init__(self) -> None:
        self._text = json.loads((DATA / "telegram" / "text.json").read_text())
        self._press = json.loads((DATA / "telegram" / "callback_query.json").read_text())
        self._updates = itertools.count(1)
        self._messages = itertools.count(10)
        self._users = itertools.count(10_000_001)

    def fake(self, replies: Replies) -> Any:
        return _BotAPI(replies)

    def env(self, fake_url: str) -> dict[str, str]:
        return {
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_MODE": "webhook",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/webhooks/telegram",  # only told to the fake
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_BASE_URL": f"{fake_url}/bot",
            "TELEGRAM_BASE_FILE_URL": f"{fake_url}/file/bot",
        }

    def new_user(self) -> str:
        return str(next(self._users))

    def request(self, user: str, step: Step) -> tuple[str, bytes, dict[str, str]]:
        kind, value = step
        person = {"id": int(user), "is_bot": False, "first_name": "Persona", "language_code": "es"}
        chat = {"id": int(user), "first_name": "Persona", "type": "private"}
        if kind == "text":
            data = copy.deepcopy(self._text)
            data["message"].update({"text": value, "from": person, "chat": chat, "message_id": next(self._messages)})
        else:
            data = copy.deepcopy(self._press)
            query = data["callback_query"]
            query.update({"from": person, "data": value, "id": str(next(self._messages))})
            query["message"]["chat"] = chat
        data["update_id"] = next(self._updates)
        headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
        return "/webhooks/telegram", json.dumps(data).encode(), headers


Channel = WhatsApp | Telegram


# -- the server process ----------------------------------------------------------------------


@dataclass
class Server:
    process: asyncio.subprocess.Process
    url: str
    db: Path
    log: list[str] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None

    def status(self, key: str) -> int:
        """A /proc/<pid>/status size (VmRSS, VmHWM) in kB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextlib.asynccontextmanager
async def serving(
    channel: Channel, fake_url: str, folder: Path, content: Path, server_path: Path | None = None
) -> AsyncIterator[Server]:
    """`pregunta serve` on a free loopback port, this one channel on; stopped with SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREGUNTA_", "WHATSAPP_", "TELEGRAM_"))}
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in (server_path, ROOT, os.environ.get("PYTHONPATH")) if p),
        PREGUNTA_HOST="127.0.0.1",
        PREGUNTA_PORT=str(port),
        PREGUNTA_DB=str(folder / "pregunta.sqlite3"),
        PREGUNTA_CONTENT=str(content),
        PREGUNTA_PSEUDONYM_KEY="bench-pseudonym-key-" + "k" * 16,
        PREGUNTA_LOG_LEVEL="INFO",
        **channel.env(fake_url),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=folder, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", folder / "pregunta.sqlite3")

    async def drain() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            server.log.append(line.decode(errors="replace"))

    server.drainer = asyncio.create_task(drain())
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            deadline = time.monotonic() + 30
            while True:
                if process.returncode is not None:
                    raise SystemExit(f"pregunta serve exited with {process.returncode}:\n{''.join(server.log)}")
                if time.monotonic() > deadline:
                    raise SystemExit("pregunta serve did not become healthy in 30 s:\n" + "".join(server.log))
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield server
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                server.log.append("did not stop within 30 s of SIGTERM: killed\n")
                process.kill()
                await process.wait()
        await server.drainer


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Run:
    concurrency: int
    messages: int = 0
    missing: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, webhook sent → last reply message
    acks: list[float] = field(default_factory=list)  # seconds, webhook sent → its HTTP answer
    elapsed: float = 0.0
    server_cpu: float = 0.0
    own_cpu: float = 0.0
    others_cpu: float = 0.0  # CPU seconds the rest of the machine used meanwhile: noise
    rss_peak_kb: int = 0


async def calibrate(channel: Channel, http: httpx.AsyncClient, replies: Replies) -> list[list[int]]:
    """How many API messages answer each step of each script, learnt from one user per script."""

    async def one(script: list[Step]) -> list[int]:
        user = channel.new_user()
        counts = []
        for step in script:
            path, body, headers = channel.request(user, step)
            before = replies.count[user]
            response = await http.post(path, content=body, headers=headers)
            response.raise_for_status()
            try:
                counts.append(await replies.settled(user, before, REPLY_TIMEOUT))
            except TimeoutError:
                raise SystemExit(f"{channel.name}: no reply to {step} in {REPLY_TIMEOUT:.0f} s while calibrating") from None
        return counts

    return list(await asyncio.gather(*(one(script) for script in SCRIPTS)))


async def load(
    channel: Channel, http: httpx.AsyncClient, replies: Replies, server: Server,
    expected: list[list[int]], users: int, concurrency: int, max_seconds: float,
) -> Run:  # fmt: skip
    """`users` users, `concurrency` of them at a time, each through its script."""
    run = Run(concurrency)
    started = time.perf_counter()
    stop_at = started + max_seconds
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(users):
        queue.put_nowait(number)

    async def talker() -> None:
        while time.perf_counter() < stop_at:
            try:
                number = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            script, counts = SCRIPTS[number % len(SCRIPTS)], expected[number % len(SCRIPTS)]
            user = channel.new_user()
            total = 0
            for step, count in zip(script, counts):
                path, body, headers = channel.request(user, step)
                sent = time.perf_counter()
                response = await http.post(path, content=body, headers=headers)
                run.acks.append(time.perf_counter() - sent)
                run.messages += 1
                if response.status_code != 200:
                    run.refused += 1
                    break
                total += count
                try:
                    run.latencies.append(await replies.until(user, total, REPLY_TIMEOUT) - sent)
                except TimeoutError:
                    run.missing += 1
                    break

    async def sample_rss() -> None:
        while True:
            run.rss_peak_kb = max(run.rss_peak_kb, server.status("VmRSS"))
            await asyncio.sleep(0.2)

    cpu0, own0, all0 = server.cpu_seconds(), time.process_time(), _machine_cpu_seconds()
    sampler = asyncio.create_task(sample_rss())
    await asyncio.gather(*(talker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - started
    run.server_cpu, run.own_cpu = server.cpu_seconds() - cpu0, time.process_time() - own0
    run.others_cpu = max(0.0, _machine_cpu_seconds() - all0 - run.server_cpu - run.own_cpu)
    sampler.cancel()
    return run


def _machine_cpu_seconds() -> float:
    """CPU time all processes used so far (user, nice, system, irq, softirq), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:8]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def show(name: str, run: Run) -> None:
    rate = len(run.latencies) / run.elapsed if run.elapsed else 0.0
    print(
        f"{name:<9} c={run.concurrency:<4} {run.messages:>6} msgs in {run.elapsed:5.1f} s  {rate:6.0f} msgs/s  "
        f"reply p50 {percentile(run.latencies, 0.5) * 1000:6.1f} ms  p99 {percentile(run.latencies, 0.99) * 1000:6.1f} ms  "
        f"ack p50 {percentile(run.acks, 0.5) * 1000:5.1f} ms  p99 {percentile(run.acks, 0.99) * 1000:5.1f} ms  "
        f"CPU: server {run.server_cpu / run.elapsed:4.0%} ({run.server_cpu / max(run.messages, 1) * 1000:.1f} ms/msg) bench {run.own_cpu / run.elapsed:4.0%} others {run.others_cpu / run.elapsed:4.0%}  "
        f"server RSS peak {run.rss_peak_kb / 1024:4.0f} MB  missing {run.missing}  refused {run.refused}"
    )


@contextlib.asynccontextmanager
async def profiled(pid: int, out: Path | None) -> AsyncIterator[None]:
    """py-spy samples the server while the load runs, only the thread holding the GIL (py-spy must be on PATH)."""
    if out is None:
        yield
        return
    spy = await asyncio.create_subprocess_exec(
        "py-spy", "record", "--pid", str(pid), "--rate", "250", "--gil", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        await asyncio.wait_for(spy.wait(), 60)


async def bench(
    channel: Channel, content: Path, users: int, levels: list[int], max_seconds: float,
    profile: Path | None = None, server_path: Path | None = None,
) -> bool:  # fmt: skip
    """One server for this channel, every concurrency level in turn; False when something was lost."""
    replies = Replies()
    fake = channel.fake(replies)
    ok = True
    sent = 0
    with tempfile.TemporaryDirectory(prefix="pregunta-e2e-") as tmp:
        async with running(fake.app) as fake_url:
            async with serving(channel, fake_url, Path(tmp), content, server_path) as server:
                limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
                async with httpx.AsyncClient(base_url=server.url, trust_env=False, limits=limits, timeout=REPLY_TIMEOUT) as http:
                    expected = await calibrate(channel, http, replies)
                    sent += sum(len(script) for script in SCRIPTS)
                    print(f"{channel.name}: API messages per step, learnt per script: {expected}; "
                          f"server RSS after warm-up {server.status('VmRSS') / 1024:.0f} MB")  # fmt: skip
                    spy_out = profile.with_name(f"{profile.stem}-{channel.name}{profile.suffix}") if profile else None
                    async with profiled(server.process.pid, spy_out):
                        for level in levels:
                            run = await load(channel, http, replies, server, expected, users, level, max_seconds)
                            sent += run.messages
                            show(channel.name, run)
                            ok = ok and run.missing == 0 and run.refused == 0
                    health = (await http.get("/healthz")).json()
                hwm, rss = server.status("VmHWM"), server.status("VmRSS")
            code = server.process.returncode
        logged = _events(server.db)
    usage = health.get("usage_log") or {}
    print(f"{channel.name}: server RSS at the end {rss / 1024:.0f} MB, high-water mark (VmHWM) {hwm / 1024:.0f} MB; "
          f"usage log: {logged} events for {sent} messages sent (dropped {usage.get('dropped')}, failed {usage.get('failed')}); "
          f"SIGTERM → exit code {code}")  # fmt: skip
    problems = [line for line in server.log if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]
    if problems:
        print(f"{channel.name}: {len(problems)} error line(s) from the server, the first: {problems[0].rstrip()}")
    return ok and code == 0 and logged == sent and not problems


def _events(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 60 users at concurrency 1, then 16")
    parser.add_argument("--channel", choices=["whatsapp", "telegram", "both"], default="both")
    parser.add_argument("--users", type=int, help="users per concurrency level (each sends 4 or 5 messages; default 400)")
    parser.add_argument("--concurrency", default=None, help="users talking at once, comma-separated levels (default 1,64)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="no new user starts after this long (per level)")
    parser.add_argument("--content", type=Path, default=ROOT / "content", help="content folder the server loads")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", help="sample the server with py-spy during the load; "
                        "collapsed stacks go to FILE with the channel's name added")  # fmt: skip
    parser.add_argument("--server-path", type=Path, metavar="DIR", help="put DIR first on the server's PYTHONPATH, "
                        "for what-if runs (a sitecustomize.py or a package the server lacks)")  # fmt: skip
    args = parser.parse_args()
    users = args.users or (60 if args.quick else 400)
    levels = [int(c) for c in (args.concurrency or ("1,16" if args.quick else "1,64")).split(",")]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"{users} users per level, {len(SCRIPTS)} scripts of 4-5 messages")  # fmt: skip
    channels: list[Channel] = {"whatsapp": [WhatsApp()], "telegram": [Telegram()], "both": [WhatsApp(), Telegram()]}[args.channel]
    results = [
        asyncio.run(bench(channel, args.content, users, levels, args.max_seconds, args.py_spy, args.server_path))
        for channel in channels
    ]
    ok = all(results)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
