"""Where each entry of a pretty-printed runs file lies, found from the bytes without parsing them.

The engine rewrites the whole runs file on every save, and a save changes a few runs out
of thousands. :func:`scan_entries` finds each entry's key and the byte span of its value
so that a reader can hash the spans and parse only those that changed: at 10k runs
(59 MB) the scan and the hashes take a fraction of one ``orjson.loads`` of the file.

It reads the layout both writers produce (this package's ``serialize_runs_file`` and
serde_json's pretty printer): two-space indents, one entry key per line at the entries'
depth. Anything else, or anything it is unsure about, gives ``None`` and the caller
parses the whole file; the scanner never guesses.

Why a scan the caller then completes is exactly the JSON parse of the file: JSON
strings cannot hold a raw newline, so a newline is always whitespace between tokens.
The scanner checks every byte outside the value spans: the envelope up to the entries
object, each key (a JSON string), the ``:`` after it, the ``,`` between entries and the
closing braces, each with only JSON whitespace around it. The caller's part is to make
sure each span is one complete JSON value: either it parses now, or its bytes hash
equal to a span that parsed before. Then the file is the concatenation of valid pieces
of one JSON derivation, and (JSON's grammar being unambiguous) its parse has exactly
these members. A span cut in the wrong place (a line inside a value that looks like an
entry key) is a strict prefix or an overlap of a value, never a complete one, so it fails
that check and the caller falls back to a full parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: JSON's whitespace, and nothing else (no form feed, no Unicode spaces).
_WS = rb"[ \t\n\r]*"
_WS_BYTES = b" \t\n\r"
_VERSIONED_HEADER = re.compile(
    rb"\A" + _WS + rb"\{" + _WS + rb'"schema_version"' + _WS + rb":" + _WS
    + rb"(0|[1-9][0-9]{0,9})" + _WS + rb"," + _WS + rb'"runs"' + _WS + rb":" + _WS + rb"\{"
)
_BARE_HEADER = re.compile(rb"\A" + _WS + rb"\{")
#: A JSON string as it may appear in the file (no raw control characters).
_STRING = rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_KEY_PATTERNS: dict[int, re.Pattern[bytes]] = {}
#: The key the envelope of a versioned file has; a bare map holding it is not bare.
_SCHEMA_VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class ScannedEntries:
    """The entries of a runs file as byte spans.

    ``spans`` lists ``(key, start, end)`` for every member of the entries object in file
    order, duplicates included (JSON semantics: a later duplicate's value wins, at the
    first one's position). ``schema_version`` is the envelope's, or ``None`` for a bare
    (v0) map.
    """

    schema_version: int | None
    spans: list[tuple[str, int, int]]


def scan_entries(raw: bytes, lengths: Mapping[str, int] | None = None) -> ScannedEntries | None:
    """The entries' byte spans, or ``None`` when the layout is not one this scanner reads.

    ``lengths`` (each key's value length in the previous version of the file) lets the
    scan jump over values that kept their length instead of searching every line of
    them: where a predicted end is not followed by ``,`` and the next key, it searches
    as without hints. The caller must still check that every span is one complete JSON
    value (see the module docstring) before trusting the result; a wrong prediction
    gives a span that is not one (or is byte for byte a value that was), so hints change
    the speed, never the answer.
    """
    header = _VERSIONED_HEADER.match(raw)
    if header is not None:
        version: int | None = int(header.group(1))
        closing_braces = 2
    else:
        header = _BARE_HEADER.match(raw)
        if header is None:
            return None
        version = None
        closing_braces = 1
    body = header.end()
    end = _strip_closing(raw, len(raw), closing_braces)
    if end is None or end < body:
        return None
    first = _skip_ws(raw, body, end)
    if first == end:
        return ScannedEntries(version, [])  # an empty entries object
    newline = raw.rfind(b"\n", body, first)
    if raw[first] != 0x22 or newline < 0:  # '"' on a line of its own, or not this layout
        return None
    pattern = _key_pattern(first - newline - 1)
    if lengths:
        spans = _member_spans_hinted(raw, pattern, newline, end, lengths)
    else:
        spans = _member_spans(raw, pattern, newline, end)
    if spans is None:
        return None
    if version is None and any(key == _SCHEMA_VERSION_KEY for key, _, _ in spans):
        return None  # a versioned envelope in an order the header does not match
    return ScannedEntries(version, spans)


def _member_spans(
    raw: bytes, pattern: re.Pattern[bytes], start: int, end: int
) -> list[tuple[str, int, int]] | None:
    spans: list[tuple[str, int, int]] = []
    value_start = -1
    key = ""
    for match in pattern.finditer(raw, start, end):
        if value_start < 0:
            if match.start() != start:
                return None
        else:
            value_end = _before_separator(raw, value_start, match.start())
            if value_end is None:
                return None
            spans.append((key, value_start, value_end))
        decoded = _decode_key(match.group(1))
        if decoded is None:
            return None
        key = decoded
        value_start = match.end()
    if value_start < 0 or value_start >= end:
        return None
    spans.append((key, value_start, end))
    return spans


def _member_spans_hinted(
    raw: bytes, pattern: re.Pattern[bytes], start: int, end: int, lengths: Mapping[str, int]
) -> list[tuple[str, int, int]] | None:
    spans: list[tuple[str, int, int]] = []
    match = pattern.match(raw, start, end)
    while match is not None:
        key = _decode_key(match.group(1))
        if key is None:
            return None
        value_start = match.end()
        following = None
        length = lengths.get(key)
        if length is not None:
            predicted = value_start + length
            if predicted == end:
                spans.append((key, value_start, end))
                return spans
            if predicted < end and raw[predicted] == 0x2C:  # ','
                following = pattern.match(raw, predicted + 1, end)
                value_end = predicted
        if following is None:
            following = pattern.search(raw, value_start, end)
            if following is None:
                if value_start >= end:
                    return None
                spans.append((key, value_start, end))
                return spans
            value_end = _before_separator(raw, value_start, following.start())
            if value_end is None:
                return None
        spans.append((key, value_start, value_end))
        match = following
    return None


def _key_pattern(indent: int) -> re.Pattern[bytes]:
    pattern = _KEY_PATTERNS.get(indent)
    if pattern is None:
        pattern = re.compile(rb"\n" + b" " * indent + rb"(" + _STRING + rb")" + _WS + rb":" + _WS)
        _KEY_PATTERNS[indent] = pattern
    return pattern


def _decode_key(token: bytes) -> str | None:
    if b"\\" in token:
        import json

        try:
            return json.loads(token)
        except ValueError:
            return None
    try:
        return token[1:-1].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _skip_ws(raw: bytes, position: int, end: int) -> int:
    while position < end and raw[position] in _WS_BYTES:
        position += 1
    return position


def _strip_ws(raw: bytes, start: int, end: int) -> int:
    while end > start and raw[end - 1] in _WS_BYTES:
        end -= 1
    return end


def _strip_closing(raw: bytes, end: int, braces: int) -> int | None:
    """Where the last value ends, given ``braces`` closing braces (and whitespace) at the end."""
    for _ in range(braces):
        end = _strip_ws(raw, 0, end)
        if end == 0 or raw[end - 1] != 0x7D:  # '}'
            return None
        end -= 1
    return _strip_ws(raw, 0, end)


def _before_separator(raw: bytes, value_start: int, next_key: int) -> int | None:
    """The end of the value before ``ws , ws`` that ends at ``next_key``; None if not that."""
    end = _strip_ws(raw, value_start, next_key)
    if end <= value_start or raw[end - 1] != 0x2C:  # ','
        return None
    end = _strip_ws(raw, value_start, end - 1)
    return end if end > value_start else None
