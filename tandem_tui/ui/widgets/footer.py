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
    """A ``Footer`` that lets the keys of its earlier recomposes go.

    After each recompose ``compact`` is re-announced with its own value
    (``mutate_reactive``): Textual's watcher check drops the entries of removed keys
    (and sets the same value on the live ones, which changes nothing they show).
    """

    async def recompose(self) -> None:
        await super().recompose()
        if self.is_attached:
            self.mutate_reactive(Footer.compact)
