"""The one test host for screens shown on their own (the real app lives in ui/app.py).

``Host(screen)`` pushes ``screen`` on mount with the console's base styles, keeps what
it dismisses with (``results``) and every request a screen posts up to the app
(``requests``), and does nothing with them: what the console does with a request is
tested on the real app (``tests/ui/test_app.py``, ``tests/ui/test_dashboard.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import App
from textual.message import Message
from textual.screen import Screen

from tandem_tui.ui.screens.dashboard import DashboardScreen
from tandem_tui.ui.screens.history import HistoryScreen
from tandem_tui.ui.screens.run_detail import RunDetailScreen

STYLES = Path(__file__).resolve().parents[2] / "styles"


class Host(App[None]):
    """A bare app that shows one screen and records what it hears back."""

    CSS_PATH = [STYLES / "app.tcss"]

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.shown = screen
        #: What the screen dismissed with, in order.
        self.results: list[Any] = []
        #: The requests the screen posted up (``ActionRequested``, ``OpenRun`` …).
        self.requests: list[Message] = []

    def on_mount(self) -> None:
        self.push_screen(self.shown, self.results.append)

    @on(DashboardScreen.ActionRequested)
    @on(DashboardScreen.OpenRun)
    @on(DashboardScreen.OpenHistory)
    @on(RunDetailScreen.ActionRequested)
    @on(HistoryScreen.OpenRun)
    def _record(self, message: Message) -> None:
        self.requests.append(message)
