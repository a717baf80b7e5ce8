"""Where Preguntá keeps what must outlive a process: one interface, two backends.

`open_storage(target)`: a path opens the SQLite file (the embedded default), a
`postgresql://` URL a PostgreSQL database. Both have the same tables, made and upgraded
by the same numbered migrations. See `bot.storage.base` for the interface.
"""

from __future__ import annotations

from pathlib import Path

from bot.storage.base import (
    MESSAGE_KEEP_HOURS,
    Claimed,
    ClaimFor,
    Finished,
    Health,
    NewMessage,
    PurgeCounts,
    Storage,
    StorageUnavailable,
    digest,
)
from bot.storage.postgres import is_postgres, safe_url

__all__ = [
    "MESSAGE_KEEP_HOURS",
    "ClaimFor",
    "Claimed",
    "Finished",
    "Health",
    "NewMessage",
    "PurgeCounts",
    "Storage",
    "StorageUnavailable",
    "describe",
    "digest",
    "exists",
    "is_postgres",
    "open_storage",
]


async def open_storage(target: Path | str, *, wait: float = 1.0, pool: int = 4) -> Storage:
    """The database named by PREGUNTA_DB, schema current; raises PreguntaError when it cannot be opened."""
    if is_postgres(target):
        from bot.storage.postgres import open_postgres

        return await open_postgres(str(target), wait=wait, size=pool)
    from bot.storage.sqlite import open_sqlite

    return await open_sqlite(Path(target), wait=wait)


def describe(target: Path | str) -> str:
    """The database for a message: the file, or the URL without its password."""
    return safe_url(str(target)) if is_postgres(target) else str(target)


def exists(target: Path | str) -> bool:
    """Whether there is anything to read: a server is assumed to be there, a file must exist."""
    return True if is_postgres(target) else Path(target).is_file()
