"""WhatsApp Cloud API wire formats: the webhook Meta posts to us, the messages we post back.

Inbound, the models are tolerant where Meta adds fields every few months (unknown
fields are ignored, unknown message types become "unsupported") and strict where a
mistake would cost: a message needs an id and a sender, and ids are plain tokens. Each
message is validated on its own, so one odd message never hides the others in a batch.
Outbound, the builders keep every field within the documented limits.

Knows nothing of HTTP, signatures or the dialogue: `bot.channels.whatsapp` does that.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from bot.replies import Incoming

__all__ = [
    "BODY_MAX",
    "FOOTER_MAX",
    "HEADER_MAX",
    "LIST_BUTTON_MAX",
    "REPLY_BUTTONS_MAX",
    "REPLY_ID_MAX",
    "REPLY_TITLE_MAX",
    "ROWS_MAX",
    "ROW_DESCRIPTION_MAX",
    "ROW_ID_MAX",
    "ROW_TITLE_MAX",
    "TEMPLATE_PARAMETER_MAX",
    "TEXT_MAX",
    "Inbound",
    "Parsed",
    "address",
    "audio_message",
    "buttons_message",
    "list_message",
    "list_row",
    "parse_webhook",
    "read_receipt",
    "shorten",
    "template_message",
    "text_message",
]

# Documented limits of the Cloud API (characters).
TEXT_MAX = 4096  # text.body
BODY_MAX = 1024  # interactive body: the reply-button limit, and the list limit in older versions
HEADER_MAX = 60
FOOTER_MAX = 60
LIST_BUTTON_MAX = 20  # the button that opens a list
ROWS_MAX = 10  # rows across all sections
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
REPLY_BUTTONS_MAX = 3
REPLY_ID_MAX = 256
REPLY_TITLE_MAX = 20
TEMPLATE_PARAMETER_MAX = 1024  # a template's body, its own words and the parameters together

# -- inbound -------------------------------------------------------------------------

# A wa_id is digits; a business-scoped user id looks like "US.13491208655302741918"
# (or "US.ENT.…" for a parent id). Nothing else may reach a log line or a URL.
_UserId = Annotated[str, StringConstraints(min_length=1, max_length=160, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
_MessageId = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^\S+$")]

# Our own payloads ("topic:…", "lang:…", "menu:…", "intent:…"), as a template quick reply may carry.
_OUR_PAYLOAD = re.compile(r"^(topic|lang|menu|intent):[\w.-]*$")

# WhatsApp message type → the name the dialogue and the usage log know (Telegram's names).
_NON_TEXT = {
    "image": "photo",
    "video": "video",
    "document": "document",
    "location": "location",
    "sticker": "sticker",
    "contacts": "contact",
    "reaction": "reaction",
    "order": "order",
    "unsupported": "unsupported",
    "unknown": "unsupported",
}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Text(_Wire):
    body: str


class _Choice(_Wire):
    id: Annotated[str, StringConstraints(max_length=REPLY_ID_MAX)]
    title: str = ""


class _Interactive(_Wire):
    type: str
    list_reply: _Choice | None = None
    button_reply: _Choice | None = None


class _Button(_Wire):
    text: str = ""
    payload: str | None = None


class _Audio(_Wire):
    voice: bool = False


class _Message(_Wire):
    id: _MessageId
    sender: _UserId | None = Field(default=None, alias="from")
    from_user_id: _UserId | None = None
    type: str
    group_id: str | None = None
    text: _Text | None = None
    interactive: _Interactive | None = None
    button: _Button | None = None
    audio: _Audio | None = None

    @model_validator(mode="after")
    def _has_sender(self) -> _Message:
        if self.sender is None and self.from_user_id is None:
            raise ValueError("message has neither 'from' nor 'from_user_id'")
        return self


class _Metadata(_Wire):
    phone_number_id: str


class _Value(_Wire):
    metadata: _Metadata
    messages: list[Any] = []
    statuses: list[Any] = []


class _Change(_Wire):
    field: str
    value: Any = None


class _Entry(_Wire):
    changes: list[_Change]


class _Envelope(_Wire):
    object: str
    entry: list[_Entry]


@dataclass(frozen=True)
class Inbound:
    """One message a user sent: whom to answer, the message id, and what they said."""

    user: str  # wa_id when Meta shares it, else the business-scoped user id
    message_id: str
    incoming: Incoming
    type: str  # WhatsApp's message type, for logs


@dataclass
class Parsed:
    """What one webhook delivery holds; `skipped` says, for the log, what was ignored and why."""

    messages: list[Inbound] = field(default_factory=list)
    statuses: int = 0
    failed_statuses: list[str] = field(default_factory=list)  # error codes of "failed" statuses
    skipped: list[str] = field(default_factory=list)


def parse_webhook(data: object, phone_number_id: str | None = None) -> Parsed:
    """The messages in a decoded webhook body. Never raises: odd parts land in `skipped`.

    With `phone_number_id`, messages addressed to another number of the same business
    account are skipped: we would answer them from the wrong number.
    """
    parsed = Parsed()
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        parsed.skipped.append(f"not a webhook envelope: {_first_error(exc)}")
        return parsed
    if envelope.object != "whatsapp_business_account":
        parsed.skipped.append(f"object {envelope.object[:40]!r} is not whatsapp_business_account")
        return parsed
    for entry in envelope.entry:
        for change in entry.changes:
            if change.field != "messages":
                parsed.skipped.append(f"field {change.field[:40]!r} is not handled")
                continue
            _read_value(change.value, phone_number_id, parsed)
    return parsed


def _read_value(raw: object, phone_number_id: str | None, parsed: Parsed) -> None:
    try:
        value = _Value.model_validate(raw)
    except ValidationError as exc:
        parsed.skipped.append(f"change value: {_first_error(exc)}")
        return
    if phone_number_id is not None and value.metadata.phone_number_id != phone_number_id:
        if value.messages:
            parsed.skipped.append(f"{len(value.messages)} message(s) for another phone number id")
        return
    parsed.statuses += len(value.statuses)
    for status in value.statuses:
        if isinstance(status, dict) and status.get("status") == "failed":
            codes = [str(e.get("code")) for e in status.get("errors") or [] if isinstance(e, dict)]
            parsed.failed_statuses.append(",".join(codes) or "?")
    for raw_message in value.messages:
        try:
            message = _Message.model_validate(raw_message)
        except ValidationError as exc:
            parsed.skipped.append(f"message: {_first_error(exc)}")
            continue
        if message.group_id is not None:
            parsed.skipped.append("group message (the bot answers one-to-one chats only)")
            continue
        incoming = _incoming(message)
        if incoming is None:
            parsed.skipped.append(f"message of type {message.type[:40]!r} needs no answer")
            continue
        user = message.sender or message.from_user_id
        assert user is not None  # the validator saw to it
        parsed.messages.append(Inbound(user, message.id, incoming, message.type))


def _incoming(message: _Message) -> Incoming | None:
    """What the dialogue should see, or None for messages that need no answer."""
    kind = message.type
    if kind == "text" and message.text is not None:
        return Incoming(text=message.text.body)
    if kind == "interactive" and message.interactive is not None:
        choice = message.interactive.list_reply or message.interactive.button_reply
        if choice is not None and choice.id:
            return Incoming(payload=choice.id)
        return Incoming(non_text="unsupported")  # a flow reply, an address form…
    if kind == "button" and message.button is not None:
        payload = message.button.payload
        if payload and _OUR_PAYLOAD.match(payload):
            return Incoming(payload=payload)
        return Incoming(text=message.button.text)
    if kind == "audio":
        return Incoming(non_text="voice" if message.audio and message.audio.voice else "audio")
    if kind == "request_welcome":  # the user opened the chat for the first time
        return Incoming(text="")
    if kind == "system":  # "the user changed their number": nothing to answer
        return None
    return Incoming(non_text=_NON_TEXT.get(kind, "unsupported"))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


# -- outbound ------------------------------------------------------------------------


def address(user: str) -> dict[str, str]:
    """Reply to the identifier the user wrote from: a phone number goes in `to`, a BSUID in `recipient`."""
    return {"to": user} if user.isdigit() else {"recipient": user}


def _envelope(user: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", **address(user), "type": kind, kind: content}


def text_message(user: str, body: str) -> dict[str, Any]:
    if not body or len(body) > TEXT_MAX:
        raise ValueError(f"text body must be 1 to {TEXT_MAX} characters")
    return _envelope(user, "text", {"preview_url": False, "body": body})


def list_message(user: str, body: str, button: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    """An interactive list: one untitled section of at most ten rows."""
    if not 1 <= len(rows) <= ROWS_MAX:
        raise ValueError(f"a list has 1 to {ROWS_MAX} rows")
    content = {
        "type": "list",
        "body": {"text": shorten(body, BODY_MAX, keep_lines=True)},
        "action": {"button": shorten(button, LIST_BUTTON_MAX), "sections": [{"rows": rows}]},
    }
    return _envelope(user, "interactive", content)


def list_row(row_id: str, title: str, description: str = "") -> dict[str, str]:
    if len(row_id) > ROW_ID_MAX:
        raise ValueError(f"row id longer than {ROW_ID_MAX}")
    row = {"id": row_id, "title": shorten(title, ROW_TITLE_MAX)}
    if description:
        row["description"] = shorten(description, ROW_DESCRIPTION_MAX)
    return row


def buttons_message(user: str, body: str, buttons: list[tuple[str, str]]) -> dict[str, Any]:
    """Reply buttons: at most three (id, title) pairs."""
    if not 1 <= len(buttons) <= REPLY_BUTTONS_MAX:
        raise ValueError(f"1 to {REPLY_BUTTONS_MAX} reply buttons")
    content = {
        "type": "button",
        "body": {"text": shorten(body, BODY_MAX, keep_lines=True)},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": button_id, "title": shorten(title, REPLY_TITLE_MAX)}}
                for button_id, title in buttons
            ]
        },
    }
    return _envelope(user, "interactive", content)


def audio_message(user: str, *, media_id: str | None = None, link: str | None = None, voice: bool = False) -> dict[str, Any]:
    """Audio by uploaded media id or by public link; `voice` shows it as a voice note (OGG/Opus)."""
    if (media_id is None) == (link is None):
        raise ValueError("give exactly one of media_id and link")
    content: dict[str, Any] = {"id": media_id} if media_id is not None else {"link": link}
    if voice:
        content["voice"] = True
    return _envelope(user, "audio", content)


def template_message(user: str, name: str, lang: str, parameters: list[str]) -> dict[str, Any]:
    """A business-initiated message: an approved template, its body's parameters ({{1}}, …) filled in.

    Meta refuses a parameter with a line break, a tab or more than four spaces in a row, so
    each parameter becomes one line; an empty one is refused here rather than by Meta.
    """
    values = [" ".join(str(p).split()) for p in parameters]
    if not name or not lang or any(not v for v in values):
        raise ValueError("a template needs its name, its language and non-empty parameters")
    if sum(len(v) for v in values) > TEMPLATE_PARAMETER_MAX:
        raise ValueError(f"template parameters longer than {TEMPLATE_PARAMETER_MAX} characters")
    content = {
        "name": name,
        "language": {"code": lang},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}],
    }
    return _envelope(user, "template", content)


def read_receipt(message_id: str) -> dict[str, Any]:
    """Marks the user's message as read (two blue ticks)."""
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}


# Characters that continue the grapheme before them: cutting just before one splits a letter or emoji.
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")


def _continues(char: str) -> bool:
    return (
        unicodedata.combining(char) != 0
        or char in _JOINERS
        or unicodedata.category(char) == "Mn"
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tone
    )


def shorten(text: str, limit: int, *, keep_lines: bool = False) -> str:
    """`text` in at most `limit` characters, cut between words and whole graphemes, ending in "…"."""
    if not keep_lines:
        text = " ".join(text.split())
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= limit:
        return text
    cut = limit - 1  # room for the ellipsis
    while cut > 0 and (_continues(text[cut]) or text[cut - 1] in _JOINERS):
        cut -= 1
    space = text.rfind(" ", 0, cut + 1)
    if space > limit * 2 // 3:
        cut = space
    return text[:cut].rstrip(" ,.;:-–—\n") + "…"
