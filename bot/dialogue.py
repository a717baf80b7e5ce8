"""The conversation, as a pure function: (state, message) → (new state, reply).

No await, no clock, no database: every turn is a plain function call, so every flow is
a plain test (the time of a message comes in `Incoming.at`). Channels render the
`Reply`; the service around this stores the state. The steps are drawn in
docs/dialogue.mmd.

What a person can count on:
- danger comes first: the emergency lines before anything else, in any step;
- a number means an option of the last list shown, and nothing else;
- the greeting and language menu come once: a second message is answered, in the
  language hinted or in Spanish, with a word on how to change it;
- when the bot is not sure it says so and offers what is within reach, never a guess.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bot.clock import GUATEMALA
from bot.content import EMERGENCY, Content
from bot.language_hint import asked_language, guess_language
from bot.matcher import Match, Matcher
from bot.normalize import MAX_INPUT, canon, fold, spanish_key, words
from bot.privacy import mentions_personal_data
from bot.replies import Incoming, Kind, Option, Reply

__all__ = ["MENU_PAGE", "REPEAT_MINUTES", "State", "Step", "number_in", "respond", "slow_down"]

MENU_PAGE = 8  # topics per menu page: with "más temas" and "menú" it fits a WhatsApp list (10 rows)
REPEAT_MINUTES = 10  # the same answer again within this while gets its short form
_RECENT = 3  # answers remembered for that
_HEADING = re.compile(r"\*[^*]+\*")
_BRIEF_WORDS = 2  # … for a message this short ("pasaporte vencido"); a longer question gets it all
_MENU = "menu:0"
_PAGE = "page:"  # options that are a menu page are remembered as the page, not as nine rows

_DIGITS = re.compile(r"^\s*(?:(?:el|la|opcion|opción|numero|número|nro|no|num)\.?\s*)?#?\s*(\d{1,2})\s*[.)°º]?\s*$", re.IGNORECASE)
_NUMBER_WORDS = {
    "cero": 0, "uno": 1, "una": 1, "primero": 1, "primera": 1, "dos": 2, "segundo": 2, "segunda": 2,
    "tres": 3, "tercero": 3, "tercera": 3, "cuatro": 4, "cuarto": 4, "cuarta": 4, "cinco": 5, "quinto": 5,
    "quinta": 5, "seis": 6, "sexto": 6, "sexta": 6, "siete": 7, "septimo": 7, "septima": 7, "ocho": 8,
    "octavo": 8, "octava": 8, "nueve": 9, "noveno": 9, "novena": 9, "diez": 10, "decimo": 10, "decima": 10,
}
_NUMBER_LEADS = {"el", "la", "opcion", "numero", "nro", "num", "quiero", "la opcion", "el numero"}
_SOCIAL = ("saludo", "gracias", "entendido")  # a second message like these re-shows the menu
_WARN_FROM = 15.0  # a candidate this confident brings its warning to a reply that is not sure
_ACCEPT_ALERTS = "alerts:yes"  # the consent's button: only an explicit press or number subscribes
_ALERT_LINES = 2  # at most this many alert lines under one answer
_ALERT_INTENTS = ("avisos", "baja")
_ALERT_LEAN = 35.0  # the matcher's lean toward one of them, when it is not sure, that still counts
# Words that turn "avisos" into a stop: the matcher drops "no", "ya", "más" as filler words,
# so "no más avisos" and "avisos" look alike to it.
_STOPS_ALERTS = frozenset(
    "no nunca ni dejar deja dejen basta parar pare paren detener cancelar cancela quitar quitame quiten sacame "
    "borrame stop baja desuscribir desuscribirme".split()
)


class Step(StrEnum):
    NEW = "new"  # never talked to us: greet and ask for the language
    LANGUAGE = "language"  # we asked which language
    READY = "ready"  # language known: questions, menus, numbers


@dataclass(frozen=True)
class State:
    """What the bot remembers of one person: choices, never the text they wrote."""

    step: Step = Step.NEW
    lang: str = "es"
    options: tuple[str, ...] = ()  # payloads of the last list shown: key "1" is the first
    pending: str | None = None  # topic asked before the language was chosen (an id, not text)
    hint: str | None = None  # language the first message looked like
    last: str | None = None  # topic answered last: the context of a short follow-up
    recent: tuple[tuple[str, int], ...] = ()  # (topic, minute) answered lately
    offer: tuple[str, ...] = ()  # topics a question before the language choice could be about

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "lang": self.lang,
            "options": list(self.options),
            "pending": self.pending,
            "hint": self.hint,
            "last": self.last,
            "recent": [list(item) for item in self.recent],
            "offer": list(self.offer),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        try:
            options = tuple(_payload(item) for item in data["options"])
            recent = tuple((str(topic), int(minute)) for topic, minute in data.get("recent") or ())
            return cls(
                Step(data["step"]),
                str(data["lang"]),
                tuple(payload for payload in options if payload is not None),
                _text_or_none(data.get("pending")),
                _text_or_none(data.get("hint")),
                _text_or_none(data.get("last")),
                recent,
                tuple(str(topic) for topic in data.get("offer") or ()),
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            return cls()


def _payload(item: Any) -> str | None:
    """An option as stored now (its payload) or by the first version ([key, payload])."""
    if isinstance(item, str):
        return sys.intern(item)
    key, payload = item
    return None if str(key) == "0" else sys.intern(str(payload))


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


def respond(state: State, incoming: Incoming, matcher: Matcher) -> tuple[State, Reply]:
    """One turn of the conversation."""
    content = matcher.content
    if state.lang not in content.languages:
        state = replace(state, lang="es")
    turn = _Turn(state, content, matcher, incoming.at)

    if incoming.payload:
        return turn.payload(incoming.payload)
    if incoming.non_text:
        return turn.non_text(incoming.non_text)

    text = incoming.text[:MAX_INPUT]
    if not fold(text):
        return turn.no_words(text)
    number = number_in(text)
    if number is not None:
        return turn.number(number)
    if state.step is not Step.READY:
        return turn.first_contact(text)
    return turn.question(text)


def slow_down(state: State, content: Content) -> Reply:
    """The one notice a flooding user gets before being ignored for a while."""
    return Reply(content.ui(state.lang, "slow_down"), state.lang, Kind.RATE_LIMITED)


def number_in(text: str) -> int | None:
    """The option a message picks: "2", "#2", "2.", "el 2", "opción 3", "dos", "la segunda"."""
    found = _DIGITS.match(canon(text))
    if found:
        return int(found.group(1))
    said = fold(text).split()
    if said and said[-1] in _NUMBER_WORDS and (len(said) == 1 or " ".join(said[:-1]) in _NUMBER_LEADS):
        return _NUMBER_WORDS[said[-1]]
    return None


class _Turn:
    """Builds the replies of one turn; holds the state and content to keep signatures short."""

    def __init__(self, state: State, content: Content, matcher: Matcher, at: float | None) -> None:
        self.state = state
        self.content = content
        self.matcher = matcher
        self.lang = state.lang
        self.minute = int(at // 60) if at else None
        self.day: date | None = datetime.fromtimestamp(at, GUATEMALA).date() if at else None
        self._pending = state.pending if state.pending in content.spanish.topics else None

    def ui(self, key: str) -> str:
        return self.content.ui(self.lang, key)

    def done(self, reply: Reply, **changes: Any) -> tuple[State, Reply]:
        reply = replace(reply, list_button=self.ui("menu_option"))
        if reply.is_menu and reply.options:
            remembered: tuple[str, ...] = (f"{_PAGE}{reply.page}",)
        else:
            remembered = tuple(option.payload for option in reply.options if option.key != "0")
        return replace(self.state, options=remembered, **changes), reply

    # -- entry points --------------------------------------------------------------

    def payload(self, payload: str) -> tuple[State, Reply]:
        kind, _, value = payload.partition(":")
        if kind == "topic" and value in self.content.spanish.topics:
            return self.answer(value, None, Kind.NUMBER, step=Step.READY, full=True)
        if kind == "full" and value in self.content.spanish.topics:
            return self.answer(value, None, Kind.NUMBER, step=Step.READY, full=True)
        if kind == "lang" and value in self.content.languages:
            return self.choose_language(value)
        if kind == "menu":
            page = int(value) if value.isdigit() else 0
            return self.menu(page, Kind.NUMBER)
        if payload == _ACCEPT_ALERTS:
            return self.alerts_subscribe()
        if kind == "intent" and value == EMERGENCY:
            return self.emergency(Match(EMERGENCY, 100.0), "")
        if kind == "intent" and value:
            return self.intent(value, Match(value, 100.0))
        return self.menu(0, Kind.NUMBER)

    def non_text(self, what: str) -> tuple[State, Reply]:
        if self.state.step is not Step.READY:
            return self.language_menu(self.ui("non_text"), Kind.NON_TEXT, topic=what)
        return self.menu(0, Kind.NON_TEXT, intro=self.ui("non_text"), topic=what)

    def no_words(self, text: str) -> tuple[State, Reply]:
        """Emoji only, or nothing readable: a short nudge, not the whole menu again."""
        if self.state.step is not Step.READY:
            return self.language_menu(self.ui("greeting"), Kind.EMPTY)
        if text.strip():  # 👍, 🙂🙂🙂: someone acknowledging
            return self.acknowledge(Kind.EMPTY)
        return self.done(Reply(self.ui("empty"), self.lang, Kind.EMPTY, (self._menu_option(),)))

    def number(self, number: int) -> tuple[State, Reply]:
        key = str(number)
        if self.state.step is not Step.READY:
            # the menu as it was shown (a hint may have put a language first) …
            for index, payload in enumerate(self.state.options, start=1):
                if index == number and payload.startswith("lang:"):
                    return self.payload(payload)
            # … or, before any menu, the languages in their usual order
            languages = list(self.content.languages)
            if 1 <= number <= len(languages):
                return self.choose_language(languages[number - 1])
            return self.language_menu(self.ui("greeting"), Kind.LANGUAGE)
        if key == "0":
            return self.menu(0, Kind.MENU)
        options = self._last_options()
        if not options:
            return self.menu(0, Kind.NUMBER)
        for option in options:
            if option.key == key:
                return self.payload(option.payload)
        # not an option of the last list: say which numbers are, and show the list again
        numbered = [o for o in options if o.key != "0"]
        valid = self.ui("valid_numbers").replace("{last}", str(len(numbered)))
        if len(numbered) == 1:
            valid = self.ui("valid_number")
        reply = Reply(valid, self.lang, Kind.NUMBER, options, is_menu=self._last_page() is not None, page=self._last_page() or 0)
        return self.done(reply)

    def first_contact(self, text: str) -> tuple[State, Reply]:
        # after we asked, "mam" is an answer; before, only a clear request ("qyol mam")
        named = self._named_language(text) if self.state.step is Step.LANGUAGE else asked_language(text, self.content)
        if named:
            return self.choose_language(named)
        hint = guess_language(text, self.content) or self.state.hint
        found = self.matcher.match(text, hint or "es")
        if found.id == EMERGENCY:  # danger does not wait for a language
            self.lang = hint or self.state.lang
            self.state = replace(self.state, lang=self.lang, step=Step.READY, pending=None)
            state, reply = self.emergency(found, text, change_language=True)
            return state, replace(reply, chose_lang=self.lang)
        found = self._alerts_wish(text, found)
        if found.id == "baja":  # stopping alerts never waits for a language (a state forgotten after months)
            self.lang = hint or self.state.lang
            return self.alerts_stop(found)
        if self.state.step is Step.LANGUAGE and found.id == "idioma":
            return self.language_menu(None, Kind.INTENT, topic="idioma")
        if self.state.step is Step.LANGUAGE:
            # A second message that is not a choice: never the greeting again. Answer it in
            # the language hinted (or Spanish) and say how to change.
            self.lang = hint or self.state.lang
            self.state = replace(self.state, lang=self.lang, step=Step.READY, pending=None, hint=None)
            if found.id in _SOCIAL or found.id == "menu":
                intro = self._auto_language(self.ui("language_chosen"))
                return self.menu(0, Kind.LANGUAGE, intro=intro, topic=self.lang)
            state, reply = self.question(text, found)
            return state, replace(reply, text=self._auto_language(reply.text), chose_lang=self.lang)
        # A question before the language is chosen is answered right after the choice.
        pending, offer = self.state.pending, self.state.offer
        if found.id in self.content.spanish.topics:
            pending, offer = found.id, ()
        elif found.offered:
            pending, offer = None, found.offered
        state, reply = self.language_menu(self.ui("greeting"), Kind.LANGUAGE, hint=hint)
        return replace(state, pending=pending, offer=offer, hint=hint), reply

    def question(self, text: str, found: Match | None = None) -> tuple[State, Reply]:
        found = self._alerts_wish(text, found or self.matcher.match(text, self.lang, context=self.state.last))
        notice = self.ui("personal_data") if mentions_personal_data(text, self._public_numbers()) else None
        if found.id == EMERGENCY:
            return self.emergency(found, text)
        if found.id is None:
            return self.unsure(text, found, notice)
        if found.id in self.content.spanish.topics:
            # the same few words again soon: the short form; a question of its own: all of it,
            # unless only the topic just answered made sense of it ("¿y cuánto tarda?" after
            # the passport): the answer has nothing more, and sending it whole says otherwise
            brief = len(words(text)) <= _BRIEF_WORDS
            again = found.follow_up and found.id == self.state.last and not brief
            return self.answer(found.id, found.score, Kind.TOPIC, notice=notice, full=not (brief or again), again=again)
        return self.intent(found.id, found, text)

    # -- replies ---------------------------------------------------------------------

    def language_menu(
        self, intro: str | None, kind: Kind, topic: str | None = None, hint: str | None = None
    ) -> tuple[State, Reply]:
        """The language menu; a clear hint puts that language first and says so."""
        codes = list(self.content.languages)
        parts = [intro] if intro else []
        if hint in self.content.languages and hint != codes[0]:
            codes.remove(hint)
            codes.insert(0, hint)
            parts.append(self.content.ui(hint, "language_hint").replace("{language}", self._language_label(hint)))
        options = tuple(Option(str(i), f"lang:{code}", self._language_label(code)) for i, code in enumerate(codes, start=1))
        parts.append(self.ui("choose_language"))
        reply = Reply("\n\n".join(parts), self.lang, kind, options, topic=topic)
        return self.done(reply, step=Step.LANGUAGE)

    def choose_language(self, code: str) -> tuple[State, Reply]:
        self.lang = code
        offer = tuple(t for t in self.state.offer if t in self.content.spanish.topics)
        pending, self.state = self._pending, replace(self.state, lang=code, step=Step.READY, pending=None, hint=None, offer=())
        if pending:  # what they asked before choosing: the usage log counts it as asked
            state, reply = self.answer(pending, None, Kind.TOPIC)
            return state, replace(reply, chose_lang=code)
        if offer:  # … or the topics it could be about
            state, reply = self.unsure("", Match(None, 0.0, (), offer), None)
            return state, replace(reply, chose_lang=code, query=None)
        return self.menu(0, Kind.LANGUAGE, intro=self.ui("language_chosen"), topic=code)

    def menu(self, page: int, kind: Kind, intro: str | None = None, topic: str | None = None) -> tuple[State, Reply]:
        if self.state.step is not Step.READY and kind is not Kind.LANGUAGE:
            return self.language_menu(self.ui("greeting"), kind)
        page = max(0, min(page, self._pages() - 1))
        options = self._menu_page(page)
        text = intro or self.ui("menu")
        reply = Reply(text, self.lang, kind, options, topic=topic or "menu", is_menu=True, page=page)
        return self.done(reply)

    def answer(
        self,
        topic_id: str,
        score: float | None,
        kind: Kind,
        notice: str | None = None,
        step: Step | None = None,
        full: bool = False,
        again: bool = False,
    ) -> tuple[State, Reply]:
        topic, translated = self.content.answer(self.lang, topic_id)
        parts = [notice] if notice else []
        repeat = not full and self._answered_lately(topic_id)
        if repeat:
            parts += [(again and self.ui("no_more")) or self.ui("repeat"), _gist(topic.answer or "", self.content.spanish.topics[topic_id].title)]
        else:
            if not translated:
                parts.append(self.ui("translation_pending"))
            elif self.lang != "es" and topic.translation == "draft":
                parts.append(self.ui("draft_notice"))
            parts.append(topic.answer or "")
        parts += self._alert_lines(topic_id)
        parts.append(self.ui("related"))
        related = [r for r in topic.related if r in self.content.spanish.topics][:3]
        options = [Option(str(i), sys.intern(f"topic:{rid}"), self.content.title(self.lang, rid)) for i, rid in enumerate(related, start=1)]
        if repeat:
            options.append(Option(str(len(options) + 1), sys.intern(f"full:{topic_id}"), self.ui("full_answer")))
        reply = Reply(
            "\n\n".join(parts),
            self.lang,
            kind,
            (*options, self._menu_option()),
            audio=None if repeat else self.content.audio(self.lang, topic_id),
            topic=topic_id,
            score=score,
        )
        return self.done(reply, last=topic_id, recent=self._remember(topic_id), **({"step": step} if step else {}))

    def emergency(self, found: Match, text: str, change_language: bool = False) -> tuple[State, Reply]:
        """The emergency lines first, then the line for what the message tells, then the
        topic it also carries as an option."""
        entry, _ = self.content.emergency(self.lang)
        said = {spanish_key(w) for w in words(text)}
        lines = [
            situation.line
            for situation in entry.situations
            if any(all(spanish_key(w) in said for w in words(keyword)) for keyword in situation.keywords)
        ]
        parts = [entry.answer or "", *lines]
        if change_language:
            parts.append(self._auto_language(""))
        offered = [t for t in found.offered if t in self.content.spanish.topics][:1]
        options = [Option(str(i), f"topic:{tid}", self.content.title(self.lang, tid)) for i, tid in enumerate(offered, start=1)]
        options.append(Option(str(len(options) + 1), "intent:ayuda-humana", self.ui("help_option")))
        reply = Reply(
            "\n".join(part for part in parts if part).strip(),
            self.lang,
            Kind.EMERGENCY,
            (*options, self._menu_option()),
            topic=EMERGENCY,
            score=found.score,
        )
        return self.done(reply)

    def intent(self, intent_id: str, found: Match, text: str = "") -> tuple[State, Reply]:
        if intent_id == "menu":
            return self.menu(0, Kind.INTENT, topic="menu")
        if intent_id == "idioma":
            chosen = self._named_language(text)
            if chosen:
                return self.choose_language(chosen)
            return self.language_menu(None, Kind.INTENT, topic="idioma")
        if intent_id == "saludo":
            return self.menu(0, Kind.INTENT, intro=self.ui("greeting_again"), topic="saludo")
        if intent_id == "entendido":
            return self.acknowledge(Kind.INTENT)
        if intent_id == "avisos":
            return self.alerts_consent(found)
        if intent_id == "baja":
            return self.alerts_stop(found)
        key = {"gracias": "thanks", "despedida": "bye", "ayuda-humana": "help_lines"}.get(intent_id, "menu")
        reply = Reply(self.ui(key), self.lang, Kind.INTENT, (self._menu_option(),), topic=intent_id, score=found.score)
        return self.done(reply)

    # -- alerts ("avisos"): the service carries out `Reply.action` (bot.conversation) --------

    def alerts_consent(self, found: Match) -> tuple[State, Reply]:
        """What we keep, how often we write, how to stop; accepting takes a button or its number."""
        accept = Option("1", _ACCEPT_ALERTS, self.ui("alerts_accept"))
        reply = Reply(self.ui("alerts_consent"), self.lang, Kind.INTENT, (accept, self._menu_option()), topic="avisos",
                      score=found.score, action="consent")  # fmt: skip
        return self.done(reply)

    def alerts_subscribe(self) -> tuple[State, Reply]:
        reply = Reply(self.ui("alerts_subscribed"), self.lang, Kind.INTENT, (self._menu_option(),), topic="avisos", action="subscribe")
        return self.done(reply)

    def alerts_stop(self, found: Match) -> tuple[State, Reply]:
        """At once, whatever the step: no question back."""
        reply = Reply(self.ui("alerts_unsubscribed"), self.lang, Kind.INTENT, (self._menu_option(),), topic="baja",
                      score=found.score, action="unsubscribe")  # fmt: skip
        return self.done(reply)

    def _alerts_wish(self, text: str, found: Match) -> Match:
        """Between the two alert intents, a "no" decides: the matcher cannot hear it (a filler
        word to it), so "no quiero recibir avisos" looks like "quiero recibir avisos" there.
        A lean of the matcher to either, short of sure, counts when nothing else is near."""
        lean = found.id if found.id is not None else (found.candidates[0][0] if found.candidates else None)
        if lean not in _ALERT_INTENTS or (found.id is None and found.candidates[0][1] < _ALERT_LEAN):
            return found
        wants = "baja" if lean == "baja" or _STOPS_ALERTS & set(fold(text).split()) else "avisos"
        return found if found.id == wants else Match(wants, max(found.score, found.candidates[0][1]), found.candidates)

    def _alert_lines(self, topic_id: str) -> list[str]:
        """One line per live alert on the topic (by the message's day: no clock here), newest first."""
        if self.day is None:
            return []
        lines = []
        for alert_id in self.content.alerts_on(topic_id, self.day)[:_ALERT_LINES]:
            _, title, _ = self.content.alert(self.lang, alert_id)
            lines.append(self.ui("alert_line").replace("{alert}", title))
        return lines

    def acknowledge(self, kind: Kind) -> tuple[State, Reply]:
        """"ok", "👍", "si": a short "¿Algo más?", the last options kept."""
        options = tuple(o for o in self._last_options() if o.key != "0") if self._last_page() is None else ()
        reply = Reply(self.ui("ack"), self.lang, kind, (*options, self._menu_option()), topic="entendido")
        return self.done(reply)

    def unsure(self, text: str, found: Match, notice: str | None) -> tuple[State, Reply]:
        """Choices when topics are within reach, else "not sure"; never a guess as an answer.
        A scam, smuggling or trafficking topic among them puts its warning first."""
        topics = self.content.spanish.topics
        offered = [t for t in found.offered if t in topics]
        near = [*offered, *(c for c, score in found.candidates if score >= _WARN_FROM and c in topics)]
        warnings = [w for w in dict.fromkeys(topics[t].warning for t in near) if w]
        parts = [notice] if notice else []
        parts += warnings[:1]
        if offered:
            parts.append(self.ui("choices") if len(offered) > 1 else self.ui("choice"))
            kind = Kind.CHOICES
        else:
            parts.append(self.ui("not_sure"))
            kind = Kind.NOT_SURE
        options = [Option(str(i), f"topic:{tid}", self.content.title(self.lang, tid)) for i, tid in enumerate(offered, start=1)]
        options.append(Option(str(len(options) + 1), "intent:ayuda-humana", self.ui("help_option")))
        reply = Reply("\n\n".join(parts), self.lang, kind, (*options, self._menu_option()), score=found.score, query=text)
        return self.done(reply)

    # -- helpers ---------------------------------------------------------------------

    def _menu_option(self) -> Option:
        return Option("0", _MENU, self.ui("menu_option"))

    def _pages(self) -> int:
        return max(1, -(-len(self.content.menu) // MENU_PAGE))

    def _menu_page(self, page: int) -> tuple[Option, ...]:
        """One page of topics; "más temas" while there are more, "0 Menú" after the first."""
        chunk = self.content.menu[page * MENU_PAGE : (page + 1) * MENU_PAGE]
        options = [
            Option(str(i), sys.intern(f"topic:{tid}"), self.content.title(self.lang, tid)) for i, tid in enumerate(chunk, start=1)
        ]  # interned: every remembered menu shares these strings
        if page + 1 < self._pages():
            options.append(Option(str(len(chunk) + 1), f"menu:{page + 1}", self.ui("more_topics")))
        if page > 0:
            options.append(self._menu_option())
        return tuple(options)

    def _last_page(self) -> int | None:
        options = self.state.options
        if len(options) == 1 and options[0].startswith(_PAGE) and options[0][len(_PAGE) :].isdigit():
            return int(options[0][len(_PAGE) :])
        return None

    def _last_options(self) -> tuple[Option, ...]:
        """The options of the last list shown, rebuilt from what the state remembers."""
        page = self._last_page()
        if page is not None:
            return self._menu_page(min(page, self._pages() - 1))
        listed = (Option(str(i), payload, self._title(payload)) for i, payload in enumerate(self.state.options, start=1))
        return (*listed, self._menu_option())

    def _title(self, payload: str) -> str:
        """The label of a remembered option, in the person's language."""
        kind, _, value = payload.partition(":")
        if kind == "topic" and value in self.content.spanish.topics:
            return self.content.title(self.lang, value)
        if kind == "lang" and value in self.content.languages:
            return self._language_label(value)
        if kind == "full":
            return self.ui("full_answer")
        if kind == "menu":
            return self.ui("more_topics")
        if payload == "intent:ayuda-humana":
            return self.ui("help_option")
        if payload == _ACCEPT_ALERTS:
            return self.ui("alerts_accept")
        return self.ui("menu_option")

    def _answered_lately(self, topic_id: str) -> bool:
        if self.minute is None:
            return False
        return any(t == topic_id and 0 <= self.minute - m <= REPEAT_MINUTES for t, m in self.state.recent)

    def _remember(self, topic_id: str) -> tuple[tuple[str, int], ...]:
        if self.minute is None:
            return self.state.recent
        kept = [(t, m) for t, m in self.state.recent if t != topic_id and 0 <= self.minute - m <= REPEAT_MINUTES]
        return (*kept[-(_RECENT - 1) :], (topic_id, self.minute))

    def _auto_language(self, text: str) -> str:
        note = self.content.ui(self.lang, "language_auto").replace("{language}", self._language_label(self.lang))
        return f"{text}\n\n{note}" if text else note

    def _language_label(self, code: str) -> str:
        pack = self.content.languages[code]
        return pack.name if fold(pack.name) == fold(pack.name_es) else f"{pack.name} ({pack.name_es})"

    def _named_language(self, text: str) -> str | None:
        """The language a message names ("en mam", "quiché"), if exactly one."""
        said = f" {fold(text)} "
        found = set()
        for code, pack in self.content.languages.items():
            for name in (*pack.names, pack.name, pack.name_es):
                if f" {fold(name)} " in said:
                    found.add(code)
        return found.pop() if len(found) == 1 else None

    def _public_numbers(self) -> frozenset[str]:
        return _public_numbers(self.content)


def _gist(answer: str, title: str) -> str:
    """The line of an answer that says what to do: its first bold line that is not the
    title, else its first line after the title."""
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    if lines and _HEADING.fullmatch(lines[0]):  # "*Pasaporte y viajes de menores*": a heading
        lines = lines[1:]
    body = [line for line in lines if line.replace("*", "").strip() != title]
    for line in [line for line in body if "*" in line] or body:
        return line
    return ""


_NUMBERS_CACHE: dict[str, frozenset[str]] = {}


def _public_numbers(content: Content) -> frozenset[str]:
    """Phone lines the content itself publishes: quoting them back is not personal data."""
    cached = _NUMBERS_CACHE.get(content.version)
    if cached is None:
        if len(_NUMBERS_CACHE) > 8:  # one entry per content version: reloads are rare
            _NUMBERS_CACHE.clear()
        texts = [content.spanish.ui.help_lines or ""] + [t.answer or "" for t in content.spanish.topics.values()]
        found = {re.sub(r"\D", "", m) for text in texts for m in re.findall(r"\d[\d -]{2,}\d", text)}
        cached = _NUMBERS_CACHE[content.version] = frozenset(found)
    return cached
