"""uvicorn's HTTP protocol with the limits a server facing the internet needs.

uvicorn closes a connection only when it has been idle after a response
(`timeout_keep_alive`). A client that connects and sends nothing, or sends its headers a
byte at a time, or never finishes its body, keeps its connection (and a file
descriptor) for ever; enough of them and the process cannot accept anyone (issue 15:
1,100 idle connections at a 1,024-descriptor limit took the service down). httptools
also buffers a header of any size. So, per connection:

- at most `max_connections` open at once on a listening port: one more gets a 503 and
  is closed at once, so the process never runs out of descriptors;
- the request headers must arrive within `header_timeout` seconds of the connection,
  or of the first byte of the next request on a kept-alive connection (408, closed);
- the body must arrive within `body_timeout` seconds of the headers (closed);
- the headers may take at most `max_header_bytes` (431, closed).

`guarded_protocol(limits)` returns the protocol class for `uvicorn.Config(http=...)`;
limits are per local port, so the admin port keeps its own small cap whatever the
webhook port suffers. Refusals are logged at WARNING (`bot.log_rate` keeps that to a
line per interval). Where httptools is not installed (Windows, where nobody serves the
bot but staff may run `pregunta chat`) it returns None and uvicorn's h11 runs unguarded.
Knows nothing of the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["Limits", "guarded_protocol"]

log = logging.getLogger(__name__)

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 10\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

# Where a connection is in its current request; timers run only in HEAD and BODY.
_IDLE, _HEAD, _BODY, _APP = "idle", "head", "body", "app"


@dataclass(frozen=True)
class Limits:
    """What one listening port allows each client."""

    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024


def guarded_protocol(limits: dict[int, Limits], default: Limits | None = None) -> type[asyncio.Protocol] | None:
    """A protocol class enforcing `limits[local port]` (else `default`); counts are its own.
    None without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None
    fallback = default or Limits()
    open_by_port: Counter[int] = Counter()

    class Guarded(HttpToolsProtocol):
        _limits = fallback
        _port = 0
        _refused = False
        _stage = _IDLE
        _head_bytes = 0
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sockname = transport.get_extra_info("sockname")
            port = sockname[1] if isinstance(sockname, tuple) and len(sockname) > 1 else 0
            self._limits = limits.get(port, fallback)
            if open_by_port[port] >= self._limits.max_connections:
                self._refused = True
                log.warning("connection refused: %d open on port %d, the most allowed", open_by_port[port], port)
                transport.write(_BUSY)
                transport.close()
                return
            self._port = port
            open_by_port[port] += 1
            super().connection_made(transport)
            self._begin_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            open_by_port[self._port] -= 1
            self._cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._stage == _IDLE:  # the first byte of the next request on a kept-alive connection
                self._begin_head()
            if self._stage == _HEAD:
                self._head_bytes += len(data)
            super().data_received(data)
            # Bytes that completed the headers may carry the body too: only a head still
            # unfinished after this much is refused.
            if self._stage == _HEAD and self._head_bytes > self._limits.max_header_bytes and not self.transport.is_closing():
                log.warning("request refused: headers over %d bytes", self._limits.max_header_bytes)
                self._close_with(_TOO_LARGE)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._stage != _HEAD:  # a request pipelined behind one still being answered
                self._begin_head()

        def on_headers_complete(self) -> None:
            self._stage = _BODY
            self._arm(self._limits.body_timeout, self._body_expired)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._cancel()
            super().on_message_complete()
            answered = self.cycle is not None and self.cycle.response_complete  # refused before its body was read
            self._stage = _IDLE if answered else _APP

        def on_response_complete(self) -> None:
            if self._stage == _APP:  # a response sent before the body was read keeps its timer
                self._stage = _IDLE
            super().on_response_complete()

        # -- timers ----------------------------------------------------------------------

        def _begin_head(self) -> None:
            self._stage = _HEAD
            self._head_bytes = 0
            self._arm(self._limits.header_timeout, self._head_expired)

        def _arm(self, seconds: float, then: Any) -> None:
            self._cancel()
            self._timer = self.loop.call_later(seconds, then)

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _head_expired(self) -> None:
            self._timer = None
            if self._stage == _HEAD and not self.transport.is_closing():
                log.warning("connection closed: no complete request headers within %g s", self._limits.header_timeout)
                self._close_with(_TIMEOUT)

        def _body_expired(self) -> None:
            self._timer = None
            if self._stage == _BODY and not self.transport.is_closing():
                # The app may be writing a response already: close without writing.
                log.warning("connection closed: request body not received within %g s", self._limits.body_timeout)
                self.transport.close()

        def _close_with(self, response: bytes) -> None:
            self._cancel()
            self.transport.write(response)
            self.transport.close()

    return Guarded
