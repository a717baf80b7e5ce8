"""A fake WhatsApp Graph API on loopback: records what the bot sends, refuses what Meta refuses.

It enforces the documented limits of text and interactive messages and answers with
Meta's error shape, so a message the fake accepts is one Meta would accept. Tests can
make it fail the next calls (429, 130429, 500, 131047…), be down for a while, or hold
the answers to one user, and can await what it receives instead of sleeping.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["FAILURES", "Call", "FakeGraph", "meta_error", "validate_message"]

# kind → (HTTP status, code, message, details), as the Graph API answers them
FAILURES: dict[str, tuple[int, int, str, str]] = {
    "429": (429, 4, "(#4) Application request limit reached", ""),
    "130429": (400, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."),
    "131056": (400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit", ""),
    "500": (500, 1, "An unknown error occurred", ""),
    "503": (503, 2, "Service temporarily unavailable", ""),
    "131047": (
        400,
        131047,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    "131026": (400, 131026, "(#131026) Message undeliverable", ""),
    "131050": (400, 131050, "(#131050) User has stopped marketing messages", ""),
    "132001": (404, 132001, "(#132001) Template name does not exist in the translation", ""),
    "190": (401, 190, "Error validating access token: Session has expired.", ""),
}


def meta_error(status: int, code: int, message: str, details: str = "") -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfFakeTrace"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return JSONResponse({"error": error}, status_code=status)


@dataclass
class Call:
    """One request the fake received, and what it answered."""

    endpoint: str  # "messages" or "media"
    phone_number_id: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    form: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None
    status: int = 200

    @property
    def is_read(self) -> bool:
        return bool(self.json and self.json.get("status") == "read")

    @property
    def user(self) -> str | None:
        if not self.json:
            return None
        return self.json.get("to") or self.json.get("recipient")


class FakeGraph:
    """The Graph API endpoints the WhatsApp channel calls: /{version}/{phone}/messages and /media."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.base_url = ""  # "http://127.0.0.1:PORT/v22.0" once served; set by whoever serves it
        self.calls: list[Call] = []
        self._failures: deque[str] = deque()
        self._fail_reads = False
        self._retry_after: int | None = None
        self._down = False
        self._holds: dict[str, asyncio.Event] = {}
        self._hold_all: asyncio.Event | None = None
        self.delay = 0.0  # seconds every message call takes, as Meta under load; a caller gone by then is not served
        self.blocked: set[str] = set()  # users who blocked the business: their messages fail with 131026
        self.templates: dict[str, set[str]] | None = None  # approved template name → languages; None: any
        self._changed: asyncio.Condition | None = None
        self._ids = itertools.count(1)
        self._media_ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/{version}/{phone}/messages", self._messages, methods=["POST"]),
                Route("/{version}/{phone}/media", self._media, methods=["POST"]),
            ]
        )

    # -- what tests ask ------------------------------------------------------------

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Messages accepted, read receipts left out."""
        return [c.json for c in self.calls if c.endpoint == "messages" and c.status == 200 and c.json and not c.is_read]

    def sent_to(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("to") == user or m.get("recipient") == user]

    @property
    def reads(self) -> list[str]:
        return [str(c.json["message_id"]) for c in self.calls if c.is_read and c.status == 200 and c.json]

    @property
    def uploads(self) -> list[Call]:
        return [c for c in self.calls if c.endpoint == "media" and c.status == 200]

    def fail_next(self, count: int, kind: str = "429", *, reads: bool = False, retry_after: int | None = None) -> None:
        """The next `count` message calls (read receipts too with `reads`) fail as `kind` (see FAILURES),
        with a Retry-After header when `retry_after` is given."""
        self._failures.extend([kind] * count)
        self._fail_reads = reads
        self._retry_after = retry_after

    def down(self) -> None:
        """Every call fails with 503 until `up()`."""
        self._down = True

    def up(self) -> None:
        self._down = False

    def hold(self, user: str) -> asyncio.Event:
        """Answers to messages for `user` wait until the returned event is set."""
        event = self._holds[user] = asyncio.Event()
        return event

    def hold_all(self) -> asyncio.Event:
        """Answers to every message call, read receipts included, wait until the returned event is set."""
        event = self._hold_all = asyncio.Event()
        return event

    async def wait_for(self, predicate: Callable[[FakeGraph], bool], timeout: float = 5.0) -> None:
        """Return as soon as `predicate(self)` holds; fail the test after `timeout` seconds."""
        condition = self._condition()
        async with condition:
            await asyncio.wait_for(condition.wait_for(lambda: predicate(self)), timeout)

    async def wait_sent(self, user: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        await self.wait_for(lambda g: len(g.sent_to(user)) >= count, timeout)
        return self.sent_to(user)

    # -- endpoints -----------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def _messages(self, request: Request) -> JSONResponse:
        headers = dict(request.headers)
        phone = request.path_params["phone"]
        try:
            payload = json.loads(await request.body())
        except ValueError:
            payload = None
        call = Call("messages", phone, headers, payload if isinstance(payload, dict) else None)
        response = await self._answer_message(request, call)
        call.status = response.status_code
        await self._record(call)
        return response

    async def _answer_message(self, request: Request, call: Call) -> JSONResponse:
        if not self._authorized(request):
            return meta_error(*FAILURES["190"])
        if self._down:
            return meta_error(*FAILURES["503"])
        if call.json is None:
            return meta_error(400, 100, "(#100) The parameter messaging_product is required.")
        hold = self._holds.get(call.user or "")
        if hold is not None:
            await hold.wait()
        if self._hold_all is not None:
            await self._hold_all.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if (self.delay or self._hold_all is not None) and await request.is_disconnected():
            # the sender gave up (timed out, died) meanwhile: nothing delivered, as Meta
            # would not deliver a request it never finished reading
            return JSONResponse({"error": {"message": "client went away", "code": 0}}, status_code=499)
        if call.user in self.blocked and not call.is_read:
            return meta_error(*FAILURES["131026"])
        if self._failures and (self._fail_reads or not call.is_read):
            response = meta_error(*FAILURES[self._failures.popleft()])
            if self._retry_after is not None:
                response.headers["Retry-After"] = str(self._retry_after)
            return response
        problem = validate_message(call.json)
        if problem is None and call.json.get("type") == "template" and self.templates is not None:
            template = call.json["template"]
            if template["language"]["code"] not in self.templates.get(template["name"], set()):
                problem = FAILURES["132001"]
        if problem is not None:
            return meta_error(*problem)
        if call.is_read:
            return JSONResponse({"success": True})
        user = call.user or ""
        contact = {"input": user, "wa_id": user} if user.isdigit() else {"input": user, "user_id": user}
        return JSONResponse(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": f"wamid.FAKE{next(self._ids):06d}"}]}
        )

    async def _media(self, request: Request) -> JSONResponse:
        headers = dict(request.headers)
        body = await request.body()
        form, file = _multipart(headers.get("content-type", ""), body)
        call = Call("media", request.path_params["phone"], headers, None, form, file)
        if not self._authorized(request):
            response = meta_error(*FAILURES["190"])
        elif self._down:
            response = meta_error(*FAILURES["503"])
        elif form.get("messaging_product") != "whatsapp":
            response = meta_error(400, 100, "(#100) The parameter messaging_product is required.")
        elif not file:
            response = meta_error(400, 100, "(#100) The parameter file is required.")
        else:
            response = JSONResponse({"id": f"media-{next(self._media_ids)}"})
        call.status = response.status_code
        await self._record(call)
        return response


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """Fields and the file of a multipart/form-data body (the stdlib parses MIME)."""
    if not content_type.startswith("multipart/form-data"):
        return {}, None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    form: dict[str, str] = {}
    file = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename():
            file = data
        elif isinstance(name, str):
            form[name] = data.decode()
    return form, file


_Problem = tuple[int, int, str, str]


def _invalid(details: str) -> _Problem:
    return (400, 131009, "(#131009) Parameter value is not valid", details)


def _text_field(value: object, name: str, limit: int, *, required: bool = True) -> _Problem | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        return _invalid(f"{name} is required")
    if len(value) > limit:
        return _invalid(f"{name} length invalid. Max length is {limit}")
    return None


def validate_message(message: dict[str, Any]) -> _Problem | None:
    """Meta's documented rules for the messages we send, or None when the message is fine."""
    if message.get("messaging_product") != "whatsapp":
        return (400, 100, "(#100) The parameter messaging_product is required.", "")
    if message.get("status") == "read":
        return None if message.get("message_id") else (400, 100, "(#100) The parameter message_id is required.", "")
    if not message.get("to") and not message.get("recipient"):
        return (400, 100, "(#100) The parameter to is required.", "")
    kind = message.get("type")
    content = message.get(kind) if isinstance(kind, str) else None
    if not isinstance(content, dict):
        return (400, 100, "(#100) Invalid parameter", f"type {kind!r} needs its object")
    if kind == "text":
        return _text_field(content.get("body"), "text.body", 4096)
    if kind == "audio":
        if bool(content.get("id")) == bool(content.get("link")):
            return (400, 100, "(#100) Invalid parameter", "audio needs exactly one of id and link")
        return None
    if kind == "interactive":
        return _interactive(content)
    if kind == "template":
        return _template(content)
    return (400, 100, "(#100) Invalid parameter", f"type {kind!r} is not supported by this fake")


