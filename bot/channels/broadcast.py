"""Business-initiated sends: one alert to many people, at each platform's pace.

A `Courier` per platform sends one prepared text to one address and says what a failure
means for that person, from tables of the platform's errors (`base.translate`):

- `retry`: the platform refused it for now (429, 5xx, a connection that never opened):
  it was not delivered, so it may be tried again, after `retry_after` when one is given;
- `unsubscribed`: the person blocked the bot or cannot be reached on this platform
  (Telegram 403, "chat not found"; WhatsApp `whatsapp_graph.UNREACHABLE`);
- `unknown`: the request may have arrived (a timeout after sending, a dropped connection):
  never sent again, since an alert must not arrive twice;
- `abort`: our token, account or template is wrong: every further send would fail;
- `failed`: anything else, this person only.

`TokenBucket` keeps the pace (Telegram about 30 messages a second; WhatsApp 80 by default
per business number) and every sender waits out a 429's Retry-After together. Telegram
goes through python-telegram-bot on the project's aiohttp request class; WhatsApp through
`GraphClient`, as an approved template (Meta refuses free text to someone who has not
written in 24 hours). Knows nothing of alerts, subscriptions or the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import RetryPolicy, translate
from bot.channels.http import SharedSession
from bot.channels.telegram_format import render_html
from bot.channels.telegram_request import AiohttpRequest
from bot.channels.whatsapp_graph import ACCOUNT_CODES, UNREACHABLE, GraphClient, GraphError
from bot.channels.whatsapp_payloads import template_message
from bot.errors import SettingsError

__all__ = ["RATES", "Courier", "Outcome", "TelegramCourier", "TokenBucket", "WhatsAppCourier", "never_connected"]

RATES = {"telegram": 30.0, "whatsapp": 80.0}  # messages per second: Telegram's broadcast limit, Meta's default throughput


@dataclass(frozen=True)
class Outcome:
    """What one failed send means: see the module's docstring."""

    kind: str  # "retry", "unsubscribed", "unknown", "abort", "failed"
    detail: str  # an error code or short reason: never an address
    retry_after: float | None = None


class TokenBucket:
    """`rate` sends a second, at most `burst` at once; `pause` holds every sender (a 429)."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._until = 0.0  # paused until then
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._until = max(self._until, self._clock() + seconds)
        self._tokens = 0.0

    async def take(self) -> None:
        async with self._lock:  # one waiter at a time: the order they came in
            while True:
                now = self._clock()
                if now < self._until:
                    await asyncio.sleep(self._until - now)
                    continue
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


class Courier(Protocol):
    name: str
    rate: float

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, address: str, text: str) -> None:
        """Send `text` (as prepared by `prepare`); raises the platform's error."""
        ...

    def prepare(self, title: str, text: str, footer: str) -> str: ...

    def outcome(self, exc: Exception) -> Outcome | None:
        """What a failure means, or None when it is not the platform's (a bug: let it raise)."""
        ...


def never_connected(exc: BaseException) -> bool:
    """The request never left this machine (no connection), so it cannot have been delivered."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | ConnectionRefusedError)


# -- Telegram ------------------------------------------------------------------------------


def _retry_after(exc: RetryAfter) -> Outcome:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    return Outcome("retry", "429", seconds)


def _bad_request(exc: BadRequest) -> Outcome:
    if "chat not found" in str(exc).lower():  # a deleted account, or a chat id that never was
        return Outcome("unsubscribed", "400 chat not found")
    return Outcome("failed", "400")


def _network(exc: NetworkError) -> Outcome:
    if exc.__cause__ is None or never_connected(exc):  # Telegram answered 5xx, or we never connected
        return Outcome("retry", "network")
    return Outcome("unknown", "timeout" if isinstance(exc, TimedOut) else "network")


_TELEGRAM: dict[type[BaseException], Callable[[Any], Outcome]] = {
    RetryAfter: _retry_after,
    Forbidden: lambda exc: Outcome("unsubscribed", "403"),  # blocked by the user, or the user was deleted
    BadRequest: _bad_request,
    InvalidToken: lambda exc: Outcome("abort", "TELEGRAM_BOT_TOKEN refused"),
    NetworkError: _network,  # TimedOut too
    TelegramError: lambda exc: Outcome("failed", type(exc).__name__),
}


class TelegramCourier:
    """Telegram through python-telegram-bot, on the process's aiohttp session."""

    name = "telegram"

    def __init__(self, token: str, base_url: str, base_file_url: str, *, http: SharedSession, rate: float | None = None) -> None:
        self.rate = rate or RATES[self.name]
        self._request = AiohttpRequest(http, read_timeout=10.0, pool_timeout=5.0)
        self._bot = Bot(token, base_url=base_url, base_file_url=base_file_url, request=self._request, get_updates_request=self._request)
        self._no_preview = LinkPreviewOptions(is_disabled=True)

    async def open(self) -> None:
        try:
            await self._bot.initialize()  # getMe: a refused token is one line before anything is sent
        except InvalidToken:
            raise SettingsError("TELEGRAM_BOT_TOKEN was refused by the Bot API") from None
        except TelegramError as exc:
            raise SettingsError(f"cannot reach the Telegram Bot API: {type(exc).__name__}") from None

    async def close(self) -> None:
        await self._bot.shutdown()

    def prepare(self, title: str, text: str, footer: str) -> str:
        return render_html(f"⚠️ *{title}*\n\n{text.strip()}\n\n{footer}")

    async def send(self, address: str, text: str) -> None:
        await self._bot.send_message(int(address), text, parse_mode=ParseMode.HTML, link_preview_options=self._no_preview)

    def outcome(self, exc: Exception) -> Outcome | None:
        return translate(exc, _TELEGRAM)


# -- WhatsApp ------------------------------------------------------------------------------


def _graph(exc: GraphError) -> Outcome:
    code = exc.code
    detail = str(code if code is not None else exc.status or "network")
    if code in UNREACHABLE:
        return Outcome("unsubscribed", detail)
    if code in ACCOUNT_CODES or exc.status == 401:
        return Outcome("abort", str(exc))
    if exc.retryable and exc.status is not None:  # 429, 5xx, Meta's throughput codes: not delivered
        return Outcome("retry", detail, exc.retry_after)
    if exc.status is None:  # no answer from Meta
        return Outcome("retry", "network") if never_connected(exc) else Outcome("unknown", "network")
    return Outcome("failed", detail)


class WhatsAppCourier:
    """WhatsApp through our Graph API client, as the approved template WHATSAPP_ALERT_TEMPLATE."""

    name = "whatsapp"

    def __init__(
        self, base_url: str, phone_number_id: str, token: str, template: str, template_lang: str, *,
        http: SharedSession, rate: float | None = None,
    ) -> None:  # fmt: skip
        self.rate = rate or RATES[self.name]
        self.template = template
        self.template_lang = template_lang
        self._graph = GraphClient(base_url, phone_number_id, token, http=http, retry=RetryPolicy(attempts=1))

    async def open(self) -> None:
        await self._graph.open()

    async def close(self) -> None:
        await self._graph.close()

    def prepare(self, title: str, text: str, footer: str) -> str:
        return " ".join(f"⚠️ {title}: {text} {footer}".split())  # one line: a template parameter

    async def send(self, address: str, text: str) -> None:
        await self._graph.send(template_message(address, self.template, self.template_lang, [text]), attempts=1)

    def outcome(self, exc: Exception) -> Outcome | None:
        return _graph(exc) if isinstance(exc, GraphError) else None
