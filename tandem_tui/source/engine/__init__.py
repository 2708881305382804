"""A live engine behind the ``RunsSource`` seam: detection, its HTTP API, and routing.

- :mod:`~tandem_tui.source.engine.detect`: is an engine live, which store is
  authoritative, the engine's URL and token (and where each came from);
- :mod:`~tandem_tui.source.engine.client`: the engine's HTTP API (httpx, sync);
- :mod:`~tandem_tui.source.engine.source`: :class:`EngineRoutedSource`, which acts
  through a live engine's API and through our core only when no engine is live.
"""
