"""Text from the runs file, made safe to put on screen.

Details, reasons and metadata come from whatever wrote the runs file. They are data:
never parsed as Rich markup, and never allowed to carry terminal escape sequences or
control characters that could style, move the cursor or spoof other lines. Shared by
the console and the command line's tables (rich only, no textual).
"""

from __future__ import annotations

import re

from rich.text import Text

# CSI / OSC / other ESC sequences, then any remaining C0/C1 control character.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize(value: object) -> str:
    """``value`` as one printable string: escapes become visible, newlines become spaces."""
    text = value if isinstance(value, str) else str(value)
    # Nothing to replace in printable text (escapes, newlines and control characters
    # are all unprintable): the common case costs one C-level scan.
    if text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub(lambda m: repr(m.group(0))[1:-1], text)
    text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def literal(value: object, style: str = "") -> Text:
    """A Rich ``Text`` that shows ``value`` exactly, with no markup interpretation."""
    return Text(sanitize(value), style=style, no_wrap=False)
