"""Feed file parsers, one function per format, registered in ``FORMATS``.

A parser takes the decoded file text and a :class:`ParseReport` and yields
:class:`FeedEntry` objects lazily. Unusable lines go to the report with their
line number, or item number in a JSON document, and never stop the parse. A
document that is not valid JSON at all raises :class:`FeedError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from iocscope.errors import FeedError
from iocscope.feeds import canonical
from iocscope.feeds.lines import (
    as_int,
    clean,
    collect,
    csv_records,
    data_lines,
    numbered_lines,
    pick,
)
from iocscope.feeds.records import EntryKind, FeedEntry, ParseReport

Parser = Callable[[str, ParseReport], Iterator[FeedEntry]]

# Ranks above this in a Tranco-style list are left out, because the long tail
# of a top-1M list contains malicious domains that must not be cleared.
TOP_SITES_MAX_RANK = 10_000


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    parse: Parser
    # True for plain lists whose content does not identify their feed.
    generic: bool = False


# -- abuse.ch -----------------------------------------------------------------

_FEODO_COLUMNS = (
    "first_seen_utc",
    "dst_ip",
    "dst_port",
    "c2_status",
    "last_online",
    "malware",
)
_FEODO_CSV_CONTEXT = {
    "first_seen_utc": "first_seen",
    "dst_port": "port",
    "c2_status": "status",
    "last_online": "last_online",
    "malware": "malware",
}
_FEODO_JSON_CONTEXT = {
    name: name
    for name in (
        "port",
        "status",
        "hostname",
        "as_number",
        "as_name",
        "country",
        "first_seen",
        "last_online",
        "malware",
    )
}


def parse_feodo_csv(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    def row_entries(row: dict[str, str]) -> list[FeedEntry]:
        context = pick(row, _FEODO_CSV_CONTEXT)
        context["port"] = as_int(context.get("port"))
        return [_entry(EntryKind.IP, row["dst_ip"], _compact(context))]

    records = csv_records(text, report, _FEODO_COLUMNS, "dst_ip")
    return collect(records, row_entries, report)


def parse_feodo_json(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    def item_entries(item: Any) -> list[FeedEntry]:
        context = pick(_require_object(item), _FEODO_JSON_CONTEXT)
        return [_entry(EntryKind.IP, _field(item, "ip_address"), context)]

    items = _json_array(text)
    return collect(_json_objects(items), item_entries, report, unit="item")


_URLHAUS_COLUMNS = (
    "id",
    "dateadded",
    "url",
    "url_status",
    "last_online",
    "threat",
    "tags",
    "urlhaus_link",
    "reporter",
)


def parse_urlhaus_csv(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    names = {name: name for name in _URLHAUS_COLUMNS if name != "url"}

    def row_entries(row: dict[str, str]) -> list[FeedEntry]:
        return [_entry(EntryKind.URL, row["url"], pick(row, names))]

    records = csv_records(text, report, _URLHAUS_COLUMNS, "url_status")
    return collect(records, row_entries, report)


_THREATFOX_COLUMNS = (
    "first_seen_utc",
    "ioc_id",
    "ioc_value",
    "ioc_type",
    "threat_type",
    "fk_malware",
    "malware_alias",
    "malware_printable",
    "last_seen_utc",
    "confidence_level",
    "reference",
    "tags",
    "anonymous",
    "reporter",
)
_THREATFOX_CONTEXT = {
    "ioc_id": "ioc_id",
    "ioc_type": "ioc_type",
    "threat_type": "threat_type",
    "fk_malware": "malware",
    "malware": "malware",
    "malware_alias": "malware_alias",
    "malware_printable": "malware_printable",
    "first_seen_utc": "first_seen_utc",
    "last_seen_utc": "last_seen_utc",
    "confidence_level": "confidence_level",
    "reference": "reference",
    "tags": "tags",
    "reporter": "reporter",
}
_THREATFOX_KINDS = {
    "domain": EntryKind.DOMAIN,
    "url": EntryKind.URL,
    "md5_hash": EntryKind.MD5,
    "sha1_hash": EntryKind.SHA1,
    "sha256_hash": EntryKind.SHA256,
}


def _threatfox_entry(row: Any) -> list[FeedEntry]:
    context = pick(_require_object(row), _THREATFOX_CONTEXT)
    context["confidence_level"] = as_int(context.get("confidence_level"))
    ioc_type = str(_field(row, "ioc_type")).lower()
    value = str(_field(row, "ioc_value"))
    if ioc_type == "ip:port":
        address, port = _split_ip_port(value)
        context["port"] = port
        return [_entry(EntryKind.IP, address, _compact(context))]
    kind = _THREATFOX_KINDS.get(ioc_type)
    if kind is None:
        raise ValueError(f"unsupported ioc_type {ioc_type!r}")
    return [_entry(kind, value, _compact(context))]


def parse_threatfox_csv(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    records = csv_records(text, report, _THREATFOX_COLUMNS, "ioc_value")
    return collect(records, _threatfox_entry, report)


def parse_threatfox_json(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    document = _json_document(text)
    if not isinstance(document, dict):
        raise FeedError("invalid ThreatFox JSON: expected an object keyed by IOC id")
    return collect(_threatfox_items(document), _threatfox_entry, report, "item")


def _threatfox_items(document: dict[str, Any]) -> Iterator[tuple[int, str, Any]]:
    number = 0
    for ioc_id, items in document.items():
        for item in items if isinstance(items, list) else [items]:
            number += 1
            text = json.dumps(item)[:200]
            if isinstance(item, dict):
                yield number, text, {"ioc_id": ioc_id, **item}
            else:
                yield number, text, None


_BAZAAR_COLUMNS = (
    "first_seen_utc",
    "sha256_hash",
    "md5_hash",
    "sha1_hash",
    "reporter",
    "file_name",
    "file_type_guess",
    "mime_type",
    "signature",
    "clamav",
    "vtpercent",
    "imphash",
    "ssdeep",
    "tlsh",
)
_BAZAAR_HASHES = {
    "sha256_hash": EntryKind.SHA256,
    "md5_hash": EntryKind.MD5,
    "sha1_hash": EntryKind.SHA1,
}


def parse_malwarebazaar_csv(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    names = {name: name for name in _BAZAAR_COLUMNS if name not in _BAZAAR_HASHES}

    def row_entries(row: dict[str, str]) -> list[FeedEntry]:
        context = pick(row, names) | pick(row, {k: k for k in _BAZAAR_HASHES})
        entries = [
            _entry(kind, value, context)
            for column, kind in _BAZAAR_HASHES.items()
            if (value := clean(row.get(column))) is not None
        ]
        if not entries:
            raise ValueError("no hash in the row")
        return entries

    records = csv_records(text, report, _BAZAAR_COLUMNS, "sha256_hash")
    return collect(records, row_entries, report)


# -- Spamhaus -----------------------------------------------------------------


def parse_spamhaus_drop_txt(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    def row_entries(line: str) -> list[FeedEntry]:
        network, _, sblid = line.partition(";")
        context = {"sblid": sblid.strip()} if sblid.strip() else {}
        return [_entry(EntryKind.CIDR, network, context)]

    records = ((n, line, line) for n, line in data_lines(text))
    return collect(records, row_entries, report)


def parse_spamhaus_drop_json(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    def item_entries(item: Any) -> list[FeedEntry]:
        context = pick(_require_object(item), {"sblid": "sblid", "rir": "rir"})
        return [_entry(EntryKind.CIDR, _field(item, "cidr"), context)]

    return collect(_json_lines(text, report), item_entries, report)


def parse_spamhaus_asndrop_json(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    names = {"rir": "rir", "domain": "domain", "cc": "cc", "asname": "asname"}

    def item_entries(item: Any) -> list[FeedEntry]:
        asn = str(_field(item, "asn"))
        return [_entry(EntryKind.ASN, asn, pick(item, names))]

    return collect(_json_lines(text, report), item_entries, report)


def _json_lines(text: str, report: ParseReport) -> Iterator[tuple[int, str, Any]]:
    """Yield the JSON objects of a JSON Lines feed. A ``"type": "metadata"``
    line goes to the report's metadata instead."""
    for number, line in data_lines(text):
        try:
            item = json.loads(line)
        except ValueError:
            report.bad(number, "invalid JSON", line)
            continue
        if isinstance(item, dict) and item.get("type") == "metadata":
            report.meta.update(item)
            continue
        yield number, line, item


