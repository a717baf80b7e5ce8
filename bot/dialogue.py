"""The conversation, as a pure function: (state, message) → (new state, reply).

No await, no clock, no database: every turn is a plain function call, so every flow is
a plain test. Channels render the `Reply`; the service around this stores the state.
The steps are drawn in docs/dialogue.mmd.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bot.content import Content
from bot.language_hint import guess_language
from bot.matcher import Match, Matcher
from bot.normalize import MAX_INPUT, canon, fold
from bot.privacy import mentions_personal_data
from bot.replies import Incoming, Kind, Option, Reply

__all__ = ["MENU_PAGE", "State", "Step", "respond", "slow_down"]

MENU_PAGE = 8  # topics per menu page: with "más temas" it fits a WhatsApp list (10 rows)
_NUMBER = re.compile(r"^\s*#?\s*(\d{1,2})\s*[.)]?\s*$")


class Step(StrEnum):
    NEW = "new"  # never talked to us: greet and ask for the language
    LANGUAGE = "language"  # we asked which language
    READY = "ready"  # language known: questions, menus, numbers


@dataclass(frozen=True)
class State:
    """What the bot remembers of one user: no text they wrote, only choices."""

    step: Step = Step.NEW
    lang: str = "es"
    options: tuple[tuple[str, str], ...] = ()  # (key, payload) of the last reply's options
    pending: str | None = None  # topic asked before the language was chosen (an id, not text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "lang": self.lang,
            "options": [list(o) for o in self.options],
            "pending": self.pending,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        try:
            options = tuple((str(k), str(p)) for k, p in data["options"])
            pending = data.get("pending")
            return cls(Step(data["step"]), str(data["lang"]), options, str(pending) if pending else None)
        except (KeyError, ValueError, TypeError, AttributeError):
            return cls()


def respond(state: State, incoming: Incoming, matcher: Matcher) -> tuple[State, Reply]:
    """One turn of the conversation."""
    content = matcher.content
    if state.lang not in content.languages:
        state = replace(state, lang="es")
    turn = _Turn(state, content, matcher)

    if incoming.payload:
        return turn.payload(incoming.payload)
    if incoming.non_text:
        return turn.non_text(incoming.non_text)

    text = incoming.text[:MAX_INPUT]
    if not fold(text):
        return turn.empty(text)
    number = _NUMBER.match(canon(text))
    if number:
        return turn.number(number.group(1))
    if state.step is not Step.READY:
        return turn.first_contact(text)
    return turn.question(text)


def slow_down(state: State, content: Content) -> Reply:
    """The one notice a flooding user gets before being ignored for a while."""
    return Reply(content.ui(state.lang, "slow_down"), state.lang, Kind.RATE_LIMITED)


class _Turn:
    """Builds the replies of one turn; holds the state and content to keep signatures short."""

    def __init__(self, state: State, content: Content, matcher: Matcher) -> None:
        self.state = state
        self.content = content
        self.matcher = matcher
        self.lang = state.lang
        self._pending = state.pending if state.pending in content.spanish.topics else None

    def ui(self, key: str) -> str:
        return self.content.ui(self.lang, key)

    def done(self, reply: Reply, **changes: Any) -> tuple[State, Reply]:
        options = tuple((o.key, o.payload) for o in reply.options)
        return replace(self.state, options=options, **changes), reply

    # -- entry points --------------------------------------------------------------

    def payload(self, payload: str) -> tuple[State, Reply]:
        kind, _, value = payload.partition(":")
        if kind == "topic" and value in self.content.spanish.topics:
            return self.answer(value, None, Kind.NUMBER, step=Step.READY)
        if kind == "lang" and value in self.content.languages:
            return self.choose_language(value)
        if kind == "menu":
            page = int(value) if value.isdigit() else 0
            return self.menu(page, Kind.NUMBER)
        if kind == "intent" and value:
            return self.intent(value, Match(value, 100.0))
        return self.menu(0, Kind.NUMBER)

    def non_text(self, what: str) -> tuple[State, Reply]:
        if self.state.step is not Step.READY:
            return self.language_menu(self.ui("non_text"), Kind.NON_TEXT, topic=what)
        return self.menu(0, Kind.NON_TEXT, intro=self.ui("non_text"), topic=what)

    def empty(self, text: str) -> tuple[State, Reply]:
        if self.state.step is not Step.READY:
            return self.language_menu(self.ui("greeting"), Kind.EMPTY)
        return self.menu(0, Kind.EMPTY, intro=self.ui("empty"))

    def number(self, key: str) -> tuple[State, Reply]:
        if self.state.step is not Step.READY:
            # the menu as it was shown (a hint may have put a language first) …
            for option_key, option_payload in self.state.options:
                if option_key == key and option_payload.startswith("lang:"):
                    return self.payload(option_payload)
            # … or, before any menu, the languages in their usual order
            languages = list(self.content.languages)
            if key.isdigit() and 1 <= int(key) <= len(languages):
                return self.choose_language(languages[int(key) - 1])
            return self.language_menu(self.ui("greeting"), Kind.LANGUAGE)
        if key == "0":
            return self.menu(0, Kind.MENU)
        for option_key, option_payload in self.state.options:
            if option_key == key:
                return self.payload(option_payload)
        # a number from the first menu page is the most likely meaning
        page = self._menu_page(0)
        for option in page:
            if option.key == key:
                return self.payload(option.payload)
        return self.menu(0, Kind.NUMBER)

    def first_contact(self, text: str) -> tuple[State, Reply]:
        chosen = self._named_language(text)
        if chosen and self.state.step is Step.LANGUAGE:
            return self.choose_language(chosen)
        # A question before the language is chosen is answered right after the choice.
        match = self.matcher.match(text, "es")
        pending = self.state.pending
        if match.id in self.content.spanish.topics and not match.close_call:
            pending = match.id
        hint = guess_language(text, self.content)
        state, reply = self.language_menu(self.ui("greeting"), Kind.LANGUAGE, hint=hint)
        return replace(state, pending=pending), reply

    def question(self, text: str) -> tuple[State, Reply]:
        match = self.matcher.match(text, self.lang)
        notice = self.ui("personal_data") if mentions_personal_data(text, self._public_numbers()) else None
        if match.id is None:
            return self.not_sure(text, match, notice)
        if match.id in self.content.spanish.topics:
            second = match.candidates[1][0] if len(match.candidates) > 1 else None
            if match.close_call and second in self.content.spanish.topics:
                return self.not_sure(text, match, notice, guess_anyway=True)
            return self.answer(match.id, match.score, Kind.TOPIC, notice=notice)
        return self.intent(match.id, match, text)

    # -- replies ---------------------------------------------------------------------

    def language_menu(
        self, intro: str, kind: Kind, topic: str | None = None, hint: str | None = None
    ) -> tuple[State, Reply]:
        """The language menu; a clear hint puts that language first and says so, nothing more."""
        codes = list(self.content.languages)
        parts = [intro]
        if hint in self.content.languages and hint != codes[0]:
            codes.remove(hint)
            codes.insert(0, hint)
            pack = self.content.languages[hint]
            label = _language_label(pack.name, pack.name_es)
            parts.append(self.content.ui(hint, "language_hint").replace("{language}", label))
        options = tuple(
            Option(str(i), f"lang:{code}", _language_label(pack.name, pack.name_es))
            for i, code in enumerate(codes, start=1)
            for pack in [self.content.languages[code]]
        )
        parts.append(self.ui("choose_language"))
        text = "\n\n".join(parts)
        reply = Reply(text, self.lang, kind, options, topic=topic, list_button=self.ui("menu_option"))
        return self.done(reply, step=Step.LANGUAGE)

    def choose_language(self, code: str) -> tuple[State, Reply]:
        self.lang = code
        pending, self.state = self._pending, replace(self.state, lang=code, step=Step.READY, pending=None)
        if pending:  # what they asked before choosing: the usage log counts it as asked
            return self.answer(pending, None, Kind.TOPIC)
        return self.menu(0, Kind.LANGUAGE, intro=self.ui("language_chosen"), topic=code)

    def menu(self, page: int, kind: Kind, intro: str | None = None, topic: str | None = None) -> tuple[State, Reply]:
        if self.state.step is not Step.READY and kind is not Kind.LANGUAGE:
            return self.language_menu(self.ui("greeting"), kind)
        options = self._menu_page(page)
        text = intro or self.ui("menu")
        reply = Reply(text, self.lang, kind, options, topic=topic or "menu", is_menu=True, list_button=self.ui("menu_option"))
        return self.done(reply)

    def answer(
        self, topic_id: str, score: float | None, kind: Kind, notice: str | None = None, step: Step | None = None
    ) -> tuple[State, Reply]:
        topic, translated = self.content.answer(self.lang, topic_id)
        parts = [notice] if notice else []
        if not translated:
            parts.append(self.ui("translation_pending"))
        elif self.lang != "es" and topic.translation == "draft":
            parts.append(self.ui("draft_notice"))
        parts += [topic.answer or "", self.ui("related")]
        related = [r for r in topic.related if r in self.content.spanish.topics][:3]
        options = tuple(
            Option(str(i), sys.intern(f"topic:{rid}"), self.content.title(self.lang, rid)) for i, rid in enumerate(related, start=1)
        ) + (self._menu_option(),)
        reply = Reply(
            "\n\n".join(parts),
            self.lang,
            kind,
            options,
            audio=self.content.audio(self.lang, topic_id),
            topic=topic_id,
            score=score,
            list_button=self.ui("menu_option"),
        )
        return self.done(reply, **({"step": step} if step else {}))

    def intent(self, intent_id: str, match: Match, text: str = "") -> tuple[State, Reply]:
        if intent_id == "menu":
            return self.menu(0, Kind.INTENT, topic="menu")
        if intent_id == "idioma":
            chosen = self._named_language(text)
            if chosen:
                return self.choose_language(chosen)
            return self.language_menu(self.ui("choose_language").split("\n")[0], Kind.INTENT, topic="idioma")
        if intent_id == "saludo":
            return self.menu(0, Kind.INTENT, intro=self.ui("greeting_again"), topic="saludo")
        key = {"gracias": "thanks", "despedida": "bye", "ayuda-humana": "help_lines"}.get(intent_id, "menu")
        reply = Reply(
            self.ui(key), self.lang, Kind.INTENT, (self._menu_option(),), topic=intent_id, score=match.score,
            list_button=self.ui("menu_option"),
        )
        return self.done(reply)

    def not_sure(self, text: str, match: Match, notice: str | None, guess_anyway: bool = False) -> tuple[State, Reply]:
        guesses = [c for c, score in match.candidates if c in self.content.spanish.topics]
        if not guess_anyway:
            guesses = [c for c, score in match.candidates if c in self.content.spanish.topics and score >= 25]
        guesses = guesses[:2]
        parts = [notice] if notice else []
        parts.append(self.ui("not_sure"))
        if guesses:
            parts.append(self.ui("not_sure_guesses"))
        options = tuple(
            Option(str(i), f"topic:{gid}", self.content.title(self.lang, gid)) for i, gid in enumerate(guesses, start=1)
        )
        options += (
            Option(str(len(options) + 1), "intent:ayuda-humana", self.ui("help_option")),
            self._menu_option(),
        )
        reply = Reply(
            "\n\n".join(parts), self.lang, Kind.NOT_SURE, options, score=match.score, query=text,
            topic=None, list_button=self.ui("menu_option"),
        )
        return self.done(reply)

    # -- helpers ---------------------------------------------------------------------

    def _menu_option(self) -> Option:
        return Option("0", "menu:0", self.ui("menu_option"))

    def _menu_page(self, page: int) -> tuple[Option, ...]:
        topics = self.content.menu
        pages = max(1, -(-len(topics) // MENU_PAGE))
        page = page % pages
        chunk = topics[page * MENU_PAGE : (page + 1) * MENU_PAGE]
        options = tuple(
            Option(str(i), sys.intern(f"topic:{tid}"), self.content.title(self.lang, tid)) for i, tid in enumerate(chunk, start=1)
        )  # interned: every remembered menu shares these strings
        if pages > 1:
            options += (Option(str(len(chunk) + 1), f"menu:{(page + 1) % pages}", self.ui("more_topics")),)
        return options

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


def _language_label(name: str, name_es: str) -> str:
    return name if fold(name) == fold(name_es) else f"{name} ({name_es})"


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
