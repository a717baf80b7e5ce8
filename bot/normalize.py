"""Turn what people type into keys that compare equal when they mean the same word.

People write without accents, with typos, chat abbreviations ("q", "xq"), spellings by
sound ("bisa", "kiero") and, in Mayan languages, with a dozen different apostrophes.
Two levels, as the notes on the Mayan languages suggest:

- `canon`: the text a person would recognise, with one apostrophe and NFKC applied;
- `words` / `spanish_key` / `mayan_key`: the loose keys the matcher compares.

Knows nothing of topics or languages' content: the matcher feeds it both sides.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import snowballstemmer

__all__ = ["MAX_INPUT", "STOPWORDS", "canon", "fold", "is_stopword", "mayan_key", "sound", "sounds_like_stopword", "spanish_key", "words"]

MAX_INPUT = 1000  # characters kept from one message before matching

# Every way people type the glottal stop. Mapped to "'" BEFORE NFKC, which would turn
# "´" into a space and a combining accent ("b´e" → "b ́e").
_APOSTROPHES = "\u2019\u2018\u02bc\u02bb\u02c8\u00b4`\u2032\uff07\u02b9\u0060\u201b"
_APOSTROPHE_TABLE = str.maketrans({ch: "'" for ch in _APOSTROPHES})
_HYPHEN_CHARS = "\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"

# Chat abbreviations, whole words only. Values may be several words.
_ABBREVIATIONS = {
    "q": "que", "k": "que", "ke": "que", "qe": "que", "xq": "porque", "pq": "porque",
    "porq": "porque", "xk": "porque", "x": "por", "tmb": "tambien", "tb": "tambien",
    "tbn": "tambien", "info": "informacion", "porfa": "por favor", "porfis": "por favor",
    "xfa": "por favor", "xfavor": "por favor", "porfavor": "por favor", "plis": "por favor",
    "pls": "por favor", "pa": "para", "pal": "para el", "d": "de", "ud": "usted",
    "uds": "ustedes", "dnd": "donde", "cdo": "cuando", "msj": "mensaje", "bn": "bien",
    "tons": "entonces", "nd": "nada", "ntc": "no te creas", "kien": "quien", "aki": "aqui",
    "ps": "pues", "pss": "pues", "vdd": "verdad", "hrs": "horas", "xa": "para",
}

# Words that carry no topic: they neither count as evidence nor as unknown words.
STOPWORDS = frozenset(
    """
    a al algo algun alguna algunas alguno algunos alla alli ante antes aqui asi aun
    bien buen cada como con cual cuales cualquier cuando de del desde dos e el
    ella ellas ellos en entre era eres es esa esas ese eso esos esta estan estas este
    esto estos estoy fue ha hace hacer hago han hay he hoy la las le les lo los luego
    mas me mi mia mis mucho muy ni no nos nosotros o otra otro para pero poco
    por porque pues puede puedo que quien se sea ser si sin sobre son soy su sus
    tal tambien tan tanto te tengo tener tenes ti tiene tienen todo todos tu tus un una
    uno unos unas usted ustedes vos y ya yo ok sr sra don dona senor senora mire oiga
    favor saber quiero necesito quisiera
    pregunta pregunto preguntar dice dicen dijo dijeron va vamos voy van ir mil
    cuanto cuanta cuantos cuantas cuesta cuestan costar vale valen
    """.split()
)

_STEMMER = snowballstemmer.stemmer("spanish")
_NON_WORD = re.compile(r"[^0-9a-z'ñ]+")
_REPEATS = re.compile(r"(.)\1+")
_FLOOD = re.compile(r"(.)\1{2,}")


class _CharTable(dict[int, str]):
    """A str.translate table filled on first sight of each character, so the C loop of
    translate does the work and Python looks at a character's category only once."""

    def __init__(self, decide: Callable[[str], str]) -> None:
        super().__init__()
        self._decide = decide

    def __missing__(self, code: int) -> str:
        value = self._decide(chr(code))
        if len(self) < 200_000:  # all of Unicode would fit, but never grow without bound
            self[code] = value
        return value


