"""The process's one outbound HTTP client: an aiohttp session over a sized keep-alive pool.

The Graph API client and python-telegram-bot's requests (`telegram_request`) share it, so
a process keeps one pool of warm connections per API host, loads the CA bundle once and
pays aiohttp's cost per call (about 0.4 ms of CPU here, against 2–5 ms for httpx; see
docs/performance.md). Proxy variables are ignored (`trust_env=False`): the environment
must not reroute the bot's traffic, and tests aim at loopback fakes through settings.

Whoever uses the session opens it and closes it again; the last close ends it. Knows
nothing of any API.
"""

from __future__ import annotations

import functools
import ssl

import aiohttp

from bot.errors import ChannelError

__all__ = ["KEEPALIVE_SECONDS", "POOL", "POOL_PER_HOST", "SharedSession", "tls_context"]

POOL = 128  # connections open at once, every host together
POOL_PER_HOST = 64  # per API host: calls past this wait for a connection
KEEPALIVE_SECONDS = 30.0  # an idle connection is kept this long for the next call


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's CA bundle, loaded once per process (about 0.1 s), not once per client."""
    return ssl.create_default_context()


class SharedSession:
    """An `aiohttp.ClientSession` opened by its first user and closed by its last.

    Built without I/O (a channel's constructor may make one); `open()` must run inside
    the event loop that will use it.
    """

    def __init__(self, *, limit: int = POOL, per_host: int = POOL_PER_HOST, keepalive: float = KEEPALIVE_SECONDS) -> None:
        self.limit = limit
        self.per_host = per_host
        self.keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._users = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            raise ChannelError("the outbound HTTP client is not open (the channel is not started)")
        return session

    @property
    def is_open(self) -> bool:
        return self._session is not None

    async def open(self) -> aiohttp.ClientSession:
        """Count one more user; the first one makes the session."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limit,
                limit_per_host=self.per_host,
                keepalive_timeout=self.keepalive,
                ssl=tls_context(),
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, raise_for_status=False)
        self._users += 1
        return self._session

    async def close(self) -> None:
        """Count one user fewer; the last one closes the session and its connections."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users == 0 and self._session is not None:
            session, self._session = self._session, None
            await session.close()
