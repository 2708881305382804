"""Durations and timestamps: now owned by :mod:`tandem_tui.present`.

Kept as a re-export for the screens that still import it; new code imports
``tandem_tui.present``.
"""

from tandem_tui.present import format_age, format_duration_ms, format_timestamp

__all__ = ["format_age", "format_duration_ms", "format_timestamp"]
