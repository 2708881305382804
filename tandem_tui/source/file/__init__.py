"""Runs where the Tandem server ≤ 0.6.8 keeps them: the runs file and its history shards.

Store (parse, serialize), shards, atomic writes, the locked compare-and-swap
transaction, the audit log, retention, the watcher and its parse helper, and
:class:`~tandem_tui.source.file.source.FileSource`, which puts them behind the
:class:`~tandem_tui.source.base.RunsSource` protocol.
"""