def _invisible(ch: str) -> str:
    if ch in _APOSTROPHES:
        return "'"
    if ch in _HYPHEN_CHARS:
        return "-"
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp", "Zs"):
        return " "
    if category in ("Cf", "Co", "Cs", "Cn"):
        return ""
    return ch


_CLEAN = _CharTable(_invisible)
_NO_MARKS = _CharTable(lambda ch: "" if unicodedata.combining(ch) else ch)


def canon(text: str) -> str:
    """One apostrophe, NFKC, lower case, no control or invisible characters, single spaces."""
    text = text.translate(_APOSTROPHE_TABLE)  # before NFKC, which would split "´" off
    text = unicodedata.normalize("NFKC", text).translate(_CLEAN)
    return " ".join(text.lower().split())


def fold(text: str) -> str:
    """`canon` without accents and diaeresis; punctuation and emoji become spaces."""
    stripped = unicodedata.normalize("NFD", canon(text)).translate(_NO_MARKS)
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def words(text: str) -> list[str]:
    """Folded words with chat abbreviations expanded and letter floods ("holaaaa") cut."""
    return list(_words(text[:MAX_INPUT]))


@lru_cache(maxsize=16384)
def _words(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for word in fold(text).split():
        word = word.strip("'")
        if not word:
            continue
        if not word.isdigit():
            word = _FLOOD.sub(r"\1", word)
        out.extend(_ABBREVIATIONS.get(word, word).split())
    return tuple(out)


@lru_cache(maxsize=65536)
def sound(word: str) -> str:
    """A spelling-by-sound key: b/v, s/z/c, ll/y, silent h, qu/k, ge/je; doubles collapsed."""
    if word.isdigit():
        return word
    w = word.replace("'", "")
    w = w.replace("ch", "\x00").replace("qu", "k").replace("h", "").replace("ll", "y")
    w = re.sub(r"c([ei])", r"s\1", w)
    w = w.replace("c", "k").replace("z", "s").replace("v", "b")
    w = re.sub(r"g([ei])", r"j\1", w)
    w = re.sub(r"gu([ei])", r"g\1", w)
    w = _REPEATS.sub(r"\1", w.replace("\x00", "ch"))
    return w or word


@lru_cache(maxsize=65536)
def spanish_key(word: str) -> str:
    """The key of a Spanish word: stemmed, then by sound."""
    if word.isdigit() or "_" in word:  # numbers and synonym tokens stay whole
        return word
    return sound(_STEMMER.stemWord(word.replace("'", "")))


@lru_cache(maxsize=65536)
def mayan_key(word: str) -> str:
    """The loose key of a Mayan word: no apostrophes, accents or doubled vowels.

    Old and new spellings meet here too: q/k (q'ij, k'ij) and w/u (pwaq, puak).
    """
    w = word.replace("'", "").replace("-", "")
    w = w.replace("q", "k").replace("w", "u")
    return _REPEATS.sub(r"\1", w)


@lru_cache(maxsize=65536)
def is_stopword(word: str) -> bool:
    """A word that tells no topic, in any of its forms ("hacen" like "hace")."""
    return word in STOPWORDS or (not word.isdigit() and _STEMMER.stemWord(word) in _STOP_STEMS)


def sounds_like_stopword(word: str) -> bool:
    """A misspelt long stopword ("nesesito", "kisiera"); short ones collide ("perro", "pero")."""
    return len(word) >= 5 and sound(word) in _STOP_SOUNDS


# stems, not sound keys: "perro" and "pero" sound alike but are not the same word
_STOP_STEMS = frozenset(_STEMMER.stemWord(w) for w in STOPWORDS)
_STOP_SOUNDS = frozenset(sound(w) for w in STOPWORDS if len(w) >= 5)
