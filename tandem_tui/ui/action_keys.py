"""The operator-action keys, the same on every screen that can act on a run.

Built from :data:`tandem_tui.domain.actions.ACTIONS`: an action added to the registry
gets its key, its footer word (``label``) and its help line (``help``, shown by ``?``)
on the dashboard and the run detail screen without a UI edit.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.binding import Binding

from tandem_tui.domain.actions import ACTIONS, ActionKind, ActionSpec


def action_bindings(registry: Mapping[ActionKind, ActionSpec] = ACTIONS) -> list[Binding]:
    """One binding per action: ``spec.key`` runs ``act('<kind>')`` on the screen."""
    return [
        Binding(spec.key, f"act({spec.kind.value!r})", spec.label, tooltip=spec.help)
        for spec in registry.values()
    ]


ACTION_BINDINGS = action_bindings()
