"""python-telegram-bot's requests over the process's aiohttp session instead of httpx.

PTB lets an application bring its own `telegram.request.BaseRequest`; `do_request` is
the one method that does HTTP. This one sends form-encoded parameters (multipart when a
file goes with them, as for voice notes), maps PTB's four timeouts onto aiohttp's, and
turns aiohttp's failures into PTB's `TimedOut` and `NetworkError` through a table, so the
Bot API errors (`BaseRequest._request_wrapper`) and our channel's retries work unchanged.

Two of these serve a bot: one for its calls and one for getUpdates, whose long poll PTB
gives a read timeout of the poll's length plus this request's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.channels.base import translate
from bot.channels.http import SharedSession

__all__ = ["AiohttpRequest"]

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _connect_timed_out(exc: BaseException) -> TelegramError:
    return TimedOut("Timed out connecting to the Bot API, or waiting for a free connection in the pool")


def _timed_out(exc: BaseException) -> TelegramError:
    return TimedOut()


def _network(exc: BaseException) -> TelegramError:
    return NetworkError(f"aiohttp.{type(exc).__name__}: {exc}")


# aiohttp's failures as PTB's errors; the most specific class of the exception wins.
_ERRORS: dict[type[BaseException], Callable[[Any], TelegramError]] = {
    aiohttp.ConnectionTimeoutError: _connect_timed_out,
    aiohttp.SocketTimeoutError: _timed_out,
    TimeoutError: _timed_out,
    aiohttp.ClientError: _network,
    OSError: _network,
}


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on a `SharedSession`; timeouts in seconds, None for no limit."""

    __slots__ = ("_connect", "_http", "_media_write", "_opened", "_pool", "_read", "_write")

    def __init__(
        self,
        http: SharedSession,
        *,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._http = http
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._opened = False

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if not self._opened:
            await self._http.open()
            self._opened = True

    async def shutdown(self) -> None:
        if self._opened:  # PTB may shut a request down more than once
            self._opened = False
            await self._http.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP exchange: (status, body). Errors below HTTP become TimedOut or NetworkError."""
        if not self._opened:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        write = (self._media_write if files else self._write) if isinstance(write_timeout, DefaultValue) else write_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        timeout = _timeout(read, write, connect, pool)
        data: Any = None
        headers = {"User-Agent": self.USER_AGENT}
        if files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():  # type: ignore[union-attr]
                form.add_field(name, value)
            for name, (filename, content, mime) in files.items():
                form.add_field(name, content, filename=filename, content_type=mime)
            data = form
        elif request_data is not None and request_data.json_parameters:
            data = request_data.url_encoded_parameters()
            headers.update(_FORM)
        try:
            async with self._http.session.request(method, url, data=data, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except Exception as exc:
            error = translate(exc, _ERRORS)
            if error is None:
                raise
            raise error from exc


@functools.lru_cache(maxsize=64)
def _timeout(read: float | None, write: float | None, connect: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    """PTB's timeouts in aiohttp's terms.

    aiohttp has no write timeout: the whole exchange is bounded by the sum of the four
    (when all are set), which is what PTB's separate limits add up to at worst.
    """
    parts = (read, write, connect, pool)
    total = sum(p for p in parts if p is not None) if all(p is not None for p in parts) else None
    acquire = (pool or 0.0) + connect if connect is not None else None  # wait for a pooled connection, then connect
    return aiohttp.ClientTimeout(total=total, connect=acquire, sock_connect=connect, sock_read=read)
