"""The footer lets go of the keys of its earlier recomposes (issue 13, item 1).

Textual's ``Footer`` recomposes whenever the screen's bindings change, and each
``FooterKey`` it builds stays in the footer's watcher list of ``compact`` until
``compact`` changes (Textualize/textual#6666): on a live host the console kept a dozen
removed keys per recompose for as long as it was open.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tandem_tui.ui.screens.dashboard import KeysFooter
from tandem_tui.ui.widgets.footer import SteadyFooter


class Toggling(Screen[None]):
    """A screen whose ``p`` key is enabled on every other refresh of its bindings."""

    BINDINGS = [Binding("p", "pause", "Pause"), Binding("question_mark", "help", "Help")]

    def __init__(self, footer: SteadyFooter) -> None:
        super().__init__()
        self.footer = footer
        self.enabled = True

    def compose(self) -> ComposeResult:
        yield Static("runs")
        yield self.footer

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.enabled if action == "pause" else True


class Shows(App[None]):
    def __init__(self, screen: Screen[None]) -> None:
        super().__init__()
        self.shown = screen

    def on_mount(self) -> None:
        self.push_screen(self.shown)


#: Both footers the console shows: every screen's, and the dashboard's compact one.
FOOTERS = pytest.mark.parametrize(
    "footer", [SteadyFooter, lambda: KeysFooter(compact=True, show_command_palette=False)], ids=["steady", "keys"]
)


async def refreshed(screen: Toggling, pilot: object, *, enabled: bool) -> list[FooterKey]:
    """The footer's keys after the screen's bindings are refreshed, ``p`` ``enabled``."""
    screen.enabled = enabled
    screen.refresh_bindings()
    await pilot.pause()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    return list(screen.query(FooterKey))


@asynccontextmanager
async def toggling(footer: Any) -> AsyncIterator[tuple[Toggling, Any]]:
    """A :class:`Toggling` screen with ``footer()`` on a running app, and its pilot."""
    screen = Toggling(footer())
    async with Shows(screen).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        yield screen, pilot


@pytest.mark.anyio
@FOOTERS
async def test_keys_of_earlier_recomposes_are_released(footer) -> None:
    async with toggling(footer) as (screen, pilot):
        earlier: list[weakref.ref[FooterKey]] = []
        seen: weakref.WeakSet[FooterKey] = weakref.WeakSet()
        for _ in range(20):
            earlier.extend(weakref.ref(key) for key in screen.query(FooterKey) if key not in seen)
            seen.update(screen.query(FooterKey))
            await refreshed(screen, pilot, enabled=not screen.enabled)
        live = set(screen.query(FooterKey))
        gc.collect()
        kept = [ref() for ref in earlier if ref() is not None and ref() not in live]
        assert len(earlier) >= 20  # the footer did recompose: new keys again and again
        assert kept == []
        # and the live keys still follow the screen's bindings
        assert {"p", "question_mark"} <= {key.key for key in live}


@pytest.mark.anyio
@FOOTERS
async def test_bindings_refreshed_without_a_change_keep_the_keys_shown(footer) -> None:
    # Textual recomposed on every refresh of the bindings: opening a run detail built
    # and styled the footer's keys 17 times.
    async with toggling(footer) as (screen, pilot):
        shown = list(screen.query(FooterKey))
        assert shown
        for _ in range(5):
            assert await refreshed(screen, pilot, enabled=True) == shown  # the same widgets
        keys = await refreshed(screen, pilot, enabled=False)  # a change it shows: recomposed
        assert "p" in {key.key for key in shown} and "p" not in {key.key for key in keys}
