"""The run finder ("Go to run…"): what it lists and what it dismisses with. What the
console does with the chosen run (opens its detail screen) is tested on the real app in
``tests/ui/test_app_life.py``."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from tandem_tui.ui.screens.run_finder import RunFinderScreen

from ui.host import Host

pytestmark = pytest.mark.anyio

IDS = [f"run-{i:04d}" for i in range(500)] + ["ledger-0042\x1b[2J"]


def hits(app: Host) -> list[str]:
    options = app.shown.query_one(OptionList)
    return [str(options.get_option_at_index(i).id) for i in range(options.option_count)]


async def test_enter_dismisses_with_the_first_match_of_what_was_typed():
    app = Host(RunFinderScreen(IDS))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press(*"0042")
        await pilot.pause()
        assert hits(app) == ["run-0042", "ledger-0042\x1b[2J"]
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == ["run-0042"]


async def test_down_then_enter_chooses_the_next_match():
    app = Host(RunFinderScreen(IDS))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press(*"0042", "down", "enter")
        await pilot.pause()
        assert app.results == ["ledger-0042\x1b[2J"]


async def test_escape_dismisses_with_nothing():
    app = Host(RunFinderScreen(IDS))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("x", "escape")
        await pilot.pause()
        assert app.results == [None]


async def test_enter_with_no_match_chooses_nothing_and_stays_open():
    app = Host(RunFinderScreen(IDS))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press(*"zzz", "enter")
        await pilot.pause()
        assert app.results == [] and app.screen is app.shown


async def test_an_id_with_an_escape_is_listed_literally():
    app = Host(RunFinderScreen(IDS, query="ledger"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        options = app.shown.query_one(OptionList)
        assert str(options.get_option_at_index(0).prompt) == "ledger-0042\\x1b[2J"
