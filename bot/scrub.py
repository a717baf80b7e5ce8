"""What personal data looks like in a message, and the placeholder that replaces each kind.

`scrub` is what stands between a not-sure question and the usage log: it must err on the
side of removing too much (a date read as a phone number is a small loss; a phone number
kept is a leak). It reads numbers written with digits or in words, e-mails written with
"arroba", handles, addresses, birth dates and names after the phrases people introduce
themselves with. Knows nothing of channels or storage; `bot.privacy` re-exports it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from bot.scrub_words import CONNECTORS, GIVEN_NAMES, LEXICON, MONTHS, NUMBER_WORDS, STOP, ordinary

__all__ = ["MAX_KEPT", "PERSONAL_TAGS", "mentions_personal_data", "scrub"]

MAX_KEPT = 300  # characters of a scrubbed query that are kept
_MAX_READ = 2000  # characters looked at: bounds the work on a hostile message
PERSONAL_TAGS = ("[teléfono]", "[dpi]", "[pasaporte]", "[correo]", "[nombre]", "[usuario]", "[dirección]")

# Patterns marked (folded) run on the folded text (lower case, no accents, same length),
# so they are written without accents or capitals.

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+\s?@\s?[\w-]+(?:\s?\.\s?[\w-]+)+")
_EMAIL_SPOKEN = re.compile(  # (folded) "juan punto perez arroba gmail punto com"
    r"(?<![\w.+-])[\w.+-]+(?:\s+punto\s+[\w+-]+)*\s*(?:\barroba\b|\(at\)|\[at\])\s*[\w-]+"
    r"(?:\s*(?:\.|\bpunto\b)\s*(?:com|net|org|es|gt|mx|edu|gob|info|co)\b)*"
)
_URL = re.compile(
    r"(?:\bhttps?://|\bwww\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|gt|mx|us|info|io|ly|gob|gov|edu)\b(?:/\S*)?",
    re.IGNORECASE,
)
_HANDLE = re.compile(r"(?<![\w@.])@[a-z0-9_](?:[a-z0-9_.]*[a-z0-9_])?", re.IGNORECASE)
_ACCOUNT = re.compile(  # (folded) "mi usuario es juanito93", "ig: juanito93"
    r"\b((?:mi\s+(?:usuario|user|cuenta|perfil|face|facebook|insta|instagram|tiktok|telegram)\s+(?:es|:)"
    r"|(?:ig|insta|instagram|fb|facebook|face|tiktok|telegram|usuario|user)\s*:)\s*)\S+"
)

# -- addresses (folded): "5a calle 3-20 zona 1", "avenida 4 casa 12", "lote 5 manzana b" --
_HOUSE = r"(?:(?:no\.?|numero|#)\s*)?[a-z]?\d{1,4}(?:[.,]\d+)?(?:\s*-\s*\d{1,4})?[a-z]?\b"
_STREET = r"(?:calle|avenida|av|avda|ave|calzada|diagonal|callejon|bulevar|boulevard|blvd|carretera|kilometro|km)\b\.?"
_PLACE = r"(?:casa|lote|manzana|mz|apartamento|apto|sector)\b\.?"
_ADDRESS = re.compile(
    rf"(?:\b\d{{1,2}}\s*(?:a|o|ra|da|ta|va|na|era)?\.?\s*{_STREET}(?:\s*{_HOUSE})?|\b{_STREET}\s*{_HOUSE}|\b{_PLACE}\s*{_HOUSE})"
    rf"(?:\s*,?\s*(?:y\s+)?(?:{_STREET}|{_PLACE})?\s*{_HOUSE})*"
    r"(?:\s*,?\s*(?:zona|z)\.?\s*\d{1,2}\b)?"
    r"|\b\d{1,3}\s*-\s*\d{1,3}\s*,?\s*(?:zona|z)\.?\s*\d{1,2}\b"
)

# -- dates (folded): "3 de mayo de 1990", "tres de mayo del noventa", "nací en 1990" ------
_UNIT = r"(?:uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve)"
_DAY = (
    rf"(?:\d{{1,2}}|primero|{_UNIT}|diez|once|doce|trece|catorce|quince|dieci(?:seis|siete|ocho|nueve)"
    r"|veinte|veinti(?:uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve)|treinta(?:\s+y\s+uno)?)"
)
_TENS = rf"(?:diez|once|doce|trece|catorce|quince|dieci\w+|veinte|veinti\w+|(?:treinta|cuarenta|cincuenta|sesenta|setenta|ochenta|noventa)(?:\s+y\s+{_UNIT})?)"
_YEAR = rf"(?:(?:19|20)\d\d\b|'?\d\d\b|(?:mil\s+novecientos\s+)?{_TENS}|dos\s+mil(?:\s+(?:{_TENS}|{_UNIT}))?)"
_MONTH = "(?:" + "|".join(MONTHS) + r")\b"
_DATE_WORDS = re.compile(
    rf"\b{_DAY}\s+de\s+{_MONTH}(?:\s*(?:,|de|del)?\s*{_YEAR})?"
    rf"|\b{_MONTH}\s+(?:\d{{1,2}}\b\s*,?\s*)?(?:de|del)?\s*(?:(?:19|20)\d\d\b|{_YEAR}(?=\s*$|\s*[,.;!?]))"
    rf"|(?:(?<=\bnaci\s)|(?<=\bnacio\s))(?:(?:el|en)\s+)?(?:(?:el\s+)?ano\s+)?(?:de\s+|del\s+)?{_YEAR}"
    rf"(?![/.-]?\d)(?!\s+de\s+{_MONTH})"
)
_DATE = re.compile(r"(?<![\w/.-])(?:[0-3]?\d)[/.-](?:[01]?\d)[/.-](?:19|20)?\d\d(?![\w/.-])")

# -- identity documents ------------------------------------------------------------
# DPI / CUI: 13 digits, as printed (4-5-4) or in any grouping; after "dpi" / "cui", any
# number of five digits or more.
_DPI = re.compile(r"(?<![\d+])(?!00)\d(?:[\s.-]?\d){12}(?!\d)")
_DPI_SAID = re.compile(
    r"\b(dpi|cui|documento\s+personal(?:\s+de\s+identificacion)?)((?:\s*(?:numero|num\.?|no\.?|nro\.?|#|es|:|de|mi)\s*){0,3}\s*)"
    r"\d(?:[\s.-]?\d){4,}"
)
# "pasaporte número G1234567", "mi pasaporte es 123 456 789", "passport # 55-1234567".
_PASSPORT_SAID = re.compile(
    r"\b(pasaporte|passport)((?:\s*(?:numero|num\.?|no\.?|nro\.?|#|es|:|de|mi)\s*){0,3}\s*)"
    r"(?:(?:[a-z]{1,3}\s)?\d{1,5}(?:\s\d{1,5}){1,4}\b|(?=[a-z0-9-]*\d)[a-z0-9][a-z0-9-]{4,14}\b)"
)
# Letters then digits: passports (G12345678), receipts (IOE0912345678), alien numbers (A-123456789).
_DOCUMENT = re.compile(r"\b[a-z]{1,3}[-#]?\d[\d-]{5,12}\d\b", re.IGNORECASE)
_AMOUNT = re.compile(
    r"(?:\b(?-i:Q)\.?\s?|\bq\.?|\b(?:us|usd|gtq|mxn)\s?\$?\s?|\$\s?)\d(?:[\d.,]*\d)?(?:\s?(?:mil|millones?)\b)?"
    r"|\b\d(?:[\d.,]*\d)?\s?(?:mil\s+|millones?\s+(?:de\s+)?)?"
    r"(?:quetzales|quetzal|d[oó]lares|dollars|pesos|lempiras|colones|usd|gtq|dls)\b"
    r"|\b\d+(?:[.,]\d+)?\s?(?:mil|millones?)\b",
    re.IGNORECASE,
)
# Seven digits or more (any long run: an account, a card), with spaces, dots, dashes, brackets or a leading + / 00 between them.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\s?\(?\d(?:[\s.()-]{0,2}\d){6,}(?!\w)")
# (folded) a number dictated in words, digits mixed in: "cinco cinco cinco cinco doce treinta y cuatro"
_NUMBER_TOKEN = rf"(?:\d+|(?:treinta|cuarenta|cincuenta|sesenta|setenta|ochenta|noventa)\s+y\s+{_UNIT}\b|(?:{'|'.join(NUMBER_WORDS)})\b)"
_SPOKEN_NUMBER = re.compile(rf"(?<![\w\[]){_NUMBER_TOKEN}(?:[\s,.-]+{_NUMBER_TOKEN})+")

# -- names -------------------------------------------------------------------------
# After these a name follows, whatever its case.
_NAME_SURE = re.compile(
    r"\b(me\s+llamo|mi\s+nombre\s+(?:completo\s+)?es|mi\s+nombre\s*:|me\s+llaman(?:\s+(?:el|la))?|me\s+dicen(?:\s+(?:el|la))?|nombre\s*:"
    r"|atte\.?|att\.?|atentamente,?|firma\s*:)\s*"
)
# After these it may be a name or an ordinary word ("soy migrante", "habla español").
_NAME_MAYBE = re.compile(
    r"\b(soy|se\s+llama|se\s+llaman|habla|les?\s+escribe|te\s+escribe|les?\s+saluda|de\s+parte\s+de"
    r"|(?:el|la)\s+(?:senor|senora|senorita)|(?:senor|senora|senorita|sr|sra|srta|don|dona|lic|licenciad[oa])\.?)\s+"
)
_WORD = re.compile(r"\s*([^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*)")


def scrub(text: str) -> str:
    """The text with phones, DPI, passports, emails, handles, addresses, amounts, dates and names as placeholders, ≤ 300 characters."""
    text = _clean(text[:_MAX_READ])
    if "@" in text:
        text = _EMAIL.sub("[correo]", text)
    if re.search(r"(?i)arroba|\[at\]|\(at\)", text):
        text = _folded_sub(_EMAIL_SPOKEN, text, "[correo]")
    text = _URL.sub("[enlace]", text)
    text = _HANDLE.sub("[usuario]", text)
    text = _folded_sub(_ACCOUNT, text, lambda m: m.group(1) + "[usuario]")
    text = _folded_sub(_ADDRESS, text, "[dirección]")
    text = _DATE.sub("[fecha]", text)  # a birth date helps identify someone
    text = _folded_sub(_DATE_WORDS, text, "[fecha]")
    text = _folded_sub(_DPI_SAID, text, lambda m: f"{m.group(1)}{m.group(2) or ' '}[dpi]")
    text = _DPI.sub("[dpi]", text)
    text = _folded_sub(_PASSPORT_SAID, text, lambda m: f"{m.group(1)}{m.group(2) or ' '}[pasaporte]")
    text = _AMOUNT.sub("[monto]", text)
    text = _DOCUMENT.sub("[pasaporte]", text)
    text = _PHONE.sub(lambda m: _leading_space(m.group()) + "[teléfono]", text)
    text = _folded_sub(_SPOKEN_NUMBER, text, _spoken_phone)
    text = _names(text)
    return _cap(" ".join(text.split()))


def mentions_personal_data(text: str, public_numbers: frozenset[str] = frozenset()) -> bool:
    """True when a message carries a phone, DPI, passport number, email, handle, address or a name.

    `public_numbers` (digits only) are official lines a person may quote back to us.
    """
    text = text[:_MAX_READ]
    for found in _PHONE.finditer(text):
        digits = "".join(c for c in found.group() if c.isdigit())
        if digits in public_numbers:
            text = text.replace(found.group(), " ")
    kept = scrub(text)
    return any(tag in kept for tag in PERSONAL_TAGS)


# -- helpers -------------------------------------------------------------------------

Replacement = str | Callable[["_Folded"], str]


class _Folded:
    """A match found in the folded text, read back from the original (same offsets)."""

    def __init__(self, match: re.Match[str], original: str) -> None:
        self._match = match
        self._original = original

    def group(self, index: int = 0) -> str:
        start, end = self._match.span(index)
        return self._original[start:end] if start >= 0 else ""


def _folded_sub(pattern: re.Pattern[str], text: str, replacement: Replacement) -> str:
    """`pattern.sub` run on the folded text, replacing in the original."""
    out: list[str] = []
    pos = 0
    for match in pattern.finditer(_fold_same_length(text)):
        start, end = match.span()
        if start == end:
            continue
        found = _Folded(match, text)
        out.append(text[pos:start])
        out.append(replacement if isinstance(replacement, str) else replacement(found))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _fold_same_length(text: str) -> str:
    """Lower case without accents, one character for each character, so offsets match."""
    return "".join(_fold_char(ch) for ch in text)


def _fold_char(ch: str) -> str:
    if ch.isascii():
        return ch.lower()
    base = unicodedata.normalize("NFD", ch)[0].lower()
    return base if len(base) == 1 else ch


def _spoken_phone(found: _Folded) -> str:
    """A run of number words counts as a phone number once it stands for seven digits or more."""
    said = _fold_same_length(found.group())
    digits = 0
    for token in re.findall(rf"{_NUMBER_TOKEN}", said):
        digits += len(token) if token.isdigit() else 2 if " y " in token else NUMBER_WORDS.get(token, 1)
    if digits < 7:
        return found.group()
    return _leading_space(found.group()) + "[teléfono]"


def _clean(text: str) -> str:
    """NFKC (full-width digits become digits) and no control or invisible characters."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Co", "Cs", "Cn")
    )


