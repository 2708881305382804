"""The command palette (ctrl+p): the operator actions and "Go to run …" for every run.

Run ids come from wherever runs live, so hits are built as literal ``Content`` (Textual's
``Matcher.highlight`` would parse them as markup) and highlighted by offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content

from tandem_tui.domain.actions import ACTIONS, ActionKind, ActionSpec
from tandem_tui.safe_text import sanitize

if TYPE_CHECKING:
    from tandem_tui.ui.app import TandemApp


def palette_actions(
    registry: Mapping[ActionKind, ActionSpec] = ACTIONS,
) -> tuple[tuple[str, str, str], ...]:
    """``(kind, palette label, help)`` per action in the registry: an action added to
    :data:`~tandem_tui.domain.actions.ACTIONS` is in the palette without a UI edit."""
    return tuple((spec.kind.value, spec.palette_label, spec.help) for spec in registry.values())


#: The palette's operator actions (on the marked or selected runs).
PALETTE_ACTIONS = palette_actions()
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("history", "Open history", "archived runs, month by month"),
    ("filter", "Filter runs", "type to narrow the runs table"),
)

HIGHLIGHT = "bold underline $text-accent"


def literal_highlight(matcher: Matcher, candidate: str) -> Content:
    """``candidate`` as plain text, with the matched characters highlighted."""
    content = Content(candidate)
    score, offsets = matcher.fuzzy_search.match(matcher.query, candidate)
    if score:
        for offset in offsets:
            if not candidate[offset].isspace():
                content = content.stylize(HIGHLIGHT, offset, offset + 1)
    return content


class RunCommands(Provider):
    """Operator actions, navigation, and one "Go to run" per run id."""

    @property
    def tandem(self) -> TandemApp:
        return self.app  # type: ignore[return-value]

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.tandem
        commands: list[tuple[str, str, Callable[[], object]]] = []
        if not app.read_only:
            for kind, label, help_text in PALETTE_ACTIONS:
                commands.append((label, help_text, partial(app.run_action_on_selection, kind)))
        for action, label, help_text in NAVIGATION:
            commands.append((label, help_text, partial(app.run_dashboard_action, action)))
        return commands

    async def discover(self) -> Hits:
        for label, help_text, callback in self._commands():
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> AsyncIterator[Hit]:
        matcher = self.matcher(query)
        for label, help_text, callback in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, literal_highlight(matcher, label), callback, help=help_text)
        for run_id in self.tandem.run_ids():
            label = f"Go to run {sanitize(run_id)}"
            score = matcher.match(label)
            if score > 0:
                yield Hit(
                    score,
                    literal_highlight(matcher, label),
                    partial(self.tandem.go_to_run, run_id),
                    text=label,
                )
