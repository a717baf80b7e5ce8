"""Scrubbing on a table of tricky inputs, and the properties every scrubbed text keeps."""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from bot.errors import SettingsError
from bot.privacy import (
    MAX_KEPT,
    MIN_KEY_BYTES,
    load_or_create_key,
    mentions_personal_data,
    pseudonym,
    pseudonym_key,
    scrub,
)
from bot.settings import Settings

SCRUB_TABLE = [
    # dates (a birth date helps identify someone)
    ("date-slashes", "naci el 12/03/1990 en huehue", "naci el [fecha] en huehue"),
    ("date-dashes", "mi cita es el 5-11-2025", "mi cita es el [fecha]"),
    ("date-short-year", "salí el 1.1.99", "salí el [fecha]"),
    # phones: spaces, dashes, +502, brackets, 00, full-width digits, US numbers
    ("phone-plus502-spaces", "mi numero es +502 5555 1234", "mi numero es [teléfono]"),
    ("phone-plus502-dash", "escribime al +502 5555-1234 porfa", "escribime al [teléfono] porfa"),
    ("phone-dash", "llamame al 5555-1234", "llamame al [teléfono]"),
    ("phone-spaces", "mi cel 5555 1234", "mi cel [teléfono]"),
    ("phone-plain", "mi cel 55551234", "mi cel [teléfono]"),
    ("phone-brackets", "(502) 5555-1234 es el mío", "[teléfono] es el mío"),
    ("phone-00", "00502 5555 1234", "[teléfono]"),
    ("phone-digit-by-digit", "5 5 5 5 1 2 3 4", "[teléfono]"),
    ("phone-us", "+1 (213) 555-0199 es de mi hermano", "[teléfono] es de mi hermano"),
    ("phone-fullwidth", "５５５５１２３４", "[teléfono]"),
    ("phone-dots", "5555.1234", "[teléfono]"),
    # DPI: 13 digits, as on the card or run together
    ("dpi-spaces", "mi dpi es 2345 67890 0101", "mi dpi es [dpi]"),
    ("dpi-plain", "DPI 2345678900101", "DPI [dpi]"),
    ("dpi-dashes", "dpi 2345-67890-0101 vencido", "dpi [dpi] vencido"),
    # passports and other document numbers
    ("passport-letter", "mi pasaporte número G12345678 se venció", "mi pasaporte número [pasaporte] se venció"),
    ("passport-digits", "mi numero de pasaporte es 245678901", "mi numero de pasaporte es [pasaporte]"),
    ("passport-bare", "pasaporte 123456789", "pasaporte [pasaporte]"),
    ("uscis-receipt", "mi recibo IOE0912345678", "mi recibo [pasaporte]"),
    ("alien-number", "A-123-456-789 es mi numero A", "[pasaporte] es mi numero A"),
    # emails and links
    ("email", "escribime a juana.perez@gmail.com", "escribime a [correo]"),
    ("url", "vi en https://bit.ly/abc123 que cobran", "vi en [enlace] que cobran"),
    ("www", "en www.migracion.gob.gt dice", "en [enlace] dice"),
    ("bare-domain", "lo vi en facebook.com/tramites", "lo vi en [enlace]"),
    # amounts
    ("amount-q", "cuesta Q500?", "cuesta [monto]?"),
    ("amount-q-dot", "me cobraron Q.1,500.00 por el trámite", "me cobraron [monto] por el trámite"),
    ("amount-dollars", "pagué 300 dólares", "pagué [monto]"),
    ("amount-sign", "le mandé $1,200 a mi mamá", "le mandé [monto] a mi mamá"),
    ("amount-mil", "el coyote pide 2 mil", "el coyote pide [monto]"),
    ("amount-mil-quetzales", "son 5 mil quetzales", "son [monto]"),
    ("amount-usd", "US$ 1,000 de multa", "[monto] de multa"),
    # names
    ("name-lower", "me llamo juan perez", "me llamo [nombre]"),
    ("name-then-question", "me llamo Juan Pérez y quiero saber del pasaporte", "me llamo [nombre] y quiero saber del pasaporte"),
    ("name-compound", "Mi nombre es María de los Ángeles López, necesito ayuda", "Mi nombre es [nombre], necesito ayuda"),
    ("name-compound-lower", "mi nombre es maria de los angeles lopez", "mi nombre es [nombre]"),
    ("name-soy", "hola soy Ana, como saco pasaporte", "hola soy [nombre], como saco pasaporte"),
    ("name-soy-lower-known", "soy maria y necesito ayuda", "soy [nombre] y necesito ayuda"),
    ("name-soy-lower-surname", "soy juan perez", "soy [nombre]"),
    ("name-shouting", "SOY JUAN PEREZ", "SOY [nombre]"),
    ("name-se-llama", "mi hijo se llama Kevin", "mi hijo se llama [nombre]"),
    ("name-nombre-colon", "Nombre: Rosa Xol", "Nombre: [nombre]"),
    # not names
    ("soy-demonym", "soy guatemalteco y vivo en mexico", "soy guatemalteco y vivo en mexico"),
    ("soy-demonym-capital", "Soy Guatemalteca", "Soy Guatemalteca"),
    ("soy-de", "soy de Huehue", "soy de Huehue"),
    ("soy-migrante", "soy migrante", "soy migrante"),
    ("soy-migrante-shouting", "SOY MIGRANTE", "SOY MIGRANTE"),
    ("soy-huehueteco", "Soy Huehueteco", "Soy Huehueteco"),
    ("soy-mayor", "soy mayor de edad", "soy mayor de edad"),
    ("soy-mama", "Soy Mamá soltera", "Soy Mamá soltera"),
    ("se-llama-office", "como se llama la oficina", "como se llama la oficina"),
    # numbers that are not personal
    ("small-numbers", "tengo 3 hijos y 2 años de estar aqui", "tengo 3 hijos y 2 años de estar aqui"),
    ("form-number", "el formulario I-589", "el formulario I-589"),
    ("years", "del 2019 al 2020", "del 2019 al 2020"),
    # everything at once
    (
        "all-at-once",
        "me llamo juan perez, mi cel es 5555-1234 y mi correo jp@x.com, DPI 2345 67890 0101",
        "me llamo [nombre], mi cel es [teléfono] y mi correo [correo], DPI [dpi]",
    ),
    ("control-characters", "hola\x00\x1b[2J 5555\u200b1234", "hola [2J [teléfono]"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in SCRUB_TABLE], ids=[c[0] for c in SCRUB_TABLE])
