"""Logging that never writes a raw user id, a phone number or what someone wrote, at any level.

`setup` is called once by the CLI. It puts one filter on the root logger's handlers, so
every record that reaches a log file passes it, whichever library made it:

- Library loggers (python-telegram-bot, httpx, uvicorn's access log, aiosqlite, …) are
  kept at WARNING: at DEBUG they print whole updates, request URLs and query results.
  `PREGUNTA_LOG_LIBRARIES=true` lets them through at the chosen level, for a test bot
  (never the database drivers', which echo stored texts).
- In every record that remains, runs of seven digits or more (user and chat ids,
  WhatsApp numbers, DPI), phone numbers written in groups, and the quoted values of
  fields such as `text=` or `"first_name":` are replaced, in the message and in the
  traceback.

Knows nothing of channels; `bot.channels.telegram` still takes its token out of its own
records before they get here.
"""

from __future__ import annotations

import logging
import re

__all__ = ["LIBRARIES", "PrivateRecords", "redact", "setup"]

# Loggers of the libraries we run, kept at WARNING unless the opt-in says otherwise.
LIBRARIES = (
    "telegram",
    "httpx",
    "httpcore",
    "hpack",
    "h11",
    "h2",
    "aiohttp",
    "asyncio",
    "uvicorn.access",
    "aiosqlite",
    "watchfiles",
    "apscheduler",
)
# … and these even with it: they echo SQL parameters, which hold the stored (scrubbed) texts.
_DATABASE = ("aiosqlite", "asyncpg")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_DIGITS = re.compile(r"(?<![A-Za-z0-9])[+-]?\d{7,}(?![A-Za-z0-9])")
_GROUPED_PHONE = re.compile(r"(?<![\w.:/-])\+?(?:\d{1,4}[ -])?\(?\d{3,4}\)?[ -]\d{4}(?![\w-])")
_TEXT_FIELDS = re.compile(
    r"""(\b(?:text|caption|first_name|last_name|full_name|username|name|body|phone_number|wa_id|title|query|data|bio)\b"""
    r"""['"]?\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
)


def redact(text: str) -> str:
    """`text` without digit runs that may be ids or phones, and without quoted message fields."""
    text = _TEXT_FIELDS.sub(r"\1'<text>'", text)
    text = _DIGITS.sub("<id>", text)
    return _GROUPED_PHONE.sub("<id>", text)


class PrivateRecords(logging.Filter):
    """On a handler: drops library records below WARNING (unless `libraries`), redacts the rest."""

    def __init__(self, *, libraries: bool = False) -> None:
        super().__init__()
        self.libraries = libraries
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno < logging.WARNING
            and _is_library(record.name)
            and (not self.libraries or record.name.split(".")[0] in _DATABASE)
        ):
            return False
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: show it, redacted, rather than nothing
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def setup(level: str, *, libraries: bool = False) -> PrivateRecords:
    """Log to stderr at `level` (already validated by the settings) through the privacy filter."""
    logging.basicConfig(format=_FORMAT)  # a stderr handler, unless the root has handlers already
    root = logging.getLogger()
    root.setLevel(level.upper())
    guard = PrivateRecords(libraries=libraries)
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, PrivateRecords)]:
            handler.removeFilter(old)
        handler.addFilter(guard)
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        logger.setLevel(logging.NOTSET if libraries else logging.WARNING)
    # httpx logs request URLs, and Telegram's contain the bot token: never below WARNING.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return guard


def _is_library(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in LIBRARIES)
