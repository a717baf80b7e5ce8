"""A fake Telegram Bot API on loopback, for running the real Application against it.

It answers `/bot<token>/<method>` the way api.telegram.org does (`{"ok": true, "result":
...}`), accepts form-encoded, multipart and JSON bodies, records every call, serves
`getUpdates` from a queue the test pushes to (long polling included), and can be told
to fail the next calls of a method with a 429 or a 5xx. It knows nothing of Preguntá.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["BOT_ID", "BOT_USERNAME", "TOKEN", "Call", "FakeBotAPI"]

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
BOT_ID = 123456
BOT_USERNAME = "pregunta_test_bot"
_DATE = 1767225600  # 2026-01-01


@dataclass(frozen=True)
class Call:
    """One request the fake received, as the bot sent it (values are the raw form strings)."""

    method: str
    params: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200  # what the fake answered
    at: float = 0.0  # time.monotonic() when it arrived

    def json(self, name: str) -> Any:
        """A parameter that the bot JSON-encoded (reply_markup, allowed_updates, commands)."""
        return json.loads(self.params[name])

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of an inline keyboard, row by row."""
        if "reply_markup" not in self.params:
            return []
        rows = self.json("reply_markup").get("inline_keyboard", [])
        return [(button["text"], button.get("callback_data", "")) for row in rows for button in row]


@dataclass
class _Failure:
    status: int
    retry_after: int | None


