"""Every setting of Preguntá, read once from the environment or a `.env` file.

`main()` builds one `Settings` and passes it down; nothing else reads `os.environ`.
Each field is listed with a comment in `.env.example`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError as _SourceError

from bot.errors import SettingsError

__all__ = ["DRAFT_LANGUAGES", "Settings", "check_database_path", "load_settings"]

_ROOT = Path(__file__).resolve().parent.parent
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# The Mayan languages whose drafts can be served, and every other way of naming them we
# accept in PREGUNTA_SERVE_DRAFTS (folder names under content/, names in English and
# Spanish), written without accents, apostrophes or capitals.
DRAFT_LANGUAGES = {"quc": "K'iche'", "kek": "Q'eqchi'", "mam": "Mam"}
_DRAFT_NAMES = {
    "quc": "quc", "kiche": "quc", "quiche": "quc",
    "kek": "kek", "qeqchi": "kek", "kekchi": "kek",
    "mam": "mam",
}  # fmt: skip
_APOSTROPHES = "'’‘ʼ`´"


class Settings(BaseSettings):
    # An empty variable (TELEGRAM_BOT_TOKEN=) means "not set", so the channel stays off.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # content and data
    pregunta_content: Path = _ROOT / "content"
    pregunta_db: Path | str = Path("data/pregunta.sqlite3")  # a SQLite file, or a postgresql:// URL
    pregunta_db_wait: float = Field(default=1.0, gt=0, le=60)  # seconds a reply may wait on the database
    pregunta_inbox_lease: float = Field(default=15.0, ge=1, le=600)  # a crashed process's messages are taken over after this
    pregunta_pseudonym_key: SecretStr | None = None
    # Fernet key(s) of the subscribers' addresses: the first encrypts, every one decrypts (rotation)
    pregunta_subscribers_key: SecretStr | None = None
    pregunta_retention_days: int = Field(default=180, ge=1)
    pregunta_serve_drafts: Annotated[list[str], NoDecode] = []  # language codes whose draft translations are served
    pregunta_report_k: int = Field(default=5, ge=1)
    pregunta_log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)
    pregunta_log_libraries: bool = False  # library loggers below WARNING: they print ids and texts

    # the web server shared by the webhooks
    pregunta_host: str = "127.0.0.1"
    pregunta_port: int = Field(default=8080, ge=0, le=65535)
    pregunta_admin_host: str = "127.0.0.1"  # /healthz and /metrics: loopback only unless changed
    pregunta_admin_port: int = Field(default=8081, ge=0, le=65535)
    pregunta_max_connections: int = Field(default=1000, ge=1)  # open at once on PREGUNTA_PORT
    pregunta_client_timeout: float = Field(default=10.0, gt=0, le=300)  # to send the headers, then the body
    pregunta_keep_alive: float = Field(default=15.0, gt=0, le=300)  # an idle connection is closed after this
    pregunta_workers: int = Field(default=1, ge=1, le=64)  # server processes on the port (`serve --workers`)

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"

    # WhatsApp Cloud API
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com/v22.0"
    whatsapp_alert_template: str | None = None  # the approved template alerts go out in (business-initiated)
    whatsapp_alert_template_lang: str = "es"  # its language code, as approved in WhatsApp Manager

    # rate limit: more than this many messages in the window gets one "slow down"
    pregunta_flood_messages: int = Field(default=20, ge=1)
    pregunta_flood_seconds: float = Field(default=10.0, gt=0)

    @field_validator("pregunta_db", mode="before")
    @classmethod
    def _path_or_url(cls, value: object) -> object:
        """A postgresql:// URL stays a string (a Path would fold its '//'); anything else is a path."""
        if isinstance(value, str):
            return value.strip() if value.strip().startswith(("postgresql://", "postgres://")) else Path(value)
        return value

    @field_validator("pregunta_serve_drafts", mode="before")
    @classmethod
    def _draft_codes(cls, value: object) -> object:
        """Codes (quc, kek, mam) or the names mapped to them; anything else is refused, so a
        typo never leaves the drafts silently unserved."""
        names = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
        if not isinstance(names, list):
            return value
        codes: list[str] = []
        for name in names:
            if not isinstance(name, str) or not name.strip():
                continue
            code = _DRAFT_NAMES.get(_plain(name))
            if code is None:
                known = ", ".join(f"{code} ({language})" for code, language in DRAFT_LANGUAGES.items())
                raise ValueError(f"{name[:30]!r} is not a language with drafts; use the codes {known}")
            if code not in codes:
                codes.append(code)
        return codes

    @field_validator("whatsapp_phone_number_id", mode="before")
    @classmethod
    def _phone_number_id(cls, value: object) -> object:
        """Meta's id of the number (15 digits or more), never the phone number itself."""
        if not isinstance(value, str):
            return value
        given = value.strip()
        where = "copy the 'Phone number ID' from WhatsApp > API Setup in the Meta app, not the phone number"
        if any(char in given for char in "+-() ") or (given.isdigit() and len(given) < 15):
            raise ValueError(f"this looks like a phone number; {where}")
        if not given.isdigit() or len(given) > 20:
            raise ValueError(f"expected the digits of Meta's id (15 or more); {where}")
        return given

    @field_validator("pregunta_subscribers_key", mode="before")
    @classmethod
    def _fernet_keys(cls, value: object) -> object:
        """One Fernet key, or several separated by commas (the first encrypts): a malformed one is
        refused here, so a typo never leaves the subscriptions unreadable."""
        if not isinstance(value, str):
            return value
        keys = [part.strip() for part in value.split(",") if part.strip()]
        if not keys:
            return None
        for number, key in enumerate(keys, start=1):
            if not _is_fernet_key(key):
                which = "it" if len(keys) == 1 else f"key {number}"
                raise ValueError(
                    f"{which} is not a Fernet key (44 characters of URL-safe base64); make one with: "
                    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
                )
        return ",".join(keys)

    @field_validator("whatsapp_alert_template", "whatsapp_alert_template_lang", mode="before")
    @classmethod
    def _template_name(cls, value: object) -> object:
        """Meta's template names and language codes: lower case, digits and underscores ("es", "es_MX")."""
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_]{1,512}", value.strip()):
            raise ValueError(f"{value[:40]!r} is not a template name or language code (letters, digits and _ only)")
        return value.strip() if isinstance(value, str) else value

    @field_validator("pregunta_log_level", mode="before")
    @classmethod
    def _known_level(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().upper() in _LEVELS:
            return value.strip().upper()
        raise ValueError(f"{str(value)[:20]!r} is not a log level; use one of {', '.join(_LEVELS)}")

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def whatsapp_enabled(self) -> bool:
        return self.whatsapp_token is not None and self.whatsapp_phone_number_id is not None

    def channel_problem(self) -> str | None:
        """What is missing for a channel that is half configured (one line), or None."""
        if (self.whatsapp_token is None) != (self.whatsapp_phone_number_id is None):
            if self.whatsapp_token is None:
                return "WHATSAPP_PHONE_NUMBER_ID is set but WHATSAPP_TOKEN is not: set the system user's access token (README, WhatsApp)"
            return "WHATSAPP_TOKEN is set but WHATSAPP_PHONE_NUMBER_ID is not: copy the 'Phone number ID' from WhatsApp > API Setup"
        if self.pregunta_admin_port and self.pregunta_admin_port == self.pregunta_port:
            return f"PREGUNTA_ADMIN_PORT and PREGUNTA_PORT are both {self.pregunta_port}: /healthz and /metrics need a port of their own"
        return None


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation failure into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]).upper()
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"setting {name}: {message}") from None
    except _SourceError as exc:
        raise SettingsError(str(exc).splitlines()[0]) from None


