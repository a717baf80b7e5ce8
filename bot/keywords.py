"""Keyword evidence: how well each entry's own words explain a message.

Each entry (topic, intent, the emergency entry) gets a vocabulary from its keywords (strong evidence) and
its example questions and title (weaker evidence), in Spanish and in the user's
language. A message scores against an entry by how much of its informative words the
entry explains, each word weighted by how rare it is across entries (so "pasaporte",
which four topics share, counts for less than "vencido"), with a bonus for multi-word
keywords found whole and for a message that is a keyword by itself. Words not found
exactly are looked up by edit distance (typos), Mayan keyword stems also inside longer
words (prefixes and suffixes), and the content's synonyms ("pisto" → "dinero") are
applied to both sides first.

This is one of the matcher's two sources of evidence, beside the learned model
(bot/model.py); bot/matcher.py weighs them and decides. Knows nothing of channels or of
the dialogue.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from bot.content import EMERGENCY, Content, LanguagePack
from bot.normalize import is_stopword, mayan_key, sound, sounds_like_stopword, spanish_key, words

__all__ = ["KeywordIndex", "Scored", "Words"]

_KEYWORD = 1.0  # a one-word keyword: the entry's own word
_PHRASE_WORD = 0.6  # a word of a multi-word keyword, found alone
_EXAMPLE = 0.45  # a word of an example question or of the title
_PHRASE_BONUS = 0.6  # share of a phrase's weight added when all its words are there
_SEQUENCE_BONUS = 0.4  # … when they are there in order, as written: per informative word, plus one
_UNKNOWN_IDF = 4.0  # weight of a word no entry knows: it dilutes the evidence
_UNKNOWN_IDF_MAYAN = 1.5  # … when the user chose a Mayan language, whose words we know few of
_EVIDENCE_SCALE = 2.2  # evidence at which confidence reaches 63 %
_BASE = 0.35  # share of the score that does not depend on how much of the message is explained
_WHOLE = 88.0  # score of a message that is exactly one of an entry's keywords
_SCORED = 6  # entries of each kind (topics, intents) scored in full per message
_LOOSE = 0.92  # a Mayan word matched without its marks (kanjel for k'anjel)


@dataclass(frozen=True)
class Scored:
    """One entry's keyword score (0-100) for a message."""

    id: str
    score: float
    kind: str  # "topic", "intent" or "emergency"


@dataclass
class _Entry:
    id: str
    kind: str  # "topic", "intent" or "emergency"
    terms: dict[str, float] = field(default_factory=dict)  # term → weight
    phrases: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # words → terms
    keywords: set[tuple[str, ...]] = field(default_factory=set)  # every keyword, as sorted terms


@dataclass(frozen=True)
class Words:
    """A message's words after synonyms, with what both sources of evidence need of them."""

    words: tuple[str, ...]  # folded, synonyms applied ("estados_unidos" is one word)
    keys: tuple[str, ...]  # each word's Spanish key (stemmed, by sound)
    informative: tuple[bool, ...]  # not a filler word
    sounds: tuple[str, ...]  # each word spelt by sound


@dataclass
class _Index:
    entries: list[_Entry]
    idf: dict[str, float]
    social: frozenset[str]  # words only intents know (hola, gracias): not a topic's concern
    synonyms: dict[str, list[tuple[tuple[str, ...], str]]]  # first word → (variant, canonical), longest first
    fuzzy_pool: dict[str, str]  # sound of a known word → its term
    mayan_stems: dict[str, str]  # Mayan key of ≥ 4 letters → term, also matched inside words
    mayan: bool  # the user's language is not Spanish
    canon: set[str] = field(default_factory=set)  # Mayan keyword words as written, glottal stop kept
    postings: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # term → (entry, weight)
    sequences: dict[tuple[str, ...], list[tuple[int, tuple[str, ...]]]] = field(default_factory=dict)
    unordered: dict[str, list[tuple[int, tuple[str, ...], tuple[str, ...]]]] = field(default_factory=dict)
    whole: dict[tuple[str, ...], list[int]] = field(default_factory=dict)  # a keyword's terms → entries
    fuzzy_by_length: dict[int, list[str]] = field(default_factory=dict)
    fuzzy_seen: dict[str, tuple[str, float] | None] = field(default_factory=dict)  # memo of _fuzzy
    weak: frozenset[str] = frozenset()  # terms only examples use: a misspelling there is still looked up
    strong_by_length: dict[int, list[str]] = field(default_factory=dict)  # keys of keyword and title words


