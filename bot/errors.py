"""The project's errors, grouped by who must act on them.

    PreguntaError
    ├── ContentError    campaign staff: a YAML file is wrong (file, line, field)
    ├── SettingsError   whoever deploys: a setting is missing or malformed
    └── ChannelError    operators: Telegram or WhatsApp refused or failed a call
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChannelError", "ContentError", "ContentIssue", "PreguntaError", "SettingsError"]


class PreguntaError(Exception):
    """Base of every error the CLI turns into one readable line."""


@dataclass(frozen=True)
class ContentIssue:
    """One problem in one content file, located for a person with a text editor."""

    path: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        field = f" {self.field}" if self.field else ""
        return f"{where}{field}: {self.message}"


class ContentError(PreguntaError):
    """The content folder has one or more problems; all of them are listed."""

    def __init__(self, issues: list[ContentIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class SettingsError(PreguntaError):
    """A setting is missing or malformed; the message names it."""


class ChannelError(PreguntaError):
    """A messaging platform call failed. `retryable` tells the sender whether to try again."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
