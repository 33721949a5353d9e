"""Guess a feed file's format from its content, and its feed from names.

Self-describing formats (abuse.ch exports, Spamhaus, PhishTank, MISP
warninglists, Tor exit-addresses) are recognized by their columns or keys.
Plain lists (``ip_list``, ``url_list``, ``domain_list``) do not identify
their origin, so their feed must come from ``--feed``, a FireHOL header or a
file name hint in the catalog. A plain domain list is never taken for the
top-sites allow list on content alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import islice

from iocscope.errors import FeedError
from iocscope.feeds import canonical
from iocscope.feeds.catalog import (
    PART_SEPARATOR,
    FeedDefinition,
    feeds_for_format,
    get_feed,
)
from iocscope.feeds.formats import FORMATS, get_format
from iocscope.feeds.lines import data_lines, numbered_lines, split_csv
from iocscope.feeds.records import EntryKind

_SAMPLE_CHARS = 64 * 1024
_SAMPLE_LINES = 20
# Share of sampled data lines that must fit a plain-list format.
_LIST_MAJORITY = 0.8

# Column or key names that identify a CSV or JSON format.
_CSV_SIGNATURES = (
    ("feodo_csv", {"dst_ip", "c2_status"}),
    ("threatfox_csv", {"ioc_value", "ioc_type"}),
    ("malwarebazaar_csv", {"sha256_hash", "md5_hash"}),
    ("urlhaus_csv", {"url", "url_status"}),
    ("phishtank_csv", {"phish_id", "url"}),
)
_JSON_SIGNATURES = (
    ("threatfox_json", ('"ioc_value"', '"ioc_type"')),
    ("phishtank_json", ('"phish_id"', '"url"')),
    ("feodo_json", ('"ip_address"', '"malware"')),
    ("misp_warninglist", ('"list"', '"type"')),
)
_JSON_LINE_SIGNATURES = (
    ("spamhaus_drop_json", {"cidr", "sblid"}),
    ("spamhaus_asndrop_json", {"asn", "asname"}),
)
_DROP_LINE = re.compile(r"^\S+\s*;\s*SBL\d+", re.IGNORECASE)
_FIREHOL_NAME = re.compile(r"^#\s*([a-z][a-z0-9_.-]*)\s*$", re.IGNORECASE)


def detect_format(text: str) -> str:
    """Return the name of the format that ``text`` is in.

    JSON shapes are tried first, then CSV columns, then plain-list line
    shapes, and the first that fits wins. Raise FeedError listing the format
    names when none fits.
    """
    sample = text[:_SAMPLE_CHARS]
    found = _detect_json(sample) or _detect_csv(sample) or _detect_lines(sample)
    if found is None:
        raise FeedError(
            "cannot tell the feed format from the content; pass --format with "
            f"one of: {', '.join(FORMATS)}"
        )
    return found


def _detect_json(sample: str) -> str | None:
    first = next(data_lines(sample), (0, ""))[1]
    try:
        item = json.loads(first)
    except ValueError:
        item = None
    if isinstance(item, dict):
        for name, keys in _JSON_LINE_SIGNATURES:
            if keys <= item.keys():
                return name
    if not sample.lstrip().startswith(("[", "{")):
        return None
    for name, markers in _JSON_SIGNATURES:
        if all(marker in sample for marker in markers):
            return name
    return None


def _detect_csv(sample: str) -> str | None:
    for _, line in numbered_lines(sample):
        fields = {name.strip() for name in split_csv(line.strip().lstrip("#; "))}
        for name, columns in _CSV_SIGNATURES:
            if columns <= fields:
                return name
    return None


def _detect_lines(sample: str) -> str | None:
    lines = [line for _, line in islice(data_lines(sample), _SAMPLE_LINES)]
    if any(line.startswith("ExitNode ") for line in lines):
        return "tor_exit_addresses"
    if not lines:
        return None
    checks: tuple[tuple[str, Callable[[str], bool]], ...] = (
        ("spamhaus_drop_txt", lambda line: bool(_DROP_LINE.match(line))),
        ("ip_list", _is_address_line),
        ("tranco_csv", _is_rank_line),
        ("url_list", _is_url_line),
        ("domain_list", lambda line: canonical.fits(EntryKind.DOMAIN, line)),
    )
    for name, check in checks:
        if sum(map(check, lines)) >= _LIST_MAJORITY * len(lines):
            return name
    return None


def _is_address_line(line: str) -> bool:
    return canonical.fits(EntryKind.IP, line.split(None, 1)[0])


def _is_url_line(line: str) -> bool:
    return canonical.fits(EntryKind.URL, line)


def _is_rank_line(line: str) -> bool:
    rank, comma, domain = line.partition(",")
    return bool(comma) and rank.isdigit() and canonical.fits(EntryKind.DOMAIN, domain)


def resolve_feed(
    format_name: str,
    *,
    file_name: str,
    text: str,
    feed: str | None = None,
    format_given: bool = False,
) -> str:
    """Return the stored feed name for a file in ``format_name``.

    An explicit ``feed`` must accept the format. Otherwise a format owned by
    one feed picks it, except a plain list detected from content, which needs
    a FireHOL header or file name hint. MISP warninglists are stored one feed
    per list, named ``misp_warninglists:<list>`` after the file.
    """
    fmt = get_format(format_name)
    if feed is not None:
        definition = get_feed(feed)
        _check_accepts(definition, format_name)
        return _with_part(feed, definition, file_name)
    owners = feeds_for_format(format_name)
    if len(owners) == 1 and (format_given or not fmt.generic):
        return _with_part(owners[0].name, owners[0], file_name)
    hinted = _hinted_feeds(owners, _firehol_name(text), file_name)
    if len(hinted) == 1:
        return _with_part(hinted[0].name, hinted[0], file_name)
    names = ", ".join(owner.name for owner in owners)
    raise FeedError(
        f"cannot tell which feed {file_name} belongs to ({format_name}); "
        f"pass --feed with one of: {names}"
    )


def _check_accepts(definition: FeedDefinition, format_name: str) -> None:
    if format_name not in definition.formats:
        raise FeedError(
            f"feed {definition.name} does not take format {format_name}; "
            f"its formats are: {', '.join(definition.formats)}"
        )


def _hinted_feeds(
    owners: list[FeedDefinition], list_name: str | None, file_name: str
) -> list[FeedDefinition]:
    for candidate in (list_name, file_name):
        if not candidate:
            continue
        lowered = candidate.lower()
        hinted = [
            owner
            for owner in owners
            if any(hint in lowered for hint in owner.name_hints)
        ]
        if hinted:
            return hinted
    return []


def _firehol_name(text: str) -> str | None:
    """Return the list name a FireHOL header carries on a line of its own."""
    for _, line in numbered_lines(text[:4096]):
        if not line.startswith("#"):
            return None
        match = _FIREHOL_NAME.match(line.strip())
        if match:
            return match.group(1)
    return None


def _with_part(name: str, definition: FeedDefinition, file_name: str) -> str:
    if definition.name != "misp_warninglists" or PART_SEPARATOR in name:
        return name
    return f"{name}{PART_SEPARATOR}{warninglist_part(file_name)}"


def warninglist_part(file_name: str) -> str:
    """Name a warninglist after its file, or after its folder when the file
    is called ``list.json`` as in the misp-warninglists repository."""
    path = file_name.replace("\\", "/").rstrip("/")
    parts = [part for part in path.split("/") if part]
    stem = parts[-1].rsplit(".", 1)[0] if parts else "list"
    if stem == "list" and len(parts) > 1:
        stem = parts[-2]
    return re.sub(r"[^a-z0-9_.-]+", "-", stem.lower()) or "list"
