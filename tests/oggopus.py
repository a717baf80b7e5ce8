"""Tiny OGG/Opus files for tests, built byte by byte (no opusenc or ffmpeg needed).

`voice_note()` is 20 ms of silence in the shape every encoder writes: an identification
page (OpusHead), a comment page (OpusTags) and one audio page. The CRC is computed here,
independently of bot.audio, from the Ogg specification (RFC 3533).
"""

from __future__ import annotations

import struct

__all__ = ["ogg_page", "opus_head", "opus_tags", "voice_note"]

SILENCE = b"\xf8\xff\xfe"  # one 20 ms CELT frame of silence, the packet encoders write for digital silence


def _crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def ogg_page(packet: bytes, *, sequence: int, flags: int = 0, granule: int = 0, serial: int = 0x50524547) -> bytes:
    """One Ogg page holding one whole packet (under 64 KB)."""
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = header + lacing + packet
    return page[:22] + struct.pack("<I", _crc(page)) + page[26:]


def opus_head(channels: int = 1) -> bytes:
    # magic, version 1, channels, pre-skip 312, 48 kHz input, gain 0, mapping family 0
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 312, 48000, 0, 0)


def opus_tags(vendor: bytes = b"pregunta tests") -> bytes:
    return b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)


def voice_note() -> bytes:
    """A valid OGG/Opus voice note of 20 ms of silence (a few dozen bytes)."""
    return (
        ogg_page(opus_head(), sequence=0, flags=0x02)
        + ogg_page(opus_tags(), sequence=1)
        + ogg_page(SILENCE, sequence=2, flags=0x04, granule=312 + 960)
    )