class KeywordIndex:
    """The keyword evidence of one language (Spanish keywords always apply too).

    Built once per content version and language; `scores` is pure and safe to share.
    """

    def __init__(self, content: Content, lang: str, *, examples: bool = True) -> None:
        self.lang = lang
        self._index = _build(content, lang, examples)

    def words(self, text: str) -> Words:
        """The message's words with synonyms applied, analysed once for both kinds of evidence."""
        found = tuple(_with_synonyms(words(text), self._index))
        keys = tuple(spanish_key(w) for w in found)
        return Words(found, keys, tuple(not is_stopword(w) for w in found), tuple(sound(w) for w in found))

    def scores(self, said: Words, limit: int = _SCORED) -> list[Scored]:
        """The best few entries of each kind by keyword score, best first."""
        index = self._index
        present, sequence = _query_terms(said.words, index)
        if not present:
            return []
        ngrams = {sequence[i:j] for i in range(len(sequence)) for j in range(i + 2, min(i + 7, len(sequence) + 1))}
        unknown = _UNKNOWN_IDF_MAYAN if index.mayan else _UNKNOWN_IDF
        total_all = sum(index.idf.get(term, unknown) for term in present)
        total_topic = sum(index.idf.get(term, unknown) for term in present if term not in index.social)
        whole = tuple(sorted(present))

        evidence: dict[int, float] = defaultdict(float)
        for term, factor in present.items():
            for i, weight in index.postings.get(term, ()):
                evidence[i] += index.idf[term] * weight * factor
        for gram in ngrams:  # keywords as written, small words and all
            for i, phrase in index.sequences.get(gram, ()):
                share = _SEQUENCE_BONUS * (1 + len(phrase))  # more words that tell, more telling
                evidence[i] += share * sum(index.idf[t] * present.get(t, 0.0) for t in phrase)
        for term in present:  # keywords whose words are all there, in any order
            for i, words_of, phrase in index.unordered.get(term, ()):
                if words_of not in ngrams and all(t in present for t in phrase):
                    evidence[i] += _PHRASE_BONUS * sum(index.idf[t] for t in phrase)
        exact = set(index.whole.get(whole, ()))

        # The score grows with the evidence within each kind, so only the few best of each
        # (and exact keyword matches) need scoring: large content stays fast.
        by_kind: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, found in evidence.items():
            by_kind[index.entries[i].kind].append((i, found))
        best_few = {i for group in by_kind.values() for i, _ in heapq.nlargest(limit, group, key=lambda ie: ie[1])}

        scored: list[tuple[float, float, Scored]] = []
        for i in best_few | exact:
            found = evidence[i]
            entry = index.entries[i]
            total = total_all if entry.kind == "intent" else total_topic
            coverage = min(1.0, found / total) if total else 0.0
            strength = 1.0 - math.exp(-found / _EVIDENCE_SCALE)
            score = 100.0 * strength * (_BASE + (1 - _BASE) * coverage)
            if i in exact:
                score = max(score, _WHOLE * min(present.values()))
            scored.append((round(score, 1), found, Scored(entry.id, round(score, 1), entry.kind)))
        scored.sort(key=lambda item: (-item[0], -item[1], item[2].id))
        return [item[2] for item in scored]


