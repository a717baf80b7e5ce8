"""The attack probes of issue 15.5: personal data written the ways people write it never passes scrub.

Each probe names the tokens that must be gone (compared without case or accents), and
what must stay when it is not personal: "soy migrante" is a question's context, not a name.
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from bot.scrub import mentions_personal_data, scrub

# (id, message, tokens that must not survive)
PROBES: list[tuple[str, str, tuple[str, ...]]] = [
    # names after the ways people introduce themselves, any case, known or unknown names
    ("llamo-unknown-lower", "me llamo yeferson cutz y quiero saber de la visa", ("yeferson", "cutz")),
    ("llamo-shouting", "ME LLAMO BRAYAN ALEXANDER TZOC", ("brayan", "alexander", "tzoc")),
    ("nombre-es-mayan", "mi nombre es Rigoberta Xoyón Ajú", ("rigoberta", "xoyon", "aju")),
    ("soy-unknown-lower", "soy yeferson y quiero ir a canada", ("yeferson",)),
    ("soy-unknown-two-words", "hola soy brayan cutz, ocupo ayuda", ("brayan", "cutz")),
    ("soy-capitalised-unknown", "Soy Yulisa Batz de San Marcos", ("yulisa", "batz")),
    ("soy-given-and-surname", "soy juana xol, que papeles piden", ("juana", "xol")),
    ("soy-after-comma", "buenas, soy Marvin Coc. Me deportaron", ("marvin", "coc")),
    ("habla-name", "habla Eswin Pop, del caserío", ("eswin", "pop")),
    ("habla-lower", "buenas tardes habla yoselin ical", ("yoselin", "ical")),
    ("le-escribe", "le escribe Dilia Chub para preguntar", ("dilia", "chub")),
    ("le-escribe-senora", "le escribe la señora Ofelia Tun", ("ofelia", "tun")),
    ("les-saluda", "les saluda Ervin Caal desde Cobán", ("ervin", "caal")),
    ("de-parte-de", "de parte de Heydi Tiul, cuanto cuesta", ("heydi", "tiul")),
    ("don-name", "mi papá don Cipriano Choc necesita pasaporte", ("cipriano", "choc")),
    ("signature", "gracias. Atte. Wilmer Quej", ("wilmer", "quej")),
    ("se-llama-child", "mi hija se llama yasmin y tiene 5 años", ("yasmin",)),
    ("me-dicen", "me dicen el chino tuyuc", ("chino", "tuyuc")),
    # handles and e-mails, written or spoken
    ("handle", "escribime a @brayan_cutz93 en insta", ("brayan_cutz93", "cutz93")),
    ("handle-dots", "búscame @yeso.tzul", ("yeso.tzul", "tzul")),
    ("account-said", "mi usuario es brayancutz93", ("brayancutz93",)),
    ("account-colon", "ig: yoselin.ical", ("yoselin",)),
    ("email", "mi correo es yoselin.ical@gmail.com", ("yoselin", "ical")),
    ("email-spaced-at", "yoselin.ical @ gmail.com", ("yoselin", "ical")),
    ("email-arroba", "brayan punto cutz arroba gmail punto com", ("brayan", "cutz")),
    ("email-arroba-short", "escribime a yoselin93 arroba hotmail", ("yoselin93",)),
    ("email-at-brackets", "yoselin[at]yahoo.com", ("yoselin",)),
    # dates of birth, with digits or in words
    ("date-words-digits", "nací el 3 de mayo de 1990 en Huehue", ("3 de mayo", "1990")),
    ("date-words", "nací el tres de mayo del noventa", ("tres de mayo", "noventa")),
    ("date-words-full-year", "naci el 14 de febrero de mil novecientos ochenta y dos", ("14 de febrero", "ochenta y dos")),
    ("date-month-year", "nací en mayo de 1990", ("mayo de 1990", "1990")),
    ("date-year-only", "yo naci en 1987 en totonicapan", ("1987",)),
    ("date-two-thousand", "mi hijo nacio el 5 de junio del dos mil diez", ("5 de junio", "dos mil diez")),
    ("date-numeric", "fecha de nacimiento 03/05/1990", ("03/05/1990", "1990")),
    # identity documents, with spaces
    ("dpi-spaces", "mi dpi es 2345 67890 0101", ("2345", "67890", "0101")),
    ("dpi-odd-grouping", "CUI 2345 6789 00101", ("2345", "6789", "00101")),
    ("dpi-said-short", "dpi numero 23456 78", ("23456",)),
    ("passport-spaced", "pasaporte número G 1234 5678", ("1234", "5678")),
    ("passport-digits-spaced", "mi pasaporte es 123 456 789", ("123 456 789", "456")),
    ("alien-number", "mi A-number es A-123-456-789", ("123-456-789", "456")),
    # phone numbers with digits or in words
    ("phone-spaced-pairs", "mi cel 55 55 12 34", ("55 55 12 34", "12 34")),
    ("phone-words", "mi número es cinco cinco cinco cinco uno dos tres cuatro", ("cinco cinco cinco cinco uno",)),
    ("phone-tens", "llamame al cincuenta y cinco cincuenta y cinco doce treinta y cuatro", ("cincuenta y cinco cincuenta",)),
    ("phone-mixed", "mi whatsapp 5555 uno dos tres cuatro", ("5555", "uno dos tres cuatro")),
    ("phone-plus", "+502 4455-6677", ("4455", "6677")),
    ("phone-us-words", "el número de mi hermano es 213 555 0199", ("555", "0199")),
    # addresses
    ("address-zona", "vivo en la 5a calle 3-20 zona 1", ("5a calle", "3-20", "zona 1")),
    ("address-avenida", "mi casa es 4a. avenida 12-34, zona 10", ("12-34", "zona 10")),
    ("address-lote", "lote 5 manzana 3 colonia el milagro", ("lote 5", "manzana 3")),
    ("address-casa", "casa no. 23 calle principal", ("23",)),
    ("address-house-zone", "estoy en la 3-20 zona 18", ("3-20", "zona 18")),
    ("address-km", "kilometro 18.5 carretera al salvador", ("18.5",)),
    # everything at once
    (
        "all-at-once",
        "soy yeferson cutz, naci el 3 de mayo de 1990, vivo en 5a calle 3-20 zona 1, cel 5555 1234, @yefer_c",
        ("yeferson", "cutz", "1990", "3-20", "5555", "yefer_c"),
    ),
]

# Ordinary words after the same phrases: kept, so the question still reads.
KEPT = [
    ("soy-de", "soy de honduras y quiero pasar", "soy de honduras y quiero pasar"),
    ("soy-migrante", "soy migrante, que hago", "soy migrante, que hago"),
    ("soy-guatemalteco", "soy guatemalteco y vivo en mexico", "soy guatemalteco y vivo en mexico"),
    ("soy-hondureña", "Soy hondureña", "Soy hondureña"),
    ("soy-deportado", "soy deportado de estados unidos", "soy deportado de estados unidos"),
    ("soy-solicitante", "soy solicitante de asilo", "soy solicitante de asilo"),
    ("soy-madre-soltera", "soy madre soltera", "soy madre soltera"),
    ("soy-menor", "soy menor de edad", "soy menor de edad"),
    ("soy-estudiante", "Soy estudiante", "Soy estudiante"),
    ("habla-espanol", "alguien que habla español?", "alguien que habla español?"),
    ("habla-kiche", "se habla k'iche' en el consulado?", "se habla k'iche' en el consulado?"),
    ("habla-de", "el video habla de visas", "el video habla de visas"),
    ("le-escribe-su", "le escribe su servidora", "le escribe su servidora"),
    ("form", "el formulario I-589", "el formulario I-589"),
    ("years", "del 2019 al 2020", "del 2019 al 2020"),
    ("small-numbers", "tengo 3 hijos y 2 años de estar aqui", "tengo 3 hijos y 2 años de estar aqui"),
    ("counting-words", "tengo dos hijos y tres nietos", "tengo dos hijos y tres nietos"),
    ("zone-alone", "hay oficina en zona 4?", "hay oficina en zona 4?"),
    ("may-month", "en mayo abren la oficina?", "en mayo abren la oficina?"),
]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def test_there_are_enough_probes() -> None:
    assert len(PROBES) >= 49
    assert len({probe[0] for probe in PROBES}) == len(PROBES)


@pytest.mark.parametrize(("text", "secrets"), [p[1:] for p in PROBES], ids=[p[0] for p in PROBES])
def test_no_probe_passes_scrub(text: str, secrets: tuple[str, ...]) -> None:
    kept = scrub(text)
    for secret in secrets:
        assert _fold(secret) not in _fold(kept), f"{secret!r} kept in {kept!r}"
    assert re.search(r"\[(nombre|usuario|correo|fecha|dpi|pasaporte|teléfono|dirección)\]", kept), kept
    assert scrub(kept) == kept  # placeholders are stable


@pytest.mark.parametrize(("text", "expected"), [k[1:] for k in KEPT], ids=[k[0] for k in KEPT])
def test_ordinary_words_are_kept(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    ("text", "personal"),
    [
        ("escribime a @brayan_cutz93", True),
        ("vivo en la 5a calle 3-20 zona 1", True),
        ("soy yeferson", True),
        ("soy migrante", False),
        ("nací el 3 de mayo de 1990", False),  # a date alone gets no warning: it may be an appointment
    ],
)
def test_mentions_personal_data_knows_the_new_kinds(text: str, personal: bool) -> None:
    assert mentions_personal_data(text) is personal
