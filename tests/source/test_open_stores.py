"""``--sqlite PATH`` and ``--postgres URL`` name the engine's database stores."""

from __future__ import annotations

import argparse
import sqlite3

import pytest

from tandem_tui.source.engine.source import EngineRoutedSource
from tandem_tui.source.file.source import FileSource
from tandem_tui.source.open import SourceOptionError, add_source_options, open_source
from tandem_tui.source.postgres.source import PostgresSource
from tandem_tui.source.sqlite.source import SqliteSource


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_source_options(parser)
    return parser.parse_args(argv)


def inner(source):
    """The store behind the live-engine routing every file or SQLite source gets."""
    return getattr(source, "inner", source)


def test_sqlite_names_the_sqlite_store_routed_through_a_live_engine(tmp_path):
    source = open_source(parse("--sqlite", str(tmp_path / "stateful_runtime.sqlite3")), env={})
    assert isinstance(source, EngineRoutedSource)
    assert isinstance(inner(source), SqliteSource) and inner(source).database == tmp_path / "stateful_runtime.sqlite3"


def test_the_sqlite_store_is_chosen_when_the_engines_import_is_complete(tmp_path):
    database = tmp_path / "data" / "stateful_runtime.sqlite3"
    database.parent.mkdir()
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE stateful_migrations (migration_id TEXT PRIMARY KEY, status TEXT)")
        connection.execute("INSERT INTO stateful_migrations VALUES ('legacy_stateful_runtime_v1', 'in_progress')")
    assert isinstance(inner(open_source(parse("--state-dir", str(tmp_path)), env={})), FileSource)
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE stateful_migrations SET status = 'complete'")
    chosen = inner(open_source(parse("--state-dir", str(tmp_path)), env={}))
    assert isinstance(chosen, SqliteSource) and chosen.database == database


def test_postgres_names_the_fleet_database():
    source = open_source(parse("--postgres", "postgresql://ops@127.0.0.1:5432/tandem"), env={})
    assert isinstance(source, PostgresSource) and source.url == "postgresql://ops@127.0.0.1:5432/tandem"


def test_the_engines_postgres_environment_is_the_default():
    env = {"TANDEM_STORAGE_BACKEND": "postgres", "TANDEM_STORAGE_POSTGRES_URL": "postgresql://ops@127.0.0.1/t"}
    assert isinstance(open_source(parse(), env=env), PostgresSource)
    assert isinstance(inner(open_source(parse("--runs-file", "x.json"), env=env)), FileSource)
    assert isinstance(inner(open_source(parse(), env={"TANDEM_STORAGE_POSTGRES_URL": "postgresql://x/t"})), FileSource)


@pytest.mark.parametrize(
    "argv",
    [("--sqlite", "a", "--postgres", "postgresql://x/y"), ("--runs-file", "a.json", "--sqlite", "b")],
)
def test_two_sources_are_one_too_many(argv):
    with pytest.raises(SourceOptionError, match="give one source"):
        open_source(parse(*argv), env={})


def test_a_postgres_url_redacts_its_password_in_messages():
    source = PostgresSource("postgresql://ops:s3cret@127.0.0.1:1/tandem", env={})
    assert "s3cret" not in source.describe().location
    assert "s3cret" not in (source.load().freshness.error or "")
