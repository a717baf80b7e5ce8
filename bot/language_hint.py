"""Guess the language of a first message, only when it is clear.

On first contact the dialogue may put a language first in the menu and say so; it never
switches on its own. So this answers only when the message is plainly in one language:

- it names a language ("quiché", "en kekchí", "qyol mam", "hablo k'iche'"), or
- it is a sentence (three words or more) with words found in only one Mayan language,
  more Mayan words than Spanish ones and no distinctive word of another language; or a
  sentence of Spanish words with nothing Mayan in it.

Everything else is None: one word ("maltyox", "mam"), Spanish with one Mayan word,
two languages mixed, gibberish. The vocabulary is the content's (Mayan keywords,
intents, language names) plus the words of the project's notes below; loan words
("pasaporte", "coyote") count for neither side. Deterministic and offline.
Knows nothing of the dialogue: the caller decides what to do with the hint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.content import Content
from bot.normalize import STOPWORDS, fold, mayan_key

__all__ = ["MIN_WORDS", "asked_language", "guess_language"]

MIN_WORDS = 3  # "a sentence": fewer words never decide a language by vocabulary
_SHORT = 4  # a message this short that names a language is asking for it

# Words from the notes on the Mayan languages (drafts, like everything else there),
# so the hint works even where the content has no entry for a language yet.
_NOTES: dict[str, tuple[str, ...]] = {
    "quc": (
        "saqirik", "la utz awach", "xeq'ij", "maltyox", "maltiox", "je'", "wuj", "pwaq", "puak", "b'e",
        "ak'al", "ak'alab'", "nuk'ojol", "ch'ab'al", "chak", "tob'anik", "q'ij", "k'ij", "winaq", "winak",
        "kaxlan tzij",
    ),
    "kek": (
        "b'antiox", "ma sa laa ch'ool", "aatin", "kaxlan aatin", "tumin", "k'anjel", "hu", "tenq'ankil",
        "ink'a'", "kok'al", "b'e",
    ),
    "mam": (
        "chjonte", "chjontiye", "se'nt a'ya", "se'nta'ye", "u'j", "pwaq", "b'e", "k'wal", "aq'untl", "yol",
        "onil", "xjel", "b'etil",
    ),
}
_NAMES: dict[str, tuple[str, ...]] = {
    "es": ("español", "espanol", "castellano", "kaxlan aatin", "kaxlan tzij"),
    "quc": ("k'iche'", "kiche", "quiché", "quiche", "qiche"),
    "kek": ("q'eqchi'", "qeqchi", "kekchí", "kekchi", "k'ekchi'", "ketchi"),
    "mam": ("mam", "qyol mam", "ta yol mam", "idioma mam"),
}
# Words that, just before a language's name, make it a request for that language.
_CUES = frozenset("idioma lengua habla hablo hablar hablas hablamos entiendo escribo escribir traducir traduccion".split())
_SHORT_CUES = _CUES | {"en"}  # "en mam": in a short message "en" asks for a language, in a long one it may be a place
_LOOKS_MAYAN = re.compile(r"\w'\w|q(?!u)|w(?!h)|tx|ky|x(?![aeiouycpt])|aa|ii|uu")
_FLOOD = re.compile(r"(.)\1{2,}")


@dataclass(frozen=True)
class _Vocabulary:
    spanish: frozenset[str]  # folded Spanish words (stop words included), loans excluded
    neutral: frozenset[str]  # loans and words both sides use: no evidence either way
    mayan: dict[str, frozenset[str]]  # loose key → the Mayan languages that use it
    stems: dict[str, frozenset[str]]  # loose keys of four letters or more, found inside longer words
    names: tuple[tuple[str, tuple[str, ...], bool], ...]  # (code, folded words, ambiguous alone)


_CACHE: dict[str, _Vocabulary] = {}


def guess_language(text: str, content: Content) -> str | None:
    """The code of the language `text` is clearly written in or asks for, else None."""
    vocabulary = _vocabulary(content)
    tokens = _tokens(text)
    if not tokens:
        return None
    asked, mentioned = _named(tokens, vocabulary)
    written = _written_in(tokens, vocabulary)  # languages with evidence in the words
    if len(asked) > 1:
        return None
    if asked:
        (code,) = asked
        others = written - {code, "es"}
        return code if not others and code in content.languages else None
    sentence = _sentence(tokens, vocabulary, written)
    if sentence is None or mentioned - {sentence}:
        return None
    return sentence if sentence in content.languages else None


def asked_language(text: str, content: Content) -> str | None:
    """The language a message asks for by name ("quiché", "en mam", "qyol mam"), if exactly
    one and nothing in the message contradicts it; never "mam" alone."""
    vocabulary = _vocabulary(content)
    tokens = _tokens(text)
    asked, _ = _named(tokens, vocabulary)
    if len(asked) != 1:
        return None
    (code,) = asked
    others = _written_in(tokens, vocabulary) - {code, "es"}
    return code if not others and code in content.languages else None


def _tokens(text: str) -> list[str]:
    out = []
    for word in fold(text[:1000]).split():
        word = _FLOOD.sub(r"\1", word.strip("'"))
        if word and not word.isdigit():
            out.append(word)
    return out


def _named(tokens: list[str], vocabulary: _Vocabulary) -> tuple[set[str], set[str]]:
    """Languages the message asks for by name, and languages it only mentions."""
    asked: set[str] = set()
    mentioned: set[str] = set()
    short = len(tokens) <= _SHORT
    loose = [mayan_key(t) for t in tokens]
    for code, name, ambiguous in vocabulary.names:
        size = len(name)
        for start in range(len(tokens) - size + 1):
            if tuple(loose[start : start + size]) != name:
                continue
            before = tokens[max(0, start - 2) : start]
            cued = bool(set(before[-1:]) & _SHORT_CUES) if short else bool(set(before) & _CUES)
            if ambiguous and not cued:
                continue  # "mam" is also grandfather (K'iche') and grandson (Q'eqchi')
            (asked if short or cued else mentioned).add(code)
    return asked, mentioned


def _written_in(tokens: list[str], vocabulary: _Vocabulary) -> set[str]:
    """The Mayan languages with a word of their own in the message ("es" for Spanish words)."""
    found: set[str] = set()
    for token in tokens:
        if token in vocabulary.neutral:
            continue
        if token in vocabulary.spanish:
            found.add("es")
            continue
        codes = _mayan_codes(token, vocabulary)
        if len(codes) == 1:
            found |= codes
    return found


def _sentence(tokens: list[str], vocabulary: _Vocabulary, written: set[str]) -> str | None:
    if len(tokens) < MIN_WORDS:
        return None
    spanish = mayan = 0
    for token in tokens:
        if token in vocabulary.neutral:
            continue
        if token in vocabulary.spanish:
            spanish += 1
        elif _mayan_codes(token, vocabulary) or _LOOKS_MAYAN.search(token):
            mayan += 1
    distinctive = written - {"es"}
    if len(distinctive) == 1 and mayan >= 2 and mayan > spanish:
        return distinctive.pop()
    if not distinctive and mayan == 0 and spanish >= 2:
        return "es"
    return None


def _mayan_codes(token: str, vocabulary: _Vocabulary) -> frozenset[str]:
    key = mayan_key(token)
    codes = vocabulary.mayan.get(key)
    if codes:
        return codes
    if len(key) > 4 and _LOOKS_MAYAN.search(token):  # a stem inside a word with prefixes or suffixes
        inside = [stem for stem in vocabulary.stems if stem in key]
        if inside:
            return vocabulary.stems[max(inside, key=lambda s: (len(s), s))]
    return frozenset()


# -- the vocabulary, built once per content version ------------------------------------


def _vocabulary(content: Content) -> _Vocabulary:
    cached = _CACHE.get(content.version)
    if cached is None:
        if len(_CACHE) > 8:
            _CACHE.clear()
        cached = _CACHE[content.version] = _build(content)
    return cached


def _words(texts: Iterable[str]) -> set[str]:
    return {word for text in texts for word in _tokens(text)}


def _build(content: Content) -> _Vocabulary:
    names: dict[str, set[str]] = {code: set(values) for code, values in _NAMES.items()}
    for code, pack in content.languages.items():
        names.setdefault(code, set()).update((*pack.names, pack.name, pack.name_es))
    name_words = _words(n for values in names.values() for n in values)

    spanish_texts: list[str] = [kw for intent in content.spanish.intents.values() for kw in intent.keywords]
    for topic in content.spanish.topics.values():
        spanish_texts += [*topic.keywords, *topic.examples, topic.title]
    spanish = (_words(spanish_texts) | STOPWORDS) - name_words

    texts: dict[str, list[str]] = {code: list(words) for code, words in _NOTES.items()}
    for code, pack in content.languages.items():
        if code == "es":
            continue
        mine = texts.setdefault(code, [])
        mine += [kw for intent in pack.intents.values() for kw in intent.keywords]
        mine += [kw for topic in pack.topics.values() for kw in topic.keywords]
    by_word: dict[str, set[str]] = {}
    for code, values in texts.items():
        for word in _words(values) - name_words:
            by_word.setdefault(word, set()).add(code)
    # Loans: Spanish words in Mayan keywords ("pasaporte"); Spanish function words stay Spanish.
    neutral = {w for w in by_word if w in spanish and w not in STOPWORDS}
    mayan: dict[str, set[str]] = {}
    for word, codes in by_word.items():
        if word not in spanish:
            mayan.setdefault(mayan_key(word), set()).update(codes)

    name_keys = []
    for code, given in names.items():
        for name in sorted(given):
            key = tuple(mayan_key(w) for w in _tokens(name))
            if key:
                name_keys.append((code, key, len(key) == 1 and len(key[0]) <= 3))
    name_keys.sort(key=lambda item: (-len(item[1]), item))
    return _Vocabulary(
        spanish=frozenset(spanish - neutral),
        neutral=frozenset(neutral),
        mayan={key: frozenset(codes) for key, codes in mayan.items()},
        stems={key: frozenset(codes) for key, codes in mayan.items() if len(key) >= 4},
        names=tuple(dict.fromkeys(name_keys)),
    )
