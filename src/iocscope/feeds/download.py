"""Update feeds from their download URLs.

Each download uses explicit connect and read timeouts, follows at most a few
redirects and stops past a size cap. A feed is replaced only when every one
of its downloads arrived and parsed to at least one entry, so a failed
update keeps the previous data. :func:`update_feeds` reports download and
parse failures per feed in its outcomes, and raises only for an unknown
feed name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

import httpx

from iocscope.errors import FeedError
from iocscope.feeds.catalog import (
    FEEDS,
    PART_SEPARATOR,
    Download,
    FeedDefinition,
    get_feed,
)
from iocscope.feeds.detect import detect_format, warninglist_part
from iocscope.feeds.importer import FeedFile, import_files
from iocscope.feeds.payload import decode_payload
from iocscope.feeds.store import FeedInfo, FeedStore

# Called with (label, bytes received, total bytes or None) while downloading.
ProgressCallback = Callable[[str, int, int | None], None]

_OFFLINE_HINT = "check the network or import a file with `iocscope feeds import`"


@dataclass(frozen=True)
class DownloadLimits:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_redirects: int = 5
    # Largest response body accepted, in bytes (after content decoding).
    max_bytes: int = 256 * 1024 * 1024


class UpdateStatus(StrEnum):
    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class UpdateOutcome:
    feed: str
    status: UpdateStatus
    message: str = ""
    info: FeedInfo | None = None
    files: list[FeedFile] = field(default_factory=list)


def make_client(limits: DownloadLimits) -> httpx.Client:
    timeout = httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        headers={"User-Agent": "iocscope-feeds"},
    )


def update_feeds(
    store: FeedStore,
    names: Sequence[str] = (),
    *,
    urls: Mapping[str, str] | None = None,
    limits: DownloadLimits | None = None,
    client: httpx.Client | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> list[UpdateOutcome]:
    """Download and import the named feeds, or every catalog feed.

    ``urls`` maps a feed name to a URL that replaces the catalog's URLs for
    that feed. A feed that needs a key and has no configured URL is skipped,
    or failed when it was named explicitly. A feed downloaded
    more recently than its provider allows is skipped unless ``force``.
    """
    limits = limits or DownloadLimits()
    definitions = [get_feed(name) for name in names] or list(FEEDS)
    http = client or make_client(limits)
    run = _Run(store, http, limits, progress, force=force, named=bool(names))
    try:
        return [
            outcome
            for definition in definitions
            for outcome in run.update(definition, dict(urls or {}))
        ]
    finally:
        if client is None:
            http.close()


@dataclass
class _Run:
    """Settings shared by the feeds of one ``update_feeds`` call."""

    store: FeedStore
    client: httpx.Client
    limits: DownloadLimits
    progress: ProgressCallback | None
    force: bool
    named: bool

    def update(
        self, definition: FeedDefinition, overrides: Mapping[str, str]
    ) -> list[UpdateOutcome]:
        downloads = feed_downloads(definition, overrides)
        if not downloads:
            reason = definition.key_help or "the catalog has no download URL for it"
            status = UpdateStatus.FAILED if self.named else UpdateStatus.SKIPPED
            return [UpdateOutcome(definition.name, status, reason)]
        too_soon = None if self.force else _too_soon(self.store, definition)
        if too_soon is not None:
            return [UpdateOutcome(definition.name, UpdateStatus.SKIPPED, too_soon)]
        return [
            _update_group(self, feed, group)
            for feed, group in _groups(definition, downloads)
        ]


def _too_soon(store: FeedStore, definition: FeedDefinition) -> str | None:
    """Return why a download now would come sooner than the provider allows."""
    if not definition.min_interval_s:
        return None
    ages = [
        (datetime.now(UTC) - info.imported_at).total_seconds()
        for info in store.feed_family(definition.name)
    ]
    if not ages or min(ages) >= definition.min_interval_s:
        return None
    return (
        f"downloaded {int(min(ages) // 60)} minutes ago, and the provider asks for "
        f"at most one download every {definition.min_interval_s // 60} minutes; "
        "pass --force to download anyway"
    )


def feed_downloads(
    definition: FeedDefinition, overrides: Mapping[str, str]
) -> list[Download]:
    """Return the downloads of a feed: its configured URL, or the catalog's.

    A configured URL's format is detected from the content, falling back to
    the feed's first format.
    """
    url = overrides.get(definition.name)
    if not url:
        return list(definition.downloads)
    part = None
    if definition.name == "misp_warninglists":
        part = warninglist_part(urlsplit(url).path)
    return [Download(url, "", part)]


def _groups(
    definition: FeedDefinition, downloads: list[Download]
) -> Iterator[tuple[str, list[Download]]]:
    groups: dict[str, list[Download]] = {}
    for download in downloads:
        name = definition.name
        if download.part:
            name = f"{name}{PART_SEPARATOR}{download.part}"
        groups.setdefault(name, []).append(download)
    yield from groups.items()


def _update_group(run: _Run, feed: str, downloads: list[Download]) -> UpdateOutcome:
    try:
        files = [_fetch_file(run, feed, download) for download in downloads]
        info = import_files(run.store, files)
    except FeedError as exc:
        return UpdateOutcome(
            feed, UpdateStatus.FAILED, f"{exc.message}; the previous data is kept"
        )
    return UpdateOutcome(feed, UpdateStatus.UPDATED, info=info, files=files)


def _fetch_file(run: _Run, feed: str, download: Download) -> FeedFile:
    file_name = urlsplit(download.url).path.rstrip("/").rsplit("/", 1)[-1]
    label = f"{feed} {file_name}"
    data = fetch(run.client, download.url, run.limits, run.progress, label=label)
    text = decode_payload(data, download.url)
    fmt = download.format or _detect_or_default(text, get_feed(feed))
    return FeedFile(source=download.url, text=text, format=fmt, feed=feed)


def _detect_or_default(text: str, definition: FeedDefinition) -> str:
    try:
        found = detect_format(text)
    except FeedError:
        found = None
    if found in definition.formats:
        return str(found)
    return definition.formats[0]


def fetch(
    client: httpx.Client,
    url: str,
    limits: DownloadLimits,
    progress: ProgressCallback | None = None,
    *,
    label: str = "",
) -> bytes:
    """Download ``url`` into memory.

    Raises FeedError naming what failed, the host, and what to do next.
    """
    host = urlsplit(url).netloc or url
    try:
        return _stream(client, url, limits, progress, label or host)
    except httpx.TimeoutException as exc:
        raise FeedError(_timeout_message(exc, host, limits)) from None
    except httpx.TooManyRedirects:
        raise FeedError(
            f"too many redirects from {url} (more than {limits.max_redirects})"
        ) from None
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        raise FeedError(f"{host} returned HTTP {code} for {url}") from None
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise FeedError(f"could not reach {host}: {reason}; {_OFFLINE_HINT}") from None


def _stream(
    client: httpx.Client,
    url: str,
    limits: DownloadLimits,
    progress: ProgressCallback | None,
    label: str,
) -> bytes:
    with client.stream("GET", url) as response:
        response.raise_for_status()
        total = _content_length(response)
        if total is not None and total > limits.max_bytes:
            raise FeedError(_too_large(url, limits))
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > limits.max_bytes:
                raise FeedError(_too_large(url, limits))
            chunks.append(chunk)
            if progress is not None:
                progress(label, received, total)
    return b"".join(chunks)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _too_large(url: str, limits: DownloadLimits) -> str:
    return f"{url} is larger than the {limits.max_bytes // (1024 * 1024)} MiB limit"


def _timeout_message(
    exc: httpx.TimeoutException, host: str, limits: DownloadLimits
) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return (
            f"could not reach {host}: no connection within "
            f"{limits.connect_timeout_s:g} s; {_OFFLINE_HINT}"
        )
    return f"{host} timed out: no data for {limits.read_timeout_s:g} s; {_OFFLINE_HINT}"
