"""The running server: /healthz (ok, or degraded and why), /metrics, and content reloads that never take it down."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.channels.base import RetryPolicy
from bot.metrics import Metrics, SendWatch
from bot.server import Runtime
from bot.settings import Settings
from tests.conftest import ROOT
from tests.fakes.graph_api import FakeGraph
from tests.fakes.serving import free_port, running, serving


def _settings(content: Path, tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        pregunta_content=content,
        pregunta_db=tmp_path / "data" / "pregunta.sqlite3",
        pregunta_pseudonym_key="k" * 32,
        _env_file=None,  # type: ignore[call-arg]
        **overrides,  # type: ignore[arg-type]
    )


async def _version(client: httpx.AsyncClient, base: str) -> str:
    body = (await client.get(base + "/healthz")).json()
    return str(body["content_version"])


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_healthz_and_metrics_on_the_admin_port_only(content_copy: Path, tmp_path: Path) -> None:
    runtime = Runtime.build(_settings(content_copy, tmp_path))
    async with serving(runtime) as (public, admin), httpx.AsyncClient(trust_env=False) as client:
        health = (await client.get(admin + "/healthz")).json()
        assert len(health["content_version"]) == 12 and health["database"] == "ok"
        metrics = (await client.get(admin + "/metrics")).text
        assert "pregunta_messages_in_total" in metrics and "pregunta_reply_latency_seconds" in metrics
        for path in ("/healthz", "/metrics"):  # the webhook port faces the internet
            assert (await client.get(public + path)).status_code == 404


async def test_edit_reloads_and_broken_edit_keeps_last_good(content_copy: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime.build(_settings(content_copy, tmp_path))
    topic = content_copy / "es/topics/asilo-como-solicitar.yaml"
    async with serving(runtime) as (_, base), httpx.AsyncClient(trust_env=False) as client:
        first = await _version(client, base)
        topic.write_text(topic.read_text().replace("Respuesta de prueba sobre el asilo.", "Asilo: respuesta nueva."))

        async def changed() -> bool:
            return await _version(client, base) != first

        await _until(changed)
        topic_now, _ = runtime.conversations.matcher.content.answer("es", "asilo-como-solicitar")
        assert topic_now.answer == "Asilo: respuesta nueva."

        second = await _version(client, base)
        topic.write_text(topic.read_text().replace("title: Pedir asilo", "title: " + "z" * 40))
        assert await runtime.reload() is False
        assert await _version(client, base) == second  # the last good content still serves
        assert runtime.reload_failures >= 1
        assert any("asilo-como-solicitar.yaml:2 title" in r.getMessage() for r in caplog.records)


def test_sighup_reloads_a_running_server(content_copy: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PREGUNTA_CONTENT": str(content_copy),
        "PREGUNTA_DB": str(tmp_path / "data" / "pregunta.sqlite3"),
        "PREGUNTA_PORT": str(free_port()),
        "PREGUNTA_ADMIN_PORT": str(port),
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("WHATSAPP_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 20
        first = None
        while first is None:
            try:
                first = httpx.get(url, trust_env=False).json()["content_version"]
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        topic = content_copy / "es/topics/pasaporte-vigencia.yaml"
        topic.write_text(topic.read_text().replace("Respuesta de prueba", "Nueva respuesta de prueba"))
        proc.send_signal(signal.SIGHUP)
        while httpx.get(url, trust_env=False).json()["content_version"] == first:
            assert time.monotonic() < deadline, "content not reloaded"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "content reloaded" in err


# -- /healthz: ok, or degraded with its reasons ----------------------------------------------


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph("test-token")
    async with running(fake.app) as url:
        fake.base_url = f"{url}/v22.0"
        yield fake


def _whatsapp(content: Path, tmp_path: Path, graph_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "whatsapp_token": "test-token",
        "whatsapp_phone_number_id": "106540352242922",
        "whatsapp_app_secret": "app-secret",
        "whatsapp_api_base_url": graph_url,
        **overrides,
    }
    return _settings(content, tmp_path, **values)


async def _health(admin: str) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(admin + "/healthz")
    return response.status_code, response.json()


async def test_healthz_without_a_channel_is_degraded_but_200(content_copy: Path, tmp_path: Path) -> None:
    async with serving(Runtime.build(_settings(content_copy, tmp_path))) as (_, admin):
        code, body = await _health(admin)
    assert code == 200
    assert body["status"] == "degraded" and body["reasons"] == ["no channel configured"]


async def test_healthz_whatsapp_without_its_app_secret(content_copy: Path, tmp_path: Path, graph: FakeGraph) -> None:
    settings = _whatsapp(content_copy, tmp_path, graph.base_url, whatsapp_app_secret=None)
    async with serving(Runtime.build(settings)) as (_, admin):
        code, body = await _health(admin)
    assert code == 200 and body["status"] == "degraded"
    assert body["reasons"] == ["whatsapp: WHATSAPP_APP_SECRET is not set, every webhook is refused"]


async def test_healthz_while_every_send_fails_and_after(content_copy: Path, tmp_path: Path, graph: FakeGraph) -> None:
    runtime = Runtime.build(_whatsapp(content_copy, tmp_path, graph.base_url))
    channel = runtime.channels[0]
    channel.graph.retry = RetryPolicy(attempts=2, base=0.001, cap=0.01)  # type: ignore[attr-defined]
    async with serving(runtime) as (public, admin), httpx.AsyncClient(base_url=public, trust_env=False) as client:
        assert (await _health(admin))[1]["status"] == "ok"

        async def say(user: str) -> None:
            body = json.dumps(_text(user, "hola")).encode()
            headers = {"content-type": "application/json", "x-hub-signature-256": _sign(body)}
            assert (await client.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200

        graph.down()
        for user in ("50255500001", "50255500002", "50255500003"):
            await say(user)
        await asyncio.wait_for(channel.tasks.settle(), 10)  # type: ignore[attr-defined]
        code, down = await _health(admin)
        graph.up()
        for user in ("50255500004", "50255500005", "50255500006", "50255500007"):
            await say(user)
        await graph.wait_for(lambda g: len(g.sent) >= 4)
        _, back = await _health(admin)
    assert code == 200 and down["status"] == "degraded"
    assert down["reasons"] == ["whatsapp: 3 replies given up and 0 messages sent in the last 1 min"]
    assert back["status"] == "ok" and back["reasons"] == []


async def test_healthz_after_a_refused_reload_and_after_the_fix(content_copy: Path, tmp_path: Path) -> None:
    settings = _whatsapp(content_copy, tmp_path, "http://127.0.0.1:9/v22.0")
    runtime = Runtime.build(settings)
    topic = content_copy / "es/topics/asilo-como-solicitar.yaml"
    good = topic.read_text()
    async with serving(runtime) as (_, admin):
        version = (await _health(admin))[1]["content_version"]
        topic.write_text(good.replace("title: Pedir asilo", "title: " + "z" * 40))
        assert await runtime.reload() is False
        code, broken = await _health(admin)
        topic.write_text(good)
        assert await runtime.reload() is True
        _, fixed = await _health(admin)
    assert code == 200 and broken["status"] == "degraded"
    assert broken["reasons"] == [f"content: the last reload failed, still serving version {version} (see the log)"]
    assert fixed["status"] == "ok"


def test_send_watch_judges_the_last_minutes_only() -> None:
    now = [0.0]
    metrics = Metrics()
    watch = SendWatch(metrics, window=300.0, every=5.0, at_least=3, clock=lambda: now[0])
    watch.observe()
    metrics.send_failures.labels("telegram").inc(5)
    metrics.messages_out.labels("whatsapp", "es").inc(10)
    metrics.send_failures.labels("whatsapp").inc(2)
    assert set(watch.failing()) == {"telegram"}  # 5 given up, none sent; WhatsApp mostly fine
    now[0] = 200.0
    watch.observe()
    now[0] = 600.0  # the failures are now older than the window
    metrics.messages_out.labels("telegram", "es").inc(1)
    assert watch.failing() == {}


def _text(user: str, words: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((ROOT / "tests/data/whatsapp/text.json").read_text())
    message = data["entry"][0]["changes"][0]["value"]["messages"][0]  # type: ignore[index]
    message.update({"from": user, "id": f"wamid.H{user}", "text": {"body": words}})
    return data


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
