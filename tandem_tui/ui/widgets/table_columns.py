"""Column widths for a ``DataTable`` that is refilled while it is on screen.

A ``DataTable`` measures new rows on its next idle, and a frame drawn before that is
cached under a key the measuring does not change, so header-wide columns stayed on
screen after the widths were known (a loaded CI run's snapshot showed ``compl…`` for
``completed``). Sizing the columns from the cells before adding them closes that gap,
and lets the columns narrow again when the rows do.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable


def size_columns(table: DataTable, rows_cells: Sequence[Sequence[Text]]) -> None:
    """Size ``table``'s columns to their headers and ``rows_cells`` (one cell per column,
    in column order); call it after ``clear()`` and before adding those rows."""
    for index, column in enumerate(table.ordered_columns):
        widest = max((cells[index].cell_len for cells in rows_cells), default=0)
        column.content_width = max(column.label.cell_len, widest)
