"""The Telegram channel end to end: the real Application against a fake Bot API on loopback."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.base import RetryPolicy
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_format import callback_data, command_incoming, keyboard, render_html, split_message
from bot.conversation import Conversations, FloodGuard, MemoryStates
from bot.errors import SettingsError
from bot.matcher import Matcher
from bot.metrics import Metrics
from bot.replies import Incoming, Kind, Option, Reply
from bot.server import Runtime, create_app
from bot.settings import Settings
from tests.conftest import FIXTURE_CONTENT, ROOT
from tests.fakes.serving import free_port, running, serving
from tests.fakes.telegram_api import TOKEN, Call, FakeBotAPI

DATA = Path(__file__).resolve().parent.parent / "data" / "telegram"
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a client that reads proxy variables fails
ANA, LUIS, GROUP = 5001, 5002, -1001234567890
SECRET = "s3cret-Token_for-tests"

# python-telegram-bot 22 warns inside its own RetryAfter constructor unless PTB_TIMEDELTA is
# set; outside pytest a DeprecationWarning is silent, and the channel reads either type.
pytestmark = pytest.mark.filterwarnings("ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy variables point nowhere: the bot must not read them."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI(poll_cap=0.5)
    async with running(api.app) as base:
        api.base = base  # type: ignore[attr-defined]
        yield api
        await api.close()


def settings_for(fake: FakeBotAPI, tmp_path: Path, **overrides: Any) -> Settings:
    base = fake.base  # type: ignore[attr-defined]
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_base_url": f"{base}/bot",
        "telegram_base_file_url": f"{base}/file/bot",
        "pregunta_content": FIXTURE_CONTENT,
        "pregunta_db": tmp_path / "pregunta.sqlite3",
        "pregunta_pseudonym_key": "test-pseudonym-key-" + "k" * 16,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def conversations(matcher: Matcher, metrics: Metrics) -> Conversations:
    return Conversations(matcher, MemoryStates(), pseudonym_key=b"k", flood=FloodGuard(20, 10.0), metrics=metrics)


@pytest.fixture
async def bot(fake: FakeBotAPI, tmp_path: Path, fixture_matcher: Matcher) -> AsyncIterator[TelegramChannel]:
    """A polling channel on the fixture content, started; quick retries."""
    metrics = Metrics()
    channel = TelegramChannel(settings_for(fake, tmp_path), conversations(fixture_matcher, metrics), metrics)
    channel.retry = RetryPolicy(attempts=4, base=0.01, cap=0.05)
    await channel.start()
    yield channel
    await channel.stop()


def update(name: str, **message: Any) -> dict[str, Any]:
    """A recorded update from tests/data/telegram, with message fields replaced."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    body = data.get("message") or data.get("edited_message") or data["callback_query"]
    body.update(message)
    return data


def text(words: str, user: int = ANA) -> dict[str, Any]:
    person = {"id": user, "is_bot": False, "first_name": "Persona", "language_code": "es"}
    return update("text", text=words, chat={"id": user, "type": "private", "first_name": "Persona"}, **{"from": person})


def press(data: str, user: int = ANA) -> dict[str, Any]:
    found = update("callback_query", data=data)
    found["callback_query"]["from"]["id"] = user
    found["callback_query"]["message"]["chat"]["id"] = user
    return found


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(f"pregunta_{name}_total", {"channel": "telegram"}) or 0.0


def sent_texts(fake: FakeBotAPI, chat_id: int) -> list[str]:
    return [c.params["text"] for c in fake.of("sendMessage", chat_id=chat_id)]


async def say(fake: FakeBotAPI, chat_id: int, *updates: dict[str, Any]) -> Call:
    """Push updates and return the next reply the chat gets."""
    before = len(fake.of("sendMessage", chat_id=chat_id))
    await fake.push(*updates)
    return (await fake.wait_for("sendMessage", before + 1, chat_id=chat_id))[-1]


