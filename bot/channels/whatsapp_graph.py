"""The three Graph API calls the WhatsApp channel makes, over the process's aiohttp session.

We send messages, upload audio and mark messages as read: POST `{base}/{phone_number_id}/
messages` and `/media`. For that surface we chose a small client of our own over pywa:

- the base URL is a setting (WHATSAPP_API_BASE_URL), so the tests aim it at a loopback
  fake and staging at a proxy; the issue notes pywa fixes it in code;
- the retry policy is the channels' own (`base.RetryPolicy`): which Graph errors are
  worth retrying (429, 130429, 5xx, network), with what backoff, counted in our metrics,
  and 131047 never retried;
- errors surface as `GraphError` (a `ChannelError` with `retryable`, Meta's `code` and
  the HTTP `status`), read from two tables (HTTP failures, Meta's codes), instead of being
  swallowed by a framework's handler dispatch;
- outbound HTTP is the shared `SharedSession` (aiohttp, a keep-alive pool, proxy
  variables ignored), and the token stays in a header we never log.

Knows nothing of replies or the dialogue: it moves JSON and files.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.base import RetryPolicy, translate
from bot.channels.http import SharedSession
from bot.errors import ChannelError

__all__ = ["ACCOUNT_CODES", "META_CODES", "OUTSIDE_WINDOW", "UNREACHABLE", "GraphClient", "GraphError"]

log = logging.getLogger(__name__)

OUTSIDE_WINDOW = 131047  # more than 24 hours since the user last wrote: only templates may go out
# The person cannot or will not get our messages: a subscription to alerts ends. 131026: not a
# WhatsApp number, terms not accepted, an app too old, or (Meta does not say which) a user who
# blocked the business; 131050: they turned off marketing messages from us. Not 131047 (the
# 24-hour window: a template goes out anyway), not 131049 (Meta held it back this time), not
# 131051 (a message type WhatsApp does not support: our mistake, not theirs).
UNREACHABLE = frozenset({131026, 131050})
# Our account, token or template is wrong: every further message would fail the same way.
ACCOUNT_CODES = frozenset({10, 190, 200, 368, 131031, 131042, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068, 132069})

# Meta's error codes we know: (worth another try, what it means for whoever reads the log).
META_CODES: dict[int, tuple[bool, str]] = {
    1: (True, "Meta had an unknown error"),
    2: (True, "the Graph API is unavailable for a moment"),
    4: (True, "the app's request limit was reached"),
    17: (True, "the account's request limit was reached"),
    32: (True, "the page's request limit was reached"),
    613: (True, "too many calls in a short time"),
    80007: (True, "the WhatsApp Business Account's rate limit was reached"),
    130429: (True, "the phone number's throughput limit was reached"),
    131000: (True, "something went wrong at Meta"),
    131016: (True, "the service is overloaded"),
    131056: (True, "too many messages to this person in a short time"),
    133004: (True, "the server is temporarily unavailable"),
    OUTSIDE_WINDOW: (False, "outside the 24-hour window: the person last wrote more than a day ago"),
    131026: (False, "undeliverable: not a WhatsApp number, terms not accepted, an app too old, or the business blocked"),
    131050: (False, "the person stopped marketing messages from this business"),
    131049: (False, "Meta did not deliver it this time, to keep engagement healthy"),
    131031: (False, "the WhatsApp Business Account is locked"),
    131042: (False, "a payment problem on the WhatsApp Business Account"),
    368: (False, "the account is temporarily blocked for a policy violation"),
    132000: (False, "the template's parameters do not match its placeholders"),
    132001: (False, "the template does not exist in that language (WHATSAPP_ALERT_TEMPLATE, WHATSAPP_ALERT_TEMPLATE_LANG)"),
    132005: (False, "the template's text is too long once filled in"),
    132007: (False, "the template breaks a formatting rule"),
    132012: (False, "a template parameter has the wrong format"),
    132015: (False, "the template is paused for low quality"),
    132016: (False, "the template is disabled"),
    131051: (False, "a message type WhatsApp does not support"),
    131009: (False, "a parameter WhatsApp refuses (a field too long or missing)"),
    100: (False, "an invalid parameter"),
    190: (False, "the access token (WHATSAPP_TOKEN) is invalid or expired"),
    10: (False, "the app lacks a permission"),
    200: (False, "the app lacks a permission"),
}


class GraphError(ChannelError):
    """The Graph API refused or failed a call. `code` is Meta's error code when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.status = status
        self.code = code


