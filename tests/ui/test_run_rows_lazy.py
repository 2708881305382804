"""Rows read some columns from their run only when first asked for (issue 13 item 8: a
10k-run first screen draws ~45 lines): a lazily built row shows, sorts and filters
exactly as a row given every field at once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tandem_tui.domain.models import RunStatus
from tandem_tui.domain.view import RunsView
from tandem_tui.present import detail_text, status_since_ms
from tandem_tui.source.file.store import read_runs_file
from tandem_tui.domain.run_summary import node_counts
from tandem_tui.ui.widgets.runs_table import (
    SORTABLE_ALL,
    STATUS_FILTER_MEMBERS,
    RowOrder,
    RunRow,
    StatusFilter,
    build_rows,
    row_cells,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LAZY = ("workspace", "since_ms", "nodes_done", "nodes_total", "detail")
VARIABLES = {"text-success": "green", "text-warning": "yellow", "text-error": "red", "text-accent": "blue"}


def lazy_and_eager(now_ms: int) -> tuple[dict[str, RunRow], dict[str, RunRow]]:
    """The fixture's rows as the dashboard builds them, and the same rows with every
    field computed up front the way rows were built before they were lazy."""
    runs = read_runs_file(FIXTURES / "runs_v1.json", now_ms=now_ms)
    view = RunsView.build(runs, now_ms=now_ms, max_concurrent_runs=8)
    lazy = build_rows(runs, view, now_ms)
    eager: dict[str, RunRow] = {}
    for run_id, run in runs.items():
        row = lazy[run_id]
        done, total = node_counts(run)
        eager[run_id] = RunRow(
            run_id=row.run_id,
            automation_id=row.automation_id,
            status=row.status,
            why=row.why,
            reason=row.reason,
            workspace=run.workspace_root or "",
            since_ms=status_since_ms(run, view.queue_info(run, now_ms)),
            retry_due_ms=row.retry_due_ms,
            nodes_done=done,
            nodes_total=total,
            detail=detail_text(run),
            updated_at_ms=row.updated_at_ms,
            created_at_ms=row.created_at_ms,
            status_rank=row.status_rank,
            engine=row.engine,
            holder=row.holder,
        )
    return lazy, eager


def shown(cells) -> list[tuple[str, str]]:
    return [(cell.plain, str(getattr(cell, "style", ""))) for cell in cells]


def test_a_first_build_reads_no_lazy_column_until_asked(fixture_now_ms):
    lazy, _ = lazy_and_eager(fixture_now_ms)
    for row in lazy.values():
        assert not set(LAZY) & row.__dict__.keys(), row.run_id


def test_a_lazily_built_row_shows_the_cells_of_an_eager_one(fixture_now_ms):
    lazy, eager = lazy_and_eager(fixture_now_ms)
    later = fixture_now_ms + 61_000
    queued = [row for row in lazy.values() if row.status == RunStatus.QUEUED]
    assert queued and any(row.detail for row in lazy.values())
    for run_id, row in lazy.items():
        for now in (fixture_now_ms, later):
            assert shown(row_cells(row, now, VARIABLES, False)) == shown(row_cells(eager[run_id], now, VARIABLES, False))
        assert row == eager[run_id]


def test_a_filter_after_a_lazy_build_finds_the_rows_an_eager_build_finds(fixture_now_ms):
    lazy, eager = lazy_and_eager(fixture_now_ms)
    # "docs-site" is only in a workspace root: a column the lazy rows read on demand.
    needles = ("docs-site", "workspace", "rn-01", "queued", "ledger", "zzz-none")
    for needle in needles:
        for statuses in (None, STATUS_FILTER_MEMBERS[StatusFilter.QUEUED]):
            found = RowOrder().order(lazy, "status", False, needle, statuses)
            assert found == RowOrder().order(eager, "status", False, needle, statuses), needle
    assert RowOrder().order(lazy, "status", False, "docs-site")


@pytest.mark.parametrize("column", SORTABLE_ALL)
def test_every_sort_of_lazy_rows_is_the_sort_of_eager_rows(fixture_now_ms, column):
    lazy, eager = lazy_and_eager(fixture_now_ms)
    for reverse in (False, True):
        assert RowOrder().order(lazy, column, reverse) == RowOrder().order(eager, column, reverse)


def test_a_lazy_field_given_by_replace_wins_over_the_run(fixture_now_ms):
    lazy, _ = lazy_and_eager(fixture_now_ms)
    row = next(row for row in lazy.values() if row.detail)
    other = replace(row, detail="other", nodes_done=7)
    assert (other.detail, other.nodes_done, other.nodes_total) == ("other", 7, row.nodes_total)
    assert other != row and row.detail != "other"
