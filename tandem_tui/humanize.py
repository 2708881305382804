"""Human-readable times and durations, shared by the command line and the console."""

from __future__ import annotations

from datetime import UTC, datetime


def format_duration_ms(ms: int | None) -> str:
    """A compact duration: ``850ms``, ``12s``, ``4m05s``, ``3h07m``, ``2d04h``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 0:
        return "-" + format_duration_ms(-ms)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_age(then_ms: int | None, now_ms: int) -> str:
    """How long ago ``then_ms`` was, e.g. ``4m05s ago``; ``-`` when unknown."""
    if then_ms is None:
        return "-"
    return f"{format_duration_ms(max(0, now_ms - then_ms))} ago"


def format_timestamp(ms: int | None) -> str:
    """UTC wall time as ``2026-11-23 15:50:37``; ``-`` when unknown."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
