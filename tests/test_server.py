"""The running server: /healthz, /metrics, and content reloads that never take it down."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.server import Runtime
from bot.settings import Settings
from tests.conftest import ROOT
from tests.fakes.serving import free_port, serving


def _settings(content: Path, tmp_path: Path) -> Settings:
    return Settings(
        pregunta_content=content,
        pregunta_db=tmp_path / "data" / "pregunta.sqlite3",
        pregunta_pseudonym_key="k" * 32,
        _env_file=None,  # type: ignore[call-arg]
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
