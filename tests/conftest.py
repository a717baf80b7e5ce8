"""Shared fixtures: the fixture content, the bundled content, a matcher for each, the usage database."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from bot.content import Content, load_content
from bot.matcher import Matcher
from bot.storage import Storage, open_storage
from bot.storage.postgres import safe_url

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
async def usage_db(db_path: Path) -> AsyncIterator[Storage]:
    """A real SQLite file at the current schema, opened as the program opens it."""
    db = await open_storage(db_path)
    try:
        yield db
    finally:
        await db.close()


# -- PostgreSQL: the same tests on a real server, each in a schema of its own ---------------

POSTGRES_URL = os.environ.get("PREGUNTA_TEST_POSTGRES", "postgresql://pregunta:pregunta@127.0.0.1:5432/pregunta_test")
_postgres_reachable: str | None = None  # None: not tried yet; "": reachable; else why not


async def _postgres_why_not() -> str:
    global _postgres_reachable
    if _postgres_reachable is None:
        try:
            import asyncpg

            connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
            await connection.close()
            _postgres_reachable = ""
        except Exception as exc:  # noqa: BLE001 - any failure: the reason is shown in the skip
            _postgres_reachable = f"no PostgreSQL server at {safe_url(POSTGRES_URL)} ({type(exc).__name__}: {exc}); .ci/run starts one"
    return _postgres_reachable


@contextlib.asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A PostgreSQL URL whose tables live in a fresh schema, dropped afterwards; skips when no server answers."""
    import asyncpg

    reason = await _postgres_why_not()
    if reason:
        pytest.skip(reason)
    schema = f"t_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()
    try:
        yield f"{POSTGRES_URL}?search_path={schema}"
    finally:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_target(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Path | str]:
    """PREGUNTA_DB for a test that runs on both backends: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield db_path
        return
    async with postgres_schema() as url:
        yield url


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


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc); [] where /proc is not there."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture(autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """A test that fails half-way must not leave a `pregunta serve` (or its workers) running:
    a crash-looping leftover once took both cores for hours."""
    yield
    for pid in _descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
