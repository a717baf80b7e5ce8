"""Check that a recorded answer is a voice note the messaging apps will play.

Telegram plays a voice message only from OGG with an Opus stream, and WhatsApp takes
audio up to 16 MB. This reads the first Ogg pages by hand (RFC 3533 for the pages,
RFC 7845 for the Opus headers), so no audio library is needed. Knows nothing of
content files: `problem` returns a message in Spanish, and the loader says where.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["MAX_BYTES", "ogg_crc", "problem"]

MAX_BYTES = 16 * 1024 * 1024  # WhatsApp's limit for audio; Telegram's voice limit is higher

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segments
_BEGINNING_OF_STREAM = 0x02
_PAGES_TO_SCAN = 16  # OpusTags follows the identification page; other streams' first pages may sit between


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no initial or final xor)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


class _Unplayable(Exception):
    """The file is not a voice note; the message says why, in Spanish."""


@dataclass(frozen=True)
class _Page:
    flags: int
    serial: int
    body: bytes
    first_packet_ends: bool  # the page's first packet is complete on it


def _read_page(stream: BinaryIO) -> _Page | None:
    """The next Ogg page, None at the end of the file; _Unplayable when it is not one."""
    header = stream.read(_PAGE_HEADER.size)
    if not header:
        return None
    if header[:4] != b"OggS"[: len(header)]:
        raise _Unplayable("no es un archivo OGG (no empieza con «OggS»)")
    if len(header) < _PAGE_HEADER.size:
        raise _Unplayable("el archivo OGG está cortado")
    _, version, flags, _, serial, _, crc, count = _PAGE_HEADER.unpack(header)
    if version != 0:
        raise _Unplayable(f"versión de OGG desconocida ({version})")
    lacing = stream.read(count)
    body = stream.read(sum(lacing))
    if len(lacing) < count or len(body) < sum(lacing):
        raise _Unplayable("el archivo OGG está cortado")
    if ogg_crc(header[:22] + b"\0\0\0\0" + header[26:] + lacing + body) != crc:
        raise _Unplayable("el archivo OGG está dañado (no coincide la suma de control)")
    return _Page(flags, serial, body, any(size < 255 for size in lacing))


def _opus_head(page: _Page | None) -> _Page:
    """The identification page, checked: Opus, complete, at least one channel."""
    if page is None:
        raise _Unplayable("el archivo de audio está vacío")
    body = page.body
    if not body.startswith(b"OpusHead"):
        raise _Unplayable("el OGG no lleva audio Opus (la primera página no es «OpusHead»): grabalo como nota de voz Opus")
    if len(body) < 19 or not page.first_packet_ends:
        raise _Unplayable("la cabecera «OpusHead» está incompleta")
    if body[8] >> 4 != 0:
        raise _Unplayable(f"versión de Opus desconocida ({body[8]})")
    if body[9] == 0:
        raise _Unplayable("la cabecera Opus dice que no hay canales de audio")
    if not page.flags & _BEGINNING_OF_STREAM:
        raise _Unplayable("la primera página OGG no marca el inicio del audio")
    return page


def _check_opus_tags(stream: BinaryIO, serial: int) -> None:
    for _ in range(_PAGES_TO_SCAN):
        page = _read_page(stream)
        if page is None:
            break
        if page.serial == serial:
            if page.body.startswith(b"OpusTags"):
                return
            break
    raise _Unplayable("después de «OpusHead» falta la página «OpusTags»")


def problem(path: Path) -> str | None:
    """Why `path` cannot be sent as a voice note, or None when it can."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "no existe el archivo de audio"
    except OSError as exc:
        return f"no se puede leer el archivo de audio: {exc.strerror}"
    if not path.is_file():
        return "no es un archivo de audio"
    if size > MAX_BYTES:
        return f"el audio pesa más de {MAX_BYTES // 2**20} MB ({size} bytes): acortalo o grabalo con menos calidad"
    try:
        with path.open("rb") as stream:
            first = _opus_head(_read_page(stream))
            _check_opus_tags(stream, first.serial)
    except _Unplayable as exc:
        return str(exc)
    except OSError as exc:
        return f"no se puede leer el archivo de audio: {exc.strerror}"
    return None
