"""What hostile or broken clients get from the real server (issue 15): the project's uvicorn
setup on loopback, driven over raw sockets.

Clients that never finish their headers or their body, idle connections, connections past
the cap, oversized or undeclared bodies, absurdly nested JSON. The assertions are about
what happens (the client is disconnected, the status it got), never how fast: a socket
read waits up to `PATIENCE` seconds only so that a failure ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.server import Runtime
from bot.settings import Settings
from tests.conftest import FIXTURE_CONTENT
from tests.fakes.serving import free_port, serving

PATIENCE = 30.0  # seconds a read may wait before the test gives up (never reached when it passes)
SECRET = "app-secret-for-tests"
PHONE_ID = "106540352242922"
WELL_FORMED = "sha256=" + "0" * 64  # Meta's form, the wrong value


def whatsapp_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "pregunta_content": FIXTURE_CONTENT,
        "pregunta_db": tmp_path / "pregunta.sqlite3",
        "pregunta_pseudonym_key": "k" * 32,
        "whatsapp_token": "test-token",
        "whatsapp_phone_number_id": PHONE_ID,
        "whatsapp_app_secret": SECRET,
        "whatsapp_api_base_url": "http://127.0.0.1:9/v22.0",  # nothing is sent in these tests
        "pregunta_client_timeout": 0.5,
        "pregunta_keep_alive": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def whatsapp(tmp_path: Path, *, max_connections: int | None = None, **overrides: Any) -> AsyncIterator[tuple[str, str]]:
    async with serving(Runtime.build(whatsapp_settings(tmp_path, **overrides)), max_connections=max_connections) as urls:
        yield urls


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address(url))


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), PATIENCE)


def head(path: str = "/webhooks/whatsapp", **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: bot.example.org", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


# -- slow and idle clients --------------------------------------------------------------


async def test_a_client_that_sends_nothing_is_disconnected(tmp_path: Path) -> None:
    async with whatsapp(tmp_path) as (public, _):
        reader, writer = await connect(public)
        answer = await until_closed(reader)
        writer.close()
    assert status(answer) == 408


async def test_headers_sent_a_byte_at_a_time_are_cut_off(tmp_path: Path) -> None:
    async with whatsapp(tmp_path) as (public, _):
        reader, writer = await connect(public)
        writer.write(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Slow: ")

        async def drip() -> None:  # a byte well within any idle timeout, for ever
            with contextlib.suppress(ConnectionError):
                while not writer.is_closing():
                    writer.write(b"a")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        dripping = asyncio.create_task(drip())
        answer = await until_closed(reader)
        dripping.cancel()
        writer.close()
    assert status(answer) == 408


async def test_a_body_that_never_finishes_is_cut_off(tmp_path: Path) -> None:
    async with whatsapp(tmp_path) as (public, _):
        reader, writer = await connect(public)
        writer.write(head(content_type="application/json", content_length="1000", x_hub_signature_256=WELL_FORMED) + b'{"entry": [')
        answer = await until_closed(reader)
        writer.close()
    assert status(answer) == 408


async def test_a_kept_alive_connection_that_drips_blank_lines_is_closed(tmp_path: Path) -> None:
    async with whatsapp(tmp_path) as (public, _):
        reader, writer = await connect(public)
        writer.write(b"GET /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n\r\n")  # verification without a token: 403, kept alive
        first = await asyncio.wait_for(reader.readuntil(b"forbidden"), PATIENCE)

        async def drip() -> None:  # each byte would reset an idle timer
            with contextlib.suppress(ConnectionError):
                while not writer.is_closing():
                    writer.write(b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        dripping = asyncio.create_task(drip())
        rest = await until_closed(reader)
        dripping.cancel()
        writer.close()
    assert status(first) == 403
    assert rest == b"" or status(rest) == 408


async def test_headers_past_16_kb_are_refused(tmp_path: Path) -> None:
    async with whatsapp(tmp_path, pregunta_client_timeout=30.0) as (public, _):
        reader, writer = await connect(public)
        writer.write(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        answer = await until_closed(reader)
        writer.close()
    assert status(answer) == 431


async def test_connections_past_the_cap_are_refused_and_the_admin_port_still_answers(tmp_path: Path) -> None:
    async with whatsapp(tmp_path, max_connections=5, pregunta_client_timeout=60.0) as (public, admin):
        idle = [await connect(public) for _ in range(5)]
        reader, writer = await connect(public)
        refused = await until_closed(reader)
        writer.close()
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(admin + "/healthz")).status_code == 200
            for _, idle_writer in idle:
                idle_writer.close()
            while True:  # the server notices the closed connections, then takes new ones
                answer = await client.get(public + "/webhooks/whatsapp")
                if answer.status_code != 503:
                    break
                await asyncio.sleep(0.05)
    assert status(refused) == 503 and b"retry-after" in refused.lower()
    assert answer.status_code == 403  # a verification without the token: served


# -- refused before the body is read --------------------------------------------------------


REFUSED_UNREAD = [  # (headers, status): nothing of the body is sent, the answer comes anyway
    ({"content_type": "application/json", "content_length": "1000000", "x_hub_signature_256": "sha256=abc"}, 403),
    ({"content_type": "application/json", "content_length": "1000000", "x_hub_signature_256": "x" * 71}, 403),
    ({"content_type": "application/json", "content_length": "1000000"}, 403),
    ({"content_type": "application/json", "content_length": "20000000", "x_hub_signature_256": WELL_FORMED}, 413),
    ({"content_type": "application/json", "transfer_encoding": "chunked", "x_hub_signature_256": WELL_FORMED}, 411),
    ({"content_type": "text/plain", "content_length": "100", "x_hub_signature_256": WELL_FORMED}, 415),
]


@pytest.mark.parametrize(("headers", "expected"), REFUSED_UNREAD, ids=["short-sig", "not-hex", "no-sig", "20mb", "chunked", "type"])
async def test_whatsapp_refuses_before_reading_the_body(tmp_path: Path, headers: dict[str, str], expected: int) -> None:
    async with whatsapp(tmp_path, pregunta_client_timeout=30.0) as (public, _):
        reader, writer = await connect(public)
        writer.write(head(**headers))
        answer = await until_closed(reader)  # answered and closed with the body never sent
        writer.close()
    assert status(answer) == expected


async def test_a_spent_body_budget_refuses_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.channels import base

    monkeypatch.setattr(base, "BODY_BUDGET", base.BodyBudget(base.MAX_BODY))
    async with whatsapp(tmp_path, pregunta_client_timeout=30.0) as (public, _):
        _holder_reader, holder = await connect(public)  # declares a megabyte and sends ten bytes
        holder.write(head(content_type="application/json", content_length=str(base.MAX_BODY), x_hub_signature_256=WELL_FORMED) + b"x" * 10)
        await holder.drain()
        while base.BODY_BUDGET.used == 0:
            await asyncio.sleep(0.01)
        reader, writer = await connect(public)
        writer.write(head(content_type="application/json", content_length="5000", x_hub_signature_256=WELL_FORMED))
        answer = await until_closed(reader)
        writer.close()
        holder.close()
    assert status(answer) == 503 and b"retry-after" in answer.lower()


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_deeply_nested_signed_json_is_a_400(tmp_path: Path, depth: int) -> None:
    body = b'{"entry": ' + b"[" * depth + b"]" * depth + b"}"
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    async with whatsapp(tmp_path, pregunta_client_timeout=30.0) as (public, _), httpx.AsyncClient(trust_env=False) as client:
        headers = {"content-type": "application/json", "x-hub-signature-256": signature}
        response = await client.post(public + "/webhooks/whatsapp", content=body, headers=headers)
        ok = await client.post(public + "/webhooks/whatsapp", content=b"{}", headers={**headers, "x-hub-signature-256": _sign(b"{}")})
    assert response.status_code == 400
    assert ok.status_code == 200  # still serving


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def test_metrics_and_health_are_not_on_the_webhook_port(tmp_path: Path) -> None:
    async with whatsapp(tmp_path) as (public, admin), httpx.AsyncClient(trust_env=False) as client:
        assert [(await client.get(public + p)).status_code for p in ("/healthz", "/metrics")] == [404, 404]
        assert [(await client.get(admin + p)).status_code for p in ("/healthz", "/metrics")] == [200, 200]
        assert (await client.post(admin + "/webhooks/whatsapp", content=b"{}")).status_code == 404  # nor webhooks on the admin one


# -- `pregunta serve` as a process: descriptors, memory, log ------------------------------------


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
        raise AssertionError("no VmRSS")

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@contextlib.asynccontextmanager
async def pregunta_serve(tmp_path: Path, *, open_files: int | None = None, **extra: str) -> AsyncIterator[Served]:
    """`pregunta serve` with a WhatsApp channel (nothing is sent), its log in a file."""
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "TELEGRAM_", "PREGUNTA_"))}
    env.update(
        WHATSAPP_TOKEN="test-token",
        WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
        WHATSAPP_APP_SECRET=SECRET,
        WHATSAPP_API_BASE_URL="http://127.0.0.1:9/v22.0",
        PREGUNTA_PORT=str(port),
        PREGUNTA_ADMIN_PORT=str(admin_port),
        PREGUNTA_DB=str(tmp_path / "data" / "pregunta.sqlite3"),
        PREGUNTA_CONTENT=str(FIXTURE_CONTENT),
        PREGUNTA_PSEUDONYM_KEY="k" * 32,
        **extra,
    )

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=limit,
        )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", process, log)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "pregunta serve did not start:\n" + log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(served.admin + "/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_idle_connections_at_the_descriptor_limit_do_not_take_the_service_down(tmp_path: Path) -> None:
    """Issue 15: 1,100 idle connections at a 1,024-descriptor limit. Here 320 descriptors
    and 400 connections: past the cap they are refused at once, the admin port answers
    throughout, and once the idle ones are dropped the webhooks are served again."""
    async with pregunta_serve(tmp_path, open_files=320, PREGUNTA_CLIENT_TIMEOUT="2") as served:
        connections = [await connect(served.public) for _ in range(400)]
        async with httpx.AsyncClient(trust_env=False) as client:
            health = await client.get(served.admin + "/healthz")
            answers = await asyncio.gather(*(asyncio.wait_for(r.read(), PATIENCE) for r, _ in connections))
            for _, writer in connections:
                writer.close()
            while True:  # served again once the idle clients are gone
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(served.public + "/webhooks/whatsapp")
                    if response.status_code != 503:
                        break
                await asyncio.sleep(0.05)
        assert served.process.poll() is None
    assert health.status_code == 200
    assert response.status_code == 403  # a verification without the token: answered
    assert {status(a) for a in answers} <= {408, 503} and any(status(a) == 503 for a in answers)
    assert sum("connection refused" in line for line in served.lines()) <= 5  # hundreds refused, a line or two


async def test_memory_comes_back_after_clients_sending_a_megabyte_each_go(tmp_path: Path) -> None:
    """Issue 15: 300 connections each sending a megabyte left ~300 MB behind. A shared
    budget bounds what is read at once, and what was read is returned when they go."""
    size = 1024 * 1024
    async with pregunta_serve(tmp_path, PREGUNTA_CLIENT_TIMEOUT="60") as served:
        async with httpx.AsyncClient(trust_env=False) as client:  # warm up: every module of the path loaded
            await client.post(served.public + "/webhooks/whatsapp", content=b"{}", headers={"content-type": "application/json", "x-hub-signature-256": _sign(b"{}")})
        before = served.rss_mb()

        async def megabyte() -> asyncio.StreamWriter:
            _reader, writer = await connect(served.public)
            writer.write(head(content_type="application/json", content_length=str(size), x_hub_signature_256=WELL_FORMED))
            with contextlib.suppress(ConnectionError):
                for _ in range(size // 65536 - 1):  # all but the last 64 KB: the request never completes
                    writer.write(b" " * 65536)
                    await writer.drain()
            return writer

        writers = await asyncio.gather(*(megabyte() for _ in range(300)))
        during = served.rss_mb()
        for writer in writers:
            writer.close()
        deadline = time.monotonic() + 30
        while served.rss_mb() > before + 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        after = served.rss_mb()
    assert during < before + 100, (before, during)
    assert after < before + 40, (before, during, after)


async def test_a_flood_of_refused_requests_writes_a_few_lines_not_one_each(tmp_path: Path) -> None:
    async with pregunta_serve(tmp_path) as served, httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=20), timeout=httpx.Timeout(30.0, pool=None)) as client:
        headers = {"content-type": "application/json", "x-hub-signature-256": "sha256=forged"}
        started = time.monotonic()
        answers = await asyncio.gather(*(client.post(served.public + "/webhooks/whatsapp", content=b"{}", headers=headers) for _ in range(1000)))
        intervals = 1 + int((time.monotonic() - started) // 10)  # one line per 10 s window, on a slow machine several
        assert {a.status_code for a in answers} == {403}
    lines = [line for line in served.lines() if "signature" in line]
    assert 1 <= len(lines) <= 2 * intervals + 3, lines
    assert any("not logged" in line for line in lines)  # and how many were left out


def test_without_httptools_uvicorn_runs_h11(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no httptools: the server still starts (and `pregunta chat` still imports)."""
    from bot.http_guard import guarded_protocol
    from bot.server import uvicorn_config

    monkeypatch.setitem(sys.modules, "uvicorn.protocols.http.httptools_impl", None)  # an import of it now fails
    assert guarded_protocol({}) is None
    config = uvicorn_config(lambda *a: None, whatsapp_settings(tmp_path), public_port=1, admin_port=2, max_connections=5)  # type: ignore[arg-type]
    assert config.http == "h11" and config.h11_max_incomplete_event_size == 16 * 1024
