"""Personal data never reaches the disk: pseudonyms are keyed hashes, kept text is scrubbed.

Knows nothing of channels or storage; the usage log and the dialogue call it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

__all__ = ["MAX_KEPT", "load_or_create_key", "mentions_personal_data", "pseudonym", "scrub"]

MAX_KEPT = 300  # characters of a scrubbed query that are kept

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", re.UNICODE)
_URL = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|ly|gt|mx|us|info|io|me|co)(?:/\S*)?", re.IGNORECASE)
_DPI = re.compile(r"(?<!\d)\d{4}[\s.-]?\d{5}[\s.-]?\d{4}(?!\d)")
_PHONE = re.compile(r"(?<![\w])(?:\+|00)?(?:\d[\s.()-]{0,2}){7,15}\d?(?!\w)")
_PASSPORT = re.compile(r"\b(?=[a-z0-9]*\d)[a-z]{1,2}\d{6,9}\b", re.IGNORECASE)
_AMOUNT = re.compile(
    r"(?:(?:q|us\$|\$|usd)\s?\d[\d.,]*(?:\s?mil)?|\d[\d.,]*\s?(?:mil\s)?(?:quetzales|quetzal|dolares|dólares|dollars|pesos|lempiras|usd|q)\b|\d+\s?mil\b)",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"\b(me llamo|mi nombre es|soy)\s+((?:[A-ZÁÉÍÓÚÑ][\w'’-]+)(?:\s+(?:de\s+(?:la\s+)?)?[A-ZÁÉÍÓÚÑ][\w'’-]+){0,3})",
)
_NAME_ANY_CASE = re.compile(r"\b(me llamo|mi nombre es)\s+([\w'’-]+(?:\s+[\w'’-]+){0,2})", re.IGNORECASE)


def scrub(text: str) -> str:
    """Replace phone numbers, DPI, passport numbers, emails, URLs, amounts and names."""
    text = " ".join(text.split())
    text = _EMAIL.sub("[correo]", text)
    text = _URL.sub("[enlace]", text)
    text = _DPI.sub("[dpi]", text)
    text = _PASSPORT.sub("[pasaporte]", text)
    text = _AMOUNT.sub("[monto]", text)
    text = _PHONE.sub(lambda m: "[teléfono]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)
    text = _NAME_ANY_CASE.sub(lambda m: f"{m.group(1)} [nombre]", text)
    text = _NAME.sub(lambda m: f"{m.group(1)} [nombre]", text)
    return text[:MAX_KEPT]


def mentions_personal_data(text: str, public_numbers: frozenset[str] = frozenset()) -> bool:
    """True when a message carries a phone, DPI, passport number, email or a name.

    `public_numbers` (digits only) are official lines a person may quote back to us.
    """
    text = text[:2000]
    for number in _PHONE.findall(text):
        digits = "".join(c for c in number if c.isdigit())
        if digits in public_numbers:
            text = text.replace(number, " ")
    kept = scrub(text)
    return any(tag in kept for tag in ("[teléfono]", "[dpi]", "[pasaporte]", "[correo]", "[nombre]"))


def pseudonym(key: bytes, *parts: str) -> str:
    """A keyed hash of `parts`: stable for the same key, unlinkable without it."""
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def load_or_create_key(path: Path) -> bytes:
    """The pseudonym key kept in `path` (mode 0600), made on first use."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key
