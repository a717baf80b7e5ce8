"""The three Graph API calls the WhatsApp channel makes, over an httpx client of our own.

We send messages, upload audio and mark messages as read: POST `{base}/{phone_number_id}/
messages` and `/media`. For that surface we chose a small client of our own over pywa:

- the base URL is a setting (WHATSAPP_API_BASE_URL), so the tests aim it at a loopback
  fake and staging at a proxy; the issue notes pywa fixes it in code;
- the retry policy is ours: which Graph errors are worth retrying (429, 130429, 5xx,
  network), with what backoff, counted in our metrics, and 131047 never retried;
- errors surface as `GraphError` (a `ChannelError` with `retryable`) instead of being
  swallowed by a framework's handler dispatch, which pywa would also bring on top of the
  webhook server and dialogue we already have;
- outbound HTTP ignores proxy variables (`trust_env=False`) and the token stays in a
  header we never log;
- one dependency fewer, and the tests pass a transport or a fake server, no patching.

Knows nothing of replies or the dialogue: it moves JSON and files.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.errors import ChannelError

__all__ = ["OUTSIDE_WINDOW", "GraphClient", "GraphError", "RetryPolicy"]

log = logging.getLogger(__name__)

OUTSIDE_WINDOW = 131047  # more than 24 hours since the user last wrote: only templates may go out

# Graph error codes worth another try (besides HTTP 429 and 5xx):
_THROTTLED = frozenset({4, 17, 32, 613, 80007, 130429, 131056})  # app, account, throughput, pair rate limits
_TRANSIENT = frozenset({1, 2, 131000, 131016, 133004})  # unknown error, service unavailable


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


@dataclass
class RetryPolicy:
    """How hard to try: `attempts` in all, waiting `base`·2ⁿ seconds (jittered, at most `cap`) between them."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0

    def delay(self, retry: int, hint: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based); a server's Retry-After wins, within `cap`."""
        if hint is not None:
            return min(self.cap, max(0.0, hint))
        return min(self.cap, self.base * 2**retry) * random.uniform(0.5, 1.0)


class GraphClient:
    """Calls to one phone number's endpoints. `open()` makes the HTTP client, `close()` ends it."""

    def __init__(
        self,
        base_url: str,
        phone_number_id: str,
        token: str,
        *,
        retry: RetryPolicy | None = None,
        concurrency: int = 16,
        timeout: float = 15.0,
        on_retry: Callable[[], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/{phone_number_id}"
        self.retry = retry or RetryPolicy()
        self._token = token
        self._timeout = httpx.Timeout(timeout, connect=5.0)
        self._slots = asyncio.Semaphore(concurrency)  # requests in flight at once, across all users
        self._on_retry = on_retry or (lambda: None)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False,
                verify=_tls(),
                timeout=self._timeout,
                transport=self._transport,
                headers={"Authorization": f"Bearer {self._token}"},
            )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, payload: dict[str, Any], *, attempts: int | None = None) -> str:
        """POST one message; returns its wamid ("" for a read receipt)."""
        data = await self._call("messages", attempts=attempts, json=payload)
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id", ""))
        return ""

    async def upload(self, path: Path, mime: str) -> str:
        """Upload a media file; returns the media id Meta keeps for 30 days."""
        content = await asyncio.to_thread(path.read_bytes)
        data = await self._call(
            "media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (path.name, content, mime)},
        )
        media_id = data.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(f"media upload of {path.name} returned no id")
        return media_id

    async def _call(self, endpoint: str, *, attempts: int | None = None, **request: Any) -> dict[str, Any]:
        if self._client is None:
            raise GraphError("the WhatsApp channel is not started")
        tries = max(1, attempts or self.retry.attempts)
        for attempt in range(tries):
            try:
                async with self._slots:
                    response = await self._client.post(f"{self.base}/{endpoint}", **request)
                if response.is_success:
                    return _json(response)
                error = _error(response)
            except httpx.TransportError as exc:  # refused, reset, timed out: Meta never saw it or never answered
                error = GraphError(f"Graph API unreachable ({type(exc).__name__})", retryable=True)
            if not error.retryable or attempt == tries - 1:
                raise error
            self._on_retry()
            wait = self.retry.delay(attempt, error.retry_after)
            log.info("Graph API %s failed (%s); retry %d of %d in %.2fs", endpoint, error, attempt + 1, tries - 1, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


@functools.cache
def _tls() -> ssl.SSLContext:
    """The CA bundle loads once per process (about 0.1 s), not once per client."""
    return httpx.create_ssl_context(trust_env=False)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(response: httpx.Response) -> GraphError:
    """Meta's error body, `{"error": {"message", "code", "error_data": {"details"}}}`, as a GraphError."""
    status = response.status_code
    body = _json(response).get("error")
    error = body if isinstance(body, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = str(error.get("message") or response.reason_phrase or "error")[:200]
    data = error.get("error_data")
    details = str(data.get("details", ""))[:300] if isinstance(data, dict) else ""
    retryable = status == 429 or status >= 500 or code in _THROTTLED or code in _TRANSIENT
    text = f"HTTP {status}" + (f" code {code}" if code is not None else "") + f": {message}"
    if details:
        text += f" ({details})"
    return GraphError(text, status=status, code=code, retryable=retryable, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
