"""The confirmation dialog shown before an operator action changes a run.

It names every selected run with what the action will do to it (``run-abc  running ->
paused``), lists the runs that will be skipped and why, and asks for a reason. It
dismisses with the reason to record (the action's default when left empty), or ``None``
when cancelled. It decides nothing itself: the previews come from
:func:`tandem_tui.domain.actions.preview`, and its words (the action's label, its
default reason) from the action's entry in :data:`~tandem_tui.domain.actions.ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tandem_tui.domain.actions import ACTIONS, ActionKind, ActionSpec, Refusal, Transition
from tandem_tui.ui.screens.run_detail import STYLES_DIR
from tandem_tui.safe_text import literal
from tandem_tui.ui.widgets.record_fields import theme_style
from tandem_tui.ui.widgets.status_style import status_text

Preview = Transition | Refusal

#: Run ids are padded to this width so the transitions line up.
RUN_ID_WIDTH = 24


def _plural(count: int, noun: str = "run") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def transition_line(transition: Transition, theme: Mapping[str, str]) -> Text:
    """``run-abc   running -> paused`` with both statuses coloured."""
    line = literal(transition.run_id, style="bold")
    line.pad_right(max(1, RUN_ID_WIDTH - line.cell_len))
    line.append("  ")
    if transition.from_status == transition.to_status:
        line.append_text(literal(transition.summary))
        return line
    line.append_text(status_text(transition.from_status, theme))
    line.append(" -> ", style="dim")
    line.append_text(status_text(transition.to_status, theme))
    return line


def refusal_line(refusal: Refusal, theme: Mapping[str, str]) -> Table:
    """``run-xyz   it is completed; only ...``: the run, then why it will be skipped
    (wrapped lines stay in the reason's column)."""
    prefix = f"cannot {refusal.kind.verb} run {refusal.run_id}: "
    why = refusal.message.removeprefix(prefix)
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column("run", width=RUN_ID_WIDTH, overflow="fold")
    table.add_column("why", ratio=1, overflow="fold")
    table.add_row(
        literal(refusal.run_id, style="bold"),
        literal(why, style=theme_style(theme, "foreground-muted")),
    )
    return table


class ConfirmActionScreen(ModalScreen[str | None]):
    """Confirm ``kind`` for the runs in ``previews``; dismisses with the reason or None."""

    CSS_PATH = [STYLES_DIR / "modal.tcss"]

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, kind: ActionKind | str, previews: Sequence[Preview], *, actor: str) -> None:
        super().__init__()
        self.kind = ActionKind(kind)
        self.spec: ActionSpec = ACTIONS[self.kind]
        self.previews = list(previews)
        self.actor = actor
        self.transitions = [p for p in self.previews if isinstance(p, Transition)]
        self.refusals = [p for p in self.previews if isinstance(p, Refusal)]

    @property
    def default_reason(self) -> str:
        # The server's default can depend on the status (a recover from paused has its
        # own words); shown only when every confirmed run would record the same one.
        defaults = {t.default_reason for t in self.transitions if t.default_reason}
        return defaults.pop() if len(defaults) == 1 else self.spec.default_reason

    @property
    def can_confirm(self) -> bool:
        return bool(self.transitions)

    def compose(self) -> ComposeResult:
        theme = self.app.theme_variables
        verb, label = self.kind.verb, self.spec.label
        with Vertical(id="confirm-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Confirm {verb}"
            if self.can_confirm:
                heading = Text(f"{label} {_plural(len(self.transitions))}")
                heading.append(" as ", style="dim")
                heading.append_text(literal(self.actor))
                if self.refusals:
                    heading.append(f"  ·  {len(self.refusals)} skipped", style="dim")
            else:
                heading = Text(f"Nothing to {verb}: every selected run would be skipped.")
            yield Label(heading, id="confirm-heading")
            with VerticalScroll(id="confirm-previews"):
                for transition in self.transitions:
                    yield Static(transition_line(transition, theme), classes="preview-line transition")
                if self.refusals:
                    yield Label(
                        f"Skipped, {_plural(len(self.refusals))}:", id="confirm-refused-heading"
                    )
                    for refusal in self.refusals:
                        yield Static(refusal_line(refusal, theme), classes="preview-line refusal")
            yield Label(Text("Reason", style="dim"))
            yield Input(
                placeholder=self.default_reason,
                id="confirm-reason",
                disabled=not self.can_confirm,
            )
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="confirm-cancel", variant="default")
                yield Button(
                    f"{label} {_plural(len(self.transitions))}",
                    id="confirm-ok",
                    variant="warning",
                    disabled=not self.can_confirm,
                )

    def on_mount(self) -> None:
        if self.can_confirm:
            self.query_one("#confirm-reason", Input).focus()
        else:
            self.query_one("#confirm-cancel", Button).focus()

    def reason(self) -> str:
        typed = self.query_one("#confirm-reason", Input).value.strip()
        return typed or self.default_reason

    def action_confirm(self) -> None:
        if self.can_confirm:
            self.dismiss(self.reason())

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm-ok":
            self.action_confirm()
        else:
            self.action_cancel()
