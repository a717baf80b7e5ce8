"""Find the topic or intent a message is about, or say honestly that we are not sure.

Each entry (topic or intent) gets a vocabulary from its keywords (strong evidence) and
its example questions and title (weaker evidence), in Spanish and in the user's
language. A message scores against an entry by how much of its informative words the
entry explains, weighted by how rare each word is across entries (so "pasaporte"
counts for less than "vencido" when four topics say "pasaporte"), with a bonus for
multi-word keywords found whole. Words not found exactly are looked up by edit
distance (typos), and Mayan keyword stems also inside longer words (prefixes and
suffixes). Below a threshold the answer is "not sure".

Knows nothing of channels or of the dialogue.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from bot.content import Content
from bot.normalize import STOPWORDS, mayan_key, sound, spanish_key, words

__all__ = ["CLOSE", "THRESHOLD", "Match", "Matcher"]

THRESHOLD = 45.0  # below this the matcher is not sure
CLOSE = 8.0  # best two within this many points: offer both

_KEYWORD = 1.0
_EXAMPLE = 0.45
_PHRASE_BONUS = 0.6
_PHRASE_WORD = 0.6  # a word of a multi-word keyword, found alone
_UNKNOWN_IDF = 1.6  # weight of a word no entry knows: it dilutes the evidence
_EVIDENCE_SCALE = 2.2


@dataclass(frozen=True)
class Match:
    """The matcher's verdict: `id` is None when not sure."""

    id: str | None
    score: float
    candidates: tuple[tuple[str, float], ...] = ()

    @property
    def close_call(self) -> bool:
        """The best two are too close to choose between: offer both."""
        return len(self.candidates) > 1 and self.candidates[0][1] - self.candidates[1][1] < CLOSE


@dataclass
class _Entry:
    id: str
    is_intent: bool
    terms: dict[str, float] = field(default_factory=dict)  # term -> weight (keyword or example)
    phrases: list[tuple[str, ...]] = field(default_factory=list)  # multi-term keywords


@dataclass
class _Index:
    entries: list[_Entry]
    idf: dict[str, float]
    social: frozenset[str]  # words only intents know (hola, gracias): not a topic's concern
    fuzzy_pool: dict[str, str]  # sound of a known word -> its term
    mayan_stems: dict[str, str]  # mayan term of ≥ 4 letters -> term, matched inside words


def _spanish_terms(text: str) -> list[str]:
    return ["es:" + spanish_key(w) for w in words(text) if w not in STOPWORDS]


def _mayan_terms(text: str) -> list[str]:
    return ["my:" + mayan_key(w) for w in words(text) if w not in STOPWORDS]


