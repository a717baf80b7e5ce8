"""Dialogue flows, each turn a plain function call on the fixture content."""

from __future__ import annotations

import pytest

from bot.dialogue import State, Step, respond
from bot.matcher import Matcher
from bot.replies import Incoming, Kind, Reply


class Talk:
    """A user talking to the pure dialogue, keeping the state between turns."""

    def __init__(self, matcher: Matcher, state: State | None = None) -> None:
        self.matcher = matcher
        self.state = state or State()

    def say(self, text: str = "", **kw: str) -> Reply:
        self.state, reply = respond(self.state, Incoming(text=text, **kw), self.matcher)
        return reply


def keys(reply: Reply) -> list[tuple[str, str]]:
    return [(o.key, o.payload) for o in reply.options]


def test_first_contact_language_menu_topic_related(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher)
    reply = talk.say("hola")
    assert "No soy una persona" in reply.text
    assert keys(reply) == [("1", "lang:es"), ("2", "lang:quc")]
    assert [o.title for o in reply.options] == ["Español", "K'iche' (quiché)"]
    assert talk.state.step is Step.LANGUAGE

    reply = talk.say("1")
    assert reply.kind is Kind.LANGUAGE and talk.state.lang == "es" and talk.state.step is Step.READY
    assert keys(reply)[:3] == [("1", "topic:pasaporte-requisitos"), ("2", "topic:pasaporte-vigencia"), ("3", "topic:asilo-como-solicitar")]

    reply = talk.say("3")
    assert reply.kind is Kind.NUMBER and reply.topic == "asilo-como-solicitar"
    assert "Respuesta de prueba sobre el asilo." in reply.text
    assert keys(reply) == [("1", "topic:pasaporte-requisitos"), ("0", "menu:0")]

    reply = talk.say("1")  # a related topic by number
    assert reply.topic == "pasaporte-requisitos"
    reply = talk.say("0")
    assert reply.kind is Kind.MENU and reply.is_menu


