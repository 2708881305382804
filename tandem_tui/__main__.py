"""Allows `python -m tandem_tui`."""

from tandem_tui.cli import run

raise SystemExit(run())
