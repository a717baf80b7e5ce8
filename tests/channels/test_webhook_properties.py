"""Webhook parsers on arbitrary and mutated JSON: they never raise."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import given, settings, strategies as st
from telegram import Bot, Update

from bot.channels.telegram_format import incoming
from bot.channels.whatsapp_payloads import parse_webhook

DATA = Path(__file__).resolve().parent.parent / "data"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
RUN = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "250")), deadline=None)


def _recorded(folder: str) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted((DATA / folder).glob("*.json")) if not p.name.startswith("bad_truncated")]


def _mutate(data: Any, draw: st.DrawFn) -> Any:
    """Replace one leaf or subtree somewhere in `data` with arbitrary JSON."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data)))
        return {**data, key: _mutate(data[key], draw)}
    if isinstance(data, list) and data and draw(st.booleans()):
        index = draw(st.integers(0, len(data) - 1))
        return [*data[:index], _mutate(data[index], draw), *data[index + 1 :]]
    return draw(JSON)


@st.composite
def mutated(draw: st.DrawFn, folder: str) -> Any:
    return _mutate(draw(st.sampled_from(_recorded(folder))), draw)


@RUN
@given(JSON)
def test_whatsapp_parser_on_any_json(data: Any) -> None:
    parse_webhook(data, "106540352242922")


@RUN
@given(mutated("whatsapp"))
def test_whatsapp_parser_on_mutated_payloads(data: Any) -> None:
    parsed = parse_webhook(data, "106540352242922")
    for message in parsed.messages:
        assert message.user and message.message_id


BOT = Bot("123456:" + "A" * 35)


@RUN
@given(mutated("telegram"))
def test_telegram_update_to_incoming(data: Any) -> None:
    """What the webhook route does: refuse what is not an update, read the rest safely."""
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return  # the route answers 400
    try:
        update = Update.de_json(data, BOT)
    except Exception:  # noqa: BLE001 - anything de_json raises: the route answers 400
        return
    message = update.message
    if message is not None:
        try:
            incoming(message, 123456, "pregunta_bot")
        except (AttributeError, TypeError, KeyError, ValueError) as exc:  # pragma: no cover - the property
            raise AssertionError(f"incoming() raised {exc!r} on {data!r}") from exc
