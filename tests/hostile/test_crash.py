"""An unexpected exception in a command: one line naming a log file with the traceback,
exit code 70 (never 0 or 1, which mean ok and refused)."""

import tandem_tui.commands.status as status
from tandem_tui.cli import main as cli


def test_an_unexpected_error_is_one_line_a_log_file_and_exit_70(runs_file, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def broken(args):
        raise ZeroDivisionError("a bug in the command")

    monkeypatch.setattr(status, "run", broken)

    assert cli(["status", "--runs-file", str(runs_file)]) == 70

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error (ZeroDivisionError: a bug in the command)" in err
    (log,) = (tmp_path / "state" / "tandem-tui").iterdir()
    assert str(log) in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "def broken" not in err
    assert "ZeroDivisionError: a bug in the command" in text
