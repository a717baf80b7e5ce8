"""The running service: content, conversations and channels behind one ASGI app.

`Runtime` holds what lives as long as the process, the one outbound HTTP session the
channels share included. Two apps share it: `create_app(runtime)`, the webhooks the
channels mount (/webhooks/telegram, /webhooks/whatsapp), for the internet behind a reverse
proxy; and `create_admin_app(runtime)`, /healthz and /metrics, for the operator's tools
only. `serve(settings)` runs both under one uvicorn server on two ports (PREGUNTA_PORT,
and PREGUNTA_ADMIN_PORT on loopback by default), each connection limited in number,
time and header size (`bot.http_guard`); `run(settings)` runs `serve` on uvloop where it
is installed (uvicorn's own loop setting never applies: we hand it a running loop).

/healthz says "ok", or "degraded" with `reasons` (`health_reasons`): no channel, a
WhatsApp channel without its app secret, a channel whose sends keep failing, a content
reload that failed. It answers 200 while the instance can still take messages, and 503
only when it cannot (the database is not writable), so a load balancer drops an instance
only when another would do better; docs/operations.md says more.
With `PREGUNTA_WORKERS` / `serve --workers N` above 1, `run` supervises N such processes
sharing both ports (SO_REUSEPORT) and one database (`bot.storage`, `bot.inbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.channels.base import Channel
from bot.channels.http import SharedSession
from bot.content import load_content
from bot.conversation import Conversations, FloodGuard, MemoryStates, StoredStates
from bot.errors import ContentError, SettingsError
from bot.http_guard import Limits, guarded_protocol
from bot.inbox import Inbox
from bot.log_rate import RateLimit
from bot.matcher import Matcher
from bot.metrics import Metrics, SendWatch
from bot.privacy import pseudonym_key
from bot.resources import connection_cap, open_files, return_memory_to_the_system
from bot.settings import Settings
from bot.storage import Storage, StorageUnavailable, open_storage
from bot.subscriptions import OFF_REASON, Subscriptions, subscribers_key
from bot.usage import UsageLog

__all__ = [
    "Runtime",
    "alerts_health",
    "bind",
    "create_admin_app",
    "create_app",
    "create_service",
    "health_reasons",
    "run",
    "serve",
    "storage_health",
    "supervise",
    "uvicorn_config",
]

ADMIN_CONNECTIONS = 32  # /healthz and /metrics: a monitor or two, never the public

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the server keeps between requests. Built without I/O; `start` does the I/O."""

    settings: Settings
    conversations: Conversations
    metrics: Metrics
    channels: list[Channel] = field(default_factory=list)
    http: SharedSession = field(default_factory=SharedSession)  # outbound calls of every channel
    started: bool = False
    reload_failures: int = 0
    reload_failing: bool = False  # the last reload was refused: older content is serving
    sends: SendWatch | None = None
    storage: Storage | None = None  # user states and the inbox (webhook dedup, flood counts)
    inbox: Inbox | None = None
    usage: UsageLog | None = None
    worker_index: int = 0  # which of `serve --workers N` this process is (0: the one that polls Telegram)
    _watcher: asyncio.Task[None] | None = None
    _stop_watching: asyncio.Event = field(default_factory=asyncio.Event)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        content = load_content(settings.pregunta_content, serve_drafts=set(settings.pregunta_serve_drafts))
        metrics = Metrics()
        conversations = Conversations(
            Matcher(content),
            MemoryStates(),
            pseudonym_key=pseudonym_key(settings),
            flood=FloodGuard(settings.pregunta_flood_messages, settings.pregunta_flood_seconds),
            metrics=metrics,
        )
        runtime = cls(settings, conversations, metrics, sends=SendWatch(metrics))
        runtime.worker_index = int(os.environ.get("PREGUNTA_WORKER_INDEX", "0") or 0)
        runtime.channels = _channels(settings, conversations, metrics, runtime.http)
        return runtime

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        # The database first: a chosen language survives restarts, an accepted message is
        # stored before it is acknowledged, and every turn is logged before any channel
        # takes a message. Messages left pending by a previous run are answered first.
        settings = self.settings
        self.storage = await open_storage(settings.pregunta_db, wait=settings.pregunta_db_wait)
        self.conversations.states = StoredStates(self.storage, wait=settings.pregunta_db_wait)
        # Alerts: subscriptions live in the same database, their addresses under a key of their own.
        self.conversations.subscriptions = Subscriptions(self.storage, subscribers_key(settings), pseudonym_key(settings))
        if not self.conversations.subscriptions.enabled:
            log.warning("%s (people who ask are told so); set it to let people subscribe", OFF_REASON)
        self.inbox = Inbox(
            self.storage,
            flood_messages=settings.pregunta_flood_messages,
            flood_seconds=settings.pregunta_flood_seconds,
            lease=settings.pregunta_inbox_lease,
            put_wait=settings.pregunta_db_wait,
        )
        self.usage = UsageLog(settings.pregunta_db, retention_days=settings.pregunta_retention_days if self.worker_index == 0 else None)
        await self.usage.start()
        self.conversations.usage = self.usage
        await self.http.open()  # held by the runtime too, so it outlives any one channel
        for channel in self.channels:
            handler = getattr(channel, "handle_claimed", None)
            if handler is not None:
                channel.inbox = self.inbox  # type: ignore[attr-defined]
                self.inbox.register(channel.name, handler)
            if hasattr(channel, "polls"):
                channel.polls = self.worker_index == 0  # one Telegram poller per token
            await channel.start()
            log.info("channel %s started", channel.name)
        await self.inbox.start()
        if self.sends is not None:
            self.sends.observe()  # the baseline: nothing sent, nothing given up
        self._stop_watching.clear()
        self._watcher = asyncio.create_task(self._watch_content())

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        self._stop_watching.set()
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        # Claim nothing more; replies under way get a few seconds, the rest stay in the
        # inbox (released at once for the next process) and are answered after a restart.
        if self.inbox is not None:
            drain = max((float(getattr(c, "drain_seconds", 5.0)) for c in self.channels), default=5.0)
            await self.inbox.stop(drain=drain)
        for channel in reversed(self.channels):
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", channel.name)
            if hasattr(channel, "inbox"):
                channel.inbox = None
        await self.http.close()
        # after the channels, so the replies they finished are logged; then flushed
        self.conversations.usage = None
        if self.usage is not None:
            await self.usage.close()
            self.usage = None
        self.conversations.states = MemoryStates()
        self.conversations.subscriptions = None
        self.inbox = None
        if self.storage is not None:
            await self.storage.close()
            self.storage = None

    async def reload(self) -> bool:
        """Load the content again. A broken edit keeps the last good content serving and
        logs every problem with file and line; returns whether the new content is live."""
        async with self._reloading:
            settings = self.settings
            try:
                content = await asyncio.to_thread(
                    load_content, settings.pregunta_content, serve_drafts=set(settings.pregunta_serve_drafts)
                )
                matcher = await asyncio.to_thread(Matcher, content)
            except ContentError as exc:
                self.reload_failures += 1
                self.reload_failing = True
                for issue in exc.issues:
                    log.error("content not reloaded: %s", issue)
                log.error("still serving content version %s", self.conversations.matcher.content.version)
                return False
            self.reload_failing = False
            if content.version == self.conversations.matcher.content.version:
                return True
            self.conversations.matcher = matcher
            log.info("content reloaded: version %s (%d ms)", content.version, content.load_seconds * 1000)
            return True

    async def _watch_content(self) -> None:
        """Reload when a file under content/ changes (watchfiles batches an editor's saves)."""
        from watchfiles import awatch

        try:
            async for _ in awatch(self.settings.pregunta_content, stop_event=self._stop_watching, debounce=400):
                await self.reload()
        except Exception:  # the bot goes on with the content it has
            log.exception("content watcher stopped; SIGHUP still reloads")

    def routes(self) -> list[BaseRoute]:
        """The webhooks: what the internet may reach."""
        routes: list[BaseRoute] = []
        for channel in self.channels:
            routes.extend(channel.routes())
        return routes

    def admin_routes(self) -> list[BaseRoute]:
        """/healthz and /metrics: for the operator's monitoring, on the admin port."""
        return [Route("/healthz", self._healthz), Route("/metrics", self._metrics)]

    async def _healthz(self, request: Request) -> Response:
        content = self.conversations.matcher.content
        storage, healthy = await storage_health(self)
        reasons = health_reasons(self)
        body = {
            "status": "ok" if healthy and not reasons else "degraded",
            "reasons": reasons,
            **storage,
            "content_version": content.version,
            "content_loaded_at": content.loaded_at,
            "content_load_seconds": round(content.load_seconds, 4),
            "content_reload_failures": self.reload_failures,
            "channels": [channel.name for channel in self.channels],
            "alerts": alerts_health(self),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def _metrics(self, request: Request) -> Response:
        if self.sends is not None:
            self.sends.observe()
        if self.usage is not None:
            counters = self.usage.counters()
            for state in ("written", "dropped", "failed", "queued"):
                self.metrics.usage_events.labels(state).set(getattr(counters, state))
        if self.storage is not None:
            with contextlib.suppress(StorageUnavailable):
                self.metrics.inbox_pending.set(await self.storage.pending())
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def health_reasons(runtime: Runtime) -> list[str]:
    """Why the instance is degraded though it still answers, in short lines; [] when it is not.

    The database probe stays apart (it decides between 200 and 503)."""
    settings = runtime.settings
    reasons: list[str] = []
    if not runtime.channels:
        reasons.append("no channel configured")
    if settings.whatsapp_enabled and settings.whatsapp_app_secret is None:
        reasons.append("whatsapp: WHATSAPP_APP_SECRET is not set, every webhook is refused")
    if runtime.sends is not None:
        for channel, (gave_up, sent, seconds) in sorted(runtime.sends.failing().items()):
            minutes = max(1, round(seconds / 60))
            reasons.append(f"{channel}: {gave_up} replies given up and {sent} messages sent in the last {minutes} min")
    if runtime.reload_failing:
        version = runtime.conversations.matcher.content.version
        reasons.append(f"content: the last reload failed, still serving version {version} (see the log)")
    return reasons


def alerts_health(runtime: Runtime) -> dict[str, Any]:
    """Whether people can subscribe to alerts here, and why not (a field of its own: an
    instance without the key still answers everyone, so it is not a reason to be degraded)."""
    store = runtime.conversations.subscriptions
    if store is not None and store.enabled:
        return {"subscribing": "on"}
    return {"subscribing": "off", "reason": OFF_REASON}


async def storage_health(runtime: Runtime) -> tuple[dict[str, Any], bool]:
    """The storage fields of /healthz, and whether they are healthy.

    Never probes with a write (a probe that takes the write lock undoes or blocks the
    real writers): it reports what the real writers last saw (the states and inbox
    connection, the usage log's own one) and reads the inbox's size with a short bound.
    "database" stays "ok" or the reason, as before; "storage", "inbox" are added.
    """
    storage = runtime.storage
    usage = runtime.usage
    if storage is None:
        return {"database": "not open", "storage": None, "inbox": None, "usage_log": None}, False
    writers = storage.health
    usage_health = usage.health() if usage is not None else {"status": "ok", "reason": None}
    reasons = [r for r in (writers.reason, usage_health.get("reason")) if r]
    pending: int | None
    try:
        pending = await asyncio.wait_for(storage.pending(), 0.5)
    except (StorageUnavailable, TimeoutError):
        pending = None
    inbox = runtime.inbox
    fields: dict[str, Any] = {
        "database": "ok" if not reasons else f"degraded: {reasons[0]}",
        "storage": {"kind": storage.kind, **writers.as_dict(), "usage_log": usage_health},
        "inbox": {"pending": pending, **(inbox.status() if inbox is not None else {})},
        "usage_log": dataclasses.asdict(usage.counters()) if usage is not None else None,
    }
    return fields, not reasons


def _channels(settings: Settings, conversations: Conversations, metrics: Metrics, http: SharedSession) -> list[Channel]:
    """The channels whose settings are present; the inbox (set at start) deduplicates their deliveries."""
    channels: list[Channel] = []
    if settings.telegram_enabled:
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(settings, conversations, metrics, http=http))
    if settings.whatsapp_enabled:
        from bot.channels.whatsapp import WhatsAppChannel

        channels.append(WhatsAppChannel(settings, conversations, metrics, http=http))
    return channels


