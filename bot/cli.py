"""The `pregunta` command: thin wrappers over the library, errors as one line.

A `PreguntaError` becomes one line on stderr and exit code 1 (2 for settings), never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from bot import content_status, logs
from bot.channels.terminal import run_chat
from bot.content import Content, load_content
from bot.conversation import Conversations, MemoryStates
from bot.errors import ContentError, PreguntaError, SettingsError
from bot.matcher import Matcher
from bot.privacy import pseudonym_key
from bot.report.data import Labels
from bot.report.write import write_report
from bot.rollup import PurgeResult, purge
from bot.server import run
from bot.settings import Settings, load_settings
from bot.storage import describe, exists, open_storage
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

    content = commands.add_parser("content", help="Check the content files.", description="Check the content files.")
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
    key = pseudonym_key(settings)
    usage = UsageLog(settings.pregunta_db)
    conversations = Conversations(Matcher(content), MemoryStates(), pseudonym_key=key, usage=usage)
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
        record = {
            "text": text,
            "lang": args.lang,
            "id": found.id,
            "score": found.score,
            "candidates": [[cid, score] for cid, score in found.candidates],
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return 0


def _content_check(args: argparse.Namespace, settings: Settings) -> int:
    content = _content(args, settings)
    for code, pack in content.languages.items():
        print(f"{pack.name_es} ({code}): {len(pack.topics)} temas, {len(pack.intents)} intenciones")
    print(f"contenido correcto: {content.root} (versión {content.version}, {content.load_seconds * 1000:.0f} ms)")
    return 0


def _content_status(args: argparse.Namespace, settings: Settings) -> int:
    status = content_status.build(_content(args, settings), args.as_of)
    if args.csv == "-":
        content_status.write_csv(status, sys.stdout)
        return 0
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as stream:
            content_status.write_csv(status, stream)
    sys.stdout.write(content_status.table(status))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
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
    if not exists(target):
        print(f"nada que purgar: {describe(target)} no existe")
        return 0
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
    if getattr(args, "workers", None):
        settings = settings.model_copy(update={"pregunta_workers": args.workers})
    _logging(settings)
    if not (settings.telegram_enabled or settings.whatsapp_enabled):
        logging.getLogger("bot").warning("no channel configured: set TELEGRAM_BOT_TOKEN or WHATSAPP_TOKEN")
    try:
        run(settings)  # on uvloop where installed
    except KeyboardInterrupt:
        pass
    return 0


def _logging(settings: Settings) -> None:
    """Every record, whichever library made it, goes through the privacy filter (`bot.logs`)."""
    logs.setup(settings.pregunta_log_level, libraries=settings.pregunta_log_libraries)
