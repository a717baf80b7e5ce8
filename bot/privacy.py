"""Personal data never reaches the disk: pseudonyms are keyed hashes, kept text is scrubbed.

Here live the pseudonym key (refused when short, written atomically) and the keyed
hashes made with it. `scrub` and `mentions_personal_data` live in `bot.scrub` and are
re-exported, so the usage log and the dialogue have one place to import privacy from.
Knows nothing of channels or storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import SettingsError
from bot.scrub import MAX_KEPT, mentions_personal_data, scrub

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "MAX_KEPT",
    "MIN_KEY_BYTES",
    "load_or_create_key",
    "mentions_personal_data",
    "pseudonym",
    "pseudonym_key",
    "scrub",
]

MIN_KEY_BYTES = 32  # a pseudonym key shorter than this is refused


def pseudonym(key: bytes, *parts: str) -> str:
    """A keyed hash of `parts`: stable for the same key, unlinkable without it."""
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def pseudonym_key(settings: Settings) -> bytes:
    """PREGUNTA_PSEUDONYM_KEY, or the key made once and kept beside the database (mode 0600).

    A key shorter than MIN_KEY_BYTES is refused (SettingsError): with an empty or short
    key anyone could recompute a pseudonym from a phone number.
    """
    if settings.pregunta_pseudonym_key is not None:
        key = settings.pregunta_pseudonym_key.get_secret_value().encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise SettingsError(
                f"PREGUNTA_PSEUDONYM_KEY is {len(key)} bytes long; it must be at least {MIN_KEY_BYTES} "
                '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
            )
        return key
    if not isinstance(settings.pregunta_db, Path):
        raise SettingsError(
            "PREGUNTA_PSEUDONYM_KEY must be set with a PostgreSQL database: every process and machine needs the same key"
        )
    return load_or_create_key(settings.pregunta_db.parent / "pseudonym.key")


def load_or_create_key(path: Path) -> bytes:
    """The pseudonym key kept in `path` (mode 0600), made on first use; a short or broken file is refused.

    The file appears whole or not at all: the key is written to a temporary file, synced,
    then linked into place (a rename that never replaces a key another process just made).
    A full disk at first start leaves no file behind, so the next start makes a good key.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create_key(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the pseudonym key {path}: {_reason(exc)}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(
            f"the pseudonym key {path} holds {len(key)} usable bytes, at least {MIN_KEY_BYTES} are needed: "
            "it was cut short (a full disk?) or edited. Delete it to make a new one (pseudonyms and saved "
            "languages start over), or restore it from a backup"
        )
    return key


def _create_key(path: Path) -> bytes:
    key = secrets.token_bytes(MIN_KEY_BYTES)
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".pseudonym-", suffix=".tmp", dir=path.parent)  # mode 0600
        temporary = Path(name)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic, and refuses to replace a key made meanwhile
        except FileExistsError:
            return load_or_create_key(path)
        _sync_folder(path.parent)
    except OSError as exc:
        raise SettingsError(f"cannot write the pseudonym key {path}: {_reason(exc)}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()
    return key


def _sync_folder(folder: Path) -> None:
    """The new directory entry reaches the disk too (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
