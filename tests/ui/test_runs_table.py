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


# -- a typed filter narrows what it can (issue 13 item 8: typing at 100k runs) --------------


def typing_steps(rng: random.Random, rows: dict[str, RunRow], steps: int):
    """What an operator does while a filter is typed: keys (mostly letters found in the
    rows, so needles keep matching), Backspace, Escape, a quick status filter, an engine,
    a sort column, a reversed sort, and snapshots arriving in between."""
    alphabet = sorted({ch for row in rows.values() for ch in row.search_text()} - {" "}) + ["Z"]
    statuses = [None, *(STATUS_FILTER_MEMBERS[f] for f in StatusFilter if f != StatusFilter.ALL)]
    needle, status, engine, column, reverse = "", None, "", "status", False
    for serial in range(steps):
        roll = rng.random()
        if roll < 0.45:
            needle += rng.choice(alphabet).lower()
        elif roll < 0.65:
            needle = needle[: -rng.randint(1, 3)]
        elif roll < 0.7:
            needle = ""
        elif roll < 0.77:
            status = rng.choice(statuses)
        elif roll < 0.82:
            engine = rng.choice(("", "", "eu", "us"))
        elif roll < 0.86:
            column = rng.choice(SORTABLE_ALL)
        elif roll < 0.9:
            reverse = not reverse
        else:
            rows = changed(rows, rng, rng.randrange(1, 8), serial)
        yield rows, column, reverse, needle, status, engine


@pytest.mark.parametrize("seed", range(6))
def test_a_filter_narrowed_from_kept_results_is_exactly_a_filter_of_every_row(fixture_now_ms, seed):
    rng = random.Random(seed)
    order = RowOrder()
    narrowed = kept = 0
    for rows, column, reverse, needle, status, engine in typing_steps(rng, many_rows(fixture_now_ms), 400):
        cost = order.filter_cost(rows, column, needle, status, engine)
        narrowed += 0 < cost < len(rows)
        kept += cost == 0 and bool(needle)
        assert order.order(rows, column, reverse, needle, status, engine) == expected(
            rows, column, reverse, needle, status, engine
        ), (needle, status, engine, column, reverse)
    assert narrowed > 30 and kept > 10, "the steps took the incremental paths"


def test_a_key_typed_further_looks_only_at_the_rows_its_prefix_kept(fixture_now_ms):
    rows = many_rows(fixture_now_ms)
    order = RowOrder()
    order.order(rows, "status", False)
    assert order.filter_cost(rows, "status", "rn") == len(rows)
    kept_rn = order.order(rows, "status", False, "rn")
    assert order.filter_cost(rows, "status", "rn-0142-") == len(kept_rn) < len(rows)
    kept_longer = order.order(rows, "status", False, "rn-0142-")
    assert order.filter_cost(rows, "status", "rn-0142-1") == len(kept_longer)
    kept_longest = order.order(rows, "status", False, "rn-0142-1")
    assert len(kept_longest) < len(kept_longer)
    # Backspace, and the same needle typed again, are kept results: no row looked at.
    assert order.filter_cost(rows, "status", "rn") == 0
    assert order.order(rows, "status", False, "rn") == kept_rn
    assert order.filter_cost(rows, "status", "rn-0142-1") == 0
    assert order.order(rows, "status", False, "rn-0142-1") == kept_longest
    # Another status filter starts from every row; a snapshot drops what was kept
    # except the rows shown (edited with the rest).
    queued = STATUS_FILTER_MEMBERS[StatusFilter.QUEUED]
    assert order.filter_cost(rows, "status", "rn", queued) == len(rows)
    order.order(rows, "status", False, "rn-0142-")
    rows = changed(rows, random.Random(1), 3, 1)
    order.order(rows, "status", False, "rn-0142-")
    assert order.filter_cost(rows, "status", "rn") == len(rows)
    assert order.filter_cost(rows, "status", "rn-0142-1") == len(order.shown)


def test_escape_shows_the_sorted_rows_as_kept_without_sorting_again(fixture_now_ms):
    rows = many_rows(fixture_now_ms)
    order = RowOrder()
    unfiltered = order.order(rows, "wait", True)
    ascending = order.ascending
    for end in range(1, 12):  # more filters than the ids kept of filtered results
        order.order(rows, "wait", True, "run-rn-0142"[:end])
    assert order.order(rows, "wait", True, "") is unfiltered, "the ids as they were listed"
    assert order.ascending is ascending and order.shown is ascending
    # A snapshot edits the rows kept: the ids are listed anew, and exactly.
    rows = changed(rows, random.Random(2), 3, 1)
    assert order.order(rows, "wait", True, "") == expected(rows, "wait", True)
    assert order.ascending is ascending
