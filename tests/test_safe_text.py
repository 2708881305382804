"""Text from the runs file renders literally."""

from tandem_tui.safe_text import literal, sanitize


def test_rich_markup_is_kept_as_characters():
    assert literal("[bold red]boom[/]").plain == "[bold red]boom[/]"
    assert literal("[bold red]boom[/]").spans == []


def test_ansi_escapes_become_visible_text():
    cleaned = sanitize("ok\x1b[31mred\x1b[0m\x1b]0;title\x07")
    assert "\x1b" not in cleaned and "\x07" not in cleaned
    assert cleaned.startswith("ok\\x1b[31mred")


def test_control_characters_and_newlines_cannot_break_lines():
    assert sanitize("a\nb\rc\x00d") == "a b\\x0dc\\x00d"
