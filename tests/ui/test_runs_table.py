"""The runs table's order kept up to date as snapshots arrive (issue 13 item 8): edited
in place when few rows change, it is always exactly what sorting and filtering every row
anew gives."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from tandem_tui.domain.models import RunStatus
from tandem_tui.ui.widgets.runs_table import (
    INCREMENTAL_LIMIT,
    STATUS_FILTER_MEMBERS,
    SORTABLE_ALL,
    RowOrder,
    RunRow,
    StatusFilter,
    row_matches,
    sorted_rows,
)

from ui.test_dashboard import fixture_rows


def expected(rows, column, reverse, needle="", statuses=None, engine=""):
    ordered = sorted_rows(rows.values(), column, reverse)
    return [
        r.run_id
        for r in ordered
        if (not engine or r.engine == engine) and row_matches(r, needle, statuses)
    ]


def many_rows(now_ms: int, copies: int = 12) -> dict[str, RunRow]:
    """The fixture's rows under many ids and engines, with ties on every sort key."""
    rows: dict[str, RunRow] = {}
    for copy in range(copies):
        engine = ("", "eu", "us")[copy % 3]
        for run_id, row in fixture_rows(now_ms).items():
            key = f"{engine}/{run_id}-{copy}" if engine else f"{run_id}-{copy}"
            rows[key] = replace(row, run_id=key, engine=engine)
    return rows


def changed(rows: dict[str, RunRow], rng: random.Random, count: int, serial: int) -> dict[str, RunRow]:
    """A new snapshot: ``count`` rows replaced (new status, detail, update time), a few
    runs gone and a few new."""
    out = dict(rows)
    ids = sorted(out)
    for run_id in rng.sample(ids, count):
        status = rng.choice(list(RunStatus))
        out[run_id] = replace(
            out[run_id],
            status=status,
            status_rank=rng.randrange(9),
            detail=f"detail {serial} {rng.random():.3f}",
            updated_at_ms=out[run_id].updated_at_ms + rng.choice((0, 1, 1000)),
            nodes_done=rng.randrange(4),
        )
    for run_id in rng.sample(ids, 2):
        del out[run_id]
    for index in range(2):
        template = out[rng.choice(sorted(out))]
        key = f"new-{serial}-{index}"
        out[key] = replace(template, run_id=key, engine="")
    return out


@pytest.mark.parametrize("column", SORTABLE_ALL)
def test_the_order_edited_in_place_is_the_order_sorted_anew(fixture_now_ms, column):
    rng = random.Random(column)
    rows = many_rows(fixture_now_ms)
    order = RowOrder()
    filters = [
        ("", None, ""),
        ("", STATUS_FILTER_MEMBERS[StatusFilter.QUEUED], ""),
        ("rn", None, ""),
        ("rn-01", None, ""),  # a filter typed further narrows what is shown
        ("rn-01", STATUS_FILTER_MEMBERS[StatusFilter.FAILED], "eu"),
    ]
    for serial in range(40):
        needle, statuses, engine = filters[serial % len(filters)]
        reverse = serial % 7 in (2, 3)
        for _ in range(2):  # a snapshot between two renders of the same view
            rows = changed(rows, rng, rng.randrange(1, 12), serial)
            assert order.order(rows, column, reverse, needle, statuses, engine) == expected(
                rows, column, reverse, needle, statuses, engine
            )


def test_switching_columns_between_snapshots_keeps_every_column_exact(fixture_now_ms):
    rng = random.Random(3)
    rows = many_rows(fixture_now_ms)
    order = RowOrder()
    for serial in range(60):
        column = SORTABLE_ALL[serial % len(SORTABLE_ALL)]
        rows = changed(rows, rng, 5, serial)
        assert order.order(rows, column, serial % 2 == 1) == expected(rows, column, serial % 2 == 1)


def test_a_snapshot_changing_many_rows_is_sorted_anew(fixture_now_ms):
    rng = random.Random(5)
    rows = many_rows(fixture_now_ms, copies=40)
    assert len(rows) > 2 * INCREMENTAL_LIMIT
    order = RowOrder()
    order.order(rows, "status", False)
    base_before = order.base
    rows = changed(rows, rng, INCREMENTAL_LIMIT + 1, 1)
    assert order.order(rows, "status", False) == expected(rows, "status", False)
    assert order.base is not base_before, "rebuilt, not edited"
    # ... and a snapshot changing a few is edited in place.
    base_before = order.base
    rows = changed(rows, rng, 3, 2)
    assert order.order(rows, "status", False) == expected(rows, "status", False)
    assert order.base is base_before


def test_a_rows_sort_key_is_computed_once_per_row_object(fixture_now_ms):
    row = next(iter(fixture_rows(fixture_now_ms).values()))
    assert row.sort_key_for("detail") is row.sort_key_for("detail")
    assert replace(row, detail="other").sort_key_for("detail")[0] == "other"


def test_a_summary_builds_the_row_its_run_builds(fixture_now_ms):
    from tandem_tui.domain.run_summary import Summarizer
    from tandem_tui.domain.view import RunsView
    from tandem_tui.source.file.store import read_runs_file
    from tandem_tui.ui.widgets.runs_table import build_rows
    from ui.test_dashboard import FIXTURES

    runs = read_runs_file(FIXTURES / "runs_v1.json", now_ms=fixture_now_ms)
    summarize = Summarizer()
    lean = {key: summarize(run, key) for key, run in runs.items()}
    full_rows = build_rows(runs, RunsView.build(runs, now_ms=fixture_now_ms, max_concurrent_runs=8), fixture_now_ms)
    lean_rows = build_rows(lean, RunsView.build(lean, now_ms=fixture_now_ms, max_concurrent_runs=8), fixture_now_ms)
    assert lean_rows == full_rows
    assert {row.nodes_total for row in full_rows.values()} != {0}  # flows were counted
