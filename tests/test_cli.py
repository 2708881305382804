"""The command line imports only what the chosen command needs."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from tandem_tui import cli

HEAVY = ("textual", "rich", "pydantic", "watchfiles")


def modules_loaded_by(argv: list[str]) -> set[str]:
    """Every module running ``main(argv)`` has loaded, in a fresh process."""
    code = (
        "import sys\n"
        "from tandem_tui.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split("\n")[-2].split())


def modules_imported_by(argv: list[str], extra: tuple[str, ...] = ()) -> set[str]:
    """Top-level packages among HEAVY (and ``extra``) that running ``main(argv)`` imports,
    in a fresh process."""
    return {name.split(".")[0] for name in modules_loaded_by(argv)} & set(HEAVY + extra)


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_textual_rich_pydantic_or_watchfiles(argv: list[str]) -> None:
    assert modules_imported_by(argv) == set()


def test_a_command_usage_error_imports_no_command_module() -> None:
    assert modules_imported_by(["no-such-command"]) == set()


def test_status_help_does_not_import_the_console() -> None:
    assert "textual" not in modules_imported_by(["status", "--help"])


def test_a_sub_command_help_reaches_the_command_s_own_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["status", "-h"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out


def _help_lines(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda command: command.name)
def test_each_table_help_line_is_the_one_its_module_registers(command: cli.Command) -> None:
    assert _help_lines(cli.build_parser(command.name))[command.name] == command.help


@pytest.mark.parametrize("module", cli.COMMAND_MODULES)
def test_every_name_a_module_registers_is_in_the_table(module: str) -> None:
    first = next(command.name for command in cli.COMMANDS if command.module == module)
    stand_ins = set(_help_lines(cli.build_parser()))
    assert set(_help_lines(cli.build_parser(first))) == stand_ins


def test_the_top_level_help_lists_every_command_in_table_order(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    positions = [out.index(f"    {command.name} ") for command in cli.COMMANDS]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--json"],
        ["history", "run-rn-0142", "--json"],
        ["pause", "run-rn-0142", "--reason", "x", "--actor", "op"],
    ],
    ids=["status --json", "history --json", "pause into a pipe"],
)
def test_json_output_and_piped_actions_load_no_rich_or_textual(argv: list[str], runs_file) -> None:
    assert modules_imported_by([*argv, "--runs-file", str(runs_file)]) & {"rich", "textual"} == set()


def test_no_engine_listening_is_found_without_loading_httpx(runs_file, monkeypatch) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: a connect is refused
        monkeypatch.setenv("TANDEM_ENGINE_URL", f"http://127.0.0.1:{port}")
        loaded = modules_imported_by(["status", "--json", "--runs-file", str(runs_file)], extra=("httpx",))
    assert "httpx" not in loaded


def loaded_among(argv: list[str], names: set[str]) -> set[str]:
    """Which of the modules ``names`` running ``main(argv)`` has loaded, in a fresh process."""
    return modules_loaded_by(argv) & names


def test_status_json_loads_neither_the_action_rules_nor_the_demo_s_process_tools(runs_file) -> None:
    unused = {"tandem_tui.domain.actions", "tandem_tui.source.file.audit", "sqlite3", "subprocess"}
    assert loaded_among(["status", "--json", "--runs-file", str(runs_file)], unused) == set()


def test_a_piped_action_loads_neither_the_figures_nor_the_demo_s_process_tools(runs_file) -> None:
    unused = {"tandem_tui.present", "tandem_tui.domain.view", "tandem_tui.commands.output", "sqlite3", "subprocess"}
    argv = ["pause", "run-rn-0142", "--reason", "x", "--actor", "op", "--runs-file", str(runs_file)]
    assert loaded_among(argv, unused) == set()
