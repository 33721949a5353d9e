"""Import feed files into the store: detect, parse, replace.

Files that resolve to the same stored feed are imported together in one
transaction, so importing Spamhaus ``drop_v4.json`` and ``drop_v6.json`` in
one call keeps both. A feed whose files cannot all be read or parsed keeps
its previous entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iocscope.errors import FeedError
from iocscope.feeds.catalog import get_feed
from iocscope.feeds.detect import detect_format, resolve_feed
from iocscope.feeds.formats import get_format
from iocscope.feeds.payload import decode_payload
from iocscope.feeds.records import FeedEntry, ParseReport
from iocscope.feeds.store import FeedInfo, FeedStore


@dataclass
class FeedFile:
    """One file ready to parse: its text, format and target feed."""

    source: str
    text: str
    format: str
    feed: str
    report: ParseReport = field(default_factory=ParseReport)
    entry_count: int = 0


@dataclass
class FileFailure:
    source: str
    message: str


@dataclass
class ImportResult:
    files: list[FeedFile] = field(default_factory=list)
    feeds: list[FeedInfo] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def prepare_text(
    text: str,
    source: str,
    *,
    format_name: str | None = None,
    feed: str | None = None,
) -> FeedFile:
    """Detect the format (unless given) and the feed of ``text``.

    A named feed that has a single format implies that format.
    """
    if format_name is None and feed is not None:
        formats = get_feed(feed).formats
        if len(formats) == 1:
            format_name = formats[0]
    fmt = format_name or detect_format(text)
    get_format(fmt)
    name = resolve_feed(
        fmt,
        file_name=source,
        text=text,
        feed=feed,
        format_given=format_name is not None,
    )
    return FeedFile(source=source, text=text, format=fmt, feed=name)


def read_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_payload(data, str(path))


def import_paths(
    store: FeedStore,
    paths: Sequence[Path],
    *,
    format_name: str | None = None,
    feed: str | None = None,
) -> ImportResult:
    """Import ``paths`` and report each file.

    A file that fails is reported and its feed keeps its previous entries,
    while the other feeds are still imported.
    """
    result = ImportResult()
    prepared: list[FeedFile] = []
    for path in paths:
        try:
            text = read_file(path)
            prepared.append(
                prepare_text(text, str(path), format_name=format_name, feed=feed)
            )
        except FeedError as exc:
            result.failures.append(FileFailure(str(path), exc.message))
    failed = {failure.source for failure in result.failures}
    for group in group_by_feed(prepared):
        if any(item.source in failed for item in group):
            continue
        _import_group(store, group, result)
    return result


def group_by_feed(files: Iterable[FeedFile]) -> list[list[FeedFile]]:
    groups: dict[str, list[FeedFile]] = {}
    for item in files:
        groups.setdefault(item.feed, []).append(item)
    return list(groups.values())


def _import_group(
    store: FeedStore, group: list[FeedFile], result: ImportResult
) -> None:
    try:
        info = import_files(store, group)
    except FeedError as exc:
        for item in group:
            result.failures.append(FileFailure(item.source, exc.message))
        return
    result.files.extend(group)
    result.feeds.append(info)


def import_files(store: FeedStore, group: Sequence[FeedFile]) -> FeedInfo:
    """Parse the files of one feed and replace its entries in one transaction.

    Raises FeedError when a file is not in its format at all. The feed then
    keeps its previous entries.
    """
    return store.replace_feed(
        group[0].feed,
        format=",".join(dict.fromkeys(item.format for item in group)),
        source=", ".join(item.source for item in group),
        entries=_all_entries(group),
        reports=[item.report for item in group],
    )


def _all_entries(group: Sequence[FeedFile]) -> Iterator[FeedEntry]:
    """Yield the entries of every file, then raise FeedError when there were
    none. The error rolls the replacement back, so an error page or a file
    in another format never empties a feed."""
    for item in group:
        parse = get_format(item.format).parse
        for entry in parse(item.text, item.report):
            item.entry_count += 1
            yield entry
        # A feed file can be hundreds of MB, so free it once parsed.
        item.text = ""
    if not any(item.entry_count for item in group):
        bad = sum(item.report.bad_count for item in group)
        sources = ", ".join(item.source for item in group)
        raise FeedError(f"no valid entries in {sources} ({bad} bad lines)")
