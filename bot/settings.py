"""Every setting of Preguntá, read once from the environment or a `.env` file.

`main()` builds one `Settings` and passes it down; nothing else reads `os.environ`.
Each field is listed with a comment in `.env.example`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from bot.errors import SettingsError

__all__ = ["Settings", "load_settings"]

_ROOT = Path(__file__).resolve().parent.parent
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    # An empty variable (TELEGRAM_BOT_TOKEN=) means "not set", so the channel stays off.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # content and data
    pregunta_content: Path = _ROOT / "content"
    pregunta_db: Path | str = Path("data/pregunta.sqlite3")  # a SQLite file, or a postgresql:// URL
    pregunta_db_wait: float = Field(default=1.0, gt=0, le=60)  # seconds a reply may wait on the database
    pregunta_inbox_lease: float = Field(default=15.0, ge=1, le=600)  # a crashed process's messages are taken over after this
    pregunta_pseudonym_key: SecretStr | None = None
    pregunta_retention_days: int = Field(default=180, ge=1)
    pregunta_serve_drafts: Annotated[list[str], NoDecode] = []  # language codes whose draft translations are served
    pregunta_report_k: int = Field(default=5, ge=1)
    pregunta_log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)
    pregunta_log_libraries: bool = False  # library loggers below WARNING: they print ids and texts

    # the web server shared by the webhooks
    pregunta_host: str = "127.0.0.1"
    pregunta_port: int = Field(default=8080, ge=0, le=65535)
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
    def _split_codes(cls, value: object) -> object:
        if isinstance(value, str):
            return [code.strip() for code in value.split(",") if code.strip()]
        return value

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


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation failure into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]).upper()
        raise SettingsError(f"setting {name}: {first['msg']}") from None
    except _SourceError as exc:
        raise SettingsError(str(exc)) from None
