"""Allows `python -m tandem_tui`."""

from tandem_tui.cli import main

raise SystemExit(main())
