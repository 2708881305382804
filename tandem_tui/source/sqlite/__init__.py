"""The engine's SQLite store, ``stateful_runtime.sqlite3`` (Tandem 0.6.9 .. 0.7.2), as a source."""
