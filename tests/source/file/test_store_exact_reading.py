"""Numbers orjson reads unlike serde (``-0``, integers beyond 64 bits), found in a text
read in chunks whatever the chunk edges cut: ``ExactReading`` says "not exact" wherever
a check of the whole text does."""

from __future__ import annotations

import pytest

from tandem_tui.source.file.store import ExactReading, orjson_reads_exactly

BIG = "18446744073709551616"

MISREAD = [
    '{"a": -0}',
    '{"a": [1, -0, 2]}',
    '{"a":' + " " * 200 + "-0}",  # the context lies far before the token
    '{"a"' + " " * 200 + ": -0}",
    '{"a": ' + BIG + "}",
    '{"a": [-' + BIG + "]}",
    '{"a": ' + BIG * 6 + "}",  # longer than the overlap: cut, it still counts
    '{"a":' + " " * 200 + BIG + "}",
]


def chunks_at(data: bytes, edges: tuple[int, ...]) -> list[bytes]:
    bounds = [0, *edges, len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:])]


def read_in(chunks: list[bytes]) -> bool:
    reading = ExactReading()
    for chunk in chunks:
        reading.feed(chunk)
    return reading.exact


@pytest.mark.parametrize("text", MISREAD)
def test_a_misread_number_is_found_wherever_one_edge_cuts_the_text(text):
    data = (" " * 50 + text + " " * 50).encode()
    assert not orjson_reads_exactly(data)
    for edge in range(1, len(data)):
        assert not read_in(chunks_at(data, (edge,))), edge


@pytest.mark.parametrize("text", MISREAD)
def test_a_misread_number_is_found_when_chunks_are_smaller_than_the_token(text):
    data = text.encode()
    for size in (1, 2, 3, 7):
        assert not read_in([data[start : start + size] for start in range(0, len(data), size)]), size


def test_a_text_without_such_numbers_reads_exactly_in_one_chunk_or_many():
    data = b'{"a": 0, "b": -1, "c": 184467440737095516, "d": "sha256:33901485583778381910963", "e": -0.5}'
    assert orjson_reads_exactly(data)
    assert read_in([data])
    assert read_in(chunks_at(data, (40,)))  # an edge away from any digit run
