"""Shared fixtures: the fixture content, the bundled content, and a matcher for each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.content import Content, load_content
from bot.matcher import Matcher

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CONTENT = Path(__file__).resolve().parent / "data" / "content"
BUNDLED_CONTENT = ROOT / "content"
SHARED = ROOT.parent / "shared"


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
