"""tandem-tui: the operator console for Tandem automation runs."""

__version__ = "0.1.0"