# -- IP lists -----------------------------------------------------------------

# A FireHOL header names its list on a line of its own: "# firehol_level1".
_FIREHOL_NAME = re.compile(r"^#\s*([a-z][a-z0-9_.-]*)\s*$", re.IGNORECASE)


def parse_ip_list(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    """Parse one address or network per line, with or without a FireHOL
    header. Zero-padded IPv6 is accepted and canonicalized."""
    for number, line in numbered_lines(text):
        stripped = line.strip()
        if stripped.startswith("#"):
            _note_firehol_name(stripped, report)
        if not stripped or stripped.startswith(("#", ";")):
            continue
        try:
            yield _ip_list_entry(stripped)
        except ValueError as exc:
            report.bad(number, str(exc), line)


def _note_firehol_name(comment: str, report: ParseReport) -> None:
    match = _FIREHOL_NAME.match(comment)
    if match and "list_name" not in report.meta:
        report.meta["list_name"] = match.group(1)


# "192.0.2.44:8080" or "[2001:db8::1]:8080".
_HAS_PORT = re.compile(r"(?:[0-9.]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")


def _ip_list_entry(line: str) -> FeedEntry:
    value, *rest = line.split(None, 1)
    if rest and not rest[0].startswith(("#", ";")):
        raise ValueError("unexpected text after the address")
    if _HAS_PORT.fullmatch(value):
        # An "address:port" line lists the address; the port is context.
        address, port = _split_ip_port(value)
        kind, key = canonical.canonical_address(address)
        return FeedEntry(kind, key, {"port": port})
    kind, key = canonical.canonical_address(value)
    return FeedEntry(kind, key)


def parse_tor_exit_addresses(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    """Parse Tor's ``exit-addresses`` blocks: an ``ExitNode`` line, then
    ``Published``, ``LastStatus`` and one or more ``ExitAddress`` lines."""
    node: dict[str, str] | None = None
    for number, line in data_lines(text):
        keyword, _, value = line.partition(" ")
        if keyword == "ExitNode":
            node = {"fingerprint": value.strip()}
        elif node is None:
            report.bad(number, f"{keyword} before any ExitNode line", line)
        elif keyword in ("Published", "LastStatus"):
            node[keyword.lower()] = value.strip()
        elif keyword == "ExitAddress":
            address, _, seen = value.strip().partition(" ")
            try:
                kind, key = canonical.canonical_address(address)
            except ValueError as exc:
                report.bad(number, str(exc), line)
                continue
            yield FeedEntry(kind, key, {**node, "exit_seen": seen.strip()})
        else:
            report.bad(number, f"unknown keyword {keyword!r}", line)


# -- phishing -----------------------------------------------------------------

_PHISHTANK_COLUMNS = (
    "phish_id",
    "url",
    "phish_detail_url",
    "submission_time",
    "verified",
    "verification_time",
    "online",
    "target",
)
_PHISHTANK_CONTEXT = {name: name for name in _PHISHTANK_COLUMNS if name != "url"} | {
    "details": "details"
}


def _phishtank_entry(row: Any) -> list[FeedEntry]:
    context = pick(_require_object(row), _PHISHTANK_CONTEXT)
    context["phish_id"] = as_int(context.get("phish_id"))
    return [_entry(EntryKind.URL, _field(row, "url"), _compact(context))]


def parse_phishtank_csv(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    records = csv_records(text, report, _PHISHTANK_COLUMNS, "phish_id")
    return collect(records, _phishtank_entry, report)


def parse_phishtank_json(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    items = _json_array(text)
    return collect(_json_objects(items), _phishtank_entry, report, unit="item")


def parse_url_list(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    """Parse one URL per line, as in the OpenPhish community feed."""

    def row_entries(line: str) -> list[FeedEntry]:
        return [_entry(EntryKind.URL, line, {})]

    records = ((n, line, line) for n, line in data_lines(text))
    return collect(records, row_entries, report)


# -- allow lists ----------------------------------------------------------------


def parse_domain_list(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    """Parse one domain per line, such as a top-sites list. Each domain
    covers its subdomains."""

    def row_entries(line: str) -> list[FeedEntry]:
        return [_entry(EntryKind.HOSTNAME, line, {})]

    records = ((n, line, line) for n, line in data_lines(text))
    return collect(records, row_entries, report)


def parse_tranco_csv(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    """Parse ``rank,domain`` lines, keeping ranks up to TOP_SITES_MAX_RANK.
    The number of lines left out goes to the metadata as ``beyond_max_rank``."""

    def row_entries(line: str) -> list[FeedEntry]:
        rank_text, comma, domain = line.partition(",")
        if not comma or not rank_text.strip().isdigit():
            raise ValueError("expected rank,domain")
        rank = int(rank_text)
        if rank > TOP_SITES_MAX_RANK:
            report.meta["beyond_max_rank"] = report.meta.get("beyond_max_rank", 0) + 1
            return []
        return [_entry(EntryKind.HOSTNAME, domain, {"rank": rank})]

    records = ((n, line, line) for n, line in data_lines(text))
    return collect(records, row_entries, report)


_WARNINGLIST_KINDS = {
    "cidr": EntryKind.CIDR,
    "hostname": EntryKind.HOSTNAME,
    "substring": EntryKind.SUBSTRING,
}


def parse_misp_warninglist(text: str, report: ParseReport) -> Iterator[FeedEntry]:
    """Parse a MISP warninglist (types cidr, hostname, string, substring).

    Entries of a ``cidr`` list may be bare addresses. ``string`` entries are
    classified one by one (address, hash, URL, email or domain) and match
    exactly. The ``regex`` type is rejected.
    """
    document = _json_document(text)
    if not isinstance(document, dict) or not isinstance(document.get("list"), list):
        raise FeedError("invalid MISP warninglist: expected an object with a 'list'")
    list_type = str(document.get("type", "string"))
    if list_type not in (*_WARNINGLIST_KINDS, "string"):
        raise FeedError(f"MISP warninglist type {list_type!r} is not supported")
    report.meta.update(pick(document, {"name": "name", "description": "description"}))
    report.meta.update(pick(document, {"version": "version", "type": "type"}))
    kind = _WARNINGLIST_KINDS.get(list_type)

    def item_entries(value: Any) -> list[FeedEntry]:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if kind is None:
            found, key = canonical.classify(value)
            return [FeedEntry(found, key)]
        return [_entry(kind, value, {})]

    records = ((n, str(v), v) for n, v in enumerate(document["list"], start=1))
    return collect(records, item_entries, report, unit="item")


# -- helpers ------------------------------------------------------------------


def _entry(kind: EntryKind, raw: Any, context: dict[str, Any]) -> FeedEntry:
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise ValueError(f"missing or invalid {kind.value} value")
    found, key = canonical.canonical(kind, str(raw))
    return FeedEntry(found, key, context)


def _require_object(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError("expected a JSON object")
    return item


def _field(item: Any, name: str) -> Any:
    value = clean(_require_object(item).get(name))
    if value is None:
        raise ValueError(f"missing field {name!r}")
    return value


def _compact(context: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in context.items() if value is not None}


def _split_ip_port(value: str) -> tuple[str, int]:
    address, colon, port = value.strip().rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError("invalid ip:port value")
    return address.strip("[]"), int(port)


def _json_document(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FeedError(f"invalid JSON: {exc}") from None


def _json_array(text: str) -> list[Any]:
    document = _json_document(text)
    if not isinstance(document, list):
        raise FeedError("invalid JSON feed: expected an array of objects")
    return document


def _json_objects(items: Iterable[Any]) -> Iterator[tuple[int, str, Any]]:
    for number, item in enumerate(items, start=1):
        yield number, json.dumps(item)[:200], item


FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format("feodo_csv", "Feodo Tracker ipblocklist.csv", parse_feodo_csv),
        Format("feodo_json", "Feodo Tracker ipblocklist.json", parse_feodo_json),
        Format("urlhaus_csv", "URLhaus csv_online export", parse_urlhaus_csv),
        Format("threatfox_csv", "ThreatFox CSV export", parse_threatfox_csv),
        Format("threatfox_json", "ThreatFox JSON export", parse_threatfox_json),
        Format(
            "malwarebazaar_csv", "MalwareBazaar CSV export", parse_malwarebazaar_csv
        ),
        Format(
            "spamhaus_drop_txt",
            "Spamhaus DROP legacy text (CIDR ; SBLnnn)",
            parse_spamhaus_drop_txt,
        ),
        Format(
            "spamhaus_drop_json",
            "Spamhaus DROP JSON Lines, IPv4 or IPv6",
            parse_spamhaus_drop_json,
        ),
        Format(
            "spamhaus_asndrop_json",
            "Spamhaus ASN-DROP JSON Lines",
            parse_spamhaus_asndrop_json,
        ),
        Format(
            "ip_list",
            "one address or network per line: FireHOL netset/ipset, "
            "blocklist.de, CINS Army, Tor bulk exit list",
            parse_ip_list,
            generic=True,
        ),
        Format(
            "tor_exit_addresses",
            "Tor exit-addresses (ExitNode blocks)",
            parse_tor_exit_addresses,
        ),
        Format("phishtank_csv", "PhishTank online-valid.csv", parse_phishtank_csv),
        Format("phishtank_json", "PhishTank online-valid.json", parse_phishtank_json),
        Format(
            "url_list",
            "one URL per line (OpenPhish feed.txt)",
            parse_url_list,
            generic=True,
        ),
        Format("misp_warninglist", "MISP warninglist JSON", parse_misp_warninglist),
        Format("tranco_csv", "Tranco rank,domain CSV", parse_tranco_csv),
        Format(
            "domain_list",
            "one domain per line (top-sites list)",
            parse_domain_list,
            generic=True,
        ),
    )
}


def get_format(name: str) -> Format:
    """Return the format called ``name``, or raise FeedError listing the
    known names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FeedError(
            f"unknown feed format {name!r}; known formats: {', '.join(FORMATS)}"
        ) from None
