"""Recorded answers: a playable OGG/Opus voice note under 16 MB, or a located error."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bot.audio import MAX_BYTES, ogg_crc, problem
from bot.content import load_content
from bot.errors import ContentError
from tests.conftest import FIXTURE_CONTENT
from tests.oggopus import SILENCE, ogg_page, opus_head, opus_tags, voice_note

OPUSENC_SAMPLE = FIXTURE_CONTENT.parent / "audio" / "silence-opusenc.ogg"  # 0.2 s, made by opusenc 0.2


def _wav() -> bytes:
    data = b"\0\0" * 800
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data


def _vorbis() -> bytes:
    ident = b"\x01vorbis" + struct.pack("<IBIiiiBB", 0, 1, 44100, 0, 128000, 0, 0xB8, 1)
    return ogg_page(ident, sequence=0, flags=0x02) + ogg_page(b"\x03vorbis" + b"\0" * 8, sequence=1)


def _corrupted() -> bytes:
    data = bytearray(voice_note())
    data[40] ^= 0xFF  # a byte of the OpusHead packet: the page's CRC no longer matches
    return bytes(data)


def test_crc_is_oggs() -> None:
    # CRC-32 with polynomial 0x04C11DB7, init 0, no reflection, no final xor: check value of "123456789"
    assert ogg_crc(b"123456789") == 0x89A1897F


@pytest.mark.parametrize(
    "make",
    [pytest.param(voice_note, id="built-here"), pytest.param(OPUSENC_SAMPLE.read_bytes, id="made-by-opusenc")],
)
def test_voice_notes_are_accepted(tmp_path: Path, make: object) -> None:
    path = tmp_path / "answer.ogg"
    path.write_bytes(make())  # type: ignore[operator]
    assert problem(path) is None


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(_wav(), "no es un archivo OGG", id="wav-renamed-ogg"),
        pytest.param(b"ID3\x04\0\0\0\0\0\0" + b"\xff\xfb" * 50, "no es un archivo OGG", id="mp3-renamed-ogg"),
        pytest.param(b"", "está vacío", id="empty"),
        pytest.param(b"OggS" + b"\0" * 64, "dañado", id="oggs-then-zeros"),
        pytest.param(_vorbis(), "no lleva audio Opus", id="ogg-vorbis"),
        pytest.param(ogg_page(opus_head(), sequence=0, flags=0x02), "falta la página «OpusTags»", id="no-tags-page"),
        pytest.param(voice_note()[:40], "está cortado", id="cut-in-the-first-page"),
        pytest.param(voice_note()[:50], "está cortado", id="cut-in-a-page-header"),
        pytest.param(_corrupted(), "dañado", id="bad-crc"),
        pytest.param(ogg_page(opus_head(channels=0), sequence=0, flags=0x02) + ogg_page(opus_tags(), sequence=1), "no hay canales", id="no-channels"),
        pytest.param(ogg_page(opus_head(), sequence=0) + ogg_page(opus_tags(), sequence=1), "inicio del audio", id="no-bos-flag"),
        pytest.param(ogg_page(SILENCE, sequence=0, flags=0x02), "no lleva audio Opus", id="audio-before-head"),
    ],
)
def test_fakes_are_rejected(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "answer.ogg"
    path.write_bytes(data)
    found = problem(path)
    assert found is not None and message in found


def test_missing_and_oversize(tmp_path: Path) -> None:
    assert problem(tmp_path / "nowhere.ogg") == "no existe el archivo de audio"
    big = tmp_path / "big.ogg"
    with big.open("wb") as stream:  # sparse: no 16 MB written to disk
        stream.write(voice_note())
        stream.truncate(MAX_BYTES + 1)
    assert "más de 16 MB" in (problem(big) or "")
    exact = tmp_path / "exact.ogg"
    with exact.open("wb") as stream:
        stream.write(voice_note())
        stream.truncate(MAX_BYTES)  # the limit itself is allowed: trailing zeros are never read
    assert problem(exact) is None
    assert problem(tmp_path) == "no es un archivo de audio"


# -- through the content loader: file, line and field ---------------------------------------


def _with_audio(root: Path, value: str, data: bytes | None) -> Path:
    topic = root / "kiche" / "topics" / "asilo-como-solicitar.yaml"
    topic.write_text(topic.read_text(encoding="utf-8") + f"audio: {value}\n", encoding="utf-8")
    if data is not None:
        target = root / "kiche" / value
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return topic


def test_content_with_a_voice_note_loads(content_copy: Path) -> None:
    _with_audio(content_copy, "audio/asilo-como-solicitar.ogg", voice_note())
    content = load_content(content_copy)
    assert content.audio("quc", "asilo-como-solicitar") == content_copy / "kiche" / "audio" / "asilo-como-solicitar.ogg"
    assert content.audio("quc", "pasaporte-requisitos") is None


@pytest.mark.parametrize(
    "value, data, message",
    [
        pytest.param("audio/asilo-como-solicitar.ogg", _wav(), "no es un archivo OGG", id="fake"),
        pytest.param("audio/asilo-como-solicitar.ogg", None, "no existe el archivo de audio", id="missing"),
        pytest.param("../../es/ui.yaml", None, "debe ser un archivo dentro de", id="outside-the-folder"),
        pytest.param("/etc/hostname", None, "debe ser un archivo dentro de", id="absolute"),
    ],
)
def test_bad_audio_is_located(content_copy: Path, value: str, data: bytes | None, message: str) -> None:
    topic = _with_audio(content_copy, value, data)
    with pytest.raises(ContentError) as caught:
        load_content(content_copy)
    [issue] = caught.value.issues
    assert (issue.path, issue.line, issue.field) == (topic, 8, "audio")
    assert message in str(issue)
    assert str(issue).startswith(f"{topic}:8 audio: ")
