"""Alerts end to end: people subscribe through a real `pregunta serve`, and a real
`pregunta alerts send` (another process, the same database) reaches each of them once.

The fake Bot API and the fake Graph API run on loopback in the test; serve and send are
separate processes, as in production. What is checked: received once; a second send
sends nothing; an unsubscribed person gets nothing; kill -9 half-way then a resume sends
to the rest and to nobody twice; a person who blocked the bot (Telegram 403, WhatsApp
131026) is unsubscribed while 131047 is not; a 429 is waited out; no raw chat id or phone
number is anywhere in the data folder or the sender's output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from bot.settings import Settings
from bot.storage import open_storage
from bot.subscriptions import Subscriptions, subscribers_key
from tests.channels.test_telegram import press as tg_press, text as tg_text
from tests.channels.test_whatsapp import PHONE_ID, SECRET, TOKEN as WA_TOKEN, VERIFY, choose, sign, text as wa_text
from tests.conftest import FIXTURE_CONTENT, ROOT
from tests.fakes.graph_api import FakeGraph
from tests.fakes.serving import free_port, running
from tests.fakes.telegram_api import TOKEN as TG_TOKEN, FakeBotAPI
from tests.test_usage import scan

pytestmark = pytest.mark.filterwarnings("ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")

KEY = Fernet.generate_key().decode()
ALERT = "citas-de-pasaporte-en-venta"
SECOND = "otro-aviso-de-prueba"
ANA, LUIS, EVA = 987654321012, 987654321013, 987654321014  # Telegram ids, long enough to find in a byte scan
PHONES = ["50255512345", "50255512346", "50255512347"]
TEMPLATE = "aviso_pregunta"


@dataclass
class Fakes:
    bot: FakeBotAPI
    graph: FakeGraph
    base: str


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    bot, graph = FakeBotAPI(poll_cap=0.3), FakeGraph(WA_TOKEN)
    async with running(bot.app) as bot_url, running(graph.app) as graph_url:
        graph.base_url = f"{graph_url}/v22.0"
        yield Fakes(bot, graph, bot_url)
        await bot.close()


def environment(fakes: Fakes, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "PREGUNTA_", "WHATSAPP_"))}
    env.update(
        PYTHONPATH=str(ROOT), PREGUNTA_PORT=str(free_port()), PREGUNTA_ADMIN_PORT=str(free_port()),
        PREGUNTA_DB=str(data / "pregunta.sqlite3"), PREGUNTA_CONTENT=str(FIXTURE_CONTENT), PREGUNTA_LOG_LEVEL="INFO",
        PREGUNTA_PSEUDONYM_KEY="p" * 32, PREGUNTA_SUBSCRIBERS_KEY=KEY,
        TELEGRAM_BOT_TOKEN=TG_TOKEN, TELEGRAM_BASE_URL=f"{fakes.base}/bot", TELEGRAM_BASE_FILE_URL=f"{fakes.base}/file/bot",
        WHATSAPP_TOKEN=WA_TOKEN, WHATSAPP_PHONE_NUMBER_ID=PHONE_ID, WHATSAPP_APP_SECRET=SECRET,
        WHATSAPP_VERIFY_TOKEN=VERIFY, WHATSAPP_API_BASE_URL=fakes.graph.base_url, WHATSAPP_ALERT_TEMPLATE=TEMPLATE,
        PREGUNTA_INBOX_LEASE="2",
    )  # fmt: skip
    env.update(extra)
    return env


@dataclass
class Server:
    process: asyncio.subprocess.Process
    env: dict[str, str]
    log: Path

    async def stop(self) -> str:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        text = self.log.read_text(errors="replace")
        assert code == 0, text
        return text


async def serve(env: dict[str, str], logs: Path) -> Server:
    logs.mkdir(exist_ok=True)
    log = logs / f"serve-{env['PREGUNTA_PORT']}.log"
    with log.open("wb") as handle:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "serve", cwd=ROOT, env=env, stdout=handle, stderr=handle)
    server = Server(process, env, log)
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(400):
            assert process.returncode is None, log.read_text(errors="replace")
            try:
                if (await http.get(f"http://127.0.0.1:{env['PREGUNTA_ADMIN_PORT']}/healthz")).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail("pregunta serve did not become healthy:\n" + log.read_text(errors="replace"))


async def send(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str]:
    """`pregunta alerts send …` as its own process: (exit code, stdout + stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "alerts", "send", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode()


async def telegram_says(fakes: Fakes, chat: int, update: dict[str, Any]) -> str:
    before = len(fakes.bot.of("sendMessage", chat_id=chat))
    await fakes.bot.push(update)
    return (await fakes.bot.wait_for("sendMessage", before + 1, chat_id=chat, timeout=20))[-1].params["text"]


async def whatsapp_says(fakes: Fakes, http: httpx.AsyncClient, port: str, user: str, data: dict[str, Any]) -> str:
    before = len(fakes.graph.sent_to(user))
    body = json.dumps(data).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": sign(body)}
    assert (await http.post(f"http://127.0.0.1:{port}/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
    sent = await fakes.graph.wait_sent(user, before + 1, timeout=20)
    message = sent[-1]
    return json.dumps(message, ensure_ascii=False)


async def subscribe_on_telegram(fakes: Fakes, chat: int) -> None:
    await telegram_says(fakes, chat, tg_text("hola", chat))
    await telegram_says(fakes, chat, tg_text("1", chat))  # Spanish
    consent = await telegram_says(fakes, chat, tg_text("quiero recibir avisos", chat))
    assert "cifrado" in consent and "baja" in consent
    assert "Suscripción de prueba lista" in await telegram_says(fakes, chat, tg_press("alerts:yes", chat))


async def subscribe_on_whatsapp(fakes: Fakes, http: httpx.AsyncClient, port: str, user: str) -> None:
    await whatsapp_says(fakes, http, port, user, wa_text("hola", user))
    await whatsapp_says(fakes, http, port, user, choose("lang:es", user))
    consent = await whatsapp_says(fakes, http, port, user, wa_text("avisos", user))
    assert "cifrado" in consent and "alerts:yes" in consent  # the accept button
    assert "Suscripción de prueba lista" in await whatsapp_says(fakes, http, port, user, wa_text("1", user))  # by number


def alerts_received(fakes: Fakes, words: str) -> dict[str, int]:
    """How many times each chat or phone received an alert whose text has `words`."""
    found: dict[str, int] = {}
    for call in fakes.bot.of("sendMessage"):
        if words in call.params.get("text", ""):
            found[str(call.chat_id)] = found.get(str(call.chat_id), 0) + 1
    for message in fakes.graph.sent:
        if message.get("type") == "template" and words in json.dumps(message, ensure_ascii=False):
            user = message.get("to") or message.get("recipient")
            found[str(user)] = found.get(str(user), 0) + 1
    return found


def rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data / "pregunta.sqlite3") as db:
        found = db.execute(sql).fetchall()
    db.close()
    return found


async def test_subscribe_send_once_resend_nothing_unsubscribe_nothing(fakes: Fakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = environment(fakes, data)
    server = await serve(env, tmp_path / "logs")
    port = env["PREGUNTA_PORT"]
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            for chat in (ANA, LUIS):
                await subscribe_on_telegram(fakes, chat)
            for phone in PHONES[:2]:
                await subscribe_on_whatsapp(fakes, http, port, phone)
            health = (await http.get(f"http://127.0.0.1:{env['PREGUNTA_ADMIN_PORT']}/healthz")).json()
            assert health["alerts"] == {"subscribing": "on"}

            code, out = await send(env, ALERT)
            assert code == 0, out
            got = alerts_received(fakes, "Venden citas de pasaporte")
            assert got == {str(ANA): 1, str(LUIS): 1, PHONES[0]: 1, PHONES[1]: 1}, out
            [template] = [m for m in fakes.graph.sent_to(PHONES[0]) if m["type"] == "template"]
            assert template["template"]["name"] == TEMPLATE and template["template"]["language"] == {"code": "es"}
            parameter = template["template"]["components"][0]["parameters"][0]["text"]
            assert "\n" not in parameter and "escribí «baja»" in parameter
            tg_alert = next(c for c in fakes.bot.of("sendMessage", chat_id=ANA) if "Venden citas" in c.params["text"])
            assert "<b>" in tg_alert.params["text"] and "escribí «baja»" in tg_alert.params["text"]

            code, again = await send(env, ALERT)  # the same alert again: nobody gets it twice
            assert code == 0 and "Nada que mandar" in again, again
            assert alerts_received(fakes, "Venden citas de pasaporte") == got

            assert "Baja de prueba lista" in await telegram_says(fakes, LUIS, tg_text("no mas avisos", LUIS))
            assert "Baja de prueba" in await whatsapp_says(fakes, http, port, PHONES[1], wa_text("stop", PHONES[1]))
            code, out = await send(env, SECOND)
            assert code == 0, out
            assert alerts_received(fakes, "Segundo aviso de prueba") == {str(ANA): 1, PHONES[0]: 1}, out

            answer = await telegram_says(fakes, ANA, tg_text("pasaporte", ANA))  # everyone sees the live alert under the answer
            assert "⚠️ Aviso: Venden citas de pasaporte" in answer and "ya venció" not in answer
    finally:
        log = await server.stop()
    assert "Traceback" not in log
    assert rows(data, "SELECT channel, joined, stopped, blocked FROM subscription_days ORDER BY channel") == [
        ("telegram", 2, 1, 0), ("whatsapp", 2, 1, 0),
    ]  # fmt: skip
    secrets_ = [str(ANA), str(LUIS), *PHONES, PHONES[0][3:], KEY]
    assert scan(data, secrets_) == [], "no raw chat id, phone or key in the data folder"
    assert not [s for s in secrets_ if s in out]


async def test_kill_9_half_way_then_resume_sends_to_the_rest_and_nobody_twice(fakes: Fakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = environment(fakes, data)
    chats = [7_000_000_000 + n for n in range(240)]
    await _subscribe_directly(env, [("telegram", str(chat)) for chat in chats])
    first = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "alerts", "send", ALERT, "--rate", "40", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await fakes.bot.wait_for("sendMessage", len(chats) // 2, timeout=60)
    finally:
        first.kill()  # kill -9: no clean-up of any kind
        await first.wait()
    sent_before = len(fakes.bot.of("sendMessage"))
    assert sent_before < len(chats)
    code, out = await send(env, ALERT, "--rate", "200")
    assert code == 0, out
    got = alerts_received(fakes, "Venden citas de pasaporte")
    assert max(got.values()) == 1, "nobody twice"
    [(left,)] = rows(data, "SELECT COUNT(*) FROM alert_deliveries WHERE status = 'sending'")
    assert len(got) + left >= len(chats) and len(got) <= len(chats), (len(got), left)
    assert left <= 32, "only what was in flight at the kill is left unconfirmed"
    assert left == 0 or f"{left} sin confirmar" in out, out


async def test_blocked_people_are_unsubscribed_and_the_24h_window_is_not_a_block(fakes: Fakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = environment(fakes, data)
    await _subscribe_directly(env, [("telegram", str(ANA)), ("telegram", str(LUIS)), ("telegram", str(EVA)),
                                    ("whatsapp", PHONES[0]), ("whatsapp", PHONES[1]), ("whatsapp", PHONES[2])])  # fmt: skip
    fakes.bot.blocked.add(LUIS)  # 403: blocked the bot
    fakes.bot.gone.add(EVA)  # 400 chat not found: the account is gone
    fakes.graph.blocked.add(PHONES[1])  # 131026
    fakes.graph.fail_next(1, "131047")  # the first WhatsApp send: outside the window (not a block)
    fakes.bot.fail_next("sendMessage", 429, retry_after=1)
    code, out = await send(env, ALERT)
    assert code == 0, out
    got = alerts_received(fakes, "Venden citas de pasaporte")
    assert got.get(str(ANA)) == 1 and str(LUIS) not in got and PHONES[1] not in got
    [limited] = [c for c in fakes.bot.calls if c.status == 429]
    retried = next(c for c in fakes.bot.calls if c.chat_id == limited.chat_id and c.at > limited.at)
    assert retried.at - limited.at >= 1.0  # Retry-After honoured, then the same person tried again
    statuses = dict(rows(data, "SELECT channel || ':' || status, COUNT(*) FROM alert_deliveries GROUP BY channel, status"))
    assert statuses == {"telegram:sent": 1, "telegram:unsubscribed": 2, "whatsapp:sent": 1, "whatsapp:unsubscribed": 1,
                        "whatsapp:failed": 1}, statuses  # fmt: skip
    assert rows(data, "SELECT channel, COUNT(*) FROM subscriptions GROUP BY channel") == [("telegram", 1), ("whatsapp", 2)]
    assert rows(data, "SELECT detail FROM alert_deliveries WHERE status = 'failed'") == [("131047",)]
    code, out = await send(env, ALERT)  # the failed one is tried again; nobody else
    assert code == 0, out
    again = alerts_received(fakes, "Venden citas de pasaporte")
    assert sum(again.values()) == sum(got.values()) + 1 and max(again.values()) == 1
    assert not [secret for secret in (str(ANA), str(LUIS), str(EVA), *PHONES, PHONES[1][3:]) if secret in out]  # nor in its log
    assert scan(data, [str(LUIS), str(EVA), PHONES[1]]) == []


async def test_a_wrong_template_stops_the_send_in_one_line_and_a_fixed_one_resumes(fakes: Fakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = environment(fakes, data)
    await _subscribe_directly(env, [("whatsapp", f"5025560{n:04d}") for n in range(20)])
    fakes.graph.templates = {TEMPLATE: {"es_MX"}}  # approved in another language
    code, out = await send(env, ALERT)
    assert code == 1 and "132001" in out and "envío detenido" in out, out
    assert not alerts_received(fakes, "Venden citas")
    env["WHATSAPP_ALERT_TEMPLATE_LANG"] = "es_MX"
    code, out = await send(env, ALERT)
    assert code == 0, out
    got = alerts_received(fakes, "Venden citas")
    assert len(got) == 20 and max(got.values()) == 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"PREGUNTA_SUBSCRIBERS_KEY": ""}, "PREGUNTA_SUBSCRIBERS_KEY is not set"),
        ({"PREGUNTA_SUBSCRIBERS_KEY": "not-a-key"}, "PREGUNTA_SUBSCRIBERS_KEY: it is not a Fernet key"),
        ({"WHATSAPP_ALERT_TEMPLATE": ""}, "WHATSAPP_ALERT_TEMPLATE is not set"),
        ({"PREGUNTA_SUBSCRIBERS_KEY": Fernet.generate_key().decode()}, "cannot be decrypted"),
    ],
    ids=["no-key", "malformed-key", "no-template", "another-key"],
)
async def test_send_refuses_in_one_line_before_sending(fakes: Fakes, tmp_path: Path, extra: dict[str, str], words: str) -> None:
    env = environment(fakes, tmp_path / "data")
    await _subscribe_directly(env, [("whatsapp", PHONES[0])])
    code, out = await send(env | extra, ALERT)
    lines = [line for line in out.strip().splitlines() if not line.startswith(("Aviso «", "20"))]
    assert code in (1, 2) and len(lines) == 1 and words in lines[0], out
    assert not fakes.graph.sent


async def test_without_the_key_subscribing_is_off_and_says_so(fakes: Fakes, tmp_path: Path) -> None:
    env = environment(fakes, tmp_path / "data", PREGUNTA_SUBSCRIBERS_KEY="")
    server = await serve(env, tmp_path / "logs")
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            health = (await http.get(f"http://127.0.0.1:{env['PREGUNTA_ADMIN_PORT']}/healthz")).json()
        assert health["alerts"]["subscribing"] == "off" and "PREGUNTA_SUBSCRIBERS_KEY" in health["alerts"]["reason"]
        await telegram_says(fakes, ANA, tg_text("hola", ANA))
        await telegram_says(fakes, ANA, tg_text("1", ANA))
        assert "Avisos apagados" in await telegram_says(fakes, ANA, tg_text("avisos", ANA))
        assert "Baja de prueba" in await telegram_says(fakes, ANA, tg_text("baja", ANA))  # stopping is always true
    finally:
        log = await server.stop()
    assert "PREGUNTA_SUBSCRIBERS_KEY is not set" in log


async def test_the_dry_run_sends_and_writes_nothing(fakes: Fakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = environment(fakes, data)
    await _subscribe_directly(env, [("telegram", str(ANA)), ("whatsapp", PHONES[0])])
    code, out = await send(env, ALERT, "--dry-run")
    assert code == 0 and "2 por mandar" in out and "no se mandó nada" in out, out
    assert not fakes.bot.of("sendMessage") and not fakes.graph.sent
    assert rows(data, "SELECT COUNT(*) FROM alert_deliveries") == [(0,)]
    code, out = await send(env, "ofertas-vencidas")
    assert code == 1 and "venció" in out


async def _subscribe_directly(env: dict[str, str], people: list[tuple[str, str]]) -> None:
    """Subscriptions written as the server writes them (a crowd, faster than chatting)."""
    settings = Settings(_env_file=None, pregunta_db=env["PREGUNTA_DB"], pregunta_subscribers_key=env["PREGUNTA_SUBSCRIBERS_KEY"])  # type: ignore[call-arg, arg-type]
    storage = await open_storage(settings.pregunta_db)
    try:
        store = Subscriptions(storage, subscribers_key(settings), env["PREGUNTA_PSEUDONYM_KEY"].encode())
        for channel, user in people:
            await store.subscribe(channel, user, "es")
    finally:
        await storage.close()
