"""The run finder: "Go to run…" as a small modal of its own.

Textual's command palette scores every hit with a fuzzy matcher and redraws its list
per batch; one hit per run (10k of them) made it drop keystrokes at typing speed. The
finder matches plain, case-insensitive substrings of run ids (ids starting with the
query first, then the rest, each in id order) and shows at most :data:`MAX_SHOWN`, so a
keystroke costs one pass over the ids and a list of fixed size, whatever the host.
It dismisses with the chosen run id, or ``None`` (Escape).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from tandem_tui.safe_text import sanitize

#: The most matches the finder lists (enough to pick from; bounded, whatever the host).
MAX_SHOWN = 50


def find_runs(run_ids: Sequence[str], query: str, limit: int = MAX_SHOWN) -> tuple[list[str], int]:
    """``(shown, total)``: up to ``limit`` ids containing ``query`` (case-insensitive),
    prefix matches first, and how many match in all. ``run_ids`` are in display order."""
    needle = query.strip().lower()
    if not needle:
        return list(run_ids[:limit]), len(run_ids)
    prefix: list[str] = []
    inner: list[str] = []
    for run_id in run_ids:
        position = run_id.lower().find(needle)
        if position == 0:
            prefix.append(run_id)
        elif position > 0:
            inner.append(run_id)
    return (prefix + inner)[:limit], len(prefix) + len(inner)


class RunFinderScreen(ModalScreen[str | None]):
    """Type part of a run id, Enter goes to the highlighted run."""

    DEFAULT_CSS = """
    RunFinderScreen { align: center top; }
    RunFinderScreen > Vertical {
        width: 70%; max-width: 100; height: auto; max-height: 80%;
        margin-top: 2; padding: 0 1; border: round $accent; background: $surface;
    }
    RunFinderScreen OptionList { height: auto; max-height: 20; border: none; }
    RunFinderScreen #finder-count { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    def __init__(self, run_ids: Sequence[str], query: str = "") -> None:
        super().__init__(id="run-finder")
        self.run_ids = list(run_ids)
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content.styled("Go to run", "bold"))
            yield Input(value=self.query_text, placeholder="part of a run id", id="finder-query")
            yield OptionList(id="finder-hits")
            yield Label("", id="finder-count")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._show(self.query_text)

    @on(Input.Changed, "#finder-query")
    def _changed(self, event: Input.Changed) -> None:
        self._show(event.value)

    def _show(self, query: str) -> None:
        shown, total = find_runs(self.run_ids, query)
        hits = self.query_one(OptionList)
        hits.clear_options()
        hits.add_options([Option(Content(sanitize(run_id)), id=run_id) for run_id in shown])
        if shown:
            hits.highlighted = 0
        more = f" (first {len(shown)})" if total > len(shown) else ""
        self.query_one("#finder-count", Label).update(f"{total} matching{more}")

    def action_move(self, step: int) -> None:
        hits = self.query_one(OptionList)
        if hits.option_count:
            current = hits.highlighted if hits.highlighted is not None else -step
            hits.highlighted = max(0, min(hits.option_count - 1, current + step))

    @on(Input.Submitted, "#finder-query")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        hits = self.query_one(OptionList)
        if hits.highlighted is not None and hits.option_count:
            self.dismiss(hits.get_option_at_index(hits.highlighted).id)

    @on(OptionList.OptionSelected, "#finder-hits")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
