"""Issue 15.6: at any log level, no raw user id, phone number or message text reaches the log.

`pregunta serve` runs at DEBUG against the fake Bot API and its stderr is scanned; the
filter is also driven in-process on records shaped like the libraries' own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from telegram.error import ChatMigrated

from bot import logs
from bot.channels.telegram import TelegramChannel
from bot.conversation import Conversations, MemoryStates
from bot.matcher import Matcher
from bot.metrics import Metrics
from tests.channels.test_telegram import fake, say, serve, serve_env, settings_for, text  # noqa: F401 - `fake` is a fixture
from tests.conftest import ROOT
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")

USER = 734129856  # a Telegram user id as they look: nine or ten digits
PHONE = "5555 1234"
SECRET_TEXT = "receta secreta de pepián con chirmol"


@pytest.fixture
def clean_logging() -> Iterator[list[logging.LogRecord]]:
    """A capturing handler on the root logger; every handler, filter and level put back afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {h: list(h.filters) for h in root.handlers})
    levels = {name: logging.getLogger(name).level for name in logs.LIBRARIES}
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.format(record)
            seen.append(record)

    keep = Keep()
    root.addHandler(keep)
    try:
        yield seen
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for handler, filters in saved[2].items():
            handler.filters[:] = filters
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def shown(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)


def test_library_debug_is_dropped_and_every_record_redacted(clean_logging: list[logging.LogRecord]) -> None:
    logs.setup("DEBUG")
    logging.getLogger("telegram.ext.Application").debug("Processing update %s", f"Update(message=Message(text='{SECRET_TEXT}'))")
    logging.getLogger("uvicorn.access").info('127.0.0.1:5555 - "POST /webhooks/telegram?chat=%d HTTP/1.1" 200', USER)
    logging.getLogger("aiosqlite").debug("returning [('pseudonym', '%s')]", SECRET_TEXT)
    logging.getLogger("bot.channels.whatsapp").error("reply to %s not sent: (#100) Invalid WhatsApp ID 50255501234", "wa:1a2b3c")
    logging.getLogger("bot.example").debug("chat %d wrote from +502 %s", USER, PHONE)
    try:
        raise RuntimeError(f"update from user {USER} with text='{SECRET_TEXT}' failed")
    except RuntimeError:
        logging.getLogger("bot.channels.telegram").exception("telegram update 17 failed")
    logging.getLogger("telegram.ext.Updater").warning("polling: Conflict for chat_id=%d", USER)

    out = shown(clean_logging)
    assert {r.name for r in clean_logging} == {"bot.channels.whatsapp", "bot.example", "bot.channels.telegram", "telegram.ext.Updater"}
    assert str(USER) not in out and "50255501234" not in out and "5555" not in out and "chirmol" not in out
    assert "Invalid WhatsApp ID <id>" in out and "chat <id> wrote" in out and "text='<text>'" in out
    assert "RuntimeError" in out and "telegram update 17 failed" in out  # the traceback stays, minus the id


def test_library_logs_opt_in_still_redacts(clean_logging: list[logging.LogRecord]) -> None:
    logs.setup("DEBUG", libraries=True)
    logging.getLogger("telegram.Bot").debug(
        "Calling Bot API endpoint `sendMessage` with parameters `%s`", {"chat_id": USER, "text": SECRET_TEXT}
    )
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", TOKEN)  # never below WARNING
    out = shown(clean_logging)
    assert "Calling Bot API endpoint" in out and str(USER) not in out and "chirmol" not in out
    assert "HTTP Request" not in out


async def test_a_migrated_group_is_logged_without_its_chat_id(
    fake: FakeBotAPI, tmp_path: Path, fixture_matcher: Matcher, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    """The error line that carried a raw id: python-telegram-bot's ChatMigrated text names the new chat."""
    metrics = Metrics()
    talk = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k" * 32, metrics=metrics)
    channel = TelegramChannel(settings_for(fake, tmp_path), talk, metrics)

    async def migrated() -> None:
        raise ChatMigrated(-1001234567890)

    with caplog.at_level(logging.DEBUG):
        assert await channel._attempt("sendMessage", migrated) is None
    assert "given up" in caplog.text and "1234567890" not in caplog.text


async def test_serve_at_debug_writes_no_id_phone_or_text(fake: FakeBotAPI, tmp_path: Path) -> None:  # noqa: F811
    for opt_in in ("false", "true"):
        env = serve_env(
            tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=f"{fake.base}/bot",  # type: ignore[attr-defined]
            PREGUNTA_LOG_LEVEL="DEBUG", PREGUNTA_LOG_LIBRARIES=opt_in,
        )  # fmt: skip
        process = await serve(env, tmp_path)
        try:
            await fake.wait_for("getUpdates", timeout=20)
            await say(fake, USER, text("hola", user=USER))
            await say(fake, USER, text(f"mi número es +502 {PHONE}", user=USER))
            await say(fake, USER, text(SECRET_TEXT, user=USER))
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 15)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        log = stderr.decode()
        assert process.returncode == 0, log
        assert "listening on" in log and "Traceback" not in log
        assert ("Set Bot API URL" in log) is (opt_in == "true"), "library debug lines only with the opt-in"
        for secret in (str(USER), PHONE, PHONE.replace(" ", ""), "chirmol", "pepián", "Persona"):
            assert secret not in log, (opt_in, secret)


@pytest.mark.parametrize("level", ["verbose", "5", "debugg"])
def test_an_unknown_log_level_is_one_settings_line(level: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "content", "check"], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PREGUNTA_LOG_LEVEL": level},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("pregunta: setting PREGUNTA_LOG_LEVEL") and len(done.stderr.splitlines()) == 1
    assert "is not a log level" in done.stderr and "Traceback" not in done.stderr


def test_a_log_level_in_any_case_is_accepted() -> None:
    from bot.settings import load_settings

    assert load_settings(_env_file=None, pregunta_log_level=" debug ").pregunta_log_level == "DEBUG"
