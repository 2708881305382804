"""The confirmation dialog shown before an operator action changes a run.

It lists every selected run, in the order given, in aligned columns: its id (elided in
the middle like the runs table's, so the distinguishing tail stays), then what the
action will do to it (``running -> paused``) or why it will be refused. Several runs
end with one summary line (``3 runs: 2 will pause, 1 refused (completed)``). It asks
for a reason and dismisses with the reason to record (the action's default when left
empty), or ``None`` when cancelled. It decides nothing itself: the previews come from
:func:`tandem_tui.domain.actions.preview`, and its words (the action's label, its
default reason) from the action's entry in :data:`~tandem_tui.domain.actions.ACTIONS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tandem_tui.domain.actions import ACTIONS, ActionKind, ActionSpec, Refusal, Transition
from tandem_tui.ui.screens.run_detail import STYLES_DIR
from tandem_tui.safe_text import literal, sanitize
from tandem_tui.ui.widgets.record_fields import theme_style
from tandem_tui.ui.widgets.runs_table import elide_middle
from tandem_tui.ui.widgets.status_style import status_text

Preview = Transition | Refusal

#: A run id is never elided below this width (5 + "…" + 6 still tells runs apart).
MIN_ID_WIDTH = 12
#: The gap between the columns of a preview line.
GAP = 2
#: The ``from -> to`` (or refusal) column keeps at least this much of a narrow dialog:
#: a long id is elided before a reason is wrapped into a sliver.
MIN_WHAT_WIDTH = 40
#: The preview list never grows past this many lines (it scrolls); fewer when the
#: terminal is short, so the reason and the buttons stay on screen.
MAX_PREVIEW_LINES = 12
#: A refusal's reason is named in the summary line only while this few reasons differ.
MAX_SUMMARY_REASONS = 3


def _plural(count: int, noun: str = "run") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def refusal_why(refusal: Refusal) -> str:
    """Why the run will be refused, without the ``cannot pause run X:`` prefix."""
    prefix = f"cannot {refusal.kind.verb} run {refusal.run_id}: "
    return refusal.message.removeprefix(prefix)


def short_why(refusal: Refusal) -> str:
    """The reason in a few words for the summary line: ``it is completed; only a
    running ...`` -> ``completed``."""
    first = refusal_why(refusal).split(";", 1)[0].strip()
    return first.removeprefix("it is ").strip() or first


def summary_line(kind: ActionKind, previews: Sequence[Preview]) -> str:
    """The one line ending a bulk dialog: ``3 runs: 2 will pause, 1 refused (paused)``.

    Refusals are counted by their short reason (most frequent first); when more than
    :data:`MAX_SUMMARY_REASONS` reasons differ they are left to the lines above."""
    allowed = sum(1 for p in previews if isinstance(p, Transition))
    refused = [p for p in previews if isinstance(p, Refusal)]
    parts: list[str] = []
    if allowed:
        parts.append(f"{allowed} will {kind.verb}")
    if refused:
        reasons = Counter(short_why(r) for r in refused)
        if len(reasons) == 1:
            why = f" ({sanitize(next(iter(reasons)))})"
        elif len(reasons) <= MAX_SUMMARY_REASONS:
            why = " (" + ", ".join(f"{n} {sanitize(w)}" for w, n in reasons.most_common()) + ")"
        else:
            why = f" ({len(reasons)} reasons, listed above)"
        parts.append(f"{len(refused)} refused{why}")
    return f"{_plural(len(previews))}: " + ", ".join(parts)


@dataclass(frozen=True)
class Columns:
    """The widths every preview line of one dialog shares, so their columns line up:
    the longest id (elided to fit when the dialog is narrower) and the longest ``from``
    status."""

    longest_id: int
    from_width: int
    to_width: int

    @classmethod
    def of(cls, previews: Sequence[Preview]) -> Columns:
        transitions = [p for p in previews if isinstance(p, Transition) and p.from_status != p.to_status]
        return cls(
            longest_id=max((cell_len(sanitize(p.run_id)) for p in previews), default=MIN_ID_WIDTH),
            from_width=max((len(t.from_status.value) for t in transitions), default=0),
            to_width=max((len(t.to_status.value) for t in transitions), default=0),
        )

    def id_width(self, available: int) -> int:
        """The id column in ``available`` cells: as wide as the longest id, leaving the
        ``from -> to`` column (or a refusal's reason) its room, never below
        :data:`MIN_ID_WIDTH`."""
        what = max(MIN_WHAT_WIDTH, self.from_width + len(" -> ") + self.to_width)
        return max(1, min(self.longest_id, max(MIN_ID_WIDTH, available - GAP - what)))


class PreviewLine:
    """One run of the dialog: its id (elided in the middle, as the runs table does),
    then ``from -> to`` with both statuses coloured, or why it will be refused (wrapped
    in its own column). Lays itself out in the width it is given."""

    def __init__(self, item: Preview, columns: Columns, theme: Mapping[str, str]) -> None:
        self.item = item
        self.columns = columns
        self.theme = theme

    def what(self) -> Text:
        item = self.item
        if isinstance(item, Refusal):
            line = Text("refused: ", style=theme_style(self.theme, "text-warning", bold=True))
            line.append_text(literal(refusal_why(item), style=theme_style(self.theme, "foreground-muted")))
            return line
        if item.from_status == item.to_status:
            return literal(item.summary)
        line = status_text(item.from_status, self.theme)
        line.pad_right(self.columns.from_width - line.cell_len)
        line.append(" -> ", style="dim")
        line.append_text(status_text(item.to_status, self.theme))
        return line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.columns.id_width(options.max_width)
        table = Table.grid(padding=(0, GAP, 0, 0), expand=True)
        table.add_column("run", width=width, no_wrap=True)
        table.add_column("what", ratio=1, overflow="fold")
        run_id = Text(elide_middle(sanitize(self.item.run_id), width), style="bold")
        table.add_row(run_id, self.what())
        yield table


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
            else:
                heading = Text(f"Nothing to {verb}: every selected run would be refused.")
            yield Label(heading, id="confirm-heading")
            columns = Columns.of(self.previews)
            with VerticalScroll(id="confirm-previews"):
                for item in self.previews:
                    kind = "transition" if isinstance(item, Transition) else "refusal"
                    yield Static(PreviewLine(item, columns, theme), classes=f"preview-line {kind}")
            if len(self.previews) > 1:
                yield Label(summary_line(self.kind, self.previews), id="confirm-summary")
            yield Label(Text("Reason", style="dim"), id="confirm-reason-label")
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

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_previews)

    def _fit_previews(self) -> None:
        """Cap the preview list so the whole dialog fits the terminal (the list scrolls):
        at 80x24 a bulk dialog otherwise pushes the reason and buttons off screen."""
        dialog = self.query_one("#confirm-dialog")
        previews = self.query_one("#confirm-previews")
        # The dialog's content may overflow it (that is what is being fixed): measure
        # the content, not the clipped dialog. 0.9: the dialog's max-height (90%).
        fixed = dialog.virtual_size.height - previews.outer_size.height + dialog.gutter.height
        room = int(self.size.height * 0.9) - fixed
        lines = max(3, min(MAX_PREVIEW_LINES, room))
        if previews.styles.max_height is None or previews.styles.max_height.value != lines:
            previews.styles.max_height = lines

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
