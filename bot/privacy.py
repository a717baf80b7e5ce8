"""Personal data never reaches the disk: pseudonyms are keyed hashes, kept text is scrubbed.

`scrub` is what stands between a not-sure question and the usage log: it must err on the
side of removing too much (a date read as a phone number is a small loss; a phone number
kept is a leak). Knows nothing of channels or storage; the usage log and the dialogue
call it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import SettingsError

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "MAX_KEPT",
    "MIN_KEY_BYTES",
    "load_or_create_key",
    "mentions_personal_data",
    "pseudonym",
    "pseudonym_key",
    "scrub",
]

MIN_KEY_BYTES = 32  # a pseudonym key shorter than this is refused
MAX_KEPT = 300  # characters of a scrubbed query that are kept
_MAX_READ = 2000  # characters looked at: bounds the work on a hostile message

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"(?:\bhttps?://|\bwww\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|gt|mx|us|info|io|ly|gob|gov|edu)\b(?:/\S*)?",
    re.IGNORECASE,
)
# 13 digits, as printed on the DPI card: 4-5-4, with or without spaces, dots or dashes.
_DPI = re.compile(r"(?<!\d)\d{4}[\s.-]?\d{5}[\s.-]?\d{4}(?!\d)")
# "pasaporte número G1234567", "mi pasaporte es 123456789", "passport # 55-1234567".
_PASSPORT_SAID = re.compile(
    r"\b(pasaporte|passport)((?:\s*(?:n[uú]mero|num\.?|no\.?|nro\.?|#|es|:|de|mi)\s*){0,3}\s*)"
    r"(?=[a-z0-9-]*\d)[a-z0-9][a-z0-9-]{4,14}\b",
    re.IGNORECASE,
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
_DATE = re.compile(r"(?<![\w/.-])(?:[0-3]?\d)[/.-](?:[01]?\d)[/.-](?:19|20)?\d\d(?![\w/.-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\s?\(?\d(?:[\s.()-]{0,2}\d){6,}(?!\w)")

# -- names ---------------------------------------------------------------------------
# After "me llamo" / "mi nombre es" a name follows, whatever its case. After "soy" or
# "se llama" it may be anything ("soy migrante"), so only a capitalised word that is not
# a demonym or a role, or a common given name in any case, is taken for a name.
_NAME_SURE = re.compile(
    r"\b(me\s+llamo|mi\s+nombre\s+(?:completo\s+)?es|me\s+llaman|me\s+dicen|nombre\s*:)\s*", re.IGNORECASE
)
_NAME_MAYBE = re.compile(r"\b(soy|se\s+llama|se\s+llaman)\s+", re.IGNORECASE)
_WORD = re.compile(r"\s*([^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*)")
_CONNECTORS = frozenset("de del la las los y".split())
_STOP = frozenset(
    """
    a al ante aqui ayer ayuda bien buenas buenos como con cual cuando de del desde dias donde
    e el en entonces es esta estoy fue gracias hace hola hoy la las le les lo los mas me mi mis
    manana necesito no noches o para pero pienso por porque pregunto pues puedo que queria quiero
    quisiera quien se si sin soy su sus tambien tardes te tengo tu un una uno unos unas vengo vivo
    voy ya yo trabajo ocupo deseo solicito consulto estuve vine llegue sali naci tuve fui hice hago
    ando andaba estaba perdi quede saque favor porfa urgente ahorita tenemos somos estamos
    """.split()
)
_NOT_NAMES = frozenset(
    """
    guatemalteco guatemalteca guatemaltecos guatemaltecas chapin chapina hondureno hondurena
    salvadoreno salvadorena mexicano mexicana nicaraguense costarricense panameno panamena
    beliceno belicena venezolano venezolana colombiano colombiana cubano cubana haitiano haitiana
    ecuatoriano ecuatoriana peruano peruana estadounidense americano americana extranjero
    extranjera migrante migrantes inmigrante emigrante deportado deportada deportados retornado
    retornada refugiado refugiada solicitante residente ciudadano ciudadana madre padre mama papa
    hijo hija esposo esposa hermano hermana menor mayor maya mam kiche k'iche quiche qeqchi q'eqchi
    kaqchikel garifuna xinca ladino ladina indigena estudiante trabajador trabajadora campesino
    campesina agricultor albanil nuevo nueva casado casada soltero soltera viudo viuda cristiano
    cristiana catolico catolica evangelico evangelica muy tan yo usted el ella un una uno de del la
    las los lo mi su nacido nacida originario originaria victima persona mujer hombre joven nino
    nina adolescente
    """.split()
)
_NOT_NAME_ENDINGS = ("teco", "teca", "tecos", "tecas", "eno", "ena", "enos", "enas", "ense", "enses")
_GIVEN_NAMES = frozenset(
    """
    abel abigail adela adriana alba alberto alejandra alejandro alex alicia alma ana andrea andres
    angel angela antonia antonio ariel arturo axel beatriz blanca brenda byron carla carlos carmen
    carolina catalina cecilia cesar claudia cristian cristina cristobal daniel daniela david diana
    diego dulce edgar eduardo elena elias elisa elvis emilio enrique erick ernesto esperanza esteban
    ester esther eva evelyn fabiola fatima felipe fernanda fernando flor francisca francisco gabriel
    gabriela gerardo gladys gloria gonzalo graciela guadalupe guillermo gustavo hector heidy hilda
    hugo ignacio ingrid irma isabel ismael ivan jacinto jaime javier jennifer jesus joel jorge jose
    josefa josue juan juana julia julio karen karla kevin laura leticia lidia lilian lorena lucia luis
    luisa luz manuel marco marcos margarita maria mariana mario marisol marta martha martin mateo
    matilde mauricio maynor melvin miguel milton miriam moises monica nancy natalia nelson nicolas
    norma olga oscar pablo patricia paula pedro rafael ramiro ramon raquel raul rebeca ricardo roberto
    rocio rodrigo rosa rosario ruben ruth samuel sandra santiago sara sebastian sergio silvia sofia
    sonia susana teresa tomas vanessa veronica victor virginia walter wendy william wilson yesenia
    yolanda
    """.split()
)


def scrub(text: str) -> str:
    """The text with phones, DPI, passports, emails, URLs, amounts, dates and names as placeholders, ≤ 300 characters."""
    text = _clean(text[:_MAX_READ])
    text = _EMAIL.sub("[correo]", text)
    text = _URL.sub("[enlace]", text)
    text = _DPI.sub("[dpi]", text)
    text = _DATE.sub("[fecha]", text)  # a birth date helps identify someone
    text = _PASSPORT_SAID.sub(lambda m: f"{m.group(1)}{m.group(2) or ' '}[pasaporte]", text)
    text = _AMOUNT.sub("[monto]", text)
    text = _DOCUMENT.sub("[pasaporte]", text)
    text = _PHONE.sub(lambda m: _leading_space(m.group()) + "[teléfono]", text)
    text = _names(text)
    return _cap(" ".join(text.split()))


def mentions_personal_data(text: str, public_numbers: frozenset[str] = frozenset()) -> bool:
    """True when a message carries a phone, DPI, passport number, email or a name.

    `public_numbers` (digits only) are official lines a person may quote back to us.
    """
    text = text[:_MAX_READ]
    for found in _PHONE.finditer(text):
        digits = "".join(c for c in found.group() if c.isdigit())
        if digits in public_numbers:
            text = text.replace(found.group(), " ")
    kept = scrub(text)
    return any(tag in kept for tag in ("[teléfono]", "[dpi]", "[pasaporte]", "[correo]", "[nombre]"))


def pseudonym(key: bytes, *parts: str) -> str:
    """A keyed hash of `parts`: stable for the same key, unlinkable without it."""
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def pseudonym_key(settings: Settings) -> bytes:
    """PREGUNTA_PSEUDONYM_KEY, or the key made once and kept beside the database (mode 0600).

    A key shorter than MIN_KEY_BYTES is refused (SettingsError): with an empty or short
    key anyone could recompute a pseudonym from a phone number.
    """
    if settings.pregunta_pseudonym_key is not None:
        key = settings.pregunta_pseudonym_key.get_secret_value().encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise SettingsError(
                f"PREGUNTA_PSEUDONYM_KEY is {len(key)} bytes long; it must be at least {MIN_KEY_BYTES} "
                '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
            )
        return key
    return load_or_create_key(settings.pregunta_db.parent / "pseudonym.key")


def load_or_create_key(path: Path) -> bytes:
    """The pseudonym key kept in `path` (mode 0600), made on first use; a short or broken file is refused.

    The file appears whole or not at all: the key is written to a temporary file, synced,
    then linked into place (a rename that never replaces a key another process just made).
    A full disk at first start leaves no file behind, so the next start makes a good key.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create_key(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the pseudonym key {path}: {_reason(exc)}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(
            f"the pseudonym key {path} holds {len(key)} usable bytes, at least {MIN_KEY_BYTES} are needed: "
            "it was cut short (a full disk?) or edited. Delete it to make a new one (pseudonyms and saved "
            "languages start over), or restore it from a backup"
        )
    return key


def _create_key(path: Path) -> bytes:
    key = secrets.token_bytes(MIN_KEY_BYTES)
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".pseudonym-", suffix=".tmp", dir=path.parent)  # mode 0600
        temporary = Path(name)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic, and refuses to replace a key made meanwhile
        except FileExistsError:
            return load_or_create_key(path)
        _sync_folder(path.parent)
    except OSError as exc:
        raise SettingsError(f"cannot write the pseudonym key {path}: {_reason(exc)}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()
    return key


def _sync_folder(folder: Path) -> None:
    """The new directory entry reaches the disk too (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


# -- helpers -------------------------------------------------------------------------


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
    for found in lead.finditer(text):
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
    """Where the name starting at `start` ends, or None when what follows is not a name."""
    taken: list[tuple[str, int]] = []  # (folded word, end offset)
    pos = start
    while len(taken) < 6:
        word = _WORD.match(text, pos)
        if word is None:
            break
        raw, folded = word.group(1), _fold(word.group(1))
        if not taken:
            if folded in _STOP or folded in _CONNECTORS:
                return None
            if not sure and not _looks_like_name(raw, folded):
                return None
        elif folded in _CONNECTORS:
            pass  # kept only if a name word follows, below
        elif folded in _STOP or not (sure or raw[0].isupper() or folded in _GIVEN_NAMES or _after_given(taken)):
            break
        taken.append((folded, word.end()))
        pos = word.end()
    while taken and taken[-1][0] in _CONNECTORS:
        taken.pop()
    return taken[-1][1] if taken else None


def _looks_like_name(raw: str, folded: str) -> bool:
    if folded in _GIVEN_NAMES:
        return True
    if not raw[0].isupper() or folded in _NOT_NAMES or folded in _STOP:
        return False
    return not folded.endswith(_NOT_NAME_ENDINGS)


def _after_given(taken: list[tuple[str, int]]) -> bool:
    """"soy juan perez": a lower-case surname right after a known given name."""
    return len(taken) == 1 and taken[0][0] in _GIVEN_NAMES


def _cap(text: str) -> str:
    if len(text) <= MAX_KEPT:
        return text
    cut = text[:MAX_KEPT]
    bracket = cut.rfind("[")
    if bracket > cut.rfind("]"):
        cut = cut[:bracket]  # never keep half a placeholder
    return cut.rstrip()