def create_app(runtime: Runtime) -> Starlette:
    """The webhooks, with the runtime's start and stop as the app's lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(routes=runtime.routes(), lifespan=lifespan)
    app.state.runtime = runtime
    return app


def create_admin_app(runtime: Runtime) -> Starlette:
    """/healthz and /metrics; no lifespan of its own (the webhook app's starts the runtime)."""
    app = Starlette(routes=runtime.admin_routes())
    app.state.runtime = runtime
    return app


def create_service(runtime: Runtime, admin_port: int) -> ASGIApp:
    """Both apps as one, for one uvicorn server listening on PREGUNTA_PORT and the admin port."""
    return _ByPort(create_app(runtime), create_admin_app(runtime), admin_port)


class _ByPort:
    """One ASGI app for one uvicorn server listening on two ports: a request goes to the
    admin app when it came in on the admin port, else to the public one (which also
    gets the lifespan). So /metrics is simply not there on the webhook port."""

    def __init__(self, public: ASGIApp, admin: ASGIApp, admin_port: int) -> None:
        self.public = public
        self.admin = admin
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        on_admin = scope["type"] != "lifespan" and server is not None and server[1] == self.admin_port
        await (self.admin if on_admin else self.public)(scope, receive, send)


def uvicorn_config(app: ASGIApp, settings: Settings, *, public_port: int, admin_port: int, max_connections: int) -> uvicorn.Config:
    """uvicorn with every limit a server facing the internet needs (see `bot.http_guard`)."""
    timeout = settings.pregunta_client_timeout
    limits = {
        public_port: Limits(max_connections, timeout, timeout + 1.0),  # + 1: the app's own body timeout answers 408 first
        admin_port: Limits(ADMIN_CONNECTIONS, timeout, timeout + 1.0),
    }
    protocol = guarded_protocol(limits)
    if protocol is None:
        log.warning("httptools is not installed: connections are served without the header and body timeouts")
    return uvicorn.Config(
        app,
        http=protocol or "h11",
        limit_concurrency=max_connections + ADMIN_CONNECTIONS + 1,  # requests in flight: a backstop to the caps
        timeout_keep_alive=max(1, round(settings.pregunta_keep_alive)),
        h11_max_incomplete_event_size=16 * 1024,
        log_level=settings.pregunta_log_level.lower(),
        log_config=None,  # uvicorn's records go to the root handlers, through bot.logs' filter
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def bind(host: str, port: int, setting: str = "PREGUNTA_PORT", *, reuse_port: bool = False) -> socket.socket:
    """Bind before anything starts, so a port in use is one clear line, not a traceback.

    With `reuse_port`, several processes bind the same port and the kernel spreads the
    connections among them (`serve --workers`).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # With the protocol named, asyncio sets TCP_NODELAY on accepted connections; without
    # it every two-part response waited ~40 ms for the peer's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"{setting} {port} is already in use on {host}") from None
        raise SettingsError(f"{setting}: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or Ctrl-C; channels stop and queues flush before returning."""
    runtime = Runtime.build(settings)
    shared = _WORKER_ENV in os.environ  # one of `serve --workers`: the ports are shared
    sock = bind(settings.pregunta_host, settings.pregunta_port, reuse_port=shared)
    try:
        admin = bind(settings.pregunta_admin_host, settings.pregunta_admin_port, "PREGUNTA_ADMIN_PORT", reuse_port=shared)
    except SettingsError:
        sock.close()
        raise
    public_port, admin_port = sock.getsockname()[1], admin.getsockname()[1]
    files = open_files()
    cap = connection_cap(settings.pregunta_max_connections, files)
    if cap < settings.pregunta_max_connections:
        log.warning("PREGUNTA_MAX_CONNECTIONS lowered to %d: the process may open %s files", cap, files)
    return_memory_to_the_system()
    quiet = RateLimit()
    quiet.install()
    # uvicorn re-raises the signal that stopped it once it is done; by then the lifespan
    # has stopped the channels and flushed the log, so that echo must not kill us.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        await runtime.start()
        app = create_service(runtime, admin_port)
        config = uvicorn_config(app, settings, public_port=public_port, admin_port=admin_port, max_connections=cap)
        server = uvicorn.Server(config)
        if previous:  # the main thread: SIGHUP reloads the content, as daemons do
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(runtime.reload()))
        log.info(
            "listening on http://%s:%d (webhooks) and http://%s:%d (/healthz, /metrics), worker %s",
            settings.pregunta_host, public_port, settings.pregunta_admin_host, admin_port,
            runtime.inbox.worker if runtime.inbox else "-",
        )  # fmt: skip
        await server.serve(sockets=[sock, admin])
    finally:
        await runtime.stop()
        sock.close()
        admin.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        quiet.flush(log)
        quiet.remove()


def run(settings: Settings) -> None:
    """`serve(settings)` to the end, on uvloop when it is installed (Linux, macOS); with
    more than one worker, `supervise` them instead."""
    if settings.pregunta_workers > 1 and _WORKER_ENV not in os.environ:
        supervise(settings)
        return
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
        return
    uvloop.run(serve(settings))


def _ignore(signum: int, frame: object) -> None:
    log.info("stopped by signal %d", signum)


# -- several processes on one port -------------------------------------------------------

_WORKER_ENV = "PREGUNTA_WORKER_INDEX"


def supervise(settings: Settings) -> None:
    """Run `settings.pregunta_workers` server processes on one port until SIGTERM or Ctrl-C.

    Each worker is `pregunta serve` with PREGUNTA_WORKER_INDEX set: it binds the port with
    SO_REUSEPORT, so the kernel spreads connections among them, and shares the database
    (state, inbox, flood counts) with the others. Worker 0 alone polls Telegram and
    purges. The parent checks the port first (one clear line when it is taken), restarts
    a worker that dies (waiting longer after each quick death, up to a minute), forwards SIGHUP, and on SIGTERM stops
    them all and waits for them (each finishes or hands back what it holds).
    """
    count = settings.pregunta_workers
    probe = bind(settings.pregunta_host, settings.pregunta_port, reuse_port=True)  # port in use: SettingsError now
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    def reload(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGHUP)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hup = signal.signal(signal.SIGHUP, reload)
    children: list[subprocess.Popen[bytes]] = []
    started: list[float] = []
    failures = [0] * count
    try:
        for index in range(count):
            children.append(_spawn(index))
            started.append(time.monotonic())
        log.info("supervising %d workers on %s:%d", count, settings.pregunta_host, settings.pregunta_port)
        while not stopping.wait(0.2):
            for index, child in enumerate(children):
                if child.poll() is not None and not stopping.is_set():
                    # a worker that dies at once again and again (a broken database, a
                    # setting) waits longer each time, so a crash loop never eats the machine
                    quick = time.monotonic() - started[index] < _STEADY
                    failures[index] = failures[index] + 1 if quick else 0
                    wait = min(_MAX_BACKOFF, 2.0 ** failures[index]) if quick else 0.0
                    log.error("worker %d exited with %s; starting it again in %.0f s", index, child.returncode, wait)
                    if wait and stopping.wait(wait):
                        break
                    children[index] = _spawn(index)
                    started[index] = time.monotonic()
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("a worker did not stop within 30 s of SIGTERM: killed")
                child.kill()
                child.wait()
        probe.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.signal(signal.SIGHUP, previous_hup)


_STEADY = 30.0  # a worker that ran this long died of something new: start it again at once
_MAX_BACKOFF = 60.0


def _spawn(index: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, _WORKER_ENV: str(index)}
    return subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env)
