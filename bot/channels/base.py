"""What every channel shares: how a Reply becomes plain text, and how long texts split.

A channel receives messages its own way, hands them to `Conversations.handle`, and
renders the `Reply`. Channels never import the matcher or the dialogue's internals.
"""

from __future__ import annotations

from typing import Protocol

from starlette.routing import BaseRoute

from bot.replies import Option, Reply

__all__ = ["Channel", "as_text", "numbered", "split_text"]


class Channel(Protocol):
    """A messaging platform. The server mounts its routes and starts and stops it.

    Built as `Channel(settings, conversations, metrics)`, with no I/O in the constructor.
    """

    name: str

    def routes(self) -> list[BaseRoute]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def numbered(options: tuple[Option, ...]) -> str:
    """Options as lines a person can answer by number: "1 Pasaporte"."""
    return "\n".join(f"{option.key} {option.title}" for option in options)


def as_text(reply: Reply) -> str:
    """The whole reply as plain text, options numbered at the end."""
    if not reply.options:
        return reply.text
    return f"{reply.text}\n\n{numbered(reply.options)}"


def split_text(text: str, limit: int = 4096) -> list[str]:
    """Split on paragraph boundaries (then lines, then spaces) so no part exceeds `limit`."""
    parts: list[str] = []
    current = ""
    for piece in text.split("\n\n"):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(piece) > limit:
            cut = piece.rfind("\n", 0, limit)
            if cut <= 0:
                cut = piece.rfind(" ", 0, limit)
            if cut <= 0:
                cut = limit
            parts.append(piece[:cut].rstrip())
            piece = piece[cut:].lstrip()
        current = piece
    if current or not parts:
        parts.append(current)
    return parts