def _unreachable(exc: BaseException) -> GraphError:
    return GraphError(f"Graph API unreachable ({type(exc).__name__})", retryable=True)


def _too_slow(exc: BaseException) -> GraphError:
    return GraphError("Graph API did not answer in time", retryable=True)


# Failures below HTTP: Meta never saw the call or never answered; both worth another try.
_TRANSPORT: dict[type[BaseException], Callable[[Any], GraphError]] = {
    aiohttp.ClientError: _unreachable,
    OSError: _unreachable,
    TimeoutError: _too_slow,
}


class GraphClient:
    """Calls to one phone number's endpoints. `open()` joins the HTTP session, `close()` leaves it."""

    def __init__(
        self,
        base_url: str,
        phone_number_id: str,
        token: str,
        *,
        http: SharedSession | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 15.0,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/{phone_number_id}"
        self.retry = retry if retry is not None else RetryPolicy()
        self._http = http if http is not None else SharedSession()
        self._auth = f"Bearer {token}"
        self._json_headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=5.0)
        self._on_retry = on_retry
        self._opened = False

    async def open(self) -> None:
        if not self._opened:
            await self._http.open()
            self._opened = True

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self._http.close()

    async def send(self, payload: dict[str, Any], *, attempts: int | None = None) -> str:
        """POST one message; returns its wamid ("" for a read receipt)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        data = await self._call("messages", lambda: body, self._json_headers, attempts)
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id", ""))
        return ""

    async def upload(self, path: Path, mime: str) -> str:
        """Upload a media file; returns the media id Meta keeps for 30 days."""
        content = await asyncio.to_thread(path.read_bytes)

        def form() -> aiohttp.FormData:  # a FormData is spent once sent: one per attempt
            data = aiohttp.FormData()
            data.add_field("messaging_product", "whatsapp")
            data.add_field("type", mime)
            data.add_field("file", content, filename=path.name, content_type=mime)
            return data

        data = await self._call("media", form, {"Authorization": self._auth}, None)
        media_id = data.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(f"media upload of {path.name} returned no id")
        return media_id

    async def _call(
        self, endpoint: str, body: Callable[[], Any], headers: dict[str, str], attempts: int | None
    ) -> dict[str, Any]:
        url = f"{self.base}/{endpoint}"
        return await self.retry.run(
            lambda: self._post(url, body(), headers), what=f"Graph API {endpoint}", attempts=attempts, on_retry=self._on_retry
        )

    async def _post(self, url: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        if not self._opened:
            raise GraphError("the WhatsApp channel is not started")
        try:
            async with self._http.session.post(url, data=body, headers=headers, timeout=self._timeout) as response:
                status = response.status
                raw = await response.read()
                if 200 <= status < 300:
                    return _json(raw)
                raise _error(status, response.reason or "", raw, response.headers.get("Retry-After"))
        except GraphError:
            raise
        except Exception as exc:
            error = translate(exc, _TRANSPORT)
            if error is None:
                raise
            raise error from exc


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(status: int, reason: str, raw: bytes, retry_after: str | None) -> GraphError:
    """Meta's error body, `{"error": {"message", "code", "error_data": {"details"}}}`, as a GraphError."""
    body = _json(raw).get("error")
    error = body if isinstance(body, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = str(error.get("message") or reason or "error")[:200]
    data = error.get("error_data")
    details = str(data.get("details", ""))[:300] if isinstance(data, dict) else ""
    known = META_CODES.get(code) if code is not None else None
    retryable = status == 429 or status >= 500 or (known is not None and known[0])
    text = f"HTTP {status}" + (f" code {code}" if code is not None else "") + f": {message}"
    if details:
        text += f" ({details})"
    if known is not None:
        text += f": {known[1]}"
    return GraphError(text, status=status, code=code, retryable=retryable, retry_after=_seconds(retry_after))


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
