""".env.example names every setting, each with a comment line above it."""

from __future__ import annotations

from bot.settings import Settings
from tests.conftest import ROOT


def _setting(line: str) -> str | None:
    """The name in `NAME=value` or `# NAME=value`, else None."""
    name, equals, _ = line.lstrip("# ").partition("=")
    return name if equals and name.isupper() and name.replace("_", "").isalnum() else None


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {name: number for number, line in enumerate(lines) if (name := _setting(line))}
    assert set(listed) == {name.upper() for name in Settings.model_fields}
    for name, number in listed.items():
        above = lines[number - 1]
        assert above.startswith("# ") and _setting(above) is None, f"{name} has no comment above it"
