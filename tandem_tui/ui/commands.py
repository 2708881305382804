"""The command palette (ctrl+p): navigation, the operator actions, and a bounded set of
"Go to run …" hits.

With an empty query the palette lists navigation first ("Go to run…", history, filter):
Enter on an untouched palette never acts on runs. Searching runs is bounded: at most
:data:`MAX_RUN_HITS` ids containing the query's last word are scored (one hit per run
made the palette drop keystrokes at 10k runs); "Go to run…" opens the run finder
(:mod:`tandem_tui.ui.screens.run_finder`) for the rest.

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
    ("find_run", "Go to run…", "find a run by part of its id"),
    ("history", "Open history", "archived runs, month by month"),
    ("filter", "Filter runs", "type to narrow the runs table"),
)

HIGHLIGHT = "bold underline $text-accent"
#: The most "Go to run" hits one palette search scores.
MAX_RUN_HITS = 20


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
        """Navigation first, then actions: the first discovery hit (the default of an
        empty query) never acts on runs."""
        app = self.tandem
        commands: list[tuple[str, str, Callable[[], object]]] = []
        for action, label, help_text in NAVIGATION:
            callback = app.find_run if action == "find_run" else partial(app.run_dashboard_action, action)
            commands.append((label, help_text, callback))
        if not app.read_only:
            for kind, label, help_text in PALETTE_ACTIONS:
                commands.append((label, help_text, partial(app.run_action_on_selection, kind)))
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
        for run_id in run_candidates(self.tandem.run_ids(), query):
            label = f"Go to run {sanitize(run_id)}"
            score = matcher.match(label)
            if score > 0:
                yield Hit(
                    score,
                    literal_highlight(matcher, label),
                    partial(self.tandem.go_to_run, run_id),
                    text=label,
                )


def run_candidates(run_ids: list[str], query: str, limit: int = MAX_RUN_HITS) -> list[str]:
    """At most ``limit`` ids containing the query's last word (case-insensitive): the
    only runs a palette search scores. No word, no run."""
    words = query.lower().split()
    if not words:
        return []
    needle = words[-1]
    found: list[str] = []
    for run_id in run_ids:
        if needle in run_id.lower():
            found.append(run_id)
            if len(found) >= limit:
                break
    return found
