"""The `pregunta` command as people run it: as a subprocess, through stdin and stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_CONTENT, ROOT


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True, timeout=60,
        env=full_env, cwd=cwd or ROOT,
    )


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    return {"PREGUNTA_DB": str(tmp_path / "data" / "pregunta.sqlite3")}


def test_chat_through_stdin(data_env: dict[str, str]) -> None:
    done = run("chat", stdin="hola\n1\nse me vencio el pasaporte\n0\nadios\n", env=data_env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "¿En qué idioma querés conversar?" in out
    assert "1 Español" in out
    assert "pasaporte" in out.lower()
    assert "¿Algo más?" in out and "0 Menú" in out
    assert "*" not in out  # bold markers are for the apps


def test_chat_with_lang_and_fixture_content(data_env: dict[str, str]) -> None:
    done = run("chat", "--lang", "es", "--content", str(FIXTURE_CONTENT), stdin="tramite\n", env=data_env)
    assert done.returncode == 0, done.stderr
    assert "Listo. Escribí tu pregunta:" in done.stdout
    assert "Tu pregunta puede ser de uno de estos temas:" in done.stdout  # choices, not "I did not understand"


def test_chat_hostile_stdin(data_env: dict[str, str]) -> None:
    done = run("chat", "--lang", "es", stdin="\n\x00\x1b[2J\n" + "x" * 20_000 + "\n😂\n\u202e\n", env=data_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("No pude leer tu mensaje.") >= 1


def test_piped_chat_is_never_rate_limited_and_reads_as_a_conversation(data_env: dict[str, str]) -> None:
    """Staff pipe whole test conversations: 40 lines at once get 40 replies, each after its line."""
    questions = ["se me vencio el pasaporte", "como pido asilo en guatemala", "como saco mi pasaporte", "menu"]
    lines = ["hola", "1"] + [questions[i % len(questions)] for i in range(38)]
    done = run("chat", "--content", str(FIXTURE_CONTENT), stdin="\n".join(lines) + "\n", env=data_env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert [line for line in out if line.startswith("> ")] == [f"> {line}" for line in lines]
    assert "Más despacio." not in done.stdout  # the fixture's slow_down text: the flood guard never speaks
    # every echo is followed by its reply, up to the last one
    blocks = done.stdout.split("\n> ")[1:]
    assert len(blocks) == 39
    for block, line in zip(blocks, lines[1:], strict=True):
        assert block.startswith(line + "\n") and len(block.strip().splitlines()) >= 2, block
    assert blocks[2].startswith("como pido asilo en guatemala\nRespuesta de prueba sobre el asilo.")
    # a whole question asked again gets the whole answer again (a few words again: the short form)
    assert blocks[-1].startswith("como pido asilo en guatemala\nRespuesta de prueba sobre el asilo.")
    assert done.stdout.count("Respuesta de prueba sobre el pasaporte vencido.") == 10


def test_piped_chat_echo_is_safe_to_print(data_env: dict[str, str]) -> None:
    done = run("chat", "--lang", "es", "--content", str(FIXTURE_CONTENT), stdin="hola\x1b[2J\u202e\n" + "x" * 1000 + "\n", env=data_env)
    assert done.returncode == 0, done.stderr
    echoes = [line for line in done.stdout.splitlines() if line.startswith("> ")]
    assert echoes == ["> hola�[2J�", "> " + "x" * 300 + "…"]
    assert "\x1b" not in done.stdout


def test_match_json_lines() -> None:
    done = run("match", "--lang", "quc", stdin="pasaporte\nreceta de pepian\n\n")
    assert done.returncode == 0 and done.stderr == ""
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["pasaporte-requisitos", None, None]
    assert set(lines[0]) == {"text", "lang", "id", "offered", "verdict", "score", "candidates"}
    assert lines[0]["offered"] == [] and lines[0]["verdict"] == "answer"
    assert lines[0]["lang"] == "quc" and lines[0]["candidates"][0][0] == "pasaporte-requisitos"


def test_content_check_ok() -> None:
    done = run("content", "check")
    assert done.returncode == 0, done.stderr
    assert "contenido correcto" in done.stdout


def test_content_check_reports_every_problem(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, target)
    topic = target / "es/topics/asilo-como-solicitar.yaml"
    topic.write_text(topic.read_text().replace("title: Pedir asilo", "title: " + "y" * 30).replace("source:", "fuente:"))
    done = run("content", "check", "--content", str(target))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert f"{topic}:2 title: demasiado largo: máximo 24 caracteres" in lines
    assert f"{topic}:7 fuente: campo desconocido (¿está bien escrito?)" in lines
    assert "Traceback" not in done.stderr


def test_content_check_warnings_alone_exit_0(tmp_path: Path) -> None:
    # the fixture shares "tramite" between two topics: a warning, and the content still serves
    done = run("content", "check", "--content", str(FIXTURE_CONTENT))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "Avisos (el bot funciona igual, pero revisalos):"
    assert "«tramite» es palabra clave de 2 temas" in out[1] and "recibirá dos opciones" in out[1]
    assert "contenido correcto" in done.stdout
    assert out[-1] == "1 aviso(s): no impiden que el bot funcione (código de salida 0)"


def test_content_check_errors_then_warnings_exit_1(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, target)
    topic = target / "es/topics/asilo-como-solicitar.yaml"
    topic.write_text(topic.read_text().replace("title: Pedir asilo", "title: " + "y" * 30).replace("refugio,", "refugio - refugiado,"))
    done = run("content", "check", "--content", str(target))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{topic}:2 title: demasiado largo: máximo 24 caracteres",
        "pregunta: 1 problema(s) en el contenido y 1 aviso(s); el bot no carga este contenido hasta que los arreglés",
    ]
    assert f"{topic}:3 keywords[1]: «refugio - refugiado» parece dos elementos" in done.stdout
    assert "contenido correcto" not in done.stdout


def test_bad_setting_is_one_line_and_exit_2() -> None:
    done = run("content", "check", env={"PREGUNTA_PORT": "not-a-port"})
    assert done.returncode == 2
    assert done.stderr.strip().startswith("pregunta: setting PREGUNTA_PORT")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("where", ["file", "setting"])
def test_a_short_pseudonym_key_stops_the_start_in_one_line(where: str, tmp_path: Path) -> None:
    db = tmp_path / "data" / "pregunta.sqlite3"
    env = {"PREGUNTA_DB": str(db)}
    if where == "file":  # what a full disk at first start used to leave behind
        db.parent.mkdir()
        (db.parent / "pseudonym.key").write_bytes(b"")
    else:
        env["PREGUNTA_PSEUDONYM_KEY"] = "too-short"
    done = run("chat", "--lang", "es", stdin="hola\n", env=env)
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "at least 32" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not db.exists()  # nothing was logged under a guessable pseudonym


def test_every_command_has_help() -> None:
    from bot.cli import _parser

    parser = _parser()
    pending = [parser]
    seen = 0
    while pending:
        current = pending.pop()
        for action in current._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    assert sub.description, f"command {name!r} has no help"
                    pending.append(sub)
                    seen += 1
    assert seen >= 4


# -- settings that cannot work: one line, exit 2 -----------------------------------------------


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder nobody can create files in: permissions for a user; for root (who ignores
    them) a sysfs folder, where the kernel refuses new files to everyone."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    return Path("/sys/kernel")


def _unusable_db(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """(PREGUNTA_DB, words the one line must contain)."""
    if kind == "folder":
        (tmp_path / "data").mkdir()
        return tmp_path / "data", "is a folder"
    if kind == "under-a-file":
        (tmp_path / "data").write_text("not a folder")
        return tmp_path / "data" / "pregunta.sqlite3", "is a file, not a folder"
    return _read_only_folder(tmp_path) / "pregunta.sqlite3", "cannot write in"


COMMANDS = {  # what each command needs to run long enough to touch the database
    "chat": (["chat", "--lang", "es"], "hola\n"),
    "serve": (["serve"], ""),
    "report": (["report", "--out", "report.html"], ""),
}


# The report only reads: a database missing from a read-only folder is its own message (exit 1).
UNUSABLE = [(c, k) for c in sorted(COMMANDS) for k in ("folder", "under-a-file", "read-only") if (c, k) != ("report", "read-only")]


@pytest.mark.parametrize(("command", "kind"), UNUSABLE)
def test_an_unusable_database_path_is_one_line_and_exit_2(command: str, kind: str, tmp_path: Path) -> None:
    db, words = _unusable_db(kind, tmp_path)
    args, stdin = COMMANDS[command]
    done = run(*args, stdin=stdin, env={"PREGUNTA_DB": str(db), "PREGUNTA_PORT": "0", "PREGUNTA_ADMIN_PORT": "0"}, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("pregunta: PREGUNTA_DB") and words in lines[0], lines
    assert done.stdout == ""


SETTINGS_ERRORS = [  # (environment, command, the setting the line names, words it must contain)
    ({"WHATSAPP_TOKEN": "EAAG-test"}, "serve", "WHATSAPP_PHONE_NUMBER_ID", "Phone number ID"),
    ({"WHATSAPP_PHONE_NUMBER_ID": "106540352242922"}, "serve", "WHATSAPP_TOKEN", "access token"),
    ({"WHATSAPP_TOKEN": "EAAG-test", "WHATSAPP_PHONE_NUMBER_ID": "+502 5555 1234"}, "serve", "WHATSAPP_PHONE_NUMBER_ID", "phone number"),
    ({"WHATSAPP_TOKEN": "EAAG-test", "WHATSAPP_PHONE_NUMBER_ID": "5555-1234"}, "serve", "WHATSAPP_PHONE_NUMBER_ID", "phone number"),
    ({"WHATSAPP_TOKEN": "EAAG-test", "WHATSAPP_PHONE_NUMBER_ID": "50255551234"}, "serve", "WHATSAPP_PHONE_NUMBER_ID", "API Setup"),
    ({"PREGUNTA_SERVE_DRAFTS": "kichee"}, "serve", "PREGUNTA_SERVE_DRAFTS", "quc (K'iche'), kek (Q'eqchi'), mam (Mam)"),
    ({"PREGUNTA_SERVE_DRAFTS": "quc,es"}, "chat", "PREGUNTA_SERVE_DRAFTS", "quc (K'iche')"),
    ({"PREGUNTA_PORT": "8090", "PREGUNTA_ADMIN_PORT": "8090"}, "serve", "PREGUNTA_ADMIN_PORT", "port of their own"),
    ({"PREGUNTA_CLIENT_TIMEOUT": "0"}, "serve", "PREGUNTA_CLIENT_TIMEOUT", "greater than 0"),
]


@pytest.mark.parametrize(("env", "command", "setting", "words"), SETTINGS_ERRORS)
def test_a_setting_that_cannot_work_is_named_in_one_line(env: dict[str, str], command: str, setting: str, words: str, data_env: dict[str, str]) -> None:
    clean = {"TELEGRAM_BOT_TOKEN": "", "WHATSAPP_TOKEN": "", "WHATSAPP_PHONE_NUMBER_ID": "", **data_env, **env}
    done = run(command, stdin="hola\n", env=clean)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and setting in lines[0] and words in lines[0], lines


@pytest.mark.parametrize("drafts", ["quc", "kiche", "K'iche'", "quiché", "kek, kiche"])
def test_serve_drafts_takes_codes_and_the_names_mapped_to_them(drafts: str, data_env: dict[str, str]) -> None:
    args = ("chat", "--lang", "quc", "--content", str(FIXTURE_CONTENT))
    done = run(*args, stdin="pasaporte\n", env={**data_env, "PREGUNTA_SERVE_DRAFTS": drafts})
    assert done.returncode == 0, done.stderr
    assert "(borrador)" in done.stdout and "Borrador en K'iche' de prueba." in done.stdout
    unset = run(*args, stdin="pasaporte\n", env=data_env)
    assert "Borrador en K'iche' de prueba." not in unset.stdout
