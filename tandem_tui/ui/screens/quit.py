"""The quit question: asked by `q` only when quitting would lose something.

Marked runs (a selection built up run by run) and an open dialog (a confirmation with
a reason half typed) are lost by quitting; `q` then asks, naming what would be lost.
`y` or Enter quits, `n` or Escape stays. It dismisses with ``True`` to quit.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitScreen(ModalScreen[bool]):
    """``Quit? 3 marked runs will be unmarked.`` — Quit / Stay."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical {
        width: auto; max-width: 80%; height: auto; padding: 1 2;
        border: round $warning; background: $surface;
    }
    QuitScreen Horizontal { height: auto; margin-top: 1; }
    QuitScreen Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Quit"),
        Binding("n", "answer(False)", "Stay"),
        Binding("escape", "answer(False)", "Stay"),
        Binding("q", "answer(True)", "Quit", show=False),
    ]

    def __init__(self, losses: Sequence[str]) -> None:
        super().__init__(id="quit-question")
        self.losses = list(losses)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Quit the console?", id="quit-title")
            for loss in self.losses:
                yield Label(f"· {loss}")
            with Horizontal():
                yield Button("Quit (y)", id="quit-yes", variant="warning")
                yield Button("Stay (n)", id="quit-no")

    def on_mount(self) -> None:
        self.query_one("#quit-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit-yes")

    def action_answer(self, quit_: bool) -> None:
        self.dismiss(quit_)
