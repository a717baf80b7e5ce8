"""Nothing accepted is lost, several processes serve one campaign, the database never stalls a reply.

Real `pregunta serve` processes on loopback against the fake Graph API (with slow
replies where it matters), real SQLite files, and PostgreSQL where a test takes
`db_target` (skipped with the reason when no server answers; .ci/run starts one).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.server import Runtime, create_app
from tests.channels.test_whatsapp import (
    PHONE_ID,
    SECRET,
    TOKEN,
    VERIFY,
    body_of,
    choose,
    make_settings,
    settled,
    sign,
    text,
)
from tests.conftest import FIXTURE_CONTENT, ROOT
from tests.fakes.graph_api import FakeGraph
from tests.fakes.serving import free_port, running

# The checkout whose `pregunta serve` the process tests run: this one, or another one to show
# that the tests fail on the code before the inbox (`git archive 1a48f81 | tar -x -C DIR`).
PROJECT = Path(os.environ.get("PREGUNTA_TEST_PROJECT", ROOT))

# Each step's reply says which step it answers, so order shows in what the fake received.
SCRIPT: list[tuple[str, str, str]] = [  # (kind, value, words of the reply)
    ("text", "hola", "No soy una persona"),
    ("choose", "lang:es", "Listo"),
    ("choose", "topic:pasaporte-requisitos", "Respuesta de prueba sobre el pasaporte."),
    ("choose", "topic:asilo-como-solicitar", "asilo"),
    ("choose", "topic:pasaporte-vigencia", "vencido"),
]


LONG = [0, 1, 2, 3, 4, 2, 3, 4, 2, 3, 4]  # a longer conversation: the topics asked again


def step(user: str, n: int) -> dict[str, Any]:
    kind, value, _ = SCRIPT[n]
    return text(value, user) if kind == "text" else choose(value, user)


def which(message: dict[str, Any]) -> int:
    """The script step a reply answers (by its words)."""
    body = body_of(message)
    for n in range(len(SCRIPT) - 1, -1, -1):
        if SCRIPT[n][2].lower() in body.lower():
            return n
    raise AssertionError(f"a reply of no step: {body[:80]!r}")


def signed(data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(data).encode()
    return body, {"content-type": "application/json", "x-hub-signature-256": sign(body)}


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph(TOKEN)
    async with running(fake.app) as url:
        fake.base_url = f"{url}/v22.0"
        yield fake


# -- real processes ---------------------------------------------------------------------------


@dataclass
class Serve:
    """One `pregunta serve` process (or a supervisor of several) and its log file."""

    process: asyncio.subprocess.Process
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        """/healthz and /metrics: the admin port."""
        return f"http://127.0.0.1:{self.env['PREGUNTA_ADMIN_PORT']}"

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def serve_env(graph: FakeGraph, db: Path | str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "TELEGRAM_", "PREGUNTA_"))}
    env.update(
        WHATSAPP_TOKEN=TOKEN, WHATSAPP_PHONE_NUMBER_ID=PHONE_ID, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_VERIFY_TOKEN=VERIFY,
        WHATSAPP_API_BASE_URL=graph.base_url, PREGUNTA_PORT=str(port), PREGUNTA_DB=str(db),
        PREGUNTA_ADMIN_PORT=str(free_port()),
        PREGUNTA_CONTENT=str(FIXTURE_CONTENT), PREGUNTA_PSEUDONYM_KEY="k" * 32, PREGUNTA_LOG_LEVEL="INFO",
        PREGUNTA_INBOX_LEASE="2", **extra,
    )  # fmt: skip
    return env


def with_admin(runtime: Runtime) -> Starlette:
    """The webhooks and /healthz, /metrics on one app, for a test on one loopback port."""
    app = create_app(runtime)
    app.router.routes.extend(runtime.admin_routes())
    return app


async def start(env: dict[str, str], folder: Path, name: str, *args: str) -> Serve:
    log = folder / f"{name}.log"
    handle = log.open("ab")
    env = {**env, "PYTHONPATH": str(PROJECT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", *args, cwd=PROJECT, env=env, stdout=handle, stderr=handle,
    )  # fmt: skip
    handle.close()
    server = Serve(process, int(env["PREGUNTA_PORT"]), log, env)
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(1200):  # a loaded machine trains the model slowly: up to a minute
            if process.returncode is not None:
                pytest.fail(f"pregunta serve exited with {process.returncode}:\n{server.text()}")
            try:
                if (await http.get(server.admin + "/healthz")).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail("pregunta serve did not become healthy:\n" + server.text())



async def stop(server: Serve, sig: int = signal.SIGTERM) -> int:
    if server.process.returncode is None:
        server.process.send_signal(sig)
    return await asyncio.wait_for(server.process.wait(), 40)



async def talk(base: list[str], users: list[str], *, steps: list[int] | None = None, acked: list[int] | None = None) -> None:
    """Every user goes through SCRIPT (or `steps` of it), one message at a time; a message not
    acknowledged with 200 is sent again (as Meta re-delivers) until a server takes it."""
    count = acked if acked is not None else [0]
    order = steps if steps is not None else list(range(len(SCRIPT)))

    async def one(user: str) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: any process may get it
        async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=10) as http:
            for n in order:
                body, headers = signed(step(user, n))
                while True:
                    try:
                        response = await http.post(base[0] + "/webhooks/whatsapp", content=body, headers=headers)
                        if response.status_code == 200:
                            count[0] += 1
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)

    await asyncio.gather(*(one(user) for user in users))


def answered_in_order(graph: FakeGraph, users: list[str]) -> dict[str, list[int]]:
    return {user: [which(m) for m in graph.sent_to(user)] for user in users}


async def interrupted(graph: FakeGraph, tmp_path: Path, sig: int) -> tuple[dict[str, list[int]], str]:
    """30 people talking while Graph takes 0.8 s per call; `sig` arrives once 240 of their 330
    messages were acknowledged (more replies owed than the 5 s a stop gives the replies under
    way); a new process takes over."""
    graph.delay = 0.8
    users = [f"5025577{i:04d}" for i in range(30)]
    port = free_port()
    env = serve_env(graph, tmp_path / "data" / "pregunta.sqlite3", port)
    first = await start(env, tmp_path, "first")
    acked = [0]
    base = [first.url]
    traffic = asyncio.create_task(talk(base, users, steps=LONG, acked=acked))
    while acked[0] < 240:
        await asyncio.sleep(0.01)
    code = await stop(first, sig)
    assert len(graph.sent) < len(users) * len(LONG)  # stopped mid-traffic: replies were still owed
    second = await start(env, tmp_path, "second")
    try:
        await asyncio.wait_for(traffic, 120)
        await graph.wait_for(lambda g: all(len(g.sent_to(u)) >= len(LONG) for u in users), timeout=90)
        await asyncio.sleep(0.5)  # a duplicate would come now
    finally:
        assert await stop(second) == 0, second.text()
    return answered_in_order(graph, users), f"first exited {code}\n" + first.text() + second.text()


async def test_sigterm_mid_traffic_then_a_restart_answers_every_acked_message_once_in_order(graph: FakeGraph, tmp_path: Path) -> None:
    replies, log = await interrupted(graph, tmp_path, signal.SIGTERM)
    assert all(order == LONG for order in replies.values()), (replies, log)
    assert "Traceback" not in log and "first exited 0" in log


async def test_kill_9_mid_traffic_then_a_restart_answers_every_acked_message_in_order(graph: FakeGraph, tmp_path: Path) -> None:
    """A crash: the crashed process's claims expire (lease 2 s) and are answered by the next one.

    A reply the fake had accepted just before the kill, and whose done mark the dead process
    never wrote, is sent again (at least once): at most one such repeat per person, next to
    the original. The fake serves no call whose sender died while it waited.
    """
    replies, _log = await interrupted(graph, tmp_path, signal.SIGKILL)
    repeats = 0
    for user, order in replies.items():
        collapsed = [n for i, n in enumerate(order) if i == 0 or order[i - 1] != n]
        repeats += len(order) - len(collapsed)
        assert collapsed == LONG, (user, order)
    assert repeats <= 3, replies


# -- health probes never take part in the real work ---------------------------------------


async def test_health_probes_during_traffic_lose_nothing(graph: FakeGraph, tmp_path: Path) -> None:
    """/healthz used to take the write lock on the connection states and dedup shared: under
    probes, states and dedup rows were lost and probes got a false 503."""
    runtime = Runtime.build(make_settings(graph.base_url, tmp_path))
    users = [f"5025566{i:04d}" for i in range(20)]
    async with running(with_admin(runtime)) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
        statuses: list[int] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                statuses.append((await http.get("/healthz")).status_code)

        probes = [asyncio.create_task(probe()) for _ in range(4)]
        await talk([url], users)
        await graph.wait_for(lambda g: all(len(g.sent_to(u)) >= len(SCRIPT) for u in users), timeout=30)
        await asyncio.wait_for(settled(runtime), 10)
        done.set()
        await asyncio.gather(*probes)
        assert runtime.storage is not None
        states = await runtime.storage.fetch("SELECT COUNT(*) FROM user_state")
    assert statuses and set(statuses) == {200}, statuses.count(503)
    assert answered_in_order(graph, users) == {u: list(range(len(SCRIPT))) for u in users}
    assert states == [(len(users),)]


async def test_a_redelivered_message_is_recognised_under_probes(graph: FakeGraph, tmp_path: Path) -> None:
    runtime = Runtime.build(make_settings(graph.base_url, tmp_path))
    async with running(with_admin(runtime)) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                assert (await http.get("/healthz")).status_code == 200

        prober = asyncio.create_task(probe())
        deliveries = [signed(text("hola", f"5025565{i:04d}")) for i in range(40)]
        for body, headers in deliveries + deliveries:  # each delivered twice
            assert (await http.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
        await asyncio.wait_for(settled(runtime), 10)
        done.set()
        await prober
    assert len(graph.sent) == 40


# -- several processes, one campaign --------------------------------------------------------------


async def test_two_processes_share_state_flood_counts_and_never_answer_twice(
    graph: FakeGraph, tmp_path: Path, db_target: Path | str
) -> None:
    one_port, two_port = free_port(), free_port()
    one = await start(serve_env(graph, db_target, one_port), tmp_path, "one")
    two = await start(serve_env(graph, db_target, two_port), tmp_path, "two")
    try:
        async with httpx.AsyncClient(trust_env=False) as http:

            async def post(server: Serve, data: dict[str, Any]) -> None:
                body, headers = signed(data)
                assert (await http.post(server.url + "/webhooks/whatsapp", content=body, headers=headers)).status_code == 200

            user = "50255590001"
            await post(one, text("hola", user))
            await graph.wait_sent(user, 1)
            await post(two, choose("lang:quc", user))  # K'iche', chosen on the other process
            await graph.wait_sent(user, 2)
            await post(one, choose("topic:pasaporte-requisitos", user))
            answer = (await graph.wait_sent(user, 3))[-1]
            assert "Traducción en revisión (quc)" in body_of(answer)  # not the greeting again, and in K'iche'

            flooder = "50255590002"
            for n in range(30):  # quick, alternating between the two processes: 20 in 10 s are allowed
                await post(one if n % 2 else two, text(f"hola {n}", flooder))
            await graph.wait_for(lambda g: len(g.sent_to(flooder)) >= 21, timeout=20)
            await asyncio.sleep(0.5)  # anything more would come now
        sent = graph.sent_to(flooder)
        notices = [m for m in sent if "despacio" in body_of(m).lower()]
        assert len(sent) == 21 and len(notices) == 1, [body_of(m)[:30] for m in sent]
        assert len(graph.sent_to(user)) == 3
    finally:
        codes = [await stop(one), await stop(two)]
    assert codes == [0, 0], one.text() + two.text()


async def test_serve_workers_runs_several_processes_on_one_port(graph: FakeGraph, tmp_path: Path) -> None:
    port = free_port()
    server = await start(serve_env(graph, tmp_path / "data" / "pregunta.sqlite3", port), tmp_path, "workers", "--workers", "2")
    try:
        users = [f"5025544{i:04d}" for i in range(12)]
        await talk([server.url], users)
        await graph.wait_for(lambda g: all(len(g.sent_to(u)) >= len(SCRIPT) for u in users), timeout=30)
        await asyncio.sleep(0.3)
        assert answered_in_order(graph, users) == {u: list(range(len(SCRIPT))) for u in users}
        workers = {line.split("worker ")[1].split(")")[0] for line in server.text().splitlines() if "listening on" in line}
        assert len(workers) == 2, server.text()
    finally:
        assert await stop(server) == 0, server.text()
    assert "Traceback" not in server.text()


# -- a locked or full database shows, and stalls nothing --------------------------------------------


async def test_a_locked_database_does_not_stall_replies_and_shows_in_healthz(graph: FakeGraph, tmp_path: Path) -> None:
    runtime = Runtime.build(make_settings(graph.base_url, tmp_path, pregunta_db_wait=0.2))
    async with running(with_admin(runtime)) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
        body, headers = signed(text("hola", "50255530001"))
        await http.post("/webhooks/whatsapp", content=body, headers=headers)
        await graph.wait_sent("50255530001")
        await asyncio.wait_for(settled(runtime), 10)
        locker = sqlite3.connect(tmp_path / "pregunta.sqlite3", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the database (a backup, a stuck tool)
        try:
            for i in range(5):
                body, headers = signed(text("hola", f"5025553{i:04d}"))
                assert (await http.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
            for i in range(5):
                await graph.wait_sent(f"5025553{i:04d}", timeout=5)  # answered without the inbox, not after the lock
            health = await http.get("/healthz")
            assert health.status_code == 503
            assert health.json()["status"] == "degraded" and "locked" in health.json()["database"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        for n in range(40):  # writes work again: ok once they have for a while (2 s), usage log included
            user = f"5025554{n:04d}"
            body, headers = signed(text("hola", user))
            await http.post("/webhooks/whatsapp", content=body, headers=headers)
            await graph.wait_sent(user)
            await asyncio.wait_for(settled(runtime), 10)
            health = (await http.get("/healthz")).json()
            if health["status"] == "ok":
                break
            await asyncio.sleep(0.25)
        assert health["status"] == "ok" and health["storage"]["errors"] >= 1, health
        metrics = (await http.get("/metrics")).text
        assert 'pregunta_inbox_fallback_total{channel="whatsapp"} 5.0' in metrics


async def test_a_full_disk_does_not_stall_replies_and_shows_in_healthz(graph: FakeGraph, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime.build(make_settings(graph.base_url, tmp_path))
    async with running(with_admin(runtime)) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
        storage, usage = runtime.storage, runtime.usage
        assert storage is not None and usage is not None and usage.storage is not None
        for connection in (storage, usage.storage):  # the file may not grow: a full disk
            [(pages,)] = await connection.pragma("page_count")  # type: ignore[attr-defined]
            await connection.pragma(f"max_page_count = {pages}")  # type: ignore[attr-defined]
        users = [f"5025520{i:04d}" for i in range(40)]
        for user in users:
            body, headers = signed(text("hola " + "x" * 3000, user))
            assert (await http.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
        for user in users:
            await graph.wait_sent(user, timeout=5)
        health = await http.get("/healthz")
        assert health.status_code == 503 and "disk full" in health.json()["database"]
        usage_log = health.json()["usage_log"]
        assert usage_log["written"] + usage_log["queued"] + usage_log["dropped"] >= 1
    tracebacks = [r for r in caplog.records if r.exc_info]
    full = [r for r in caplog.records if "full" in r.getMessage()]
    assert not tracebacks and 1 <= len(full) <= 4  # once per condition and connection, not once per message
