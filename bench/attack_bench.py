"""Issue 15's attack run, in figures: `pregunta serve` (WhatsApp webhook) against hostile clients.

Starts `python -m bot serve` in a temporary folder and a fake Graph API on loopback
(tests/fakes/graph_api.py), each a process of its own so that neither slows the load
generator's clock, then, one after the other:

1. burst: --burst signed webhooks from as many people, 64 connections each sending one
   after the other: how many were acknowledged with 200, how long each waited for its
   answer once sent (p50, p99, max), and how long until every person had their reply
   (the server's pregunta_messages_out_total);
2. idle: --idle connections that send nothing, with the process limited to --files open
   files: how many were refused at once (503), whether /healthz on the admin port still
   answered, and whether a webhook is served again once they are dropped;
3. memory: 300 clients each declaring a megabyte with a well-formed but wrong signature
   and sending all of it but the end: the server's RSS before, with them connected, and
   after they have gone;
4. log: 1,000 forged signatures: lines and bytes written to the log.

Prints figures; asserts nothing about speed. Exits 1 when a webhook of the burst was not
acknowledged with 200 or not answered, when /healthz did not answer under the idle
connections, or when the server did not exit 0 on SIGTERM.

Usage: python bench/attack_bench.py [--burst N] [--idle N] [--files N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.serving import free_port  # noqa: E402

PHONE_ID = "106540352242922"
TOKEN = "bench-token"
SECRET = "bench-app-secret"
WELL_FORMED = "sha256=" + "0" * 64
CONNECTIONS = 64  # webhooks in flight at once in the burst, as Meta's senders might


@dataclass
class Served:
    public: str
    admin: str
    process: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


@contextlib.asynccontextmanager
async def fake_graph() -> AsyncIterator[str]:
    """tests/fakes/graph_api.py in a process of its own; yields its base URL."""
    port = free_port()
    code = f"import uvicorn; from tests.fakes.graph_api import FakeGraph; uvicorn.run(FakeGraph({TOKEN!r}).app, port={port}, log_level='error')"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    await client.get(f"http://127.0.0.1:{port}/")
                    break
                if process.poll() is not None:
                    raise SystemExit("the fake Graph API did not start")
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v22.0"
    finally:
        process.terminate()
        process.wait()


async def sent_messages(served: Served) -> float:
    """pregunta_messages_out_total over every language, from the admin port."""
    async with httpx.AsyncClient(trust_env=False) as client:
        text = (await client.get(served.admin + "/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("pregunta_messages_out_total{"))


@contextlib.asynccontextmanager
async def serve(folder: Path, graph_url: str, *, files: int | None = None, **extra: str) -> AsyncIterator[Served]:
    port, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "TELEGRAM_", "PREGUNTA_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
        WHATSAPP_APP_SECRET=SECRET,
        WHATSAPP_API_BASE_URL=graph_url,
        PREGUNTA_PORT=str(port),
        PREGUNTA_ADMIN_PORT=str(admin),
        PREGUNTA_DB=str(folder / "pregunta.sqlite3"),
        PREGUNTA_CONTENT=str(ROOT / "tests" / "data" / "content"),
        PREGUNTA_PSEUDONYM_KEY="bench-pseudonym-key-" + "k" * 16,
        **extra,
    )

    def limit() -> None:
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    log = folder / f"serve-{port}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=limit)
    served = Served(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", process, log)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("pregunta serve did not start:\n" + log.read_text())
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(served.admin + "/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                raise SystemExit(f"pregunta serve exited with {code} on SIGTERM")


def webhook(user: str, number: int) -> tuple[bytes, dict[str, str]]:
    data: dict[str, Any] = json.loads((ROOT / "tests/data/whatsapp/text.json").read_text())
    message = data["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update({"from": user, "id": f"wamid.BENCH{number:08d}", "text": {"body": "hola"}})
    body = json.dumps(data).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "x-hub-signature-256": signature}


def head(**headers: str) -> bytes:
    lines = ["POST /webhooks/whatsapp HTTP/1.1", "Host: bench", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def burst(folder: Path, graph: str, count: int) -> bool:
    users = [f"50230{i:06d}" for i in range(count)]
    async with serve(folder, graph) as served:
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)  # aiohttp: httpx's own cost would be measured too
        async with aiohttp.ClientSession(served.public, connector=connector) as client:
            queue = list(enumerate(users))
            results: list[tuple[int, float]] = []

            async def sender() -> None:  # one connection: a webhook, its answer, the next one
                while queue:
                    number, user = queue.pop()
                    body, headers = webhook(user, number)
                    sent = time.perf_counter()
                    async with client.post("/webhooks/whatsapp", data=body, headers=headers) as response:
                        await response.read()
                    results.append((response.status, time.perf_counter() - sent))

            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
            acked = time.perf_counter() - started
            accepted = sum(status == 200 for status, _ in results)
            while (answered := int(await sent_messages(served))) < accepted and time.perf_counter() - started < 300:
                await asyncio.sleep(0.1)
            answered_at = time.perf_counter() - started
    latencies = [seconds for _, seconds in results]
    ok = sum(status == 200 for status, _ in results)
    print(
        f"burst: {ok} of {count} webhooks acknowledged with 200 in {acked:.1f} s "
        f"(ack p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms); {answered} replies sent, the last after {answered_at:.1f} s"
    )
    return ok == count and answered == count


async def idle(folder: Path, graph: str, count: int, files: int) -> bool:
    async with serve(folder, graph, files=files, PREGUNTA_CLIENT_TIMEOUT="3") as served:
        connections = []
        for _ in range(count):
            with contextlib.suppress(OSError):
                connections.append(await asyncio.open_connection(*served.public.removeprefix("http://").split(":")))
        async with httpx.AsyncClient(trust_env=False) as client:
            try:
                health = (await client.get(served.admin + "/healthz", timeout=10)).status_code
            except httpx.TransportError:
                health = 0
            answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 30) for r, _ in connections), return_exceptions=True)
            for _, writer in connections:
                writer.close()
            started = time.perf_counter()
            served_again = 0
            while time.perf_counter() - started < 30:
                with contextlib.suppress(httpx.TransportError):
                    served_again = (await client.get(served.public + "/webhooks/whatsapp")).status_code
                    if served_again != 503:
                        break
                await asyncio.sleep(0.1)
        refused = sum(isinstance(a, bytes) and a.startswith(b"HTTP/1.1 503") for a in answers)
        timed_out = sum(isinstance(a, bytes) and a.startswith(b"HTTP/1.1 408") for a in answers)
        lines = served.log.read_text(errors="replace").count("\n")
    print(
        f"idle: {len(connections)} idle connections at {files} open files: {refused} refused at once (503), "
        f"{timed_out} closed after the header timeout (408); /healthz {health}; "
        f"a webhook request afterwards: {served_again}; {lines} log lines in all"
    )
    return health == 200 and served_again not in (0, 503)


async def memory(folder: Path, graph: str) -> None:
    size = 1024 * 1024
    async with serve(folder, graph, PREGUNTA_CLIENT_TIMEOUT="60") as served:
        async with httpx.AsyncClient(trust_env=False) as client:
            body, headers = webhook("50230999999", 99999999)
            await client.post(served.public + "/webhooks/whatsapp", content=body, headers=headers)
        before = served.rss_mb()

        async def megabyte() -> asyncio.StreamWriter:
            _reader, writer = await asyncio.open_connection(*served.public.removeprefix("http://").split(":"))
            writer.write(head(content_type="application/json", content_length=str(size), x_hub_signature_256=WELL_FORMED))
            with contextlib.suppress(ConnectionError):
                for _ in range(size // 65536 - 1):
                    writer.write(b" " * 65536)
                    await writer.drain()
            return writer

        writers = await asyncio.gather(*(megabyte() for _ in range(300)))
        during = served.rss_mb()
        for writer in writers:
            writer.close()
        await asyncio.sleep(3)
        after = served.rss_mb()
    print(f"memory: RSS {before:.0f} MB before, {during:.0f} MB with 300 one-megabyte clients connected, {after:.0f} MB 3 s after they left")


async def log_flood(folder: Path, graph: str) -> None:
    async with serve(folder, graph) as served:
        before = served.log.stat().st_size
        async with httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=20)) as client:
            headers = {"content-type": "application/json", "x-hub-signature-256": "sha256=forged"}
            started = time.perf_counter()
            await asyncio.gather(*(client.post(served.public + "/webhooks/whatsapp", content=b"{}", headers=headers) for _ in range(1000)))
            seconds = time.perf_counter() - started
        written = served.log.stat().st_size - before
        lines = served.log.read_text(errors="replace").count("signature")
    print(f"log: 1,000 forged signatures in {seconds:.1f} s wrote {written:,} bytes, {lines} line(s) about signatures")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=1500, help="webhooks in the burst (default 1500)")
    parser.add_argument("--idle", type=int, default=1100, help="idle connections (default 1100)")
    parser.add_argument("--files", type=int, default=1024, help="open-file limit of the server for the idle run (default 1024)")
    options = parser.parse_args()
    async with fake_graph() as graph:
        with tempfile.TemporaryDirectory(prefix="attack-bench-") as tmp:
            folders = {name: Path(tmp) / name for name in ("burst", "idle", "memory", "log")}
            for folder in folders.values():
                folder.mkdir()
            ok = await burst(folders["burst"], graph, options.burst)
            ok = await idle(folders["idle"], graph, options.idle, options.files) and ok
            await memory(folders["memory"], graph)
            await log_flood(folders["log"], graph)
    return 0 if ok else 1


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    raise SystemExit(asyncio.run(main()))