# -- startup --------------------------------------------------------------------------------


async def test_startup_checks_token_registers_commands_and_polls(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    await fake.wait_for("getUpdates")
    assert fake.of("getMe")
    assert bot.routes() == []
    commands = {c.params.get("language_code"): c.json("commands") for c in fake.of("setMyCommands")}
    assert set(commands) == {None, "es"}
    assert [c["command"] for c in commands[None]] == ["start", "menu", "idioma", "ayuda"]
    assert all(c["description"] for c in commands["es"])
    assert fake.of("deleteWebhook"), "polling must clear a webhook first"
    poll = fake.of("getUpdates")[0]
    assert poll.json("allowed_updates") == ["message", "callback_query"]


async def test_refused_token_is_a_settings_error(fake: FakeBotAPI, tmp_path: Path, fixture_matcher: Matcher) -> None:
    metrics = Metrics()
    wrong = "654321:" + "x" * 35
    channel = TelegramChannel(settings_for(fake, tmp_path, telegram_bot_token=wrong), conversations(fixture_matcher, metrics), metrics)
    with pytest.raises(SettingsError, match="refused") as raised:
        await channel.start()
    await channel.stop()
    assert "x" * 35 not in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"telegram_bot_token": "not-a-token"}, "TELEGRAM_BOT_TOKEN is malformed"),
        ({"telegram_bot_token": "123456:short"}, "TELEGRAM_BOT_TOKEN is malformed"),
        ({"telegram_mode": "webhook", "telegram_webhook_secret": SECRET}, "TELEGRAM_WEBHOOK_URL"),
        ({"telegram_mode": "webhook", "telegram_webhook_url": "http://bot.example.org/w", "telegram_webhook_secret": SECRET}, "https"),
        ({"telegram_mode": "webhook", "telegram_webhook_url": "https://bot.example.org/w"}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"telegram_mode": "webhook", "telegram_webhook_url": "https://bot.example.org/w", "telegram_webhook_secret": "no spaces"}, "TELEGRAM_WEBHOOK_SECRET"),
    ],
    ids=["no-colon", "short-secret", "webhook-without-url", "webhook-http", "webhook-without-secret", "webhook-bad-secret"],
)
def test_bad_settings_fail_before_any_io(tmp_path: Path, fixture_matcher: Matcher, overrides: dict[str, Any], message: str) -> None:
    fake = FakeBotAPI()
    fake.base = "http://127.0.0.1:9"  # type: ignore[attr-defined]
    metrics = Metrics()
    with pytest.raises(SettingsError, match=message):
        TelegramChannel(settings_for(fake, tmp_path, **overrides), conversations(fixture_matcher, metrics), metrics)


# -- conversations ------------------------------------------------------------------------------


