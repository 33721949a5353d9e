"""Line and CSV reading shared by the feed parsers.

Comment lines start with ``#`` or ``;``, blank lines are skipped, and a
trailing ``\\r`` is removed. Headers are found by a known column name, in a
comment or in the data, so the length of a comment banner never matters.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from iocscope.feeds.records import FeedEntry, ParseReport

# Values the feeds use for "no value".
_EMPTY_VALUES = frozenset({"", "none", "n/a", "null", "-"})

Record = tuple[int, str]


def numbered_lines(text: str) -> Iterator[Record]:
    """Yield ``(line number, line)`` for every line, without its line end.

    Only ``\n`` ends a line. Slicing ``text`` keeps memory flat, where
    ``io.StringIO`` would copy the whole feed at four bytes per character.
    """
    start = 0
    number = 0
    size = len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        number += 1
        yield number, text[start:end].rstrip("\r")
        start = end + 1


def is_comment(stripped: str) -> bool:
    return stripped.startswith(("#", ";"))


def data_lines(text: str) -> Iterator[Record]:
    """Yield numbered lines that are neither blank nor comments, stripped."""
    for number, line in numbered_lines(text):
        stripped = line.strip()
        if stripped and not is_comment(stripped):
            yield number, stripped


def split_csv(line: str) -> list[str]:
    """Split one CSV line. Quoted fields may contain commas, and a space
    after a comma, as ThreatFox exports write it, is ignored."""
    try:
        return next(csv.reader([line], skipinitialspace=True), [])
    except csv.Error:
        # A stray carriage return or NUL inside a field: the caller reports the
        # line as bad because its field count cannot match.
        return []


def csv_records(
    text: str, report: ParseReport, columns: Sequence[str], key_column: str
) -> Iterator[tuple[int, str, dict[str, str]]]:
    """Yield ``(line number, line, row)`` for each data row of a CSV feed.

    A line, commented or not, whose fields include ``key_column`` is a header
    and sets the column names. Until one is seen, ``columns`` (the documented
    order) applies. A row with the wrong number of fields is a bad line.
    """
    header = list(columns)
    for number, line in numbered_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        body = stripped.lstrip("#; ") if is_comment(stripped) else stripped
        fields = split_csv(body)
        if key_column in fields:
            header = [name.strip() for name in fields]
            continue
        if is_comment(stripped):
            continue
        if len(fields) != len(header):
            reason = f"expected {len(header)} fields, found {len(fields)}"
            report.bad(number, reason, line)
            continue
        yield number, line, dict(zip(header, fields, strict=True))


def clean(value: Any) -> Any:
    """Return ``value`` stripped, or None for the feeds' empty markers."""
    if isinstance(value, str):
        text = value.strip()
        return None if text.lower() in _EMPTY_VALUES else text
    return value


def pick(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Build an entry context from ``row``.

    ``names`` maps a feed field to its context key. Empty values are left out.
    """
    context: dict[str, Any] = {}
    for field, key in names.items():
        value = clean(row.get(field))
        if value is not None:
            context[key] = value
    return context


def as_int(value: Any) -> Any:
    """Return ``value`` as an int when it is a decimal string, else as is."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


RowParser = Callable[[Any], Iterable[FeedEntry]]


def collect(
    records: Iterable[tuple[int, str, Any]],
    row_parser: RowParser,
    report: ParseReport,
    unit: str = "line",
) -> Iterator[FeedEntry]:
    """Run ``row_parser`` on each record, turning a ``ValueError`` into a bad
    line that names the record."""
    for number, text, row in records:
        try:
            entries = list(row_parser(row))
        except ValueError as exc:
            report.bad(number, str(exc), text, unit)
            continue
        yield from entries
