"""python-telegram-bot's requests over aiohttp, against the fake Bot API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InputFile
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot.channels.http import SharedSession
from bot.channels.telegram_request import AiohttpRequest
from tests.fakes.serving import free_port, running
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeBotAPI

ANA = 5001
DEAD_PROXY = "http://127.0.0.1:9"

# python-telegram-bot 22 warns inside its own RetryAfter constructor unless PTB_TIMEDELTA is set.
pytestmark = pytest.mark.filterwarnings("ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")


@pytest.fixture(autouse=True)
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy variables point nowhere: the request must not read them."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI(poll_cap=0.3)
    async with running(api.app) as base:
        api.base = base  # type: ignore[attr-defined]
        yield api
        await api.close()


def bot_for(base: str, request: AiohttpRequest, polls: AiohttpRequest | None = None) -> Bot:
    return Bot(TOKEN, base_url=f"{base}/bot", request=request, get_updates_request=polls or request)


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    http = SharedSession()
    calls, polls = AiohttpRequest(http, read_timeout=2.0), AiohttpRequest(http, read_timeout=2.0)
    async with bot_for(fake.base, calls, polls) as started:  # type: ignore[attr-defined]
        yield started
    assert not http.is_open, "shutting the bot down closed the session"


async def test_text_goes_form_encoded(fake: FakeBotAPI, bot: Bot) -> None:
    assert bot.username == BOT_USERNAME  # getMe at initialize
    message = await bot.send_message(ANA, "Hola, ¿cómo estás? <b>ñ</b> & más", reply_markup=None)
    assert message.chat.id == ANA and message.text == "Hola, ¿cómo estás? <b>ñ</b> & más"
    [call] = fake.of("sendMessage")
    assert call.params["text"] == "Hola, ¿cómo estás? <b>ñ</b> & más" and call.chat_id == ANA


async def test_a_voice_note_goes_as_multipart(fake: FakeBotAPI, bot: Bot) -> None:
    audio = b"OggS" + bytes(range(256)) * 4  # binary, not text
    await bot.send_voice(ANA, InputFile(audio, filename="asilo.ogg"), caption="Escuchá")
    [call] = fake.of("sendVoice")
    assert call.files["voice"] == audio
    assert call.params["caption"] == "Escuchá" and call.chat_id == ANA


async def test_429_becomes_retry_after(fake: FakeBotAPI, bot: Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ANA, "hola")
    assert "7" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_becomes_a_network_error(fake: FakeBotAPI, bot: Bot, status: int) -> None:
    fake.fail_next("sendMessage", status)
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(ANA, "hola")
    assert not isinstance(caught.value, BadRequest)
    assert (await bot.send_message(ANA, "otra vez")).text == "otra vez"  # the next call is fine


async def test_a_slow_answer_times_out(fake: FakeBotAPI) -> None:
    http = SharedSession()
    request = AiohttpRequest(http, read_timeout=0.1)
    async with bot_for(fake.base, request) as bot:  # type: ignore[attr-defined]
        fake.delays[ANA] = 1.0
        with pytest.raises(TimedOut):
            await bot.send_message(ANA, "hola")
        with pytest.raises(TimedOut):
            await bot.send_message(ANA, "hola", read_timeout=0.05)  # a per-call timeout wins too


async def test_a_long_poll_waits_longer_than_the_read_timeout(fake: FakeBotAPI) -> None:
    http = SharedSession()
    request = AiohttpRequest(http, read_timeout=0.1)
    async with bot_for(fake.base, request) as bot:  # type: ignore[attr-defined]
        updates = await bot.get_updates(timeout=0.25)  # PTB adds the poll's length to the read timeout
    assert updates == ()
    assert fake.of("getUpdates")


async def test_nobody_listening_is_a_network_error() -> None:
    http = SharedSession()
    request = AiohttpRequest(http)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{free_port()}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
    assert "aiohttp" in str(caught.value)


async def test_a_refused_token_is_invalid_token(fake: FakeBotAPI) -> None:
    http = SharedSession()
    with pytest.raises(InvalidToken):
        async with Bot("654321:" + "x" * 35, base_url=f"{fake.base}/bot", request=AiohttpRequest(http)):  # type: ignore[attr-defined]
            pass


async def test_not_initialized_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest(SharedSession()).do_request("http://127.0.0.1:9/", "POST")


async def test_shutting_down_twice_closes_the_session_once() -> None:
    http = SharedSession()
    first, second = AiohttpRequest(http), AiohttpRequest(http)
    await first.initialize()
    await second.initialize()
    await first.shutdown()
    await first.shutdown()  # PTB may do this
    assert http.is_open, "the other request still uses it"
    await second.shutdown()
    assert not http.is_open