def _build(content: Content, lang: str, examples: bool) -> _Index:
    packs = [content.spanish]
    if lang != "es":
        packs.append(content.languages[lang])
    synonyms: dict[tuple[str, ...], str] = {}
    for pack in packs:
        for canonical, variants in pack.synonyms.items():
            # "estados unidos" becomes one word, so a place is not counted twice
            token = "_".join(words(canonical))
            for variant in (canonical, *variants):
                synonyms[tuple(words(variant))] = token
    synonyms.pop((), None)
    by_first: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for phrase, token in sorted(synonyms.items(), key=lambda item: -len(item[0])):
        by_first[phrase[0]].append((phrase, token))
    index = _Index([], {}, frozenset(), dict(by_first), {}, {}, lang != "es")

    entries: dict[str, _Entry] = {}
    names = [n for p in content.languages.values() for n in (*p.names, p.name, p.name_es)]
    for pack in packs:
        spanish = pack.code == "es"

        def add(entry_id: str, kind: str, texts: Iterable[str], weight: float, spanish: bool = spanish) -> None:
            entry = entries.setdefault(entry_id, _Entry(entry_id, kind))
            for text in texts:
                _add(entry, *_terms(text, index, spanish), weight)

        for intent_id, intent in pack.intents.items():
            add(intent_id, "intent", intent.keywords, _KEYWORD)
        if spanish:
            add("idioma", "intent", [f"en {name}" for name in names], _KEYWORD)
        if pack.emergency is not None:
            add(EMERGENCY, "emergency", pack.emergency.keywords, _KEYWORD)
            if examples:
                add(EMERGENCY, "emergency", pack.emergency.examples, _EXAMPLE)
        for topic in pack.topics.values():
            add(topic.id, "topic", topic.keywords, _KEYWORD)
            add(topic.id, "topic", [topic.title, *(topic.examples if examples else ())], _EXAMPLE)

    df: dict[str, int] = defaultdict(int)
    for entry in entries.values():
        for term in entry.terms:
            df[term] += 1
    n = len(entries)
    index.entries = list(entries.values())
    index.idf = {term: math.log((n + 1) / (count + 0.5)) for term, count in df.items()}
    # Inverted: matching looks only at the entries that share a word with the message.
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    sequences: dict[tuple[str, ...], list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
    unordered: dict[str, list[tuple[int, tuple[str, ...], tuple[str, ...]]]] = defaultdict(list)
    whole: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, entry in enumerate(index.entries):
        for term, weight in entry.terms.items():
            postings[term].append((i, weight))
        for words_of, phrase in entry.phrases.items():
            sequences[words_of].append((i, phrase))
            if len(phrase) > 1:
                rarest = max(phrase, key=lambda t: (index.idf[t], t))
                unordered[rarest].append((i, words_of, phrase))
        for keyword in entry.keywords:
            whole[keyword].append(i)
    index.postings, index.sequences, index.unordered, index.whole = dict(postings), dict(sequences), dict(unordered), dict(whole)
    strongest: dict[str, float] = defaultdict(float)
    for entry in index.entries:
        for term, weight in entry.terms.items():
            strongest[term] = max(strongest[term], weight)
    index.weak = frozenset(t for t, w in strongest.items() if w < _PHRASE_WORD)
    topic_terms = {t for e in index.entries if e.kind != "intent" for t in e.terms}
    index.social = frozenset(t for e in index.entries if e.kind == "intent" for t in e.terms if t not in topic_terms)
    for pack in packs:
        for word in _vocabulary(pack):
            if pack.code == "es":
                index.fuzzy_pool.setdefault(sound(word), "es:" + spanish_key(word))
            else:
                key = mayan_key(word)
                index.fuzzy_pool.setdefault(key, "my:" + key)
                if len(key) >= 4:
                    index.mayan_stems.setdefault(key, "my:" + key)
    for pack in packs[1:]:
        keywords = [*(k for i in pack.intents.values() for k in i.keywords), *(k for t in pack.topics.values() for k in t.keywords)]
        index.canon.update(w for keyword in keywords for w in words(keyword))
    by_length: dict[int, list[str]] = defaultdict(list)
    for known in sorted(index.fuzzy_pool):
        by_length[len(known)].append(known)
    index.fuzzy_by_length = dict(by_length)
    strong: dict[int, list[str]] = defaultdict(list)
    for key in sorted({sound(w) for w in _vocabulary(content.spanish, examples=False)}):
        strong[len(key)].append(key)
    index.strong_by_length = dict(strong)
    return index


def _terms(text: str, index: _Index, spanish: bool) -> tuple[list[str], tuple[str, ...]]:
    """The informative terms of a keyword or example, and the keys of all its words.

    No fuzzy look-up here: content is spelt right.
    """
    every = _with_synonyms(words(text), index)
    def key(word: str) -> str:
        return "es:" + spanish_key(word) if spanish else "my:" + mayan_key(word)

    # "que tal", "me voy": a keyword made only of small words keeps them all
    informative = [w for w in every if not is_stopword(w)] or every
    return [key(w) for w in informative], tuple(key(w) for w in every)


def _query_terms(every: tuple[str, ...], index: _Index) -> tuple[dict[str, float], tuple[str, ...]]:
    """Each informative word's term and how surely it matched (0..1), and the keys of
    all the words in order (for keywords written as phrases)."""
    present: dict[str, float] = {}
    sequence: list[str] = []
    # numbers no keyword knows (amounts, ages, years) are neither evidence nor noise
    informative = {w for w in every if not is_stopword(w) and not (w.isdigit() and "es:" + w not in index.idf)}
    # a misspelt "necesito" is still a filler word, not an unknown one
    informative = {w for w in informative if _known_any(w, index) or not sounds_like_stopword(w)}
    if index.mayan:  # short words we don't know in a Mayan language are mostly particles (ri, pa, la)
        informative = {w for w in informative if len(w) > 3 or _known_any(w, index)}
    for word in every:
        es, my = "es:" + spanish_key(word), "my:" + mayan_key(word)
        if word not in informative and informative:
            sequence.append(es)
            continue
        # "se'nt" is Mam, not Spanish "sent-"; "hu" (paper) a Q'eqchi' keyword as written
        mayan_first = index.mayan and ("'" in word or word in index.canon)
        if my in index.idf and (mayan_first or es not in index.idf):
            # the glottal stop kept (ja' "water" vs ja "house") matches a little better
            term, factor = my, 1.0 if word in index.canon else _LOOSE
        elif es in index.idf:
            term, factor = es, 1.0
            # "pasaprote" is in some example, but it means the keyword "pasaporte"
            near = _fuzzy(word, index, strong=True) if es in index.weak and len(word) >= 6 else None
            if near and near[0] != es:
                present[near[0]] = max(present.get(near[0], 0.0), near[1])
        elif len(word) >= 6 and not word.isdigit():
            term, factor = (
                _fuzzy(word, index)
                or (index.mayan and (_loan_word(word, index) or _inside(my[3:], index)))
                or (es, 1.0)
            )
        else:
            term, factor = es, 1.0
        present[term] = max(present.get(term, 0.0), factor)
        sequence.append(term)
    return present, tuple(sequence)


def _known_any(word: str, index: _Index) -> bool:
    return "es:" + spanish_key(word) in index.idf or "my:" + mayan_key(word) in index.idf


def _with_synonyms(found: list[str], index: _Index) -> list[str]:
    """Replace variants by their canonical word, longest variant first."""
    if not index.synonyms:
        return found
    out: list[str] = []
    i = 0
    while i < len(found):
        for variant, token in index.synonyms.get(found[i], ()):
            if tuple(found[i : i + len(variant)]) == variant:
                out.append(token)
                i += len(variant)
                break
        else:
            out.append(found[i])
            i += 1
    return out


def _add(entry: _Entry, terms: list[str], sequence: tuple[str, ...], weight: float) -> None:
    """A lone-word keyword is the entry's own word. The words of a longer keyword ("la
    campaña", "pasaporte vencido") count for less alone, and earn a bonus found together."""
    unique = tuple(dict.fromkeys(terms))
    if not unique:
        return
    term_weight = weight
    if weight == _KEYWORD and len(sequence) == len(terms):
        # a message that is this keyword alone is sure; not for "buen día", whose "buen"
        # was dropped: "día" alone says nothing
        entry.keywords.add(tuple(sorted(unique)))
    if weight == _KEYWORD and len(sequence) > 1:
        entry.phrases[sequence] = unique
        term_weight = _PHRASE_WORD
    for term in unique:
        entry.terms[term] = max(entry.terms.get(term, 0.0), term_weight)


def _vocabulary(pack: LanguagePack, examples: bool = True) -> set[str]:
    """Words of five letters or more in a language's keywords, titles (and examples)."""
    texts = [kw for intent in pack.intents.values() for kw in intent.keywords]
    for topic in pack.topics.values():
        texts += [*topic.keywords, topic.title, *(topic.examples if examples else ())]
    return {w for text in texts for w in words(text) if len(w) >= 5 and not w.isdigit() and not is_stopword(w)}


def _fuzzy(word: str, index: _Index, strong: bool = False) -> tuple[str, float] | None:
    """A typo: the known word within one edit (two for long words), compared by sound.
    `strong`: only keyword and title words, never the word itself."""
    if not strong and word in index.fuzzy_seen:
        return index.fuzzy_seen[word]
    key = mayan_key(word) if index.mayan and "'" in word else sound(word)
    if len(key) < 6:  # "clima" is one letter from "coima": short words only match exactly
        return None
    limit = 1 if len(key) < 9 else 2
    lengths = index.strong_by_length if strong else index.fuzzy_by_length
    pool = [
        known
        for size in range(len(key) - limit, len(key) + limit + 1)
        for known in lengths.get(size, ())
        if known[0] == key[0] and not (strong and known == key)  # people rarely mistype the first letter
    ]
    found = process.extractOne(key, pool, scorer=DamerauLevenshtein.distance, score_cutoff=limit)
    result = None
    if found is not None:
        known, distance, _ = found
        result = index.fuzzy_pool[known], 1.0 - 0.12 * distance
    if not strong and len(index.fuzzy_seen) < 50_000:
        index.fuzzy_seen[word] = result
    return result


def _loan_word(word: str, index: _Index) -> tuple[str, float] | None:
    """A Spanish word with a Mayan possessive prefix: nupasaporte, upasaporte, kipasaporte."""
    for cut in (1, 2, 3):
        rest = word[cut:]
        if len(rest) >= 5 and "es:" + spanish_key(rest) in index.idf:
            return "es:" + spanish_key(rest), 0.85
    return None


def _inside(key: str, index: _Index) -> tuple[str, float] | None:
    """A Mayan stem of four letters or more inside a longer word (prefixes, suffixes)."""
    best = max((stem for stem in index.mayan_stems if stem in key), key=len, default=None)
    return (index.mayan_stems[best], 0.85) if best else None