def _interactive(content: dict[str, Any]) -> _Problem | None:
    kind = content.get("type")
    body = content.get("body") or {}
    problem = _text_field(body.get("text"), "body.text", 4096 if kind == "list" else 1024)
    header = content.get("header")
    if problem is None and header is not None:
        problem = _text_field(header.get("text"), "header.text", 60)
    footer = content.get("footer")
    if problem is None and footer is not None:
        problem = _text_field(footer.get("text"), "footer.text", 60)
    if problem is not None:
        return problem
    action = content.get("action") or {}
    if kind == "list":
        return _list(action)
    if kind == "button":
        return _buttons(action)
    return _invalid(f"interactive type {kind!r} is not supported by this fake")


def _template(content: dict[str, Any]) -> _Problem | None:
    """A template message: a name, a language code, body parameters of text without line breaks."""
    if not isinstance(content.get("name"), str) or not content["name"]:
        return (400, 100, "(#100) Invalid parameter", "template.name is required")
    language = content.get("language")
    if not isinstance(language, dict) or not language.get("code"):
        return (400, 100, "(#100) Invalid parameter", "template.language.code is required")
    total = 0
    for component in content.get("components") or []:
        for parameter in component.get("parameters") or []:
            value = parameter.get("text")
            if parameter.get("type") != "text" or not isinstance(value, str) or not value.strip():
                return (400, 132000, "(#132000) Number of parameters does not match the expected number of params", "")
            if "\n" in value or "\t" in value or "     " in value:
                return (400, 132018, "(#132018) There was an issue with the parameters in your template.",
                        "Param text cannot have new-line/tab characters or more than 4 consecutive spaces")
            total += len(value)
    if total > 1024:
        return _invalid("template body text too long")
    return None


