"""The reference: the least a WhatsApp bot must do per message, to measure Preguntá against.

aiohttp's server and client on uvloop. For each webhook it checks the signature, parses
the JSON, answers 200, then sends a read receipt and one text reply to the Graph API
over a keep-alive pool. No matching, no dialogue state, no database, no usage log.
`bench/e2e_bench.py` runs it beside `pregunta serve` against the same fake Graph API.

Reads the same variables as `pregunta serve`: WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID,
WHATSAPP_APP_SECRET, WHATSAPP_API_BASE_URL, PREGUNTA_HOST, PREGUNTA_PORT.
Set REFERENCE_READ_RECEIPT=0 to send the reply alone.

Usage: python bench/reference_bot.py   (stops on SIGTERM or Ctrl-C, exit code 0)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
from collections.abc import Coroutine, Mapping
from typing import Any

import aiohttp
from aiohttp import web

MAX_BODY = 1024 * 1024


class ReferenceBot:
    def __init__(self, env: dict[str, str]) -> None:
        self.secret = env["WHATSAPP_APP_SECRET"].encode()
        self.url = f"{env['WHATSAPP_API_BASE_URL'].rstrip('/')}/{env['WHATSAPP_PHONE_NUMBER_ID']}/messages"
        self.headers = {"Authorization": f"Bearer {env['WHATSAPP_TOKEN']}", "Content-Type": "application/json"}
        self.phone_id = env["WHATSAPP_PHONE_NUMBER_ID"]
        self.read_receipt = env.get("REFERENCE_READ_RECEIPT", "1") != "0"
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=128, limit_per_host=64, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def stop(self, app: web.Application) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5)
        if self.session is not None:
            await self.session.close()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def webhook(self, request: web.Request) -> web.Response:
        signature = request.headers.get("X-Hub-Signature-256", "")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="body too large")
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(body)
            for entry in data["entry"]:
                for change in entry["changes"]:
                    value = change["value"]
                    if value.get("metadata", {}).get("phone_number_id") != self.phone_id:
                        continue
                    for message in value.get("messages", []):
                        self._spawn(self.answer(message["id"], message["from"], _said(message)))
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="malformed")
        return web.Response(text="ok")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def answer(self, message_id: str, user: str, said: str) -> None:
        if self.read_receipt:
            read = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
            await self._post(read)
        reply = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": user, "type": "text",
                 "text": {"body": f"Recibido: {said[:200]}"}}  # fmt: skip
        await self._post(reply)

    async def _post(self, payload: Mapping[str, object]) -> None:
        assert self.session is not None
        async with self.session.post(self.url, data=json.dumps(payload).encode(), headers=self.headers) as response:
            await response.read()


def _said(message: dict[str, object]) -> str:
    kind = message.get("type")
    content = message.get(kind) if isinstance(kind, str) else None
    if kind == "text" and isinstance(content, dict):
        return str(content.get("body", ""))
    if kind == "interactive" and isinstance(content, dict):
        reply = content.get("button_reply") or content.get("list_reply") or {}
        return str(reply.get("id", "")) if isinstance(reply, dict) else ""
    return str(kind)


async def main() -> None:
    bot = ReferenceBot(dict(os.environ))
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/healthz", bot.healthz)
    app.router.add_post("/webhooks/whatsapp", bot.webhook)
    app.on_startup.append(bot.start)
    app.on_cleanup.append(bot.stop)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((os.environ.get("PREGUNTA_HOST", "127.0.0.1"), int(os.environ.get("PREGUNTA_PORT", "8080"))))
    site = web.SockSite(runner, sock)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
