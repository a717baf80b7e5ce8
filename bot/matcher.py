"""Understand one message: an emergency first, then a topic or an intent, or honestly not sure.

Two sources of evidence, built once per content version:

- keyword evidence (bot/keywords.py): how much of the message an entry's own keywords
  explain, weighted by rarity, with phrases, typos, synonyms and Mayan stems;
- the learned model (bot/model.py): which entry's examples the message looks like,
  including the examples of messages that are none of our topics.

Each candidate's confidence is a weighted mean of the two (0-100). The verdict:

1. the emergency entry above its own threshold wins over everything: the dialogue
   answers it first and offers the topic the message also carries, if any;
2. the best topic or intent is answered when it is confident, clearly ahead of the
   second best, and the model does not find the message more like "none of ours";
3. otherwise the topics within reach are offered as choices, or, with none, not sure.

The numbers live in `Calibration`, tuned on realistic queries the engine never learned
from (bench/tune_matcher.py); docs/matcher.md says how to tune them. Knows nothing of
channels or of the dialogue's state.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import lru_cache

from bot.content import EMERGENCY, Content, LanguagePack
from bot.keywords import KeywordIndex
from bot.model import NONE, TextModel, features
from bot.normalize import MAX_INPUT, is_stopword, mayan_key, spanish_key, words

__all__ = ["ACK", "EMERGENCY", "Calibration", "Match", "Matcher"]

_WHOLE_KEYWORD = 85.0  # keyword score of a message that is one of the entry's keywords
_CLOSE = 0.85  # a runner-up topic with this share of the best's confidence makes it a close call
_TIE_MARGIN = 20.0  # a shared keyword leaves two topics tied unless the rest of the message puts one this far ahead
_CALM = 0.6  # share of the emergency threshold below which a question around a cry shows no danger
_NONE_OFFERS = 0.5  # the model's "none of ours" above which no topic is offered
_FOLLOW_UP_WORDS = 8  # a longer message is a question of its own, not a follow-up
_FOLLOW_UP_SHARE = 0.5  # … and the related topic must have at least half the evidence of the message's best
_FOLLOW_UP_OPENINGS = frozenset({"y", "i", "e", "tambien", "pero", "entonces"})
_CONTEXT_PRIOR = 1.5  # a follow-up is most often about the topic just answered
_QUESTION_WORDS = frozenset("y e que cuanto cuanta cuantos cuantas como donde cuando cual cuales quien hay puedo necesito tengo piden se es son".split())
ACK = "entendido"  # "ok", "sí", "👍": acknowledged with a nudge, never an answer
_WRAPPERS = ("saludo", "gracias", "despedida", ACK, "idioma")  # what a question may come wrapped in
_COURTESIES = frozenset({"saludo", "gracias", "despedida"})  # answered on less certainty …
_COURTESY = 30.0  # … from this confidence, when no topic is in sight


@dataclass(frozen=True)
class Calibration:
    """How the evidence is weighed and where the verdict changes; fit by bench/tune_matcher.py.

    `sure` is a logistic regression over the features of `_sureness` that estimates how
    likely the best entry is right; the matcher answers when that is at least `answer`.
    """

    model_weight: float = 0.6  # share of the learned model in a candidate's confidence
    sure: tuple[float, ...] = (2.021, 2.059, 2.157, -3.71, 1.816, 1.59, 0.802, 0.613, -1.399, -0.469, -2.507)  # weights…, bias
    answer: float = 0.75  # probability of being right needed to answer directly
    offer: float = 10.0  # confidence a topic needs to be offered as a choice
    emergency: float = 26.0  # confidence of the emergency entry that makes it come first …
    emergency_margin: float = 30.0  # … unless a sure topic leads it by this much (danger topics open with the lines too)
    follow_up: float = 12.0  # confidence a related topic needs to answer a short follow-up
    offer_after_emergency: float = 25.0  # confidence a topic needs to be offered after the emergency lines
    offers: int = 3  # at most this many choices


@dataclass(frozen=True)
class Match:
    """The verdict on one message.

    `id` is what the dialogue answers directly (a topic, an intent or "emergencia"),
    None when it should not answer directly. `offered` are the topics shown as choices
    when `id` is None, or offered after the emergency reply.
    """

    id: str | None
    score: float
    candidates: tuple[tuple[str, float], ...] = ()
    offered: tuple[str, ...] = ()
    follow_up: bool = False  # answered only as a follow-up of the last topic ("¿y cuánto tarda?")

    @property
    def verdict(self) -> str:
        """What the person sees: "emergency", "answer", "ack" (a nudge for "ok"),
        "choices" or "not_sure"."""
        if self.id == EMERGENCY:
            return "emergency"
        if self.id == ACK:
            return "ack"
        if self.id is not None:
            return "answer"
        return "choices" if self.offered else "not_sure"

    @property
    def close_call(self) -> bool:
        """Not answered, but two or more topics are worth offering."""
        return self.id is None and len(self.offered) > 1


@dataclass(frozen=True)
class _Evidence:
    keyword: dict[str, float]  # entry → keyword score 0-100
    model: dict[str, float]  # label → probability
    kinds: dict[str, str]  # entry → "topic", "intent", "emergency"
    unknown: float = 0.0  # share of the message's telling words no entry was taught


class Matcher:
    """Built once per content version (off the event loop: it trains the model);
    `match` is pure and safe to share."""

    def __init__(self, content: Content, calibration: Calibration | None = None) -> None:
        self.content = content
        self.calibration = calibration or Calibration()
        self._keywords = {"es": KeywordIndex(content, "es")}
        # The Mayan languages' indexes are built beside the training (most people write in
        # Spanish); the first message in one of them waits for it if it comes that soon.
        others = [code for code in content.languages if code != "es"]
        self._others: Future[dict[str, KeywordIndex]] = Future()
        threading.Thread(target=self._build_others, args=(content, others), name="keyword-indexes", daemon=True).start()
        self._model = TextModel.train(list(_samples(content, self._keywords["es"])))
        self._kinds = _kinds(content)
        self._cached = lru_cache(maxsize=4096)(self._match)

    def match(self, text: str, lang: str = "es", context: str | None = None) -> Match:
        """The verdict on `text` from a user who chose `lang`.

        `context` is the topic answered just before: a short follow-up that is unclear
        alone ("y para niños?") is read again with that topic in mind.
        """
        if lang not in self.content.languages:
            lang = "es"
        found = self._cached(text[:MAX_INPUT], lang)
        if context not in self.content.spanish.topics:
            return found
        # unclear alone, or a topic answered but worded as a follow-up ("y para niños?"
        # after the passport: the children's passport, not children who migrate alone)
        if found.id is None or (found.id in self.content.spanish.topics and _continues(text)):
            return self._with_context(text[:MAX_INPUT], lang, context, found)
        return found

    def evidence(self, text: str, lang: str = "es") -> _Evidence:
        """Both sources of evidence for `text`, for tuning and for `pregunta match --explain`."""
        said = self._keywords["es"].words(text)
        own = self._keywords.get(lang) or self._index(lang)
        keyword = {s.id: s.score for s in own.scores(said if lang == "es" else own.words(text))}
        probabilities = self._model.probabilities(features(said.keys, said.informative, said.sounds))
        model = {} if probabilities is None else dict(zip(self._model.labels, map(float, probabilities), strict=True))
        telling = [key for key, informative in zip(said.keys, said.informative, strict=True) if informative]
        unknown = sum("w" + key not in self._model.vocabulary for key in telling) / len(telling) if telling else 0.0
        return _Evidence(keyword, model, self._kinds, unknown)

    def _build_others(self, content: Content, codes: list[str]) -> None:
        try:
            self._others.set_result({code: KeywordIndex(content, code) for code in codes})
        except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for a Mayan index
            self._others.set_exception(exc)

    def _index(self, lang: str) -> KeywordIndex:
        self._keywords.update(self._others.result())
        return self._keywords[lang]

    def decide(self, evidence: _Evidence, calibration: Calibration | None = None) -> Match:
        """The verdict from the evidence: pure, so a tuner can try many calibrations."""
        c = calibration or self.calibration
        ranked = _ranked(evidence, c.model_weight)
        if not ranked:
            return Match(None, 0.0)
        candidates = tuple(ranked[:3])
        topics = [(entry, score) for entry, score in ranked if evidence.kinds[entry] == "topic"]
        # nothing to offer for a message that looks like none of ours ("receta de pepián")
        ours = evidence.model.get(NONE, 0.0) < _NONE_OFFERS
        offered = tuple(entry for entry, score in topics[: c.offers] if score >= c.offer and ours)
        others = [(entry, score) for entry, score in ranked if entry != EMERGENCY]
        best = others[0][0] if others else None
        # a topic wins over the greeting or thanks around it
        if best and evidence.kinds[best] == "intent" and topics and _sure(_sureness(evidence, topics, topics[0][0]), c) >= c.answer:
            best = topics[0][0]
        sure = _sure(_sureness(evidence, others, best), c) if best else 0.0
        if best and _whole(evidence, best):
            sure = max(sure, c.answer)  # the message is one of its keywords, and the model agrees
        if best in self.content.spanish.topics and _tied(evidence, best, dict(ranked)):
            sure = 0.0  # the content gives this word to two topics: offer both, never pick one
        if best in self.content.spanish.topics and _close(topics, best):
            sure = 0.0  # two topics nearly level: the person picks, the bot does not guess
        danger = dict(ranked).get(EMERGENCY, 0.0)
        if danger >= c.emergency:
            leading = best in self.content.spanish.topics and sure >= c.answer and dict(ranked)[best] - danger >= c.emergency_margin
            if not leading:
                after = tuple(entry for entry, score in topics[:1] if score >= c.offer_after_emergency)
                return Match(EMERGENCY, danger, candidates, after)
        score = round(100 * sure, 1)
        if best and sure >= c.answer:
            return Match(best, score, candidates)
        if best in _COURTESIES and not offered and dict(ranked)[best] >= _COURTESY:
            # "b'antiox, adiós", "buenas": a courtesy, nothing else; a wrong one costs nothing
            return Match(best, score, candidates)
        return Match(None, score, candidates, offered)

    def _match(self, text: str, lang: str) -> Match:
        found = self.decide(self.evidence(text, lang))
        if found.id == EMERGENCY:
            return self._cry_around(found, text, lang)
        wrapper = found.id if found.id in _WRAPPERS else None
        if wrapper is None and found.id is None and found.candidates and found.candidates[0][0] in _WRAPPERS:
            wrapper = found.candidates[0][0]
        rest = self._without(wrapper, text, lang) if wrapper else []
        if not rest:
            return found
        # "¿La utz awach? kinwaj pasaporte", "ok y la visa?", "gracias, en español el
        # pasaporte": the question matters, not the greeting, thanks or "ok" around it
        again = self.decide(self.evidence(" ".join(rest), lang))
        if again.id is not None and again.id not in _WRAPPERS and again.id != EMERGENCY:  # danger was judged whole
            return again
        if again.offered and wrapper != "idioma":
            return replace(found, id=None, offered=again.offered)
        return found

    def _cry_around(self, found: Match, text: str, lang: str) -> Match:
        """"Auxilio, no entiendo el menú", "es urgente, ¿cómo saco el pasaporte?": a cry
        around an ordinary question. Without the cry words the rest is decided again; only
        when it is answered surely and shows no danger of its own does it win."""
        rest = self._without(EMERGENCY, text, lang)
        if not rest:
            return found  # "auxilio!!": the cry is the message
        evidence = self.evidence(" ".join(rest), lang)
        again = self.decide(evidence)
        danger = dict(_ranked(evidence, self.calibration.model_weight)).get(EMERGENCY, 0.0)
        if again.id not in (None, EMERGENCY, ACK) and danger < _CALM * self.calibration.emergency:
            return again
        return found

    def _without(self, entry_id: str, text: str, lang: str) -> list[str]:
        """The telling words of a message that are no keyword of `entry_id` (an intent or the
        emergency entry), compared by key so that a misspelt or unmarked greeting
        ("sentaye") is still the greeting."""
        known: set[str] = set()
        for code in {"es", lang}:
            pack = self.content.languages[code]
            entry = pack.emergency if entry_id == EMERGENCY else pack.intents.get(entry_id)
            if entry:
                known.update(k for keyword in entry.keywords for w in words(keyword) for k in (spanish_key(w), mayan_key(w)))
        rest = [w for w in words(text) if spanish_key(w) not in known and mayan_key(w) not in known]
        # small words stay with the rest ("no entiendo el menú" is not "entiendo el menú")
        return rest if any(not is_stopword(w) for w in rest) else []

    def _with_context(self, text: str, lang: str, context: str, alone: Match) -> Match:
        """A short, unclear follow-up after an answer ("y para niños?", "q papeles nesesito",
        "y cuanto cuesta") is read with the last topic and its related topics in mind.

        The last topic (weighted up) or a related one is answered when it is the message's
        best topic or close to it; a question with no topic words at all ("y cuanto
        cuesta?") is read together with the last topic's title. Never for a long message or
        one that looks like none of ours.
        """
        said = words(text)
        if not said or len(said) > _FOLLOW_UP_WORDS:
            return alone
        topic = self.content.spanish.topics[context]
        nearby = {context: _CONTEXT_PRIOR, **{r: 1.0 for r in topic.related if r in self.content.spanish.topics}}
        if _asks(text, said) and all(is_stopword(w) for w in said):
            # "y cuánto cuesta?", "¿y dónde?": nothing but the question, about the last topic
            found = self._cached(f"{text} {topic.title}", lang)
            return replace(found, follow_up=True) if found.id in nearby else alone
        evidence = self.evidence(text, lang)
        if evidence.model.get(NONE, 0.0) >= 0.5:
            return alone
        c = self.calibration
        ranked = [(entry, score) for entry, score in _ranked(evidence, c.model_weight) if self._kinds[entry] == "topic"]
        top = ranked[0][1] if ranked else 0.0
        scores = dict(ranked)
        best, score = max(((entry, prior * scores.get(entry, 0.0)) for entry, prior in nearby.items()), key=lambda item: item[1])
        if score >= c.follow_up and score >= _FOLLOW_UP_SHARE * top:
            return Match(best, round(score, 1), alone.candidates, follow_up=True)
        return alone


def _continues(text: str) -> bool:
    """The message opens like the next question of a conversation: "y …", "también …"."""
    said = words(text)
    return bool(said) and said[0] in _FOLLOW_UP_OPENINGS


def _asks(text: str, said: list[str]) -> bool:
    """A question, even a bare one: "?", or it opens like one ("y…", "cuánto…", "dónde…")."""
    return "?" in text or said[0] in _QUESTION_WORDS


def _ranked(evidence: _Evidence, model_weight: float) -> list[tuple[str, float]]:
    """Every entry either source found, by confidence (0-100): the weighted mean of both."""
    confidence = {
        entry: round(model_weight * 100.0 * evidence.model.get(entry, 0.0) + (1 - model_weight) * evidence.keyword.get(entry, 0.0), 1)
        for entry in {*evidence.keyword, *evidence.model}
        if entry in evidence.kinds
    }
    return sorted(confidence.items(), key=lambda item: (-item[1], item[0]))


def _sureness(evidence: _Evidence, ranked: list[tuple[str, float]], best: str) -> tuple[float, ...]:
    """What tells whether `best` is right: its confidence and lead over the next entry, the
    model's probability for it and for "none of ours", its keyword score and lead, whether
    each source alone would pick it, whether it is an intent, and how much of the message
    is made of words no entry was taught."""
    scores = dict(ranked)
    runner_up = max((score for entry, score in ranked if entry != best), default=0.0)
    keyword = sorted(evidence.keyword.values(), reverse=True)
    model_best = max((e for e in evidence.model if e != NONE), key=evidence.model.__getitem__, default=None)
    keyword_best = max(evidence.keyword, key=evidence.keyword.__getitem__, default=None)
    own = evidence.keyword.get(best, 0.0)
    next_keyword = max((s for e, s in evidence.keyword.items() if e != best), default=0.0)
    return (
        scores.get(best, 0.0) / 100,
        (scores.get(best, 0.0) - runner_up) / 100,
        evidence.model.get(best, 0.0),
        evidence.model.get(NONE, 0.0),
        own / 100,
        (own - next_keyword) / 100 if keyword else 0.0,
        float(model_best == best),
        float(keyword_best == best),
        float(evidence.kinds.get(best) == "intent"),
        evidence.unknown,
    )


def _whole(evidence: _Evidence, best: str) -> bool:
    """The message is one of `best`'s keywords ("pasaporte", "ok", "menú") and the model's
    first choice among our entries is the same (or the model knows none of its words)."""
    model_best = max((e for e in evidence.model if e != NONE), key=evidence.model.__getitem__, default=None)
    return evidence.keyword.get(best, 0.0) >= _WHOLE_KEYWORD and model_best in (best, None)


def _close(topics: list[tuple[str, float]], best: str) -> bool:
    """Another topic's confidence is nearly that of `best`."""
    own = dict(topics).get(best, 0.0)
    return any(entry != best and score >= _CLOSE * own for entry, score in topics[:2])


def _tied(evidence: _Evidence, best: str, scores: dict[str, float]) -> bool:
    """Another topic has exactly the keyword score of `best` (they share its keyword), and
    the message is that keyword ("albergue") or the rest of it hardly tells them apart (not
    "¿a dónde voy por el pasaporte?", which shares «pasaporte» with the requirements but
    asks where)."""
    own = evidence.keyword.get(best)
    return bool(own) and any(
        score == own and (own >= _WHOLE_KEYWORD or scores.get(best, 0.0) - scores.get(entry, 0.0) < _TIE_MARGIN)
        for entry, score in evidence.keyword.items()
        if entry != best and evidence.kinds.get(entry) == "topic"
    )


def _sure(features: tuple[float, ...], c: Calibration) -> float:
    """The probability that the best entry is right, by the fitted logistic regression."""
    *weights, bias = c.sure
    z = bias + sum(w * f for w, f in zip(weights, features, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _samples(content: Content, spanish: KeywordIndex) -> Iterator[tuple[Counter[str], str]]:
    """(features, label) for every keyword, title and example, in every language."""

    def sample(text: str, label: str) -> tuple[Counter[str], str]:
        said = spanish.words(text)
        return features(said.keys, said.informative, said.sounds), label

    for pack in content.languages.values():
        for text, label in _texts(pack):
            yield sample(text, label)
    for text in content.spanish.out_of_scope:
        yield sample(text, NONE)


def _texts(pack: LanguagePack) -> Iterator[tuple[str, str]]:
    for intent_id, intent in pack.intents.items():
        for keyword in intent.keywords:
            yield keyword, intent_id
    if pack.emergency is not None:
        for text in (*pack.emergency.keywords, *pack.emergency.examples):
            yield text, EMERGENCY
    for topic in pack.topics.values():
        for text in (*topic.keywords, *topic.examples, topic.title):
            yield text, topic.id


def _kinds(content: Content) -> dict[str, str]:
    kinds = {intent_id: "intent" for pack in content.languages.values() for intent_id in pack.intents}
    kinds.update({topic_id: "topic" for topic_id in content.spanish.topics})
    kinds[EMERGENCY] = "emergency"
    return kinds
