"""``--sqlite PATH`` and ``--postgres URL`` name the engine's database stores."""

from __future__ import annotations

import argparse

import pytest

from tandem_tui.source.file.source import FileSource
from tandem_tui.source.open import SourceOptionError, add_source_options, open_source
from tandem_tui.source.postgres.source import PostgresSource
from tandem_tui.source.sqlite.source import SqliteSource


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_source_options(parser)
    return parser.parse_args(argv)


def test_sqlite_names_the_sqlite_store(tmp_path):
    source = open_source(parse("--sqlite", str(tmp_path / "stateful_runtime.sqlite3")), env={})
    assert isinstance(source, SqliteSource) and source.database == tmp_path / "stateful_runtime.sqlite3"


def test_postgres_names_the_fleet_database():
    source = open_source(parse("--postgres", "postgresql://ops@127.0.0.1:5432/tandem"), env={})
    assert isinstance(source, PostgresSource) and source.url == "postgresql://ops@127.0.0.1:5432/tandem"


def test_the_engines_postgres_environment_is_the_default():
    env = {"TANDEM_STORAGE_BACKEND": "postgres", "TANDEM_STORAGE_POSTGRES_URL": "postgresql://ops@127.0.0.1/t"}
    assert isinstance(open_source(parse(), env=env), PostgresSource)
    assert isinstance(open_source(parse("--runs-file", "x.json"), env=env), FileSource)
    assert isinstance(open_source(parse(), env={"TANDEM_STORAGE_POSTGRES_URL": "postgresql://x/t"}), FileSource)


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