class FakeBotAPI:
    """The fake server's state; `app` is the Starlette app to serve with `running()`."""

    def __init__(self, *, token: str = TOKEN, poll_cap: float = 1.0) -> None:
        self.token = token
        self.poll_cap = poll_cap  # longest a getUpdates waits, whatever timeout it asks for
        self.calls: list[Call] = []
        self.delays: dict[int, float] = {}  # chat id -> seconds each sendMessage to it takes
        self.blocked: set[int] = set()  # chats whose user blocked the bot: sendMessage answers 403
        self.gone: set[int] = set()  # chats that no longer exist: sendMessage answers 400 "chat not found"
        self._pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._chats: dict[int, dict[str, Any]] = {}
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._closed = False
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )

    # -- what tests call ------------------------------------------------------------

    async def push(self, *updates: dict[str, Any]) -> list[int]:
        """Queue updates for getUpdates, numbering them in order; returns their ids."""
        ids = []
        async with self._changed:
            for update in updates:
                update = {**update, "update_id": next(self._update_ids)}
                self._remember_chat(update)
                self._pending.append(update)
                ids.append(update["update_id"])
            self._changed.notify_all()
        return ids

    async def redeliver(self, *updates: dict[str, Any]) -> None:
        """Queue updates again under their own update_id, as Telegram does for a poller that
        stopped before confirming them (it crashed, or was killed)."""
        async with self._changed:
            for update in updates:
                self._remember_chat(update)
                self._pending.append(update)
            self._pending.sort(key=lambda u: u["update_id"])
            self._changed.notify_all()

    def remember_chat(self, update: dict[str, Any]) -> None:
        """Learn the chats of an update delivered some other way (a webhook POST)."""
        self._remember_chat(update)

    def fail_next(self, method: str, status: int = 500, *, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with an error instead of success."""
        for _ in range(times):
            self._failures[method].append(_Failure(status, retry_after))

    def of(self, method: str, *, chat_id: int | None = None, ok: bool = True) -> list[Call]:
        """Recorded calls of `method` (only the successful ones unless ok=False)."""
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == chat_id) and (not ok or c.status == 200)
        ]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        *,
        chat_id: int | None = None,
        ok: bool = True,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[Call]:
        """Wait until `count` matching calls have arrived; fail with what did arrive."""

        def found() -> list[Call]:
            calls = self.of(method, chat_id=chat_id, ok=ok)
            return [c for c in calls if where is None or where(c)]

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: len(found()) >= count)
        except TimeoutError:
            seen = [(c.method, c.status, c.params.get("text", "")[:40]) for c in self.calls]
            raise AssertionError(f"expected {count} {method} call(s), got {len(found())}; calls: {seen}") from None
        return found()

    async def close(self) -> None:
        """Release long polls so the server can stop at once."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- the HTTP side ---------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        params, files = await _read(request)
        if request.path_params["token"] != self.token:
            return await self._record(method, params, files, _error(401, "Unauthorized"))
        failures = self._failures.get(method)
        if failures:
            failure = failures.popleft()
            extra = {"retry_after": failure.retry_after} if failure.retry_after is not None else None
            text = f"Too Many Requests: retry after {failure.retry_after}" if failure.status == 429 else "Internal Server Error"
            return await self._record(method, params, files, _error(failure.status, text, extra))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return await self._record(method, params, files, _error(404, "Not Found: method not found"))
        if method == "sendMessage":
            chat = int(params.get("chat_id", 0))
            if chat in self.blocked:
                return await self._record(method, params, files, _error(403, "Forbidden: bot was blocked by the user"))
            if chat in self.gone:
                return await self._record(method, params, files, _error(400, "Bad Request: chat not found"))
            delay = self.delays.get(chat)
            if delay:
                await asyncio.sleep(delay)
        result = await handler(params)
        return await self._record(method, params, files, JSONResponse({"ok": True, "result": result}))

    async def _record(self, method: str, params: dict[str, str], files: dict[str, bytes], response: JSONResponse) -> JSONResponse:
        async with self._changed:
            self.calls.append(Call(method, params, files, response.status_code, time.monotonic()))
            self._changed.notify_all()
        return response

    async def _file(self, request: Request) -> Response:
        return Response(b"", status_code=404)

    # -- methods ------------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, str]) -> Any:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Preguntá",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, params: dict[str, str]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = min(float(params.get("timeout") or 0), self.poll_cap)

        def ready() -> list[dict[str, Any]]:
            return [u for u in self._pending if u["update_id"] >= offset][:limit]

        async with self._changed:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]  # confirmed ones go
            if timeout > 0 and not ready():
                try:
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(lambda: bool(ready()) or self._closed)
                except TimeoutError:
                    pass
            return ready()

    async def _m_sendMessage(self, params: dict[str, str]) -> Any:
        return self._message(params, text=params.get("text", ""))

    async def _m_sendVoice(self, params: dict[str, str]) -> Any:
        voice = {"file_id": "voice-file-id", "file_unique_id": "voice-unique", "duration": 3, "mime_type": "audio/ogg"}
        return self._message(params, voice=voice)

    async def _m_getWebhookInfo(self, params: dict[str, str]) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _true(self, params: dict[str, str]) -> Any:
        return True

    _m_deleteWebhook = _m_setWebhook = _m_sendChatAction = _m_answerCallbackQuery = _true
    _m_setMyCommands = _m_deleteMyCommands = _m_close = _m_logOut = _true

    def _message(self, params: dict[str, str], **body: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        chat = self._chats.get(chat_id, {"id": chat_id, "type": "private", "first_name": "Usuario"})
        sender = {"id": BOT_ID, "is_bot": True, "first_name": "Preguntá", "username": BOT_USERNAME}
        return {"message_id": next(self._message_ids), "date": _DATE, "chat": chat, "from": sender, **body}

    def _remember_chat(self, update: dict[str, Any]) -> None:
        for key in ("message", "edited_message", "callback_query"):
            message = update.get(key)
            if key == "callback_query" and message:
                message = message.get("message")
            if message and "chat" in message:
                self._chats[message["chat"]["id"]] = message["chat"]


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


async def _read(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Query string plus a form-encoded, multipart or JSON body, as strings and file bytes."""
    params = dict(request.query_params)
    files: dict[str, bytes] = {}
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json") and body:
        data = json.loads(body)
        params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
    elif kind.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    elif kind.startswith("multipart/form-data"):
        head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files[str(name)] = payload
            else:
                params[str(name)] = payload.decode()
    return params, files