def test_language_remembered_and_question_answered(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say("se me vencio el pasaporte")
    assert reply.kind is Kind.TOPIC and reply.topic == "pasaporte-vigencia"
    assert reply.text.endswith("¿Algo más?")
    assert talk.state.lang == "es"


def test_not_sure_offers_help_and_menu_never_an_answer(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say("receta de pepian")
    assert reply.kind is Kind.NOT_SURE and reply.topic is None
    assert reply.text.startswith("No estoy seguro de haber entendido.")
    assert ("0", "menu:0") in keys(reply)
    assert any(p == "intent:ayuda-humana" for _, p in keys(reply))
    assert reply.query == "receta de pepian"  # kept for the log, which scrubs it
    reply = talk.say(keys(reply)[0][0])  # "1" → the help lines
    assert "110" in reply.text and reply.topic == "ayuda-humana"


def test_language_switch_by_word_and_by_name(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say("idioma")
    assert talk.state.step is Step.LANGUAGE and keys(reply)[1] == ("2", "lang:quc")
    talk.say("2")
    assert talk.state.lang == "quc" and talk.state.step is Step.READY
    talk.say("cambiar idioma en español")
    assert talk.state.lang == "es"


def test_language_by_name_when_asked(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher)
    talk.say("hola")
    reply = talk.say("quiche")
    assert talk.state.lang == "quc" and reply.kind is Kind.LANGUAGE


@pytest.mark.parametrize(
    "text, intent, fragment",
    [
        ("hola", "saludo", "¡Hola de nuevo!"),
        ("muchas gracias", "gracias", "¡Con gusto!"),
        ("adios", "despedida", "¡Adiós!"),
        ("quiero hablar con una persona", "ayuda-humana", "110"),
        ("menu", "menu", "Elegí un tema:"),
    ],
)
def test_intents(fixture_matcher: Matcher, text: str, intent: str, fragment: str) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say(text)
    assert reply.kind is Kind.INTENT and reply.topic == intent
    assert fragment in reply.text


def test_close_call_offers_both(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    match = fixture_matcher.match("tramite", "es")
    assert match.close_call and match.id is None
    reply = talk.say("tramite")
    assert reply.kind is Kind.CHOICES and reply.text.startswith("Tu pregunta puede ser de uno de estos temas:")
    assert "No estoy seguro" not in reply.text
    assert {p for _, p in keys(reply)} >= {"topic:pasaporte-requisitos", "topic:pasaporte-vigencia"}


def test_draft_topic_gets_notice_and_spanish_reviewed_gets_translation(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "quc"))
    reply = talk.say(payload="topic:pasaporte-requisitos")
    assert reply.text.startswith("Traducción en revisión (quc); en español:")
    assert "Respuesta de prueba sobre el pasaporte." in reply.text
    reply = talk.say(payload="topic:asilo-como-solicitar")
    assert "Texto revisado en K'iche' de prueba." in reply.text
    assert "Traducción en revisión" not in reply.text


def test_personal_data_gets_a_warning(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say("me llamo Ana Lopez, mi cel es 5555 1234, como saco mi pasaporte")
    assert reply.text.startswith("No necesito tus datos personales.")
    assert reply.topic == "pasaporte-requisitos"


def test_old_button_still_means_what_it_said(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    talk.say("menu")
    reply = talk.say(payload="topic:asilo-como-solicitar")
    assert reply.topic == "asilo-como-solicitar"
    reply = talk.say(payload="topic:no-such-topic")
    assert reply.is_menu


def test_non_text_gets_a_kind_reply_and_the_menu(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say(non_text="voice")
    assert reply.kind is Kind.NON_TEXT and reply.text == "Solo leo texto." and reply.is_menu


def test_state_survives_serialisation() -> None:
    state = State(Step.READY, "kek", ("topic:remesas",), None, "kek", "remesas", (("remesas", 29_000_000),))
    assert State.from_dict(state.to_dict()) == state
    assert State.from_dict({"garbage": 1}) == State()
    # a state stored by the first version ([key, payload] pairs) still loads
    old = {"step": "ready", "lang": "es", "options": [["1", "topic:remesas"], ["0", "menu:0"]], "pending": None}
    assert State.from_dict(old) == State(Step.READY, "es", ("topic:remesas",))


HOSTILE = [
    "",
    "   ",
    "\n\n\t",
    "x" * 10_000,
    "pasaporte " * 2_000,
    "\x00\x01\x02\x1b[31m",
    "😂😂😂🙏",
    "\u200b\u200c\u200d\ufeff",
    "\u202e\u202dpasaporte\u202c",
    "Ｐａｓａｐｏｒｔｅ",
    "'''''",
    "١٢٣",
    "\ud800",
    "0" * 50,
    "99",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("step", [Step.NEW, Step.READY])
def test_hostile_input_gets_a_safe_reply(matcher: Matcher, text: str, step: Step) -> None:
    state, reply = respond(State(step, "es"), Incoming(text=text), matcher)
    assert reply.text.strip()
    assert reply.options  # always a way forward
    assert isinstance(state, State)


def test_question_before_the_language_is_answered_after_it(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher)
    reply = talk.say("como pido asilo")
    assert talk.state.step is Step.LANGUAGE and talk.state.pending == "asilo-como-solicitar"
    assert "asilo" not in reply.text.lower()  # the language comes first
    reply = talk.say("1")
    assert reply.topic == "asilo-como-solicitar" and talk.state.pending is None
    assert talk.state.step is Step.READY and talk.state.lang == "es"


def test_language_hint_puts_the_language_first_and_numbers_follow_the_menu(matcher: Matcher) -> None:
    talk = Talk(matcher)
    reply = talk.say("la utz awach, in k'o pa ri ja")
    assert reply.options[0].payload == "lang:quc" and "Lo puse primero" in reply.text
    assert talk.state.step is Step.LANGUAGE and talk.state.lang == "es"  # never switched silently
    talk.say("1")
    assert talk.state.lang == "quc"


def test_no_hint_from_one_ambiguous_word(matcher: Matcher) -> None:
    talk = Talk(matcher)
    reply = talk.say("mam")
    assert reply.options[0].payload == "lang:es" and "Lo puse primero" not in reply.text


# -- as people really use it (issues 10 and 11), on the bundled content ------------------------


def titles(reply: Reply) -> list[str]:
    return [o.title for o in reply.options]


def test_a_language_name_chooses_it_and_the_greeting_never_comes_back(matcher: Matcher) -> None:
    talk = Talk(matcher)
    reply = talk.say("Qyol Mam")
    assert talk.state.lang == "mam" and talk.state.step is Step.READY and reply.kind is Kind.LANGUAGE
    for text in ("pasaporte", "ma'n ntiil", "chjonte"):
        reply = talk.say(text)
        assert "No soy una persona" not in reply.text and talk.state.lang == "mam", text
    assert talk.say("pasaporte").topic == "pasaporte-requisitos"


@pytest.mark.parametrize("text, lang", [("uno", "es"), ("el 2", "quc"), ("opcion 3", "kek"), ("la 4", "mam"), ("#1", "es")])
def test_numbers_in_words_choose_the_language(matcher: Matcher, text: str, lang: str) -> None:
    talk = Talk(matcher)
    talk.say("hola")
    talk.say(text)
    assert talk.state.lang == lang and talk.state.step is Step.READY


def test_a_second_message_that_is_no_choice_is_answered_with_a_word_on_how_to_change(matcher: Matcher) -> None:
    talk = Talk(matcher)
    talk.say("hola")
    reply = talk.say("como saco el pasaporte")
    assert reply.topic == "pasaporte-requisitos" and talk.state.step is Step.READY and talk.state.lang == "es"
    assert "escribí «idioma»" in reply.text and "No soy una persona" not in reply.text
    assert reply.chose_lang == "es"  # the usage log counts the language


def test_a_mayan_question_at_first_contact_is_answered_after_the_choice(matcher: Matcher) -> None:
    talk = Talk(matcher)
    reply = talk.say("la utz awach, kinwaj nupasaporte")
    assert talk.state.pending == "pasaporte-requisitos" and reply.options[0].payload == "lang:quc"
    reply = talk.say("1")
    assert talk.state.lang == "quc" and reply.topic == "pasaporte-requisitos" and reply.chose_lang == "quc"


def test_change_language_asks_once(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    reply = talk.say("cambiar idioma")
    assert reply.text.count("¿En qué idioma querés conversar?") == 1


def test_a_number_means_only_an_option_of_the_last_list(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    reply = talk.say("se me vencio el pasaporte")
    assert [o.key for o in reply.options] == ["1", "2", "3", "0"]
    reply = talk.say("7")
    assert reply.kind is Kind.NUMBER and reply.topic is None
    assert "del 1 al 3" in reply.text and titles(reply)[:3] == titles(talk.say("se me vencio el pasaporte"))[:3]
    assert talk.say("2").topic is not None  # the list shown again still works


def test_menu_pages_end_and_carry_the_way_back(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    pages = [talk.say("menu")]
    while any(o.payload.startswith("menu:") and o.key != "0" for o in pages[-1].options):
        more = next(o for o in pages[-1].options if o.payload.startswith("menu:") and o.key != "0")
        pages.append(talk.say(more.key))
    assert len(pages) == -(-len(matcher.content.menu) // 8)  # every page once, no wrap to the first
    for page in pages[1:]:
        assert page.options[-1].key == "0" and page.options[-1].payload == "menu:0"
    shown = [o.payload for page in pages for o in page.options if o.payload.startswith("topic:")]
    assert shown == [f"topic:{t}" for t in matcher.content.menu]


@pytest.mark.parametrize("text", ["ok", "👍", "si", "no", "🙂🙂🙂", "dale"])
def test_small_words_get_a_short_nudge(matcher: Matcher, text: str) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    before = talk.say("se me vencio el pasaporte")
    reply = talk.say(text)
    assert reply.text.startswith("¿Algo más?") and len(reply.text) < 80
    assert titles(reply) == titles(before)  # the options shown before are still there


def test_dos_is_a_number(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    talk.say("menu")
    assert talk.say("dos").topic == matcher.content.menu[1]


def test_a_question_before_the_language_with_choices_gets_them_after(matcher: Matcher) -> None:
    talk = Talk(matcher)
    talk.say("mi esposo se quiere ir pal norte con un señor que lo lleva por 60 mil y la mitad se paga antes")
    assert talk.state.offer and talk.state.pending is None
    reply = talk.say("1")
    assert reply.kind is Kind.CHOICES and reply.chose_lang == "es" and talk.state.offer == ()
    assert "topic:trafico-de-migrantes" in [o.payload for o in reply.options]
    assert reply.text.startswith("⚠️")  # the smuggling warning first


def test_a_long_question_on_the_same_topic_gets_the_whole_answer(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    first = talk.say("pasaporte vencido", at=1_000_000.0)
    again = talk.say("se me vencio el pasaporte hace dos meses y estoy en guatemala que hago", at=1_000_060.0)
    assert again.topic == first.topic and again.text == first.text


def test_a_follow_up_the_last_answer_does_not_cover_gets_the_short_form_and_a_pointer(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    first = talk.say("requisitos del pasaporte para niños", at=1_000_000.0)
    assert first.topic == "pasaporte-menores"
    again = talk.say("cuanto tarda en salir", at=1_000_060.0)  # unclear alone; the answer has no delay
    assert again.topic == first.topic and again.text.startswith(matcher.content.ui("es", "no_more"))
    assert first.text.splitlines()[0] not in again.text  # the gist, not the answer's heading
    assert len(again.text) < len(first.text) and any(o.payload == f"full:{first.topic}" for o in again.options)


def test_a_repeat_within_minutes_gets_the_short_form(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    first = talk.say("pasaporte vencido", at=1_000_000.0)
    again = talk.say("pasaporte vencido", at=1_000_120.0)
    assert again.topic == first.topic and again.text.startswith("Te lo mandé arriba. Lo principal:")
    assert len(again.text) < len(first.text) / 2 and any(o.payload == f"full:{first.topic}" for o in again.options)
    whole = talk.say(next(o.key for o in again.options if o.payload.startswith("full:")), at=1_000_130.0)
    assert whole.text == first.text
    later = talk.say("pasaporte vencido", at=1_000_000.0 + 3600)
    assert later.text == first.text


@pytest.mark.parametrize(
    "text",
    ["in kinwaj pasaporte", "jas ri kraj che ri pasaporte", "¿La utz awach? kinwaj pasaporte"],
)
def test_kiche_code_switching_reaches_the_passport(matcher: Matcher, text: str) -> None:
    talk = Talk(matcher, State(Step.READY, "quc"))
    reply = talk.say(text)
    assert reply.topic == "pasaporte-requisitos" or "topic:pasaporte-requisitos" in [o.payload for o in reply.options][:1]


def test_a_greeting_with_a_question_is_not_a_greeting(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "quc"))
    reply = talk.say("¿La utz awach? kinwaj kinbe pa estados unidos")
    assert reply.topic != "saludo" and reply.kind in (Kind.CHOICES, Kind.NOT_SURE, Kind.TOPIC)


@pytest.mark.parametrize("lang", ["es", "quc", "kek", "mam"])
def test_danger_comes_first_in_every_language(matcher: Matcher, lang: str) -> None:
    talk = Talk(matcher, State(Step.READY, lang))
    reply = talk.say("auxilio me estan pegando")
    assert reply.kind is Kind.EMERGENCY and reply.text.startswith("⚠️")
    assert "110" in reply.text and "911" in reply.text and "125" in reply.text


def test_danger_at_first_contact_does_not_wait_for_the_language(matcher: Matcher) -> None:
    talk = Talk(matcher)
    reply = talk.say("me quieren matar")
    assert reply.kind is Kind.EMERGENCY and "911" in reply.text and "idioma" in reply.text
    assert talk.state.step is Step.READY


def test_danger_with_a_topic_offers_the_topic_and_the_line_that_fits(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    reply = talk.say("el coyote nos dejo en el monte y mi hijo no puede caminar")
    assert reply.kind is Kind.EMERGENCY and reply.options[0].payload == "topic:trafico-de-migrantes"
    assert "1546" in reply.text  # a child: the Alba-Keneth line
    assert talk.say("1").topic == "trafico-de-migrantes"


def test_choices_say_so_and_put_the_warning_first(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    reply = talk.say("chamba")
    assert reply.kind is Kind.CHOICES
    assert "No estoy seguro" not in reply.text
    warning = next(
        matcher.content.spanish.topics[o.payload[6:]].warning for o in reply.options if o.payload.startswith("topic:") and matcher.content.spanish.topics[o.payload[6:]].warning
    )
    assert reply.text.startswith(warning)  # "No pagués nada por adelantado…" before the choices


def test_follow_ups_are_read_with_the_last_answer(matcher: Matcher) -> None:
    talk = Talk(matcher, State(Step.READY, "es"))
    talk.say("como saco el pasaporte")
    assert talk.say("q papeles nesesito").topic == "pasaporte-requisitos"
    talk.say("como saco el pasaporte")
    assert talk.say("y para niños?").topic == "pasaporte-menores"


# -- alerts ("avisos") ----------------------------------------------------------------------

JUNE_2026 = 1_780_000_000.0  # 2026-05-28 in Guatemala: the fixture's live alert is published, the old one expired


def test_asking_for_alerts_shows_the_consent_and_only_an_explicit_yes_subscribes(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    consent = talk.say("quiero recibir avisos")
    assert consent.action == "consent" and consent.kind is Kind.INTENT and consent.topic == "avisos"
    assert "cifrado" in consent.text and "baja" in consent.text
    assert keys(consent) == [("1", "alerts:yes"), ("0", "menu:0")]
    assert consent.options[0].title == "Sí, quiero avisos"
    assert talk.say("ok").action is None  # "ok" is not a yes
    talk.say("avisos")
    subscribed = talk.say("1")  # the number of the button
    assert subscribed.action == "subscribe" and "Suscripción de prueba lista" in subscribed.text
    pressed = Talk(fixture_matcher, State(Step.READY, "es")).say(payload="alerts:yes")
    assert pressed.action == "subscribe"


@pytest.mark.parametrize("text", ["baja", "stop", "no mas avisos", "no más avisos", "ya no quiero avisos", "cancelar avisos", "no quiero recibir avisos"])
def test_stopping_alerts_is_at_once_in_any_step(fixture_matcher: Matcher, text: str) -> None:
    for state in (State(Step.READY, "es"), State(), State(Step.LANGUAGE, "es")):  # a state forgotten after months, too
        talk = Talk(fixture_matcher, state)
        reply = talk.say(text)
        assert reply.action == "unsubscribe" and reply.topic == "baja", (text, state.step)
        assert "Baja de prueba lista" in reply.text


def test_a_live_alert_shows_under_its_topics_answer_for_everyone(fixture_matcher: Matcher) -> None:
    talk = Talk(fixture_matcher, State(Step.READY, "es"))
    reply = talk.say("pasaporte", at=JUNE_2026)  # type: ignore[arg-type]
    lines = reply.text.splitlines()
    assert "⚠️ Aviso: Venden citas de pasaporte por Facebook: las citas son gratis" in lines
    assert "ya venció" not in reply.text  # the expired alert on the same topic never shows
    assert lines.index("⚠️ Aviso: Venden citas de pasaporte por Facebook: las citas son gratis") < lines.index("¿Algo más?")
    other = talk.say("asilo", at=JUNE_2026)  # type: ignore[arg-type]
    assert "Segundo aviso de prueba sobre el asilo" in other.text and "Venden citas" not in other.text


def test_alerts_show_only_between_published_and_expires(fixture_matcher: Matcher) -> None:
    before = 1_760_000_000.0  # 2025-10-09: the old alert is live, the new one not yet published
    reply = Talk(fixture_matcher, State(Step.READY, "es")).say("pasaporte", at=before)  # type: ignore[arg-type]
    assert "⚠️ Aviso: Un aviso de prueba que ya venció" in reply.text and "Venden citas" not in reply.text
    assert "⚠️" not in Talk(fixture_matcher, State(Step.READY, "es")).say("pasaporte").text  # no time known: no alert


def test_a_draft_alert_translation_waits_like_a_draft_topic(fixture_matcher: Matcher) -> None:
    from bot.content import load_content
    from tests.conftest import FIXTURE_CONTENT

    reply = Talk(fixture_matcher, State(Step.READY, "quc")).say("pasaporte", at=JUNE_2026)  # type: ignore[arg-type]
    assert "⚠️ Aviso: Venden citas de pasaporte" in reply.text  # Spanish until reviewed
    drafts = Matcher(load_content(FIXTURE_CONTENT, serve_drafts={"quc"}))
    reply = Talk(drafts, State(Step.READY, "quc")).say("pasaporte", at=JUNE_2026)  # type: ignore[arg-type]
    assert "⚠️ Aviso: Aviso en K'iche' de prueba" in reply.text


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("avisos", "consent"), ("quiero recibir avisos", "consent"), ("suscribirme", "consent"),
        ("quiero alertas de estafas", "consent"), ("baja", "unsubscribe"), ("stop", "unsubscribe"),
        ("no más avisos", "unsubscribe"), ("ya no quiero avisos", "unsubscribe"), ("no quiero recibir avisos", "unsubscribe"),
        ("cancelar avisos", "unsubscribe"), ("darme de baja", "unsubscribe"),
        ("me dieron de baja del trabajo temporal", None), ("alerta alba keneth", None),
    ],
)  # fmt: skip
def test_the_bundled_content_hears_what_people_say_about_alerts(matcher: Matcher, text: str, action: str | None) -> None:
    assert Talk(matcher, State(Step.READY, "es")).say(text).action == action