def test_scrub_table(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_scrub_caps_length_without_cutting_a_placeholder() -> None:
    assert len(scrub("x " * 400)) <= MAX_KEPT
    long = "a" * 295 + " 55551234"
    kept = scrub(long)
    assert len(kept) <= MAX_KEPT and "[" not in kept and "5555" not in kept


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=600))
def test_scrub_properties(text: str) -> None:
    kept = scrub(text)
    assert len(kept) <= MAX_KEPT
    assert scrub(kept) == kept  # scrubbing twice changes nothing
    assert not re.search(r"\d(?:[\s.()-]{0,2}\d){6}", kept)  # no run of 7 digits survives


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abcdefghij ", max_size=40),
    st.from_regex(r"\+?(502)?[ -]?\d{4}[ -]?\d{4}", fullmatch=True),
    st.text(alphabet="abcdefghij ", max_size=40),
)
def test_any_phone_in_any_sentence_is_removed(before: str, phone: str, after: str) -> None:
    kept = scrub(f"{before} {phone} {after}")
    digits = re.sub(r"\D", "", phone)
    assert digits[-8:] not in re.sub(r"\D", "", kept)


def test_mentions_personal_data_ignores_public_numbers() -> None:
    assert mentions_personal_data("me llamo Ana")
    assert not mentions_personal_data("soy guatemalteca, donde saco el pasaporte")
    assert not mentions_personal_data("llamé al 2411 1900 y no contestan", frozenset({"24111900"}))
    assert mentions_personal_data("llamé al 2411 1900 y no contestan")


def test_pseudonym_is_keyed_and_stable() -> None:
    a = pseudonym(b"k1", "usage", "2026-01", "telegram", "123")
    assert a == pseudonym(b"k1", "usage", "2026-01", "telegram", "123")
    assert a != pseudonym(b"k2", "usage", "2026-01", "telegram", "123")
    assert a != pseudonym(b"k1", "usage", "2026-02", "telegram", "123")  # months cannot be linked
    assert len(a) == 32 and "123" not in a


def test_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def settings_for(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, pregunta_db=tmp_path / "data" / "pregunta.sqlite3", **values)  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize(
    "written",
    ["", "\n", "00" * (MIN_KEY_BYTES - 1), "not hex at all", "ab" * MIN_KEY_BYTES + "z"],
    ids=["empty", "blank-line", "short", "garbage", "odd-character"],
)
def test_a_short_or_broken_key_file_is_refused(tmp_path: Path, written: str) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    path.parent.mkdir()
    path.write_text(written)
    with pytest.raises(SettingsError, match=r"pseudonym key .* at least 32"):
        load_or_create_key(path)
    with pytest.raises(SettingsError):
        pseudonym_key(settings_for(tmp_path))
    assert path.read_text() == written  # refused, never replaced: a backup may still hold the real key


@pytest.mark.parametrize("value", ["", "short-key", "k" * (MIN_KEY_BYTES - 1)], ids=["empty", "short", "one-byte-short"])
def test_a_short_key_setting_is_refused(tmp_path: Path, value: str) -> None:
    settings = settings_for(tmp_path, pregunta_pseudonym_key=value or " ")
    with pytest.raises(SettingsError, match=f"PREGUNTA_PSEUDONYM_KEY is \\d+ bytes long; it must be at least {MIN_KEY_BYTES}"):
        pseudonym_key(settings)


def test_a_long_enough_key_setting_is_used_as_is(tmp_path: Path) -> None:
    assert pseudonym_key(settings_for(tmp_path, pregunta_pseudonym_key="k" * MIN_KEY_BYTES)) == b"k" * MIN_KEY_BYTES
    assert not (tmp_path / "data").exists()  # no key file made when the setting is there


def test_a_full_disk_at_first_start_leaves_no_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug of issue 15.3: a full disk left a 0-byte key, and the next start used it."""
    path = tmp_path / "data" / "pseudonym.key"

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", disk_full)
        with pytest.raises(SettingsError, match=r"cannot write the pseudonym key .*No space left"):
            pseudonym_key(settings_for(tmp_path))
    assert list(path.parent.iterdir()) == []  # neither the key nor its temporary file
    key = pseudonym_key(settings_for(tmp_path))  # the disk has room again: a whole key
    assert len(key) == MIN_KEY_BYTES and load_or_create_key(path) == key


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def first_start() -> None:
        start.wait()
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and load_or_create_key(path) == keys[0]
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]
