"""The terminal chat: the same dialogue as the apps, for staff previewing content.

Reads stdin line by line until EOF, so it can be piped; options are printed by number.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from bot.channels.base import as_text
from bot.conversation import Conversations
from bot.replies import Incoming

__all__ = ["run_chat"]

USER = "terminal"


async def run_chat(conversations: Conversations, stdin: TextIO, stdout: TextIO, *, lang: str | None = None) -> None:
    """Chat until EOF. With `lang`, the language is chosen up front."""
    interactive = stdin.isatty()
    if lang:
        reply = await conversations.handle("terminal", USER, Incoming(payload=f"lang:{lang}"))
        if reply:
            _show(as_text(reply), reply.audio, stdout)
    elif interactive:
        stdout.write("Escribí «hola» para empezar. Ctrl-D para salir.\n")
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        reply = await conversations.handle("terminal", USER, Incoming(text=line.rstrip("\n")))
        if reply is not None:
            _show(as_text(reply), reply.audio, stdout)
    if interactive:
        stdout.write("\n")


def _show(reply_text: str, audio: object, stdout: TextIO) -> None:
    stdout.write(reply_text.replace("*", "") + "\n")
    if audio:
        stdout.write(f"[audio: {audio}]\n")
    stdout.write("\n")
    stdout.flush()
