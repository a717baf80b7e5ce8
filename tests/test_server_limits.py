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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.server import Runtime
from bot.settings import Settings
from tests.conftest import FIXTURE_CONTENT
from tests.fakes.serving import serving

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
        holder_reader, holder = await connect(public)  # declares a megabyte and sends ten bytes
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