def _list(action: dict[str, Any]) -> _Problem | None:
    problem = _text_field(action.get("button"), "action.button", 20)
    sections = action.get("sections")
    if problem is not None:
        return problem
    if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
        return _invalid("Number of sections must be between 1 and 10")
    rows = [row for section in sections for row in section.get("rows") or []]
    if not 1 <= len(rows) <= 10:
        return _invalid("Total row count exceed max allowed count: 10")
    for section in sections:
        if len(sections) > 1 or "title" in section:
            problem = _text_field(section.get("title"), "section title", 24)
            if problem:
                return problem
    ids = [row.get("id") for row in rows]
    if len(set(ids)) != len(ids):
        return _invalid("Row IDs must be unique")
    for row in rows:
        problem = (
            _text_field(row.get("id"), "row id", 200)
            or _text_field(row.get("title"), "row title", 24)
            or _text_field(row.get("description"), "row description", 72, required=False)
        )
        if problem:
            return problem
    return None


def _buttons(action: dict[str, Any]) -> _Problem | None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return _invalid("buttons: number of buttons must be between 1 and 3")
    replies = [button.get("reply") or {} for button in buttons]
    if any(button.get("type") != "reply" for button in buttons):
        return _invalid("button type must be reply")
    for reply in replies:
        problem = _text_field(reply.get("id"), "button id", 256) or _text_field(reply.get("title"), "button title", 20)
        if problem:
            return problem
    if len({r["id"] for r in replies}) != len(replies) or len({r["title"] for r in replies}) != len(replies):
        return _invalid("Button title and ID must be unique")
    return None
