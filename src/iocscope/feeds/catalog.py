"""The feed catalog: what each known feed is, where to get it, what a listing means.

Every feed is declared once here as data. Sources, the importer, the
downloader and ``iocscope feeds list`` all read this table. Download URLs are
the providers' documented public URLs.

Tag and summary templates use ``str.format`` fields naming context keys of the
matched entry, plus ``title`` and ``matched`` (the matched key, such as the
listed range). A tag template yields one tag per comma-separated value, and
none when a field is missing. Summary templates are tried in order and the
first whose fields are all present is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from iocscope.errors import FeedError
from iocscope.models import HASH_TYPES, ObservableType, Verdict

IP_TYPES = frozenset({ObservableType.IP})
RANGE_TYPES = frozenset({ObservableType.IP, ObservableType.CIDR})
URL_TYPES = frozenset({ObservableType.URL})

# Separates a catalog name from a part name in a stored feed name, as in
# "misp_warninglists:cloudflare". All parts of a feed are queried together.
PART_SEPARATOR = ":"


class FeedRole(StrEnum):
    BLOCK = "block"  # a listing flags the observable
    CONTEXT = "context"  # a listing is context only (Tor exits)
    ALLOW = "allow"  # a listing marks the observable known-benign


@dataclass(frozen=True)
class Download:
    url: str
    format: str
    # Part name for feeds stored per list, such as one MISP warninglist.
    part: str | None = None


@dataclass(frozen=True)
class FeedDefinition:
    name: str
    title: str
    description: str
    role: FeedRole
    verdict: Verdict
    types: frozenset[ObservableType]
    formats: tuple[str, ...]
    downloads: tuple[Download, ...] = ()
    weight: float = 1.0
    confidence: float = 0.8
    # Context field holding a 0-100 confidence that overrides ``confidence``.
    confidence_field: str | None = None
    tags: tuple[str, ...] = ()
    summaries: tuple[str, ...] = ()
    # Substrings of file names or FireHOL list names that identify the feed.
    name_hints: tuple[str, ...] = ()
    # How to get a download URL when the feed needs a personal key.
    key_help: str | None = None
    # Minimum seconds between downloads that the provider requests. An update
    # sooner than that is skipped unless forced.
    min_interval_s: int = 0
    homepage: str = ""

    @property
    def needs_key(self) -> bool:
        return self.key_help is not None


_WARNINGLIST_URL = (
    "https://raw.githubusercontent.com/MISP/misp-warninglists/HEAD/lists/{}/list.json"
)

FEEDS: tuple[FeedDefinition, ...] = (
    FeedDefinition(
        name="feodo_tracker",
        title="Feodo Tracker",
        description="abuse.ch botnet C2 servers (Dridex, Emotet, QakBot, Pikabot)",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=IP_TYPES,
        formats=("feodo_json", "feodo_csv"),
        downloads=(
            Download(
                "https://feodotracker.abuse.ch/downloads/ipblocklist.json",
                "feodo_json",
            ),
        ),
        confidence=0.9,
        tags=("botnet:feodo", "malware:{malware}"),
        summaries=(
            "listed in Feodo Tracker as {malware} C2 since {first_seen:.10}",
            "listed in Feodo Tracker as {malware} C2",
            "listed in Feodo Tracker",
        ),
        name_hints=("feodo",),
        homepage="https://feodotracker.abuse.ch/",
    ),
    FeedDefinition(
        name="urlhaus",
        title="URLhaus",
        description="abuse.ch URLs serving malware (online URLs)",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=URL_TYPES,
        formats=("urlhaus_csv",),
        downloads=(
            Download("https://urlhaus.abuse.ch/downloads/csv_online/", "urlhaus_csv"),
        ),
        confidence=0.9,
        tags=("threat:{threat}", "urlhaus:{tags}"),
        summaries=(
            "listed in URLhaus as {threat} ({url_status}) since {dateadded:.10}",
            "listed in URLhaus",
        ),
        name_hints=("urlhaus",),
        homepage="https://urlhaus.abuse.ch/",
    ),
    FeedDefinition(
        name="threatfox",
        title="ThreatFox",
        description="abuse.ch IOCs (C2 addresses, domains, URLs, hashes), recent",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=frozenset(
            {
                ObservableType.IP,
                ObservableType.DOMAIN,
                ObservableType.URL,
                ObservableType.MD5,
                ObservableType.SHA1,
                ObservableType.SHA256,
            }
        ),
        formats=("threatfox_json", "threatfox_csv"),
        downloads=(
            Download(
                "https://threatfox.abuse.ch/export/json/recent/", "threatfox_json"
            ),
        ),
        confidence=0.75,
        confidence_field="confidence_level",
        tags=("threat:{threat_type}", "malware:{malware_printable}"),
        summaries=(
            "listed in ThreatFox as {malware_printable} {threat_type} "
            "since {first_seen_utc:.10}",
            "listed in ThreatFox as {threat_type}",
            "listed in ThreatFox",
        ),
        name_hints=("threatfox",),
        homepage="https://threatfox.abuse.ch/",
    ),
    FeedDefinition(
        name="malwarebazaar",
        title="MalwareBazaar",
        description="abuse.ch malware samples (hashes), recent additions",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=frozenset(HASH_TYPES - {ObservableType.SHA512}),
        formats=("malwarebazaar_csv",),
        downloads=(
            Download("https://bazaar.abuse.ch/export/csv/recent/", "malwarebazaar_csv"),
        ),
        confidence=0.95,
        tags=("malware:{signature}",),
        summaries=(
            "listed in MalwareBazaar as a {signature} sample "
            "since {first_seen_utc:.10}",
            "listed in MalwareBazaar since {first_seen_utc:.10}",
            "listed in MalwareBazaar",
        ),
        name_hints=("malwarebazaar", "bazaar"),
        homepage="https://bazaar.abuse.ch/",
    ),
    FeedDefinition(
        name="spamhaus_drop",
        title="Spamhaus DROP",
        description="Spamhaus Don't Route Or Peer networks (IPv4 and IPv6)",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=RANGE_TYPES,
        formats=("spamhaus_drop_json", "spamhaus_drop_txt"),
        downloads=(
            Download(
                "https://www.spamhaus.org/drop/drop_v4.json", "spamhaus_drop_json"
            ),
            Download(
                "https://www.spamhaus.org/drop/drop_v6.json", "spamhaus_drop_json"
            ),
        ),
        confidence=0.9,
        tags=("spamhaus:drop", "sbl:{sblid}"),
        summaries=(
            "listed in Spamhaus DROP: range {matched} ({sblid})",
            "listed in Spamhaus DROP: range {matched}",
        ),
        name_hints=("spamhaus_drop", "drop_v4", "drop_v6"),
        min_interval_s=3600,
        homepage="https://www.spamhaus.org/drop/",
    ),
    FeedDefinition(
        name="spamhaus_asndrop",
        title="Spamhaus ASN-DROP",
        description="Spamhaus autonomous systems to drop, stored by AS number",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        # No observable type carries an AS number, so no source serves this
        # feed. Its entries are stored and counted, and FeedStore.match_keys
        # with kind "asn" reads them.
        types=frozenset(),
        formats=("spamhaus_asndrop_json",),
        downloads=(
            Download(
                "https://www.spamhaus.org/drop/asndrop.json", "spamhaus_asndrop_json"
            ),
        ),
        confidence=0.9,
        tags=("spamhaus:asndrop",),
        summaries=("listed in Spamhaus ASN-DROP: AS{matched} ({asname})",),
        name_hints=("asndrop",),
        min_interval_s=3600,
        homepage="https://www.spamhaus.org/drop/",
    ),
    FeedDefinition(
        name="firehol_level1",
        title="FireHOL level1",
        description="FireHOL level1: attack sources, C2s and bogons (so private "
        "ranges too), aggregated",
        role=FeedRole.BLOCK,
        verdict=Verdict.SUSPICIOUS,
        types=RANGE_TYPES,
        formats=("ip_list",),
        downloads=(
            Download(
                "https://iplists.firehol.org/files/firehol_level1.netset", "ip_list"
            ),
        ),
        weight=0.6,
        confidence=0.6,
        tags=("firehol:level1",),
        summaries=("listed in FireHOL level1 ({matched})",),
        name_hints=("firehol_level1",),
        homepage="https://iplists.firehol.org/",
    ),
    FeedDefinition(
        name="blocklist_de",
        title="blocklist.de",
        description="blocklist.de: addresses that attacked fail2ban hosts (48 h)",
        role=FeedRole.BLOCK,
        verdict=Verdict.SUSPICIOUS,
        types=IP_TYPES,
        formats=("ip_list",),
        downloads=(Download("https://lists.blocklist.de/lists/all.txt", "ip_list"),),
        weight=0.5,
        confidence=0.5,
        tags=("attack-source:blocklist_de",),
        summaries=("listed in blocklist.de as an attack source",),
        name_hints=("blocklist_de", "blocklist.de"),
        homepage="https://www.blocklist.de/",
    ),
    FeedDefinition(
        name="cins_army",
        title="CINS Army",
        description="CINS Army: addresses with a poor Rogue Packet score",
        role=FeedRole.BLOCK,
        verdict=Verdict.SUSPICIOUS,
        types=IP_TYPES,
        formats=("ip_list",),
        downloads=(Download("https://cinsscore.com/list/ci-badguys.txt", "ip_list"),),
        weight=0.5,
        confidence=0.5,
        tags=("attack-source:cins_army",),
        summaries=("listed in CINS Army as an attack source",),
        name_hints=("cins", "ciarmy", "ci-badguys"),
        homepage="https://cinsscore.com/",
    ),
    FeedDefinition(
        name="tor_exit",
        title="Tor exit nodes",
        description="Tor exit relay addresses, as context rather than a verdict",
        role=FeedRole.CONTEXT,
        verdict=Verdict.UNKNOWN,
        types=IP_TYPES,
        formats=("ip_list", "tor_exit_addresses"),
        downloads=(
            Download("https://check.torproject.org/torbulkexitlist", "ip_list"),
        ),
        weight=0.0,
        confidence=1.0,
        tags=("tor-exit",),
        summaries=(
            "Tor exit node (last status {laststatus})",
            "Tor exit node",
        ),
        name_hints=("tor_exit", "tor-exit", "torbulkexitlist", "exit-addresses"),
        homepage="https://check.torproject.org/",
    ),
    FeedDefinition(
        name="phishtank",
        title="PhishTank",
        description="PhishTank verified, online phishing URLs",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=URL_TYPES,
        formats=("phishtank_json", "phishtank_csv"),
        confidence=0.9,
        tags=("phishing", "target:{target}"),
        summaries=(
            "listed in PhishTank as phishing ({target}) since {submission_time:.10}",
            "listed in PhishTank as phishing",
        ),
        name_hints=("phishtank",),
        key_help=(
            "PhishTank downloads need an application key: set feed_urls.phishtank "
            "to http://data.phishtank.com/data/YOUR_APP_KEY/online-valid.json"
        ),
        homepage="https://phishtank.org/",
    ),
    FeedDefinition(
        name="openphish",
        title="OpenPhish",
        description="OpenPhish community feed of phishing URLs",
        role=FeedRole.BLOCK,
        verdict=Verdict.MALICIOUS,
        types=URL_TYPES,
        formats=("url_list",),
        downloads=(Download("https://openphish.com/feed.txt", "url_list"),),
        confidence=0.8,
        tags=("phishing",),
        summaries=("listed in OpenPhish as phishing",),
        name_hints=("openphish",),
        homepage="https://openphish.com/",
    ),
    FeedDefinition(
        name="misp_warninglists",
        title="MISP warninglists",
        description="MISP warninglists: known-benign and false-positive lists",
        role=FeedRole.ALLOW,
        verdict=Verdict.CLEAN,
        types=frozenset(),
        formats=("misp_warninglist",),
        downloads=tuple(
            Download(_WARNINGLIST_URL.format(name), "misp_warninglist", part=name)
            for name in ("public-dns-v4", "public-dns-v6", "public-dns-hostname")
        ),
        confidence=0.8,
        summaries=(
            "listed in MISP warninglist '{name}'",
            "listed in a MISP warninglist",
        ),
        name_hints=("warninglist",),
        homepage="https://github.com/MISP/misp-warninglists",
    ),
    FeedDefinition(
        name="top_sites",
        title="top sites",
        description="Tranco top sites (first 10,000 ranks) or any top-sites list",
        role=FeedRole.ALLOW,
        verdict=Verdict.CLEAN,
        types=frozenset(),
        formats=("tranco_csv", "domain_list"),
        downloads=(Download("https://tranco-list.eu/top-1m.csv.zip", "tranco_csv"),),
        confidence=0.6,
        summaries=(
            "listed in the top sites list (rank {rank})",
            "listed in the top sites list",
        ),
        name_hints=("tranco", "top-1m", "top_sites", "top-sites", "top1m", "top10k"),
        homepage="https://tranco-list.eu/",
    ),
)

CATALOG: dict[str, FeedDefinition] = {feed.name: feed for feed in FEEDS}


def base_name(feed_name: str) -> str:
    """Return the catalog name of a stored feed name ("a:b" gives "a")."""
    return feed_name.partition(PART_SEPARATOR)[0]


def get_feed(name: str) -> FeedDefinition:
    """Return the catalog entry for a feed name, with or without a part."""
    try:
        return CATALOG[base_name(name)]
    except KeyError:
        raise FeedError(
            f"unknown feed {name!r}; known feeds: {', '.join(CATALOG)}"
        ) from None


def feeds_for_format(format_name: str) -> list[FeedDefinition]:
    return [feed for feed in FEEDS if format_name in feed.formats]
