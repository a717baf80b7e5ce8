"""End to end: `pregunta serve` and a minimal reference bot, side by side, against one fake API.

WhatsApp: signed webhooks in, replies out to a fake Graph API on loopback. Two servers run
as processes of their own: the project (`python -m bot serve`, SQLite usage log on, in a
temporary folder) and the reference (`bench/reference_bot.py`: aiohttp server and client
on uvloop, signature check, JSON parse, a read receipt and one text reply; no matching,
no database). Both send to the same fake Graph API, which runs in this process with the
load generator. Telegram (webhook mode, fake Bot API) runs the project alone.

Where the machine has two cores or more, the servers are pinned to core 0 (`taskset`) and
this process to core 1, so the load generator never takes the servers' core; the output
says whether they were.

Each user follows a short scripted conversation: a greeting, the language, a question, a
number or a tap. Every user sends one message at a time and waits for its reply, so the
user a reply goes to tells which request it answers. Up to --concurrency users talk at
once. How many API messages a reply makes is learnt first, per server, from one
calibration user per script that waits until its replies stop coming (the warm-up too).

Prints, per server and level: messages/s, reply latency p50/p99 (webhook sent until the
reply's last message reaches the fake), webhook ack p50/p99, server CPU per message, the
CPU of this process and of the rest of the machine, read receipts per message; then the
ratio project/reference. Asserts nothing about speed. Exits 1 when a reply went missing,
the usage log lost a turn, a server logged an error, or one did not exit 0 on SIGTERM.
docs/performance.md has the figures and what limits them.

Usage: python bench/e2e_bench.py [--quick] [--channel whatsapp|telegram|both]
           [--users N] [--concurrency C[,C...]] [--max-seconds S] [--content DIR]
           [--project DIR] [--no-reference] [--no-pin] [--strict-fake] [--py-spy FILE]
           [--workers N] [--db postgresql://…]
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
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.graph_api import Call as GraphCall, FakeGraph  # noqa: E402
from tests.fakes.serving import free_port, running  # noqa: E402
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN, FakeBotAPI  # noqa: E402

DATA = ROOT / "tests" / "data"
PHONE_ID = "106540352242922"
WHATSAPP_TOKEN = "bench-token"
APP_SECRET = "bench-app-secret"
TELEGRAM_SECRET = "bench-webhook-secret"
REPLY_TIMEOUT = 30.0  # seconds one reply may take before it counts as missing
QUIET = 0.4  # seconds without a new message that end a reply while calibrating
SERVER_CORE, BENCH_CORE = 0, 1

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


class LeanGraph:
    """The fake Graph API, lean: aiohttp, checks the token and the JSON, counts replies and receipts.

    The strict fake of the tests (`--strict-fake`) also checks every field against Meta's
    limits, but costs this process more CPU per call than the servers being measured.
    """

    def __init__(self, replies: Replies) -> None:
        self.replies = replies
        self.reads = 0
        self.refused = 0
        self._auth = f"Bearer {WHATSAPP_TOKEN}"
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/{version}/{phone}/messages", self._messages)
        self.app.router.add_post("/{version}/{phone}/media", self._media)

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self._auth:
            self.refused += 1
            return web.json_response({"error": {"message": "bad token", "code": 190}}, status=401)
        try:
            message = json.loads(await request.read())
        except ValueError:
            self.refused += 1
            return web.json_response({"error": {"message": "not JSON", "code": 100}}, status=400)
        if message.get("status") == "read":
            self.reads += 1
            return web.json_response({"success": True})
        user = message.get("to") or message.get("recipient")
        if not user or message.get("messaging_product") != "whatsapp":
            self.refused += 1
            return web.json_response({"error": {"message": "to is required", "code": 100}}, status=400)
        self.replies.arrived(user)
        return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": f"wamid.B{next(self._ids)}"}]})

    async def _media(self, request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": f"media-{next(self._ids)}"})


class StrictGraph(FakeGraph):
    """The tests' fake Graph API (every field checked), telling `Replies` of each message it accepts."""

    def __init__(self, replies: Replies) -> None:
        super().__init__(token=WHATSAPP_TOKEN)
        self.replies = replies

    @property
    def reads(self) -> int:  # type: ignore[override]
        return sum(1 for c in self.calls if c.is_read)

    @property
    def refused(self) -> int:
        return sum(1 for c in self.calls if c.status != 200)

    async def _record(self, call: GraphCall) -> None:
        await super()._record(call)
        if call.endpoint == "messages" and call.status == 200 and not call.is_read and call.user:
            self.replies.arrived(call.user)


