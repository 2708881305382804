"""How commands write to the terminal: fixed-width tables of literal text, and a Rich
console for the short summaries.

:func:`table_lines` is what ``tandem-tui runs`` prints for thousands of rows: widths are
computed from the rows shown, every line is cut to the terminal's width, and no line
ends in spaces. Cells must already be literal (``safe_text.sanitize``): this module
measures and pads them, it never interprets them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence

#: Line width for output that goes to a pipe or a file rather than a terminal (grep
#: wants whole lines).
PIPED_WIDTH = 1000
#: Between two columns.
GAP = "  "
ELLIPSIS = "…"


def terminal_width() -> int:
    """``$COLUMNS``, else the terminal's width, else :data:`PIPED_WIDTH` for a pipe."""
    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        return PIPED_WIDTH
    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes (wide characters count two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending in ``…`` when it had to be cut."""
    if cell_width(text) <= width:
        return text
    if width <= 0:
        return ""
    if text.isascii():
        return text[: width - 1] + ELLIPSIS
    from rich.cells import set_cell_size

    return set_cell_size(text, width - 1).rstrip() + ELLIPSIS


def clip(text: str, width: int) -> str:
    """At most ``width`` characters of ``text``, then ``…`` when it had more: enough to
    fill a line ``width`` cells wide (a character takes a cell or more once made literal,
    bar combining marks), cut *before* escaping, measuring and laying out, whose cost
    grows with the text (a 16 MB detail took seconds to measure, minutes to cut)."""
    return text if len(text) <= width else text[:width] + ELLIPSIS


def table_lines(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int,
    max_widths: Mapping[int, int] | None = None,
    right: frozenset[int] = frozenset(),
) -> list[str]:
    """A header line and one line per row, columns two spaces apart.

    Each column is as wide as its widest cell (``max_widths`` caps some, cutting their
    cells with ``…``); ``right`` columns are right-aligned; the last column is not
    padded. Every line is cut to ``width`` cells and has no trailing spaces.
    """
    caps = max_widths or {}
    last = len(headers) - 1
    # Each cell measured once: (text, cells).
    measured = []
    for row in (headers, *rows):
        cells = []
        for index, cell in enumerate(row):
            if index in caps:
                cell = cut(cell, caps[index])
            cells.append((cell, cell_width(cell)))
        measured.append(cells)
    widths = [max(cells[index][1] for cells in measured) for index in range(last)]
    lines = []
    for cells in measured:
        parts = []
        used = 0
        for index in range(last):
            cell, cell_cells = cells[index]
            pad = " " * (widths[index] - cell_cells)
            parts.append(pad + cell if index in right else cell + pad)
            used += widths[index] + len(GAP)
        cell, cell_cells = cells[last]
        parts.append(cell)
        line = GAP.join(parts).rstrip()
        if used + cell_cells > width:
            line = cut(line, width).rstrip()
        lines.append(line)
    return lines


def write_lines(lines: Sequence[str]) -> None:
    """All lines at once (one write for 10k rows)."""
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def output_console():  # noqa: ANN201 - a rich Console, imported only when used
    """A Rich console on stdout for the short summaries; a pipe is not cut to 80 columns."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(file=sys.stdout, highlight=False, width=PIPED_WIDTH if wide else None)
