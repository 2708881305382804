"""The footer every screen shows: Textual's ``Footer`` without its leak.

Textual's ``Footer`` recomposes whenever the screen's bindings change (a run selected,
an action enabled or disabled: every few seconds on a live host) and builds new
``FooterKey`` widgets each time, each bound to the footer with
``data_bind(compact=Footer.compact)``. The binding is kept on the footer, in the watcher
list of ``compact``, and Textual drops the entries of removed widgets only when
``compact`` changes — which it never does here. So every recompose kept a dozen removed
keys alive, with their styles and message queues (Textualize/textual#6666): the
console grew for as long as it was open.
"""

from __future__ import annotations

from textual.widgets import Footer


class SteadyFooter(Footer):
    """A ``Footer`` that lets the keys of its earlier recomposes go, and recomposes only
    when what it shows changed.

    After each recompose ``compact`` is re-announced with its own value
    (``mutate_reactive``): Textual's watcher check drops the entries of removed keys
    (and sets the same value on the live ones, which changes nothing they show).

    Textual recomposes the footer on every change of the screen's bindings, even when
    the keys it shows come out the same: opening a run detail made 17 recomposes of new
    keys, each styled anew (~100 ms of the ~430 ms the detail took to open). A recompose
    whose keys (their bindings, descriptions, states, tooltips and key displays) equal
    the shown ones is skipped.
    """

    _shown: tuple[object, ...] | None = None

    async def recompose(self) -> None:
        shown = self._what_it_shows()
        if shown is not None and shown == self._shown:
            return
        self._shown = shown
        await super().recompose()
        if self.is_attached:
            self.mutate_reactive(Footer.compact)

    def _what_it_shows(self) -> tuple[object, ...] | None:
        """Everything ``Footer.compose`` reads, or None before the bindings are ready."""
        if not self._bindings_ready or not self.is_attached:
            return None
        app = self.app
        return (
            self.show_command_palette,
            app.ENABLE_COMMAND_PALETTE,
            tuple(
                (key, binding, app.get_key_display(binding), enabled, tooltip)
                for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            ),
        )
