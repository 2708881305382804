"""Text from the runs file, made safe to put on screen.

Details, reasons and metadata come from whatever wrote the runs file. They are data:
never parsed as Rich markup, and never allowed to carry terminal escape sequences or
control characters that could style, move the cursor or spoof other lines. Shared by
the console and the command line's tables (rich only, no textual).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

# CSI / OSC / other ESC sequences, then any remaining C0/C1 control character.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: Characters that show as nothing or reorder what follows: zero-width, joiners, soft
#: hyphen, bidi marks, embeddings, overrides and isolates, BOM, interlinear annotation,
#: line/paragraph separators, and lone surrogates (which cannot even be printed).
#: ``run-a`` and ``run-\u200ba`` must not look the same.
_INVISIBLE = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
#: What ``json.dumps(ensure_ascii=False)`` leaves raw but a terminal would act on.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_INVISIBLE.pattern[1:-1]}]")


def sanitize(value: object) -> str:
    """``value`` as one printable string: escapes become visible, newlines become spaces."""
    text = value if isinstance(value, str) else str(value)
    # Nothing to replace in printable text (escapes, newlines and control characters
    # are all unprintable): the common case costs one C-level scan.
    if text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub(lambda m: repr(m.group(0))[1:-1], text)
    text = text.replace("\n", " ").replace("\t", " ")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """``value`` as JSON for a terminal or a pipe: non-ASCII text stays readable, but C1
    controls, bidi overrides, zero-width characters and lone surrogates are written as
    ``\\uXXXX`` escapes. The JSON means the same (they only occur inside strings)."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def literal(value: object, style: str = "") -> Text:
    """A Rich ``Text`` that shows ``value`` exactly, with no markup interpretation."""
    from rich.text import Text  # here: sanitize() is used where rich is not loaded

    return Text(sanitize(value), style=style, no_wrap=False)