def check_database_path(path: Path | str, *, write: bool = True) -> None:
    """Refuse a PREGUNTA_DB file the program could not use, in one line, before any work
    (a postgresql:// URL is checked when the server answers, by bot.storage).

    With `write`, the file (or its folder, created if missing) must take writes: probed
    by opening it, or a temporary file beside it, because permission bits say nothing
    to root or on a read-only mount. Without `write` (the report), only what would make
    an existing database unreadable is refused; a missing file is the caller's to explain.
    """
    if isinstance(path, str):
        return
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise SettingsError(f"PREGUNTA_DB {path}: {parent} is a file, not a folder")
    if path.is_dir():
        raise SettingsError(f"PREGUNTA_DB {path} is a folder; name a file in it, e.g. {path / 'pregunta.sqlite3'}")
    if not write:
        if path.exists() and not os.access(path, os.R_OK):
            raise SettingsError(f"PREGUNTA_DB {path} cannot be read")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("r+b"):
                pass
        else:
            with tempfile.TemporaryFile(dir=path.parent):
                pass
    except OSError as exc:
        where = path if path.exists() else path.parent
        raise SettingsError(f"PREGUNTA_DB {path}: cannot write in {where} ({exc.strerror or exc})") from None


def _is_fernet_key(key: str) -> bool:
    """32 bytes in URL-safe base64 (what `Fernet.generate_key()` prints)."""
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


def _plain(name: str) -> str:
    """A language name as a key: lower case, no accents, apostrophes or spaces."""
    folded = unicodedata.normalize("NFKD", name.strip().lower())
    return "".join(c for c in folded if not unicodedata.combining(c) and c not in _APOSTROPHES and not c.isspace())
