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
from collections.abc import Callable, Iterator, Mapping
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


# --- the same scan over a stream read in bounded chunks ----------------------------

#: How much of the stream is read at a time: the scan holds about one chunk and the
#: entry under its cursor, whatever the file's size.
CHUNK_SIZE = 256 * 1024
#: The envelope's header, and each key line (indent, key, ``:`` and the whitespace after
#: it), must fit in this many bytes for the chunked scan to see them across a chunk
#: edge. A longer one is left to the full parse: the scan gives up, or cuts a span that
#: does not parse.
KEY_LOOKAHEAD = 4096
_CLOSING_BYTES = re.compile(rb"[ \t\n\r}]*")


class ChunkedScan:
    """:func:`scan_entries` over a stream, holding one chunk (and the current entry) at a time.

    ``read(n)`` returns the next at most ``n`` bytes of the stream (``b""`` at its end),
    like a binary file's ``read``; or, for a regular file, ``pread(n, offset)`` returns
    the at most ``n`` bytes at ``offset`` (fewer only at the end), like ``os.pread``.
    :meth:`entries` yields ``(key, window, start, end)`` for each member in file order:
    the value is ``window[start:end]``, and ``window`` is good only until the next
    member is asked for (the caller hashes or copies it).
    When the iteration ends, :attr:`complete` says whether the whole stream was read as
    a layout the scanner understands; if it is not, what was yielded means nothing and
    the caller parses the whole file instead.

    The members are exactly the spans :func:`scan_entries` finds in the concatenated
    bytes, wherever the chunks are cut, provided the header and every key line fit in
    ``lookahead`` bytes (:data:`KEY_LOOKAHEAD`); when one does not, the scan is
    incomplete or a span it yields does not parse, so the caller falls back all the
    same. ``lengths`` are the same hints as :func:`scan_entries`'s. Read with ``pread``,
    a file rewritten in place during the scan is a torn read, as a plain ``read`` of it
    would be: each byte the scan checks or hashes is taken from one read of it.
    """

    def __init__(
        self,
        read: Callable[[int], bytes] | None = None,
        lengths: Mapping[str, int] | None = None,
        chunk_size: int = CHUNK_SIZE,
        *,
        pread: Callable[[int, int], bytes] | None = None,
        lookahead: int = KEY_LOOKAHEAD,
    ) -> None:
        if (read is None) == (pread is None):
            raise TypeError("ChunkedScan reads from exactly one of read and pread")
        self._read = read
        self._pread = pread
        self._lengths = lengths or {}
        self._chunk_size = max(int(chunk_size), 1)
        self._lookahead = max(int(lookahead), 1)
        # Positions below are offsets in the stream; the window holds the stream's bytes
        # from ``_base`` on.
        self._window = b""
        self._base = 0
        self._eof = False
        self._braces = 1
        #: The envelope's ``schema_version`` (``None`` for a bare map) once the header is read.
        self.schema_version: int | None = None
        #: Whether the whole stream was read and understood (meaningful once iteration ended).
        self.complete = False

    @property
    def _end(self) -> int:
        return self._base + len(self._window)

    @property
    def window_offset(self) -> int:
        """Where in the stream the window of the member last yielded starts: that
        member's value lies at ``window_offset + start`` to ``window_offset + end``."""
        return self._base

    def _fill(self, keep: int, upto: int) -> None:
        """Read until the window reaches ``upto`` (or the stream ends), dropping what lies
        before ``keep``. A window that must grow (one long entry) at least doubles per
        read, so a value of any length is read a bounded number of times."""
        if self._end >= upto or self._eof:
            return
        size = max(self._chunk_size + self._end - keep, upto - keep, 2 * (self._end - keep))
        if self._pread is not None:
            # Read from ``keep`` again rather than copy what the window holds of it: the
            # kernel copies a chunk once either way, and what is read again is one entry.
            # A file rewritten in place meanwhile gives other bytes there; that is a torn
            # read like any other, and every piece the scan checks or hashes comes from
            # the one window it was read in.
            self._window = self._pread(size, keep)
            self._base = keep
            self._eof = len(self._window) < size
            return
        assert self._read is not None
        kept = memoryview(self._window)[keep - self._base :]
        parts: list[bytes | memoryview] = [kept]
        reached = self._end
        while reached < keep + size:
            chunk = self._read(keep + size - reached)
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            reached += len(chunk)
        self._window = b"".join(parts)
        self._base = keep
        del parts
        kept.release()

    def _more(self, keep: int) -> None:
        self._fill(keep, self._end + self._chunk_size)

    def _match(self, pattern: re.Pattern[bytes], at: int, keep: int) -> tuple[bytes, int, int] | None:
        """The key line at ``at``: ``(key token, start, end)``, or ``None`` if there is none."""
        self._fill(keep, at + self._lookahead)
        while True:
            match = pattern.match(self._window, at - self._base)
            # The whitespace after the ':' may go on past the window: read on.
            if match is None or match.end() < len(self._window) or self._eof:
                if match is None:
                    return None
                return match.group(1), match.start() + self._base, match.end() + self._base
            self._more(keep)

    def _search(self, pattern: re.Pattern[bytes], start: int, keep: int) -> int | None:
        """Where the first complete key line at or after ``start`` begins (``None``: none before the end)."""
        while True:
            match = pattern.search(self._window, start - self._base)
            if match is not None and (match.end() < len(self._window) or self._eof):
                return match.start() + self._base
            if self._eof:
                return None
            # A key line cut by the window's end starts within its last ``lookahead`` bytes.
            start = match.start() + self._base if match is not None else max(start, self._end - self._lookahead)
            self._more(keep)

    def _closing_end(self, keep: int, position: int) -> int | None:
        """If only the closing braces (and whitespace) follow ``position`` to the end of
        the stream: where the last value ends, as :func:`_strip_closing` finds it. Reads
        on only while what follows could still be that."""
        while True:
            tail = _CLOSING_BYTES.match(self._window, position - self._base).end()
            if tail < len(self._window):
                return None
            if self._eof:
                end = _strip_closing(self._window, len(self._window), self._braces)
                return None if end is None else end + self._base
            self._more(keep)

    def _header(self) -> int | None:
        """Read the envelope's header: where the entries object's body starts."""
        self._fill(0, self._lookahead)
        header = _VERSIONED_HEADER.match(self._window)
        if header is not None:
            self.schema_version = int(header.group(1))
            self._braces = 2
        else:
            header = _BARE_HEADER.match(self._window)
            if header is None:
                return None
        return header.end()

    def entries(self) -> Iterator[tuple[str, bytes, int, int]]:
        """Each member as ``(key, window, start, end)``; see the class docstring."""
        body = self._header()
        if body is None:
            return
        first = body
        while True:  # the first key: after whitespace, '"' at the start of its line
            first = _skip_ws(self._window, first - self._base, len(self._window)) + self._base
            if first < self._end or self._eof:
                break
            self._more(body)
        if first == self._end:
            return
        if self._window[first - self._base] == 0x7D:  # '}': an empty entries object
            end = self._closing_end(body, body)
            if end is not None and end >= body:
                # As scan_entries: only whitespace between the header and the closing.
                self.complete = _skip_ws(self._window, body - self._base, end - self._base) == end - self._base
            return
        newline = self._window.rfind(b"\n", body - self._base, first - self._base)
        if self._window[first - self._base] != 0x22 or newline < 0:
            return
        cursor = newline + self._base  # the '\n' that starts the current member's key line
        pattern = _key_pattern(first - cursor - 1)
        saw_schema_key = False
        lengths = self._lengths
        line = self._match(pattern, cursor, cursor)
        while True:
            if line is None:
                return
            token, cursor, value_start = line
            key = _decode_key(token)
            if key is None:
                return
            saw_schema_key = saw_schema_key or key == _SCHEMA_VERSION_KEY
            length = lengths.get(key)
            if length is not None:
                # The common case, in the window as it is: the value kept its length, and
                # ',' and the next whole key line follow it (as _value_end would find).
                window, base = self._window, self._base
                predicted = value_start + length - base
                if predicted + 1 + self._lookahead <= len(window) and window[predicted] == 0x2C:
                    following = pattern.match(window, predicted + 1)
                    if following is not None and following.end() < len(window):
                        yield key, window, value_start - base, predicted
                        line = following.group(1), following.start() + base, following.end() + base
                        continue
            found = self._value_end(pattern, cursor, value_start, length)
            if found is None:
                return
            value_end, following_start = found
            if following_start is None and self.schema_version is None and saw_schema_key:
                return  # a versioned envelope in an order the header does not match
            yield key, self._window, value_start - self._base, value_end - self._base
            if following_start is None:
                self.complete = True
                return
            line = self._match(pattern, following_start, following_start)

    def _value_end(
        self, pattern: re.Pattern[bytes], cursor: int, value_start: int, length: int | None
    ) -> tuple[int, int | None] | None:
        """Where the value at ``value_start`` ends, and where the next key line starts
        (``None`` after the last member); ``None`` if the layout is not this scanner's."""
        if length is not None:
            predicted = value_start + length
            self._fill(cursor, predicted + 1 + self._lookahead)
            if predicted < self._end and self._window[predicted - self._base] == 0x2C:  # ','
                following = self._match(pattern, predicted + 1, cursor)
                if following is not None:
                    return predicted, following[1]
            elif predicted <= self._end and self._closing_end(cursor, predicted) == predicted:
                return predicted, None
        following_start = self._search(pattern, value_start, cursor)
        if following_start is None:  # the last member: its value runs to the closing braces
            end = _strip_closing(self._window, len(self._window), self._braces)
            if end is None or end + self._base <= value_start:
                return None
            return end + self._base, None
        value_end = _before_separator(self._window, value_start - self._base, following_start - self._base)
        if value_end is None:
            return None
        return value_end + self._base, following_start
