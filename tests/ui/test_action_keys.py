"""Every action in the registry (``domain.actions.ACTIONS``) appears everywhere the
console offers actions — keys, footer, help, palette, confirmation — with no UI edit."""

from __future__ import annotations

from enum import StrEnum

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tandem_tui.domain.actions import ACTIONS, ActionSpec
from tandem_tui.domain.models import RunStatus
from tandem_tui.ui.action_keys import action_bindings
from tandem_tui.ui.commands import RunCommands, palette_actions
from tandem_tui.ui.screens.run_detail import RunDetailScreen

pytestmark = pytest.mark.anyio


class NewKind(StrEnum):
    ARCHIVE = "archive"


#: An action the console has never heard of, as a later registry entry would add it.
ARCHIVE = ActionSpec(
    kind=NewKind.ARCHIVE,  # type: ignore[arg-type]
    cli_name="archive",
    key="x",
    label="Archive",
    palette_label="Archive selected runs",
    help="move a finished run to the archive now",
    default_reason="archived by operator",
    rule=lambda run, now_ms: (RunStatus.COMPLETED, ()),
    change=lambda transition, reason, operator, now_ms: (lambda run: None),
)
REGISTRY = {**ACTIONS, ARCHIVE.kind: ARCHIVE}


def test_an_action_added_to_the_registry_gets_a_key_binding():
    bindings = {b.key: b for b in action_bindings(REGISTRY)}
    for spec in REGISTRY.values():
        binding = bindings[spec.key]
        assert (binding.action, binding.description, binding.tooltip) == (
            f"act('{spec.kind.value}')",
            spec.label,
            spec.help,
        )
    assert len(bindings) == len(REGISTRY)


def test_an_action_added_to_the_registry_gets_a_palette_entry():
    entries = palette_actions(REGISTRY)
    assert entries == tuple((s.kind.value, s.palette_label, s.help) for s in REGISTRY.values())
    assert ("archive", "Archive selected runs", "move a finished run to the archive now") in entries


def _footer_keys(screen) -> dict[str, str]:
    return {key.key: key.description for key in screen.query_one(Footer).query(FooterKey)}


async def test_the_dashboard_footer_shows_every_action_of_the_registry(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        shown = _footer_keys(app.screen)
        assert {spec.key: spec.label for spec in ACTIONS.values()}.items() <= shown.items()


async def test_the_run_detail_footer_shows_every_action_of_the_registry(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunDetailScreen)
        shown = _footer_keys(app.screen)
        assert {spec.key: spec.label for spec in ACTIONS.values()}.items() <= shown.items()


async def test_the_palette_offers_every_action_of_the_registry(app_factory):
    app = app_factory(watch=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        provider = RunCommands(app.screen)
        offered = {hit.text: hit.help async for hit in provider.discover()}
        for spec in ACTIONS.values():
            assert offered[spec.palette_label] == spec.help