class _BotAPI(FakeBotAPI):
    """The fake Bot API, telling `Replies` of every message sent (chat actions and button answers aside)."""

    def __init__(self, replies: Replies) -> None:
        super().__init__(token=TELEGRAM_TOKEN)
        self.replies = replies

    @property
    def reads(self) -> int:
        """"typing…" (sendChatAction) calls: Telegram's counterpart of a read receipt."""
        return sum(1 for c in self.calls if c.method == "sendChatAction")

    @property
    def refused(self) -> int:
        return sum(1 for c in self.calls if c.status != 200)

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


@contextlib.asynccontextmanager
async def serving_aiohttp(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free loopback port (TCP_NODELAY), in this event loop; yields its URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


# -- the server processes --------------------------------------------------------------------


@dataclass
class Server:
    name: str  # "project" or "reference"
    process: asyncio.subprocess.Process
    url: str
    db: str | None  # the project's PREGUNTA_DB: a SQLite file or a PostgreSQL URL
    log: list[str] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None
    admin_url: str = ""  # /healthz and /metrics (the project's admin port; the reference serves them on its only port)

    def pids(self) -> list[int]:
        """The server's process and, with --workers, the workers it supervises."""
        found = [self.process.pid]
        for pid in list(found):
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(child) for child in children]
        return found

    def status(self, key: str) -> int:
        """A /proc/<pid>/status size (VmRSS, VmHWM) in kB, summed over the server's processes."""
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += next((int(line.split()[1]) for line in lines if line.startswith(key + ":")), 0)
        return total

    def cpu_seconds(self) -> float:
        """CPU of the server's processes and all their threads (utime + stime)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


def _pinned(command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", str(SERVER_CORE), *command] if pin else command


@contextlib.asynccontextmanager
async def serving(
    name: str, command: list[str], env_extra: dict[str, str], folder: Path, pythonpath: Path, pin: bool
) -> AsyncIterator[Server]:
    """A server process on a free loopback port; stopped with SIGTERM."""
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREGUNTA_", "WHATSAPP_", "TELEGRAM_"))}
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in (pythonpath, os.environ.get("PYTHONPATH")) if p),
        PREGUNTA_HOST="127.0.0.1",
        PREGUNTA_PORT=str(port),
        PREGUNTA_ADMIN_PORT=str(admin_port),
        PREGUNTA_DB=str(folder / "pregunta.sqlite3"),
        PREGUNTA_DB_WAIT="5",  # a loaded 2-core machine: let the database take its turn rather than fall back
        PREGUNTA_PSEUDONYM_KEY="bench-pseudonym-key-" + "k" * 16,
        PREGUNTA_LOG_LEVEL="INFO",
    )
    env.update(env_extra)  # a PREGUNTA_DB of the caller's (PostgreSQL) wins
    process = await asyncio.create_subprocess_exec(
        *_pinned(command, pin), cwd=folder, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    database = env.get("PREGUNTA_DB", "")
    server = Server(name, process, f"http://127.0.0.1:{port}", database if name == "project" else None)
    server.admin_url = f"http://127.0.0.1:{admin_port}" if name == "project" else server.url

    async def drain() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            server.log.append(line.decode(errors="replace"))

    server.drainer = asyncio.create_task(drain())
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                if process.returncode is not None:
                    raise SystemExit(f"{name} exited with {process.returncode}:\n{''.join(server.log)}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not become healthy in 30 s:\n" + "".join(server.log))
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{server.admin_url}/healthz") as response:
                        if response.status == 200:
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
    server: str
    channel: str
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
    reads: int = 0  # read receipts the fake received

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu / max(self.messages, 1) * 1000


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def calibrate(channel: Channel, http: aiohttp.ClientSession, server: Server, replies: Replies) -> list[list[int]]:
    """How many API messages answer each step of each script, learnt from one user per script."""

    async def one(script: list[Step]) -> list[int]:
        user = channel.new_user()
        counts = []
        for step in script:
            path, body, headers = channel.request(user, step)
            before = replies.count[user]
            status = await _post(http, server.url + path, body, headers)
            if status != 200:
                raise SystemExit(f"{server.name}: webhook answered {status} while calibrating")
            try:
                counts.append(await replies.settled(user, before, REPLY_TIMEOUT))
            except TimeoutError:
                raise SystemExit(f"{server.name}: no reply to {step} in {REPLY_TIMEOUT:.0f} s while calibrating") from None
        return counts

    return list(await asyncio.gather(*(one(script) for script in SCRIPTS)))


async def load(
    channel: Channel, http: aiohttp.ClientSession, replies: Replies, server: Server, fake: Any,
    expected: list[list[int]], users: int, concurrency: int, max_seconds: float,
) -> Run:  # fmt: skip
    """`users` users, `concurrency` of them at a time, each through its script."""
    run = Run(server.name, channel.name, concurrency)
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
            for step, count in zip(script, counts, strict=True):
                path, body, headers = channel.request(user, step)
                sent = time.perf_counter()
                status = await _post(http, server.url + path, body, headers)
                run.acks.append(time.perf_counter() - sent)
                run.messages += 1
                if status != 200:
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

    reads0 = getattr(fake, "reads", 0)
    cpu0, own0, all0 = server.cpu_seconds(), time.process_time(), _machine_cpu_seconds()
    sampler = asyncio.create_task(sample_rss())
    await asyncio.gather(*(talker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - started
    await asyncio.sleep(0.05)  # receipts of the last messages may follow their replies
    run.server_cpu, run.own_cpu = server.cpu_seconds() - cpu0, time.process_time() - own0
    run.others_cpu = max(0.0, _machine_cpu_seconds() - all0 - run.server_cpu - run.own_cpu)
    run.reads = getattr(fake, "reads", 0) - reads0
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


def show(run: Run) -> None:
    print(
        f"{run.server:<9} {run.channel:<8} c={run.concurrency:<3} {run.messages:>6} msgs in {run.elapsed:5.1f} s "
        f"{run.rate:6.0f} msgs/s  reply p50 {percentile(run.latencies, 0.5) * 1000:6.1f} ms  "
        f"p99 {percentile(run.latencies, 0.99) * 1000:6.1f} ms  ack p50 {percentile(run.acks, 0.5) * 1000:5.1f} ms  "
        f"p99 {percentile(run.acks, 0.99) * 1000:5.1f} ms  server CPU {run.server_cpu / run.elapsed:4.0%} "
        f"({run.cpu_ms:.2f} ms/msg)  bench {run.own_cpu / run.elapsed:4.0%}  others {run.others_cpu / run.elapsed:4.0%}  "
        f"receipts/msg {run.reads / max(run.messages, 1):.2f}  RSS peak {run.rss_peak_kb / 1024:4.0f} MB  "
        f"missing {run.missing}  refused {run.refused}",
        flush=True,
    )


def compare(runs: list[Run]) -> None:
    """Project against reference at each level: how many times the CPU, what share of the rate."""
    by = {(r.server, r.channel, r.concurrency): r for r in runs}
    for (server, channel, level), project in sorted(by.items()):
        reference = by.get(("reference", channel, level))
        if server != "project" or reference is None:
            continue
        print(
            f"ratio project/reference  {channel} c={level:<3}  CPU per message {project.cpu_ms:.2f} / {reference.cpu_ms:.2f} ms "
            f"= {project.cpu_ms / reference.cpu_ms:.2f}x   msgs/s {project.rate:.0f} / {reference.rate:.0f} "
            f"= {project.rate / max(reference.rate, 1e-9):.2f}   reply p99 {percentile(project.latencies, 0.99) * 1000:.1f} / "
            f"{percentile(reference.latencies, 0.99) * 1000:.1f} ms"
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


@dataclass
class Options:
    content: Path
    users: int
    levels: list[int]
    max_seconds: float
    project: Path
    reference: bool
    pin: bool
    strict: bool
    profile: Path | None
    workers: int = 1
    db: str | None = None  # a PostgreSQL URL; each run gets a schema of its own


async def bench(channel: Channel, options: Options) -> tuple[bool, list[Run]]:
    """The servers for this channel, every concurrency level in turn; False when something was lost."""
    replies = Replies()
    runs: list[Run] = []
    ok = True
    async with contextlib.AsyncExitStack() as databases:
        with contextlib.ExitStack() as stack:
            folders = {name: Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"pregunta-e2e-{name}-"))) for name in ("project", "reference")}
            schema = await databases.enter_async_context(_postgres_schema(options.db)) if options.db else None
            async with contextlib.AsyncExitStack() as servers:
                if channel.name == "whatsapp":
                    fake: Any = StrictGraph(replies) if options.strict else LeanGraph(replies)
                    fake_url = await servers.enter_async_context(running(fake.app) if options.strict else serving_aiohttp(fake.app))
                else:
                    fake = _BotAPI(replies)
                    fake_url = await servers.enter_async_context(running(fake.app))
                env = {**channel.env(fake_url), "PREGUNTA_CONTENT": str(options.content)}
                project_env = dict(env)
                if schema:
                    project_env["PREGUNTA_DB"] = schema
                command = [sys.executable, "-m", "bot", "serve"] + (["--workers", str(options.workers)] if options.workers > 1 else [])
                targets = [await servers.enter_async_context(
                    serving("project", command, project_env, folders["project"], options.project, options.pin)
                )]  # fmt: skip
                if options.reference and channel.name == "whatsapp":
                    command = [sys.executable, str(ROOT / "bench" / "reference_bot.py")]
                    targets.append(await servers.enter_async_context(serving("reference", command, env, folders["reference"], ROOT, options.pin)))
                connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
                async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT)) as http:
                    expected = {}
                    sent: defaultdict[str, int] = defaultdict(int)
                    for server in targets:
                        expected[server.name] = await calibrate(channel, http, server, replies)
                        sent[server.name] += sum(len(script) for script in SCRIPTS)
                        print(f"{server.name} {channel.name}: API messages per step, learnt per script: {expected[server.name]}; "
                              f"RSS after warm-up {server.status('VmRSS') / 1024:.0f} MB", flush=True)  # fmt: skip
                    project = targets[0]
                    spy_out = options.profile.with_name(f"{options.profile.stem}-{channel.name}{options.profile.suffix}") if options.profile else None
                    async with profiled(project.process.pid, spy_out):
                        for level in options.levels:
                            for server in targets:
                                run = await load(channel, http, replies, server, fake, expected[server.name], options.users, level, options.max_seconds)
                                sent[server.name] += run.messages
                                show(run)
                                runs.append(run)
                                ok = ok and run.missing == 0 and run.refused == 0
                    async with http.get(f"{project.admin_url}/healthz") as response:
                        health = await response.json()
                    hwm, rss = project.status("VmHWM"), project.status("VmRSS")
            for server in targets:
                code = server.process.returncode
                problems = [line for line in server.log if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]
                if problems:
                    print(f"{server.name} {channel.name}: {len(problems)} error line(s), the first: {problems[0].rstrip()}")
                ok = ok and code == 0 and not problems
                print(f"{server.name} {channel.name}: SIGTERM → exit code {code}")
            logged = await _events(project.db) if project.db else 0
    usage = health.get("usage_log") or {}
    print(f"project {channel.name}: RSS at the end {rss / 1024:.0f} MB, high-water mark (VmHWM) {hwm / 1024:.0f} MB; "
          f"usage log: {logged} events for {sent['project']} messages sent (dropped {usage.get('dropped')}, "
          f"failed {usage.get('failed')}); fake API refused {getattr(fake, 'refused', 0)} call(s)")  # fmt: skip
    return ok and logged == sent["project"], runs


async def _events(target: str) -> int:
    if target.startswith("postgresql://"):
        return await _postgres_events(target)
    db = sqlite3.connect(target)
    try:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        db.close()


async def _postgres_events(url: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT COUNT(*) FROM events"))
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _postgres_schema(url: str) -> AsyncIterator[str]:
    """The URL with a fresh schema as its search path (dropped afterwards): each run starts empty."""
    import secrets

    import asyncpg

    schema = f"bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(url)
    await connection.execute(f"CREATE SCHEMA {schema}")
    await connection.close()
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        connection = await asyncpg.connect(url)
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()


def _pin_self(pin: bool) -> bool:
    """Keep this process (load generator and fake API) off the servers' core; whether it could."""
    if not pin:
        return False
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None or not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(0, {BENCH_CORE})
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 200 users at concurrency 1, then 16, 8 s a level")
    parser.add_argument("--channel", choices=["whatsapp", "telegram", "both"], default="whatsapp")
    parser.add_argument("--users", type=int, help="users per level, at most (each sends 4 or 5 messages; default 3000)")
    parser.add_argument("--concurrency", default=None, help="users talking at once, comma-separated levels (default 1,64)")
    parser.add_argument("--max-seconds", type=float, default=None, help="no new user starts after this long (per level; default 20)")
    parser.add_argument("--content", type=Path, default=ROOT / "content", help="content folder the project loads")
    parser.add_argument("--project", type=Path, default=ROOT, metavar="DIR", help="the checkout to run as the project "
                        "(default this one), e.g. an older commit unpacked with `git archive` for before/after figures")  # fmt: skip
    parser.add_argument("--no-reference", action="store_true", help="run the project alone")
    parser.add_argument("--no-pin", action="store_true", help="let the servers and this process share every core")
    parser.add_argument("--strict-fake", action="store_true", help="the tests' fake Graph API, which checks every field "
                        "(costs this process more CPU)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="run the project as `serve --workers N` (default 1)")
    parser.add_argument("--db", help="a postgresql:// URL for the project's database (default: a SQLite file)")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", help="sample the project with py-spy during the load; "
                        "collapsed stacks go to FILE with the channel's name added")  # fmt: skip
    args = parser.parse_args()
    options = Options(
        content=args.content,
        users=args.users or (200 if args.quick else 3000),
        levels=[int(c) for c in (args.concurrency or ("1,16" if args.quick else "1,64")).split(",")],
        max_seconds=args.max_seconds or (8.0 if args.quick else 20.0),
        project=args.project.resolve(),
        reference=not args.no_reference,
        pin=False,
        strict=args.strict_fake,
        profile=args.py_spy,
        workers=args.workers,
        db=args.db,
    )
    options.pin = _pin_self(not args.no_pin)
    where = (f"servers pinned to core {SERVER_CORE}, load generator and fake API to core {BENCH_CORE}" if options.pin
             else "not pinned: servers and load generator share the cores")  # fmt: skip
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {where}; load average {os.getloadavg()[0]:.2f} at start; "
          f"project {options.project}; at most {options.users} users or {options.max_seconds:.0f} s per level, "
          f"{len(SCRIPTS)} scripts of 4-5 messages; fake Graph API {'strict' if options.strict else 'lean'}; "
          f"project: {options.workers} process(es), database {'PostgreSQL' if options.db else 'SQLite'}", flush=True)  # fmt: skip
    choices: dict[str, list[Channel]] = {"whatsapp": [WhatsApp()], "telegram": [Telegram()], "both": [WhatsApp(), Telegram()]}
    channels = choices[args.channel]
    results = []
    runs: list[Run] = []
    for channel in channels:
        ok, done = _run(bench(channel, options))
        results.append(ok)
        runs += done
    compare(runs)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if not all(results):
        raise SystemExit(1)


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    main()
