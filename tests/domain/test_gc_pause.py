"""gc_paused holds off cyclic collection and restores the collector's prior state."""

import gc

from tandem_tui.domain.gc_pause import gc_paused


def test_the_collector_is_off_inside_and_back_on_after():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nesting_and_exceptions_restore_the_state_the_caller_had():
    try:
        with gc_paused():
            with gc_paused():
                raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_freeze_moves_what_is_alive_into_the_permanent_generation():
    before = gc.get_freeze_count()
    try:
        with gc_paused(freeze=True):
            # Lists: CPython stops tracking dicts of atomic values, so they may not count.
            kept = [[i] for i in range(1000)]
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()
