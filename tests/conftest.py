"""Shared fixtures: the fixture content, the bundled content, a matcher for each, the usage database."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from hypothesis import settings as hypothesis_settings

from bot.content import Content, load_content
from bot.matcher import Matcher

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CONTENT = Path(__file__).resolve().parent / "data" / "content"
BUNDLED_CONTENT = ROOT / "content"
SHARED = ROOT.parent / "shared"

# CI replays the same examples every run (a property test must not fail by luck there);
# locally each run explores new ones and the failures found are kept in .hypothesis/.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def fixture_content() -> Content:
    return load_content(FIXTURE_CONTENT)


@pytest.fixture(scope="session")
def fixture_matcher(fixture_content: Content) -> Matcher:
    return Matcher(fixture_content)


@pytest.fixture(scope="session")
def content() -> Content:
    return load_content(BUNDLED_CONTENT)


@pytest.fixture(scope="session")
def matcher(content: Content) -> Matcher:
    return Matcher(content)


@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture content, for tests that break it."""
    target = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, target)
    return target


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the usage database goes: a data folder of its own, as in production."""
    return tmp_path / "data" / "pregunta.sqlite3"


@pytest.fixture
async def usage_db(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """A real SQLite file at the current schema, opened as the program opens it."""
    from bot.db import open_db

    db = await open_db(db_path)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def content_with_audio(content_copy: Path) -> Path:
    """The fixture content with a recorded K'iche' answer (a tiny valid OGG/Opus file)."""
    from tests.oggopus import voice_note

    audio = content_copy / "kiche" / "audio" / "asilo-como-solicitar.ogg"
    audio.parent.mkdir()
    audio.write_bytes(voice_note())
    topic = content_copy / "kiche" / "topics" / "asilo-como-solicitar.yaml"
    topic.write_text(topic.read_text() + "audio: audio/asilo-como-solicitar.ogg\n")
    return content_copy
