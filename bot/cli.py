"""The `pregunta` command: thin wrappers over the library, errors as one line.

A `PreguntaError` becomes one line on stderr and exit code 1 (2 for settings), never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from bot import content_status, logs, translations
from bot.alerts import alert_state, delivery_counts, find_alert, plan, send_alert
from bot.channels.broadcast import Courier, TelegramCourier, WhatsAppCourier
from bot.channels.http import SharedSession
from bot.channels.terminal import NoFloodGuard, run_chat
from bot.clock import today
from bot.content import Content, check_content, load_content
from bot.content_lint import content_warnings
from bot.conversation import Conversations, MemoryStates
from bot.errors import ContentError, PreguntaError, SettingsError
from bot.matcher import Matcher
from bot.privacy import pseudonym_key
from bot.report.data import Labels
from bot.report.write import write_report
from bot.rollup import PurgeResult, purge
from bot.server import run
from bot.settings import Settings, check_database_path, load_settings
from bot.storage import describe, exists, open_storage
from bot.subscriptions import Subscriptions, subscriber_counts, subscribers_key
from bot.usage import UsageLog

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        settings = load_settings()
        result: int = args.run(args, settings)
        return result
    except ContentError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"pregunta: {len(exc.issues)} problema(s) en el contenido", file=sys.stderr)
        return 1
    except SettingsError as exc:
        print(f"pregunta: {exc}", file=sys.stderr)
        return 2
    except PreguntaError as exc:
        print(f"pregunta: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pregunta chat | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, sqlite3.Error) as exc:  # a disk or database refusal the checks did not foresee
        print(f"pregunta: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pregunta", description="Preguntá: información para personas migrantes.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace, Settings], int], help: str, parent: argparse._SubParsersAction = commands) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    chat = command("chat", _chat, "Chat with the bot in the terminal (reads stdin until EOF).")
    chat.add_argument("--lang", help="language code to start in (es, quc, kek, mam)")
    _content_option(chat)

    match = command("match", _match, "Match one query per line from stdin; print one JSON object per line.")
    match.add_argument("--lang", default="es", help="the language the user chose (default es)")
    _content_option(match)

    serve = command("serve", _serve, "Run the bot: every channel whose settings are present, and the webhook server.")
    serve.add_argument(
        "--workers", type=_positive, help="server processes sharing the port and the database (default PREGUNTA_WORKERS, 1)"
    )

    report = command(
        "report",
        _report,
        "Write the usage report for the communications unit: one self-contained HTML file in Spanish.",
    )
    report.add_argument("--since", type=_date, help="first day, YYYY-MM-DD (default: the first day with data)")
    report.add_argument("--until", type=_date, help="last day, YYYY-MM-DD (default: the last day with data)")
    report.add_argument("--out", type=Path, default=Path("report.html"), help="the HTML file to write (default report.html)")
    report.add_argument("--csv", type=Path, metavar="DIR", help="also write every table as a CSV file in DIR")
    report.add_argument("--k", type=_positive, help="show a not-sure question only when this many people wrote it (default PREGUNTA_REPORT_K)")
    _content_option(report)

    purge_ = command(
        "purge",
        _purge,
        "Roll usage events older than the retention into daily counts, then delete them (serve does it daily).",
    )
    purge_.add_argument("--days", type=_positive, help="retention in days (default PREGUNTA_RETENTION_DAYS)")

    alerts = commands.add_parser(
        "alerts",
        help="Scam alerts («avisos»): list them, send one to its subscribers.",
        description="Scam alerts («avisos»): list them, send one to its subscribers.",
    )
    alert_commands = alerts.add_subparsers(title="commands", metavar="COMMAND")
    listed = command("list", _alerts_list, "Every alert, live or expired, what each send did, and the subscribers per language and channel.", alert_commands)
    _content_option(listed)
    send = command(
        "send",
        _alerts_send,
        "Send an alert to every subscriber not sent yet, at the platform's pace (run it again to resume: nobody gets it twice).",
        alert_commands,
    )
    send.add_argument("alert", metavar="ID", help="the alert's id (content/es/alerts/ID.yaml)")
    send.add_argument("--dry-run", action="store_true", help="show who would get it and what each language reads; send nothing")
    send.add_argument("--rate", type=_positive, help="messages per second per platform (default: Telegram 30, WhatsApp 80)")
    _content_option(send)
    command("rekey", _alerts_rekey, "Encrypt every subscription again with the first key of PREGUNTA_SUBSCRIBERS_KEY (key rotation).", alert_commands)

    content = commands.add_parser(
        "content",
        help="Check the content files; their status; the translators' catalogues.",
        description="Check the content files; their status; the translators' catalogues.",
    )
    content_commands = content.add_subparsers(title="commands", metavar="COMMAND")
    check = command("check", _content_check, "Validate every content file; list every problem with file and line.", content_commands)
    _content_option(check)
    status = command(
        "status",
        _content_status,
        "Show each topic's translation per language (missing, draft, reviewed, audio), totals, and entries to re-check.",
        content_commands,
    )
    status.add_argument("--csv", metavar="FILE", help="also write the matrix as CSV to FILE ('-': CSV on stdout instead of the table)")
    status.add_argument("--as-of", type=content_status.iso_day, metavar="YYYY-MM-DD", help="count the six months back from this day (default today)")
    _content_option(status)
    export = command(
        "export",
        _content_export,
        "Write a language's texts as a gettext PO catalogue for translators (Poedit, Weblate).",
        content_commands,
    )
    export.add_argument("--lang", required=True, help="language code: quc, kek, mam")
    export.add_argument("--format", choices=["po"], default="po", help="catalogue format (po)")
    export.add_argument("--out", type=Path, help="the file to write (default pregunta-LANG.po)")
    _content_option(export)
    import_ = command(
        "import",
        _content_import,
        "Write a translated PO catalogue back into the language's YAML files; report changes, stale and failed entries.",
        content_commands,
    )
    import_.add_argument("catalogue", type=Path, metavar="FILE.po", help="the catalogue, as Poedit or Weblate saved it")
    import_.add_argument("--lang", help="language code (default: the catalogue's Language header)")
    import_.add_argument(
        "--reviewed-by",
        metavar="NAME",
        help="the catalogue was reviewed as a whole by NAME: every entry that is not fuzzy counts as reviewed",
    )
    _content_option(import_)
    return parser


def _content_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", type=Path, help="content folder (default: PREGUNTA_CONTENT or ./content)")


def _content(args: argparse.Namespace, settings: Settings) -> Content:
    root = args.content or settings.pregunta_content
    return load_content(root, serve_drafts=set(settings.pregunta_serve_drafts))


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    content = _content(args, settings)
    if args.lang and args.lang not in content.languages:
        raise PreguntaError(f"unknown language {args.lang!r}; known: {', '.join(content.languages)}")
    check_database_path(settings.pregunta_db)
    key = pseudonym_key(settings)
    usage = UsageLog(settings.pregunta_db)
    conversations = Conversations(Matcher(content), MemoryStates(), pseudonym_key=key, usage=usage, flood=NoFloodGuard())
    asyncio.run(_chat_logged(conversations, usage, args.lang))
    return 0


async def _chat_logged(conversations: Conversations, usage: UsageLog, lang: str | None) -> None:
    """The terminal chat logs its turns like any channel; EOF or Ctrl-C flushes the log."""
    await usage.start()
    try:
        await run_chat(conversations, sys.stdin, sys.stdout, lang=lang)
    finally:
        await usage.close()


def _match(args: argparse.Namespace, settings: Settings) -> int:
    content = _content(args, settings)
    matcher = Matcher(content)
    out = sys.stdout
    for line in sys.stdin:
        text = line.rstrip("\n")
        found = matcher.match(text, args.lang)
        direct = found.verdict in ("answer", "emergency")
        record = {
            "text": text,
            "lang": args.lang,
            "id": found.id if direct else None,
            "offered": list(found.offered) if found.verdict in ("choices", "emergency") else [],
            "verdict": found.verdict,
            "score": found.score,
            "candidates": [[cid, score] for cid, score in found.candidates],
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return 0


def _content_check(args: argparse.Namespace, settings: Settings) -> int:
    """Errors first (stderr, exit 1), then warnings (stdout; alone they exit 0)."""
    root = args.content or settings.pregunta_content
    content, errors = check_content(root, serve_drafts=set(settings.pregunta_serve_drafts))
    for issue in errors:
        print(issue, file=sys.stderr)
    sys.stderr.flush()
    warnings = content_warnings(content, partial=bool(errors))
    if warnings:
        print("Avisos (el bot funciona igual, pero revisalos):")
        for issue in warnings:
            print(f"  {issue}")
    if errors:
        more = f" y {len(warnings)} aviso(s)" if warnings else ""
        print(f"pregunta: {len(errors)} problema(s) en el contenido{more}; el bot no carga este contenido hasta que los arreglés", file=sys.stderr)
        if not warnings:
            print("(los avisos de palabras clave compartidas se calculan cuando no hay errores)", file=sys.stderr)
        return 1
    for code, pack in content.languages.items():
        print(f"{pack.name_es} ({code}): {len(pack.topics)} temas, {len(pack.intents)} intenciones")
    print(f"contenido correcto: {content.root} (versión {content.version}, {content.load_seconds * 1000:.0f} ms)")
    if warnings:
        print(f"{len(warnings)} aviso(s): no impiden que el bot funcione (código de salida 0)")
    return 0


def _content_status(args: argparse.Namespace, settings: Settings) -> int:
    """The matrix; on broken content, its problems (as `content check` lists them) and exit 1."""
    try:
        content = _content(args, settings)
    except ContentError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(
            f"pregunta: {len(exc.issues)} problema(s) en el contenido: el estado se muestra cuando el contenido "
            "carga sin errores (el bot tampoco lo usa así). Arreglalos y volvé a correr content status.",
            file=sys.stderr,
        )
        return 1
    status = content_status.build(content, args.as_of)
    if args.csv == "-":
        content_status.write_csv(status, sys.stdout)
        return 0
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as stream:
            content_status.write_csv(status, stream)
    sys.stdout.write(content_status.table(status))
    return 0


def _content_export(args: argparse.Namespace, settings: Settings) -> int:
    content = _content(args, settings)
    catalog = translations.export_catalog(content, args.lang)
    out = args.out or Path(f"pregunta-{args.lang}.po")
    translations.write_catalog(catalog, out)
    entries = [m for m in catalog if m.id]
    done = sum(1 for m in entries if m.string and not m.fuzzy)
    drafts = sum(1 for m in entries if m.string and m.fuzzy)
    print(f"catálogo: {out} ({len(entries)} textos: {done} traducidos, {drafts} borradores, {len(entries) - done - drafts} sin traducir)")
    return 0


def _content_import(args: argparse.Namespace, settings: Settings) -> int:
    """Imports what it can; exit 1 when some entry could not be imported (listed)."""
    content = _content(args, settings)
    report = translations.import_catalog(content, args.catalogue, lang=args.lang, reviewed_by=args.reviewed_by)
    pack = content.languages[report.lang]
    print(f"{args.catalogue} → {pack.folder} ({pack.name}, {report.lang})")
    sections = (
        ("Textos cambiados", report.changed, ""),
        ("Marcas de revisión", report.marked, ""),
        ("Desactualizados", report.stale, ": el español cambió desde que se exportó el catálogo; exportá de nuevo y traducí estos"),
        ("No importados", report.failed, ""),
    )
    for title, lines, note in sections:
        if lines:
            print(f"{title} ({len(lines)}){note}:")
            for line in lines:
                print(f"  {line}")
    print(
        f"{report.unchanged} sin cambios, {report.untranslated} sin traducir"
        + (f", {report.obsolete} obsoletos (#~) ignorados" if report.obsolete else "")
        + "."
    )
    if report.written:
        print("Archivos escritos: " + ", ".join(str(path) for path in report.written))
        print("Revisá los cambios (git diff) y probalos con: pregunta chat --lang " + report.lang)
    return 1 if report.failed else 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    check_database_path(settings.pregunta_db, write=False)
    labels = _labels(args, settings)
    progress = _Progress()
    data = asyncio.run(
        write_report(
            settings.pregunta_db,
            args.out,
            csv_dir=args.csv,
            since=args.since,
            until=args.until,
            retention_days=settings.pregunta_retention_days,
            k=args.k or settings.pregunta_report_k,
            labels=labels,
            progress=progress,
        )
    )
    progress.done()
    if data.empty:
        print(f"pregunta: no hay mensajes registrados en {settings.pregunta_db} para ese período; el informe lo dice.", file=sys.stderr)
    print(f"informe: {args.out}" + (f" (tablas CSV en {args.csv})" if args.csv else ""))
    return 0


def _labels(args: argparse.Namespace, settings: Settings) -> Labels:
    """Topic titles and language names from the content; the report shows ids if it does not load."""
    try:
        content = _content(args, settings)
    except PreguntaError:
        print("pregunta: el contenido no se pudo cargar; el informe muestra los códigos de los temas", file=sys.stderr)
        return Labels()
    return Labels(
        topics={tid: topic.title for tid, topic in content.spanish.topics.items()},
        languages={code: pack.name for code, pack in content.languages.items()},
    )


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    target = settings.pregunta_db
    check_database_path(target, write=False)
    if not exists(target):
        print(f"nada que purgar: {describe(target)} no existe")
        return 0
    check_database_path(target)
    days = args.days or settings.pregunta_retention_days
    result = asyncio.run(_purge_file(target, days))
    print(
        f"{result.events:,} eventos de {result.days} días anteriores al {result.before} pasaron a conteos diarios "
        f"y se borraron; {result.messages} ids de mensajes y {result.states} estados de conversación olvidados."
    )
    return 0


async def _purge_file(target: Path | str, days: int) -> PurgeResult:
    db = await open_storage(target, wait=30.0)
    try:
        return await purge(db, days)
    finally:
        await db.close()


class _Progress:
    """Progress of a long report on stderr: rewritten in place on a terminal, one line each otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._open = False

    def __call__(self, message: str) -> None:
        if self._tty:
            sys.stderr.write(f"\r\033[K{message}")
            self._open = True
        else:
            sys.stderr.write(f"{message}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self._open:
            sys.stderr.write("\n")
            self._open = False


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value!r}")
    return number


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    problem = settings.channel_problem()
    if problem:
        raise SettingsError(problem)
    check_database_path(settings.pregunta_db)
    if getattr(args, "workers", None):
        settings = settings.model_copy(update={"pregunta_workers": args.workers})
    _logging(settings)
    if not (settings.telegram_enabled or settings.whatsapp_enabled):
        logging.getLogger("bot").warning(
            "no channel configured: set TELEGRAM_BOT_TOKEN, or WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID"
        )
    try:
        run(settings)  # on uvloop where installed
    except KeyboardInterrupt:
        pass
    return 0