async def test_first_contact_language_buttons_then_topic_answer(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    greeting = await say(fake, ANA, text("hola"))
    assert greeting.params["parse_mode"] == "HTML"
    assert "Hola, soy el asistente de prueba" in greeting.params["text"]
    assert greeting.buttons == [("1 · Español", "lang:es"), ("2 · K'iche' (quiché)", "lang:quc")]
    typing = fake.of("sendChatAction", chat_id=ANA)
    assert typing and typing[0].params["action"] == "typing" and typing[0].at <= greeting.at

    menu = await say(fake, ANA, press("lang:es"))
    answered = fake.of("answerCallbackQuery")
    assert answered and answered[0].at <= menu.at, "the button's spinner stops first"
    assert menu.params["text"].startswith("Listo. Escribí tu pregunta")
    assert menu.buttons[0] == ("1 · Pasaporte", "topic:pasaporte-requisitos")

    answer = await say(fake, ANA, text("como saco mi pasaporte"))
    assert "Respuesta de prueba sobre el pasaporte." in answer.params["text"]
    related = answer.buttons
    assert related[0][1] == "topic:pasaporte-vigencia"
    assert related[-1] == ("0 · Menú", "menu:0")

    typed = await say(fake, ANA, text("1"))  # the number on the button works typed too
    pressed = await say(fake, ANA, press("topic:pasaporte-vigencia"))
    assert typed.params["text"] == pressed.params["text"]


async def test_commands(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    start = await say(fake, ANA, update("command_start"))
    assert [b[1] for b in start.buttons] == ["lang:es", "lang:quc"], "a newcomer picks a language first"
    await say(fake, ANA, press("lang:es"))
    menu = await say(fake, ANA, update("command_start", text="/menu", entities=[{"offset": 0, "length": 5, "type": "bot_command"}]))
    assert menu.buttons[0][1] == "topic:pasaporte-requisitos"
    help_lines = await say(fake, ANA, update("command_start", text="/ayuda", entities=[{"offset": 0, "length": 6, "type": "bot_command"}]))
    assert "110" in help_lines.params["text"]
    language = await say(fake, ANA, update("command_start", text="/idioma", entities=[{"offset": 0, "length": 7, "type": "bot_command"}]))
    assert [b[1] for b in language.buttons] == ["lang:es", "lang:quc"]


async def test_a_voice_note_gets_a_kind_reply_and_the_menu(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    await say(fake, ANA, press("lang:es"))
    reply = await say(fake, ANA, update("voice"))
    assert reply.params["text"].startswith("Solo leo texto.")
    assert reply.buttons[0] == ("1 · Pasaporte", "topic:pasaporte-requisitos")


@pytest.mark.parametrize("kind", ["voice", "photo", "sticker", "location", "document"])
async def test_what_the_bot_cannot_read(fake: FakeBotAPI, bot: TelegramChannel, kind: str) -> None:
    reply = await say(fake, ANA, update(kind))
    assert reply.params["text"].startswith("Solo leo texto.")
    assert reply.buttons, "a way forward: the language buttons"


async def test_a_caption_is_read_as_text(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    await say(fake, ANA, press("lang:es"))
    reply = await say(fake, ANA, update("photo", caption="como saco mi pasaporte"))
    assert "Respuesta de prueba sobre el pasaporte." in reply.params["text"]


async def test_ignored_edits_groups_not_addressed_and_service_messages(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    await fake.push(update("edited_message"), update("group_unaddressed"), update("group_member_joined"))
    await say(fake, LUIS, text("hola", user=LUIS))  # processed after the three above
    assert fake.of("sendMessage", chat_id=ANA) == []
    assert fake.of("sendMessage", chat_id=GROUP) == []
    assert len(fake.of("sendChatAction")) == 1


async def test_in_a_group_it_answers_mentions_replies_and_commands(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    mention = await say(fake, GROUP, update("group_mention"))
    assert "Hola, soy el asistente de prueba" in mention.params["text"]
    assert json.loads(mention.params["reply_parameters"])["message_id"] == 21

    reply = await say(fake, GROUP, update("group_reply"))  # "1" to the bot: Spanish
    assert reply.params["text"].startswith("Listo.")

    command = await say(fake, GROUP, update("group_command"))
    assert [b[1] for b in command.buttons] == ["lang:es", "lang:quc"]


async def test_a_flood_gets_one_notice_and_does_not_delay_others(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    fake.delays[ANA] = 0.03  # each reply to the flooder takes a while to send
    flood = [text(f"hola {i}") for i in range(25)]
    await fake.push(*flood, text("hola", user=LUIS))
    await fake.wait_for("sendMessage", chat_id=ANA, where=lambda c: c.params["text"] == "Más despacio.")
    other = fake.of("sendMessage", chat_id=LUIS)
    assert len(other) == 1
    mine = fake.of("sendMessage", chat_id=ANA)
    assert other[0].at < mine[2].at, "the other person's reply did not wait for the flood"
    await say(fake, LUIS, text("1", user=LUIS))  # later updates are done by now
    texts = sent_texts(fake, ANA)
    assert len(texts) == 21
    assert texts.count("Más despacio.") == 1 and texts[-1] == "Más despacio."


# -- Bot API errors ----------------------------------------------------------------------------


async def test_429_waits_retry_after_then_sends(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1)
    reply = await say(fake, ANA, text("hola"))
    refused = fake.of("sendMessage", ok=False)
    assert [c.status for c in refused] == [429, 200]
    assert reply.at - refused[0].at >= 0.95, "retry_after is honoured"
    assert sample(bot.metrics, "send_retries") == 1
    assert sample(bot.metrics, "send_failures") == 0


async def test_500_is_retried_then_sends(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    fake.fail_next("sendMessage", 500)
    fake.fail_next("sendMessage", 502)
    reply = await say(fake, ANA, text("hola"))
    assert [c.status for c in fake.of("sendMessage", ok=False)] == [500, 502, 200]
    assert "Hola" in reply.params["text"]
    assert sample(bot.metrics, "send_retries") == 2


async def test_gives_up_after_retries_and_goes_on(fake: FakeBotAPI, bot: TelegramChannel, caplog: pytest.LogCaptureFixture) -> None:
    fake.fail_next("sendMessage", 500, times=4)
    await fake.push(text("hola"))
    await fake.wait_for("sendMessage", 4, ok=False)
    reply = await say(fake, LUIS, text("hola", user=LUIS))
    assert "Hola" in reply.params["text"]
    assert sample(bot.metrics, "send_failures") == 1
    assert sample(bot.metrics, "send_retries") == 3
    assert any("given up" in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_an_exception_in_one_update_does_not_stop_the_bot(
    fake: FakeBotAPI, tmp_path: Path, fixture_matcher: Matcher, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding(Conversations):
        async def handle(self, channel: str, user_id: str, incoming: Incoming) -> Reply | None:
            if incoming.text == "boom":
                raise RuntimeError("boom")
            return await super().handle(channel, user_id, incoming)

    metrics = Metrics()
    talk = Exploding(fixture_matcher, MemoryStates(), pseudonym_key=b"k", metrics=metrics)
    channel = TelegramChannel(settings_for(fake, tmp_path), talk, metrics)
    await channel.start()
    try:
        await fake.push(text("boom"))
        reply = await say(fake, ANA, text("hola"))
        assert "Hola" in reply.params["text"]
        assert sample(metrics, "errors") == 1
        assert any("boom" in r.getMessage() for r in caplog.records)
    finally:
        await channel.stop()


# -- rendering ------------------------------------------------------------------------------------


class Scripted:
    """Answers every message with the same Reply: for rendering tests."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    async def handle(self, channel: str, user_id: str, incoming: Incoming) -> Reply | None:
        return self.reply


async def scripted(fake: FakeBotAPI, tmp_path: Path, reply: Reply) -> TelegramChannel:
    metrics = Metrics()
    channel = TelegramChannel(settings_for(fake, tmp_path), Scripted(reply), metrics)  # type: ignore[arg-type]
    await channel.start()
    return channel


async def test_long_answers_split_on_paragraphs_with_buttons_last(fake: FakeBotAPI, tmp_path: Path) -> None:
    paragraphs = [f"*Parte {i}* " + "Verificá <siempre> & preguntá. " * 60 for i in range(6)]
    options = (Option("1", "topic:pasaporte-vigencia", "Vigencia"), Option("0", "menu:0", "Menú"))
    channel = await scripted(fake, tmp_path, Reply("\n\n".join(paragraphs), "es", Kind.TOPIC, options))
    try:
        await fake.push(text("pasaporte"))
        await fake.wait_for("sendMessage", 3)
    finally:
        await channel.stop()  # waits for the update in hand
    parts = fake.of("sendMessage")
    assert len(parts) == 3
    assert all(len(p.params["text"].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")) <= 4096 for p in parts)
    assert parts[0].params["text"].startswith("<b>Parte 0</b> Verificá &lt;siempre&gt; &amp; preguntá.")
    assert parts[1].params["text"].startswith("<b>Parte 2</b>")
    assert [bool(p.buttons) for p in parts] == [False, False, True]
    assert parts[-1].buttons == [("1 · Vigencia", "topic:pasaporte-vigencia"), ("0 · Menú", "menu:0")]
    assert sample(channel.metrics, "errors") == 0


async def test_audio_goes_as_a_voice_message(fake: FakeBotAPI, tmp_path: Path) -> None:
    audio = tmp_path / "pasaporte.ogg"
    audio.write_bytes(b"OggS fake opus")
    channel = await scripted(fake, tmp_path, Reply("Respuesta.", "quc", Kind.TOPIC, audio=audio))
    try:
        await fake.push(text("pasaporte"))
        voice = (await fake.wait_for("sendVoice"))[0]
        assert voice.files["voice"] == b"OggS fake opus"
        assert int(voice.params["chat_id"]) == ANA
        text_sent = fake.of("sendMessage")[0]
        assert text_sent.at <= voice.at
        actions = [c.params["action"] for c in fake.of("sendChatAction")]
        assert actions == ["typing", "upload_voice"]
    finally:
        await channel.stop()
    out = channel.metrics.registry.get_sample_value("pregunta_messages_out_total", {"channel": "telegram", "lang": "quc"})
    assert out == 2


async def test_missing_audio_still_sends_the_text(fake: FakeBotAPI, tmp_path: Path) -> None:
    channel = await scripted(fake, tmp_path, Reply("Respuesta.", "es", Kind.TOPIC, audio=tmp_path / "missing.ogg"))
    try:
        await say(fake, ANA, text("pasaporte"))
    finally:
        await channel.stop()  # waits for the update in hand
    assert fake.of("sendVoice") == []
    assert sample(channel.metrics, "errors") == 1


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("*Pasaporte guatemalteco*", "<b>Pasaporte guatemalteco</b>"),
        ("Costo: Q<100 & más", "Costo: Q&lt;100 &amp; más"),
        ("<b>no es HTML</b>", "&lt;b&gt;no es HTML&lt;/b&gt;"),
        ("5 * 3 = 15", "5 * 3 = 15"),
        ("un *asterisco suelto", "un *asterisco suelto"),
        ("*a*\n*b* y *c*", "<b>a</b>\n<b>b</b> y <b>c</b>"),
        ("*no cruza\nlíneas*", "*no cruza\nlíneas*"),
        ("📞 *110* \"PNC\"", "📞 <b>110</b> \"PNC\""),
    ],
    ids=["bold", "escaped", "tags-escaped", "lone-asterisks", "unclosed", "several", "multiline", "emoji-quotes"],
)
def test_render_html(source: str, html: str) -> None:
    assert render_html(source) == html


def test_callback_data_falls_back_to_the_key_past_64_bytes() -> None:
    short = Option("1", "topic:pasaporte-requisitos", "Pasaporte")
    long = Option("2", "topic:" + "ñ" * 30, "Largo")  # 66 bytes in UTF-8
    assert callback_data(short) == "topic:pasaporte-requisitos"
    assert callback_data(long) == "2"
    markup = keyboard((short, long))
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["1 · Pasaporte"], ["2 · Largo"]]
    assert keyboard(()) is None


def test_split_message_counts_utf16_units() -> None:
    emoji = "📞" * 2100  # 2,100 characters but 4,200 UTF-16 units: over Telegram's limit
    parts = split_message(f"Líneas de ayuda\n\n{emoji}")
    assert "".join(parts).replace("Líneas de ayuda", "") == emoji
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert split_message("corto") == ["corto"]


@pytest.mark.parametrize(
    ("command", "payload"),
    [("/start", "menu:0"), ("/menu@pregunta_test_bot", "menu:0"), ("/IDIOMA", "intent:idioma"), ("/ayuda ya", "intent:ayuda-humana")],
    ids=["start", "addressed", "upper-case", "with-words"],
)
def test_commands_are_the_buttons_payloads(command: str, payload: str) -> None:
    assert command_incoming(command) == Incoming(payload=payload)


async def test_a_button_carrying_a_number_counts_as_typed(fake: FakeBotAPI, bot: TelegramChannel) -> None:
    await say(fake, ANA, press("lang:es"))
    by_button = await say(fake, ANA, press("1"))
    by_payload = await say(fake, ANA, press("topic:pasaporte-requisitos"))
    assert by_button.params["text"] == by_payload.params["text"]


# -- webhook --------------------------------------------------------------------------------------


async def test_webhook_mode_checks_the_secret(fake: FakeBotAPI, tmp_path: Path) -> None:
    url = "https://bot.example.org/webhooks/telegram"
    settings = settings_for(fake, tmp_path, telegram_mode="webhook", telegram_webhook_url=url, telegram_webhook_secret=SECRET)
    runtime = Runtime.build(settings)
    async with running(create_app(runtime)) as base, httpx.AsyncClient(base_url=base, trust_env=False) as client:
        registered = (await fake.wait_for("setWebhook"))[0]
        assert registered.params["url"] == url
        assert registered.params["secret_token"] == SECRET
        assert registered.json("allowed_updates") == ["message", "callback_query"]

        hello = text("hola")
        fake.remember_chat(hello)
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}):
            refused = await client.post("/webhooks/telegram", json={**hello, "update_id": 1}, headers=headers)
            assert refused.status_code == 403
        right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        malformed = (DATA / "malformed_update.txt").read_bytes()
        assert (await client.post("/webhooks/telegram", content=malformed, headers=right)).status_code == 400
        not_update = (DATA / "not_an_update.json").read_bytes()
        assert (await client.post("/webhooks/telegram", content=not_update, headers=right)).status_code == 400

        accepted = await client.post("/webhooks/telegram", json={**hello, "update_id": 2}, headers=right)
        assert accepted.status_code == 200
        reply = (await fake.wait_for("sendMessage"))[0]
        assert "Hola, soy el asistente de prueba" in reply.params["text"]
        assert len(fake.of("sendMessage")) == 1, "refused requests were not processed"
        assert fake.of("getUpdates") == [] and fake.of("deleteWebhook") == []
        assert (await client.get("/healthz")).status_code == 404  # only on the admin port


# -- `pregunta serve` -----------------------------------------------------------------------------


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "PREGUNTA_", "WHATSAPP_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PREGUNTA_PORT=str(free_port()),
        PREGUNTA_ADMIN_PORT=str(free_port()),
        PREGUNTA_DB=str(tmp_path / "pregunta.sqlite3"),
        PREGUNTA_CONTENT=str(FIXTURE_CONTENT),
        **extra,
    )
    return env


async def serve(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_pregunta_serve_polls_and_stops_on_sigterm(fake: FakeBotAPI, tmp_path: Path) -> None:
    base = fake.base  # type: ignore[attr-defined]
    env = serve_env(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=f"{base}/bot", PREGUNTA_LOG_LEVEL="DEBUG",
        PREGUNTA_LOG_LIBRARIES="true",  # python-telegram-bot's own DEBUG lines, which print the base URL
    )  # fmt: skip
    process = await serve(env, tmp_path)
    try:
        await fake.wait_for("getUpdates", timeout=20)
        reply = await say(fake, ANA, text("hola"))
        assert "Hola" in reply.params["text"]
        async with httpx.AsyncClient(trust_env=False) as client:
            health = await client.get(f"http://127.0.0.1:{env['PREGUNTA_ADMIN_PORT']}/healthz")
        assert health.json()["channels"] == ["telegram"]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0, stderr.decode()
        assert time.monotonic() - started < 5, time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    assert "Set Bot API URL" in log, "debug logging was on"
    assert TOKEN.split(":")[1] not in log, "the token never reaches the log, not even at DEBUG"
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("token", "message"),
    [("not-a-token", "TELEGRAM_BOT_TOKEN is malformed"), ("654321:" + "y" * 35, "TELEGRAM_BOT_TOKEN was refused")],
    ids=["malformed", "refused"],
)
async def test_pregunta_serve_with_a_bad_token_says_one_line(fake: FakeBotAPI, tmp_path: Path, token: str, message: str) -> None:
    base = fake.base  # type: ignore[attr-defined]
    env = serve_env(tmp_path, TELEGRAM_BOT_TOKEN=token, TELEGRAM_BASE_URL=f"{base}/bot", PREGUNTA_LOG_LEVEL="ERROR")
    process = await serve(env, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert len(lines) == 1 and message in lines[0], lines
    assert token.split(":")[-1] not in lines[0] or token == "not-a-token"


async def test_a_recorded_answer_in_the_content_goes_as_voice(fake: FakeBotAPI, tmp_path: Path, content_with_audio: Path) -> None:
    from bot.content import load_content

    metrics = Metrics()
    matcher = Matcher(load_content(content_with_audio))
    channel = TelegramChannel(settings_for(fake, tmp_path, pregunta_content=content_with_audio), conversations(matcher, metrics), metrics)
    await channel.start()
    try:
        await say(fake, ANA, text("hola"))
        await say(fake, ANA, press("lang:quc"))
        answer = await say(fake, ANA, press("topic:asilo-como-solicitar"))
        assert "Texto revisado en K'iche' de prueba." in answer.params["text"]
        voice = (await fake.wait_for("sendVoice"))[0]
        assert voice.files["voice"] == (content_with_audio / "kiche/audio/asilo-como-solicitar.ogg").read_bytes()
    finally:
        await channel.stop()


# -- the channel kit in the Telegram channel ----------------------------------------------------


@pytest.fixture
async def webhook(fake: FakeBotAPI, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    url = "https://bot.example.org/webhooks/telegram"
    settings = settings_for(fake, tmp_path, telegram_mode="webhook", telegram_webhook_url=url, telegram_webhook_secret=SECRET)
    runtime = Runtime.build(settings)
    async with running(create_app(runtime)) as base, httpx.AsyncClient(base_url=base, trust_env=False) as client:
        await fake.wait_for("setWebhook")
        yield client, runtime


RIGHT = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "content-type": "application/json"}


async def test_webhook_body_is_bounded(fake: FakeBotAPI, webhook: tuple[httpx.AsyncClient, Runtime]) -> None:
    from bot.channels.base import MAX_BODY

    client, _ = webhook
    huge = b'{"update_id": 1, "message": {"text": "' + b"x" * MAX_BODY + b'"}}'
    assert (await client.post("/webhooks/telegram", content=huge, headers=RIGHT)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):  # 2.6 MB without a Content-Length
            yield b" " * 65536

    try:
        response = await client.post("/webhooks/telegram", content=chunks(), headers=RIGHT)
    except httpx.TransportError:  # the server may close before the client has written everything
        response = None
    assert response is None or response.status_code == 411  # no Content-Length: refused unread
    hello = text("hola")
    fake.remember_chat(hello)
    assert (await client.post("/webhooks/telegram", json={**hello, "update_id": 3}, headers=RIGHT)).status_code == 200
    await fake.wait_for("sendMessage")  # still serving


async def test_a_redelivered_update_is_answered_once(fake: FakeBotAPI, webhook: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = webhook
    hello = text("hola")
    fake.remember_chat(hello)
    for _ in range(3):  # Telegram re-sends what it thinks was not acknowledged
        assert (await client.post("/webhooks/telegram", json={**hello, "update_id": 77}, headers=RIGHT)).status_code == 200
    assert (await client.post("/webhooks/telegram", json={**text("1"), "update_id": 78}, headers=RIGHT)).status_code == 200
    await fake.wait_for("sendMessage", 2, chat_id=ANA)
    texts = sent_texts(fake, ANA)
    assert len(texts) == 2 and texts[1].startswith("Listo.")


async def test_an_update_polled_again_after_a_restart_is_answered_once(fake: FakeBotAPI, tmp_path: Path) -> None:
    """A poller killed before confirming its offset gets the same updates when it comes
    back; the update ids it answered are in the database, so they are not answered again."""
    settings = settings_for(fake, tmp_path)
    hello = text("hola")
    async with serving(Runtime.build(settings)):
        [first_id] = await fake.push(hello)
        await fake.wait_for("sendMessage", 1, chat_id=ANA)
    async with serving(Runtime.build(settings)):
        await fake.redeliver({**hello, "update_id": first_id})  # as if never confirmed
        await fake.push(text("1"))  # then something new
        await fake.wait_for("sendMessage", 2, chat_id=ANA)
    texts = sent_texts(fake, ANA)
    assert len(texts) == 2 and texts[1].startswith("Listo."), texts  # the greeting once, then the choice


async def test_webhook_refuses_before_reading_the_body(fake: FakeBotAPI, webhook: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = webhook
    host, port = str(client.base_url).removeprefix("http://").rstrip("/").split(":")
    cases = [  # (headers, status): the declared body is never sent
        (f"X-Telegram-Bot-Api-Secret-Token: wrong\r\nContent-Length: {20 * 1024 * 1024}", 403),
        (f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nContent-Length: {20 * 1024 * 1024}", 413),
        (f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nTransfer-Encoding: chunked", 411),
    ]
    for headers, expected in cases:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), 30)  # answered and closed, the body unsent
        writer.close()
        assert answer.startswith(f"HTTP/1.1 {expected} ".encode()), (headers, answer[:40])


async def test_webhook_deeply_nested_json_is_a_400(fake: FakeBotAPI, webhook: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = webhook
    for depth in (1_000, 100_000):
        body = b'{"update_id": 5, "message": ' + b"[" * depth + b"]" * depth + b"}"
        assert (await client.post("/webhooks/telegram", content=body, headers=RIGHT)).status_code == 400
    hello = text("hola")
    fake.remember_chat(hello)
    assert (await client.post("/webhooks/telegram", json={**hello, "update_id": 6}, headers=RIGHT)).status_code == 200


class Slow(Conversations):
    """Takes `seconds` over a reply whose text is "lento"."""

    seconds = 0.3

    async def handle(self, channel: str, user_id: str, incoming: Incoming) -> Reply | None:
        if incoming.text == "lento":
            await asyncio.sleep(self.seconds)
        return await super().handle(channel, user_id, incoming)


async def test_typing_only_when_the_reply_is_not_immediate(fake: FakeBotAPI, tmp_path: Path, fixture_matcher: Matcher) -> None:
    from bot.channels.base import Presence

    metrics = Metrics()
    talk = Slow(fixture_matcher, MemoryStates(), pseudonym_key=b"k", metrics=metrics)
    channel = TelegramChannel(settings_for(fake, tmp_path), talk, metrics, presence=Presence(pause=30.0, delay=0.05))
    await channel.start()
    try:
        first = await say(fake, ANA, text("hola"))  # first message: "typing…" at once, before the answer
        [typing] = fake.of("sendChatAction", chat_id=ANA)
        assert typing.at <= first.at
        await say(fake, ANA, press("lang:es"))  # a quick reply: no "typing…"
        await say(fake, ANA, text("menu"))
        assert len(fake.of("sendChatAction", chat_id=ANA)) == 1
        slow = await say(fake, ANA, text("lento"))  # slower than the delay: "typing…" then the answer
        actions = fake.of("sendChatAction", chat_id=ANA)
        assert len(actions) == 2 and actions[1].at <= slow.at
    finally:
        await channel.stop()
