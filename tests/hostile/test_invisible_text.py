"""Ids and text that look like something else: invisible and bidi characters are shown
escaped wherever text from a run is shown, and JSON output carries them as escapes."""

import json

import pytest

from tandem_tui.safe_text import json_text, sanitize


@pytest.mark.parametrize(
    "char", ["\u200b", "\u200d", "\u202e", "\u2066", "\u2069", "\ufeff", "\u00ad", "\u061c", "\u2028"]
)
def test_an_invisible_or_reordering_character_is_shown_escaped(char):
    shown = sanitize(f"run-{char}a")
    assert shown == f"run-\\u{ord(char):04x}a"
    assert sanitize("run-a") != shown


def test_a_lone_surrogate_is_shown_escaped_and_can_be_printed(capsys):
    shown = sanitize("run-\ud800")
    print(shown)
    assert capsys.readouterr().out == "run-\\ud800\n"


def test_json_output_escapes_c1_controls_and_bidi_overrides_but_keeps_other_text():
    value = {"run_id": "run-\u009b31m-\u202eevil", "detail": "naïve — ok ✓"}
    text = json_text(value)
    assert "\u009b" not in text and "\u202e" not in text
    assert "\\u009b" in text and "\\u202e" in text
    assert "naïve — ok ✓" in text
    assert json.loads(text) == value