def _logging(settings: Settings) -> None:
    """Every record, whichever library made it, goes through the privacy filter (`bot.logs`)."""
    logs.setup(settings.pregunta_log_level, libraries=settings.pregunta_log_libraries)


# -- alerts ("avisos") ---------------------------------------------------------------------------

_STATUS_WORDS = {"sent": "enviados", "failed": "fallidos", "unsubscribed": "dados de baja (bloquearon el bot)", "unknown": "sin confirmar"}


def _alerts_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every alert (live or not), what each did, and the subscribers per language and channel."""
    content = _content(args, settings)
    day = today()
    deliveries: list[tuple[str, str, str, str, int]] = []
    counts: dict[tuple[str, str], int] = {}
    check_database_path(settings.pregunta_db, write=False)
    if exists(settings.pregunta_db):
        deliveries, counts = asyncio.run(_alerts_numbers(settings.pregunta_db))
    alerts = sorted(content.spanish.alerts.values(), key=lambda a: (a.published or date.min, a.id), reverse=True)
    print(f"Avisos ({len(alerts)}) en {content.root / 'es' / 'alerts'}:" if alerts else "No hay avisos en content/es/alerts/.")
    for alert in alerts:
        languages = ["es"] + [
            f"{code}{'' if pack.alerts[alert.id].translation == 'reviewed' else ' (borrador)'}"
            for code, pack in content.languages.items()
            if code != "es" and alert.id in pack.alerts
        ]
        print(f"  {alert.id}  [{alert_state(alert, day)}]  {alert.published} → {alert.expires}  idiomas: {', '.join(languages)}")
        print(f"      {alert.title}")
        print(f"      temas: {', '.join(alert.topics)}")
        done: dict[str, int] = defaultdict(int)
        for alert_id, _channel, _lang, status, people in deliveries:
            if alert_id == alert.id:
                done[status] += people
        print("      " + (" · ".join(f"{_STATUS_WORDS[s]} {done[s]:,}" for s in _STATUS_WORDS) if done else "todavía no se mandó"))
    total = sum(counts.values())
    print(f"Suscripciones: {total:,}" + ("" if total else " (nadie se suscribió todavía)"))
    for channel in sorted({c for c, _ in counts}):
        per_lang = "  ".join(f"{lang} {n:,}" for (c, lang), n in sorted(counts.items()) if c == channel)
        print(f"  {channel}: {per_lang}")
    return 0


async def _alerts_numbers(target: Path | str) -> tuple[list[tuple[str, str, str, str, int]], dict[tuple[str, str], int]]:
    db = await open_storage(target, wait=30.0)
    try:
        return await delivery_counts(db), await subscriber_counts(db)
    finally:
        await db.close()


def _alerts_send(args: argparse.Namespace, settings: Settings) -> int:
    content = _content(args, settings)
    find_alert(content, args.alert)
    check_database_path(settings.pregunta_db)
    key = subscribers_key(settings)
    if key is None and not args.dry_run:
        raise SettingsError("PREGUNTA_SUBSCRIBERS_KEY is not set: the subscriptions cannot be read (README, alerts)")
    _logging(settings)
    return asyncio.run(_send(args, settings, content, key))


async def _send(args: argparse.Namespace, settings: Settings, content: Content, key: object) -> int:
    storage = await open_storage(settings.pregunta_db, wait=30.0)
    http = SharedSession()
    couriers: list[Courier] = []
    try:
        planned = await plan(storage, content, args.alert)
        by_channel: dict[str, int] = defaultdict(int)
        for (channel, _), n in planned.to_send.items():
            by_channel[channel] += n
        print(f"Aviso «{args.alert}»: {planned.total:,} por mandar", end="")
        print(" (" + ", ".join(f"{c} {n:,}" for c, n in sorted(by_channel.items())) + ")" if by_channel else "")
        if planned.unconfirmed:
            print(f"  {planned.unconfirmed:,} sin confirmar de un envío que se interrumpió: no se vuelven a mandar")
        if args.dry_run:
            for lang, (title, text) in planned.texts.items():
                people = sum(n for (_, code), n in planned.to_send.items() if code == lang)
                print(f"--- {lang} ({people:,} personas) ---\n⚠️ {title}\n{text.strip()}\n{content.ui(lang, 'alerts_footer')}")
            print("(prueba: no se mandó nada)")
            return 0
        if not planned.total:
            print("Nada que mandar: cada suscripción ya lo recibió.")
            return 0
        couriers = _couriers(settings, by_channel, http, args.rate)
        assert key is not None
        subscriptions = Subscriptions(storage, key)  # type: ignore[arg-type]
        first = await subscriptions.page("", 1, [c.name for c in couriers])
        if first:
            first[0].address(subscriptions.key)  # a wrong key: one line now, before anything is sent
        for courier in couriers:
            await courier.open()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        bar = _Bar(planned.total)
        result = await send_alert(storage, content, args.alert, subscriptions, couriers, progress=bar, stopping=stopping)
        bar.done()
    finally:
        for courier in couriers:
            with contextlib.suppress(Exception):
                await courier.close()
        await storage.close()
    print(" · ".join(f"{words} {result.total(status):,}" for status, words in _STATUS_WORDS.items()))
    if result.aborted:
        print(f"pregunta: envío detenido: {result.aborted}. Lo que falta se manda al correr el mismo comando otra vez.", file=sys.stderr)
        return 1
    if result.interrupted:
        print("pregunta: envío interrumpido; corré el mismo comando para mandar lo que falta (nadie lo recibe dos veces).", file=sys.stderr)
        return 130
    return 0


def _couriers(settings: Settings, by_channel: dict[str, int], http: SharedSession, rate: float | None) -> list[Courier]:
    """A courier per channel with subscribers to reach; a channel without its settings stops everything first."""
    couriers: list[Courier] = []
    if by_channel.get("telegram"):
        if settings.telegram_bot_token is None:
            raise SettingsError(f"{by_channel['telegram']:,} Telegram subscribers to reach but TELEGRAM_BOT_TOKEN is not set")
        couriers.append(TelegramCourier(settings.telegram_bot_token.get_secret_value(), settings.telegram_base_url,
                                        settings.telegram_base_file_url, http=http, rate=rate))  # fmt: skip
    if by_channel.get("whatsapp"):
        if not settings.whatsapp_enabled:
            raise SettingsError(f"{by_channel['whatsapp']:,} WhatsApp subscribers to reach but WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID are not set")
        if settings.whatsapp_alert_template is None:
            raise SettingsError(
                f"{by_channel['whatsapp']:,} WhatsApp subscribers to reach but WHATSAPP_ALERT_TEMPLATE is not set: "
                "WhatsApp only delivers a first message as an approved template (README, alerts)"
            )
        assert settings.whatsapp_token is not None and settings.whatsapp_phone_number_id is not None
        couriers.append(WhatsAppCourier(
            settings.whatsapp_api_base_url, settings.whatsapp_phone_number_id, settings.whatsapp_token.get_secret_value(),
            settings.whatsapp_alert_template, settings.whatsapp_alert_template_lang, http=http, rate=rate,
        ))  # fmt: skip
    return couriers


def _alerts_rekey(args: argparse.Namespace, settings: Settings) -> int:
    key = subscribers_key(settings)
    if key is None:
        raise SettingsError("PREGUNTA_SUBSCRIBERS_KEY is not set: nothing to re-encrypt with")
    check_database_path(settings.pregunta_db)

    async def rekey() -> int:
        storage = await open_storage(settings.pregunta_db, wait=30.0)
        try:
            return await Subscriptions(storage, key).rekey()
        finally:
            await storage.close()

    count = asyncio.run(rekey())
    print(f"{count:,} suscripciones cifradas de nuevo con la primera llave de PREGUNTA_SUBSCRIBERS_KEY; ya podés quitar las demás.")
    return 0


class _Bar:
    """Progress of a send on stderr: a bar rewritten in place on a terminal, a line every 10 % otherwise."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.started = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._shown = -1.0
        self._last = 0

    def __call__(self, done: int) -> None:
        self._last = done
        share = min(1.0, done / self.total)
        now = time.monotonic()
        if self._tty:
            if now - self._shown < 0.2 and done < self.total:
                return
            self._shown = now
        else:
            if int(share * 10) == int(self._shown) and done < self.total:
                return
            self._shown = int(share * 10)
        rate = done / max(0.001, now - self.started)
        line = f"[{'#' * int(share * 30):<30}] {share:4.0%} {done:,} de {self.total:,} · {rate:,.0f}/s"
        sys.stderr.write(f"\r\033[K{line}" if self._tty else f"{line}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self._tty:
            sys.stderr.write("\n")