class Matcher:
    """Built once per content version; `match` is pure and thread-safe."""

    def __init__(self, content: Content) -> None:
        self.content = content
        self._indexes: dict[str, _Index] = {}
        for lang in content.languages:
            self._indexes[lang] = self._build(lang)
        self._cached = lru_cache(maxsize=4096)(self._match)

    def match(self, text: str, lang: str = "es") -> Match:
        if lang not in self._indexes:
            lang = "es"
        return self._cached(text[:2000], lang)

    # -- building -------------------------------------------------------------------

    def _build(self, lang: str) -> _Index:
        entries: dict[str, _Entry] = {}
        packs = [self.content.spanish]
        if lang != "es":
            packs.append(self.content.languages[lang])

        def entry(entry_id: str, is_intent: bool) -> _Entry:
            return entries.setdefault(entry_id, _Entry(entry_id, is_intent))

        for pack in packs:
            terms_of = _spanish_terms if pack.code == "es" else _mayan_terms
            for intent_id, intent in pack.intents.items():
                _add(entry(intent_id, True), intent.keywords, terms_of, _KEYWORD)
            names = [name for p in self.content.languages.values() for name in (*p.names, p.name, p.name_es)]
            if pack.code == "es":
                _add(entry("idioma", True), [f"en {name}" for name in names], terms_of, _KEYWORD)
            for topic in pack.topics.values():
                e = entry(topic.id, False)
                _add(e, topic.keywords, terms_of, _KEYWORD)
                _add(e, [topic.title, *topic.examples], terms_of, _EXAMPLE)

        df: dict[str, int] = defaultdict(int)
        for e in entries.values():
            for term in e.terms:
                df[term] += 1
        n = len(entries)
        idf = {term: math.log((n + 1) / (count + 0.5)) for term, count in df.items()}

        fuzzy_pool: dict[str, str] = {}
        mayan_stems: dict[str, str] = {}
        for pack in packs:
            texts: list[str] = [kw for i in pack.intents.values() for kw in i.keywords]
            for topic in pack.topics.values():
                texts += [*topic.keywords, topic.title, *topic.examples]
            for text in texts:
                for w in words(text):
                    if w in STOPWORDS or len(w) < 5 or w.isdigit():
                        continue
                    if pack.code == "es":
                        fuzzy_pool.setdefault(sound(w), "es:" + spanish_key(w))
                    else:
                        key = mayan_key(w)
                        fuzzy_pool.setdefault(key, "my:" + key)
                        if len(key) >= 4:
                            mayan_stems.setdefault(key, "my:" + key)
        topic_terms = {t for e in entries.values() if not e.is_intent for t in e.terms}
        social = frozenset(t for e in entries.values() if e.is_intent for t in e.terms if t not in topic_terms)
        return _Index(list(entries.values()), idf, social, fuzzy_pool, mayan_stems)

    # -- matching -------------------------------------------------------------------

    def _match(self, text: str, lang: str) -> Match:
        index = self._indexes[lang]
        query = self._query_terms(text, index)
        if not query:
            return Match(None, 0.0)
        present = {term: factor for term, factor in query.values()}
        total_all = sum(index.idf.get(term, _UNKNOWN_IDF) for term in present)
        total_topic = sum(index.idf.get(term, _UNKNOWN_IDF) for term in present if term not in index.social)

        scored: list[tuple[str, float, bool]] = []
        for entry in index.entries:
            evidence = 0.0
            for term, factor in present.items():
                weight = entry.terms.get(term)
                if weight:
                    evidence += index.idf[term] * weight * factor
            if evidence <= 0:
                continue
            for phrase in entry.phrases:
                if all(term in present for term in phrase):
                    evidence += _PHRASE_BONUS * sum(index.idf[t] for t in phrase)
            total = total_all if entry.is_intent else total_topic
            coverage = min(1.0, evidence / total) if total else 0.0
            strength = 1.0 - math.exp(-evidence / _EVIDENCE_SCALE)
            score = 100.0 * strength * (0.35 + 0.65 * coverage)
            scored.append((entry.id, round(score, 1), entry.is_intent))

        if not scored:
            return Match(None, 0.0)
        scored.sort(key=lambda item: (-item[1], item[0]))
        candidates = tuple((entry_id, score) for entry_id, score, _ in scored[:3])
        topics = [(entry_id, score) for entry_id, score, is_intent in scored if not is_intent]
        # A topic above the threshold wins over a greeting or thanks around it.
        best = topics[0] if topics and topics[0][1] >= THRESHOLD else candidates[0]
        if best[1] < THRESHOLD:
            return Match(None, best[1], candidates)
        ordered = (best, *[c for c in candidates if c[0] != best[0]])
        return Match(best[0], best[1], ordered[:3])

    def _query_terms(self, text: str, index: _Index) -> dict[str, tuple[str, float]]:
        """Each informative word of the query → (term it matched, confidence 0..1)."""
        out: dict[str, tuple[str, float]] = {}
        for w in words(text):
            if w in STOPWORDS or w in out:
                continue
            es, my = "es:" + spanish_key(w), "my:" + mayan_key(w)
            if es in index.idf:
                out[w] = (es, 1.0)
            elif my in index.idf:
                out[w] = (my, 1.0)
            elif len(w) >= 5 and not w.isdigit():
                out[w] = _fuzzy(w, index) or _inside(my[3:], index) or (es, 1.0)
            else:
                out[w] = (es, 1.0)
        return out


def _add(entry: _Entry, texts: Iterable[str], terms_of: Callable[[str], list[str]], weight: float) -> None:
    """Words of a one-word keyword are the entry's own; words of a phrase count for less
    alone, and the phrase found whole earns a bonus."""
    for text in texts:
        unique = tuple(dict.fromkeys(terms_of(text)))
        if weight == _KEYWORD and len(unique) > 1:
            entry.phrases.append(unique)
            term_weight = weight * _PHRASE_WORD
        else:
            term_weight = weight
        for term in unique:
            entry.terms[term] = max(entry.terms.get(term, 0.0), term_weight)


def _fuzzy(word: str, index: _Index) -> tuple[str, float] | None:
    """A typo: the known word within one edit (two for long words), by sound."""
    key = sound(word)
    limit = 1 if len(key) < 8 else 2
    found = process.extractOne(key, index.fuzzy_pool.keys(), scorer=DamerauLevenshtein.distance, score_cutoff=limit)
    if found is None:
        return None
    known, distance, _ = found
    return index.fuzzy_pool[known], 1.0 - 0.15 * distance


def _inside(key: str, index: _Index) -> tuple[str, float] | None:
    """A Mayan stem of four letters or more inside a longer word (prefixes, suffixes)."""
    best = max((stem for stem in index.mayan_stems if stem in key), key=len, default=None)
    return (index.mayan_stems[best], 0.85) if best else None