def _leading_space(match: str) -> str:
    return " " if match[:1].isspace() else ""


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.lower().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _names(text: str) -> str:
    text = _replace_names(text, _NAME_SURE, sure=True)
    return _replace_names(text, _NAME_MAYBE, sure=False)


def _replace_names(text: str, lead: re.Pattern[str], *, sure: bool) -> str:
    out: list[str] = []
    pos = 0
    for found in lead.finditer(_fold_same_length(text)):
        if found.start() < pos:
            continue
        end = _name_end(text, found.end(), sure=sure)
        if end is None:
            continue
        out.append(text[pos : found.end()].rstrip() + " [nombre]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _name_end(text: str, start: int, *, sure: bool) -> int | None:
    """Where the name starting at `start` ends, or None when what follows is not a name.

    After a sure lead every word up to an ordinary one is taken; after a maybe lead the
    first word must not be an ordinary word, and at most two lower-case words are taken
    (a capitalised run goes on: "Soy María de los Ángeles López").
    """
    taken: list[tuple[str, int]] = []  # (folded word, end offset)
    pos = start
    while len(taken) < 6:
        word = _WORD.match(text, pos)
        if word is None:
            break
        raw, folded = word.group(1), _fold(word.group(1))
        if not taken:
            if folded in STOP or folded in CONNECTORS:
                return None
            if not sure and ordinary(folded):
                return None
        elif folded in CONNECTORS:
            pass  # kept only if a name word follows, below
        elif (
            folded in STOP
            or (folded in LEXICON and folded not in GIVEN_NAMES)
            or (not sure and not raw[0].isupper() and _name_words(taken) >= 2)  # two lower-case words at most
        ):
            break
        taken.append((folded, word.end()))
        pos = word.end()
    while taken and taken[-1][0] in CONNECTORS:
        taken.pop()
    return taken[-1][1] if taken else None


def _name_words(taken: list[tuple[str, int]]) -> int:
    return sum(1 for folded, _ in taken if folded not in CONNECTORS)


def _cap(text: str) -> str:
    if len(text) <= MAX_KEPT:
        return text
    cut = text[:MAX_KEPT]
    bracket = cut.rfind("[")
    if bracket > cut.rfind("]"):
        cut = cut[:bracket]  # never keep half a placeholder
    return cut.rstrip()
