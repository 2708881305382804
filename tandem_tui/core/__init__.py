"""The pure core of tandem-tui: models, store, scheduler, lifecycle, claims, retry,
recovery and operator actions. Standard library and pydantic only: nothing here imports
textual, rich or watchfiles (a test enforces it)."""
