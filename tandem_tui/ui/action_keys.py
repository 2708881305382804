"""The operator-action keys, the same on every screen that can act on a run."""

from textual.binding import Binding

ACTION_BINDINGS = [
    Binding("p", "act('pause')", "Pause"),
    Binding("r", "act('resume')", "Resume"),
    Binding("e", "act('requeue')", "Requeue"),
    Binding("l", "act('release_lock')", "Release"),
]
