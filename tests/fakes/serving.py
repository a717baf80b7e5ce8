"""Run an ASGI app on a free loopback port for the length of a test (`running`), or a
`Runtime` as `pregunta serve` runs it, webhooks and admin port apart (`serving`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from bot.server import Runtime, bind, create_service, uvicorn_config

__all__ = ["free_port", "running", "serving"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running(app: ASGIApp, *, lifespan: str = "auto") -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, as in server.bind
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def serving(runtime: Runtime, *, max_connections: int | None = None) -> AsyncIterator[tuple[str, str]]:
    """The runtime as `pregunta serve` runs it, in this event loop: one uvicorn server with
    the project's limits on two loopback ports. Yields (webhook base URL, admin base URL)."""
    public, admin = bind("127.0.0.1", 0), bind("127.0.0.1", 0, "PREGUNTA_ADMIN_PORT")
    public_port, admin_port = public.getsockname()[1], admin.getsockname()[1]
    cap = max_connections or runtime.settings.pregunta_max_connections
    config = uvicorn_config(create_service(runtime, admin_port), runtime.settings, public_port=public_port, admin_port=admin_port, max_connections=cap)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[public, admin]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{public_port}", f"http://127.0.0.1:{admin_port}"
    finally:
        server.should_exit = True
        await task
        public.close()
        admin.close()
