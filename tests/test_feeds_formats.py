"""Feed parsers, format detection and payload unpacking."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

from iocscope.errors import FeedError
from iocscope.feeds.detect import detect_format, resolve_feed, warninglist_part
from iocscope.feeds.formats import FORMATS, TOP_SITES_MAX_RANK, get_format
from iocscope.feeds.payload import decode_payload
from iocscope.feeds.records import EntryKind, FeedEntry, ParseReport


def parse(format_name: str, text: str) -> tuple[list[FeedEntry], ParseReport]:
    report = ParseReport()
    entries = list(get_format(format_name).parse(text, report))
    return entries, report


def keys(entries: list[FeedEntry]) -> list[tuple[str, str]]:
    return [(entry.kind.value, entry.key) for entry in entries]


# -- line handling ------------------------------------------------------------


def test_ip_list_skips_comment_lines() -> None:
    text = "# header\r\n; other comment\r\n\r\n198.51.100.7\r\n  \r\n203.0.113.0/24\r\n"
    entries, report = parse("ip_list", text)
    assert keys(entries) == [("ip", "198.51.100.7"), ("cidr", "203.0.113.0/24")]
    assert report.bad_count == 0


def test_ip_list_reports_bad_lines_with_numbers() -> None:
    text = "198.51.100.7\nnot-an-address\n198.51.100.300\n198.51.100.8 trailing\n"
    entries, report = parse("ip_list", text)
    assert keys(entries) == [("ip", "198.51.100.7")]
    assert report.bad_count == 3
    assert [bad.number for bad in report.bad_lines] == [2, 3, 4]
    assert report.bad_lines[2].reason == "unexpected text after the address"
    assert "line 2:" in str(report.bad_lines[0])


def test_ip_list_allows_inline_comment() -> None:
    entries, report = parse("ip_list", "198.51.100.7 # seen twice\n")
    assert keys(entries) == [("ip", "198.51.100.7")]
    assert report.bad_count == 0


def test_ip_list_canonicalizes_padded_ipv6() -> None:
    text = "2001:0678:0e3c:0000:0000:0000:0000:000a\n::ffff:198.51.100.9\n"
    entries, _ = parse("ip_list", text)
    assert keys(entries) == [("ip", "2001:678:e3c::a"), ("ip", "198.51.100.9")]


def test_ip_list_single_address_networks_become_ips() -> None:
    entries, _ = parse("ip_list", "198.51.100.7/32\n2001:db8::1/128\n")
    assert keys(entries) == [("ip", "198.51.100.7"), ("ip", "2001:db8::1")]


def test_ip_list_clears_host_bits() -> None:
    entries, report = parse("ip_list", "198.51.100.77/24\n")
    assert keys(entries) == [("cidr", "198.51.100.0/24")]
    assert report.bad_count == 0


def test_ip_list_notes_firehol_list_name() -> None:
    text = "#\n# ciarmy\n#\n# ipv4 hash:ip ipset\n198.51.100.7\n"
    _, report = parse("ip_list", text)
    assert report.meta["list_name"] == "ciarmy"


def test_csv_header_found_at_any_depth() -> None:
    banner = "".join(f"# banner line {n}\n" for n in range(40))
    header = '"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"'
    row = '"2021-01-17 07:30:05","198.51.100.7","443","online","2021-08-18","Dridex"'
    entries, report = parse("feodo_csv", f"{banner}{header}\n{row}\n")
    assert keys(entries) == [("ip", "198.51.100.7")]
    assert entries[0].context["port"] == 443
    assert report.bad_count == 0


def test_csv_header_reorders_columns() -> None:
    header = '"malware","dst_ip","first_seen_utc","dst_port","c2_status","last_online"'
    row = '"QakBot","198.51.100.8","2024-01-17 18:58:25","2222","offline","2024-01-22"'
    entries, _ = parse("feodo_csv", f"{header}\n{row}\n")
    assert entries[0].context["malware"] == "QakBot"
    assert entries[0].key == "198.51.100.8"


def test_csv_wrong_field_count_is_bad_line() -> None:
    text = '"2021-01-17 07:30:05","198.51.100.7","443"\n'
    entries, report = parse("feodo_csv", text)
    assert entries == []
    assert report.bad_lines[0].number == 1
    assert report.bad_lines[0].reason == "expected 6 fields, found 3"


def test_urlhaus_commented_header_and_quoted_fields() -> None:
    text = (
        "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n"
        '"1","2019-02-11 07:45:05","HTTP://Evil.Example:80/a.exe","online","",'
        '"malware_download","AZORult,exe","https://urlhaus.abuse.ch/url/1/","x"\n'
    )
    entries, report = parse("urlhaus_csv", text)
    assert keys(entries) == [("url", "http://evil.example/a.exe")]
    assert entries[0].context["tags"] == "AZORult,exe"
    assert "last_online" not in entries[0].context
    assert report.bad_count == 0


def test_threatfox_csv_ip_port_keeps_port() -> None:
    text = (
        '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type",'
        '"fk_malware","malware_alias","malware_printable","last_seen_utc",'
        '"confidence_level","reference","tags","anonymous","reporter"\n'
        '"2020-12-06 09:47:30", "21", "198.51.100.7:8848", "ip:port", "botnet_cc", '
        '"win.cobalt_strike", "None", "Cobalt Strike", "", "50", "None", "None", '
        '"0", "abuse_ch"\n'
    )
    entries, report = parse("threatfox_csv", text)
    assert keys(entries) == [("ip", "198.51.100.7")]
    assert entries[0].context["port"] == 8848
    assert entries[0].context["confidence_level"] == 50
    assert "malware_alias" not in entries[0].context
    assert report.bad_count == 0


def test_threatfox_unknown_ioc_type_is_bad_line() -> None:
    document = {"1": [{"ioc_value": "x", "ioc_type": "sha3_384_hash"}]}
    entries, report = parse("threatfox_json", json.dumps(document))
    assert entries == []
    assert report.bad_lines[0].unit == "item"
    assert "unsupported ioc_type" in report.bad_lines[0].reason


def test_threatfox_json_ipv6_ip_port() -> None:
    item = {"ioc_value": "[2001:db8::7]:443", "ioc_type": "ip:port"}
    entries, _ = parse("threatfox_json", json.dumps({"5": [item]}))
    assert keys(entries) == [("ip", "2001:db8::7")]
    assert entries[0].context["port"] == 443


def test_malwarebazaar_row_gives_three_hashes() -> None:
    text = (
        '# "first_seen_utc","sha256_hash","md5_hash","sha1_hash","reporter",'
        '"file_name","file_type_guess","mime_type","signature","clamav",'
        '"vtpercent","imphash","ssdeep","tlsh"\n'
        '"2021-04-06 20:12:29", "' + "A" * 64 + '", "' + "B" * 32 + '", "n/a", '
        '"r", "f.dll", "dll", "application/x-dosexec", "Hancitor", "n/a", "n/a", '
        '"n/a", "n/a", "n/a"\n'
    )
    entries, report = parse("malwarebazaar_csv", text)
    assert keys(entries) == [("sha256", "a" * 64), ("md5", "b" * 32)]
    assert entries[0].context["signature"] == "Hancitor"
    assert report.bad_count == 0


def test_malwarebazaar_bad_hash_is_bad_line() -> None:
    columns = 14
    text = '"2021-04-06", "zz", ' + ", ".join(['"n/a"'] * (columns - 2)) + "\n"
    entries, report = parse("malwarebazaar_csv", text)
    assert entries == []
    assert report.bad_count == 1


def test_spamhaus_drop_txt() -> None:
    text = "; Spamhaus DROP List\n192.0.2.0/24 ; SBL1\n198.51.100.0/24;SBL2\n"
    entries, _ = parse("spamhaus_drop_txt", text)
    assert keys(entries) == [("cidr", "192.0.2.0/24"), ("cidr", "198.51.100.0/24")]
    assert entries[1].context == {"sblid": "SBL2"}


def test_spamhaus_json_skips_metadata_line() -> None:
    text = (
        '{"cidr":"192.0.2.0/24","sblid":"SBL1","rir":"arin"}\n'
        '{"type":"metadata","timestamp":1727634153,"records":1}\n'
    )
    entries, report = parse("spamhaus_drop_json", text)
    assert keys(entries) == [("cidr", "192.0.2.0/24")]
    assert report.meta["records"] == 1
    assert report.bad_count == 0


def test_spamhaus_json_invalid_line_is_bad() -> None:
    text = '{"cidr":"192.0.2.0/24"}\n{"cidr": \n{"sblid":"SBL3"}\n'
    entries, report = parse("spamhaus_drop_json", text)
    assert keys(entries) == [("cidr", "192.0.2.0/24")]
    assert [bad.number for bad in report.bad_lines] == [2, 3]
    assert report.bad_lines[1].reason == "missing field 'cidr'"


def test_spamhaus_asndrop_stored_by_asn() -> None:
    text = '{"asn":64496,"rir":"arin","domain":"x.example","cc":"US","asname":"EX"}\n'
    entries, _ = parse("spamhaus_asndrop_json", text)
    assert keys(entries) == [("asn", "64496")]
    assert entries[0].context["asname"] == "EX"


def test_tor_exit_addresses_blocks() -> None:
    text = (
        "ExitNode AAAA\nPublished 2022-08-17 18:11:11\nLastStatus 2022-08-18 14:00:00\n"
        "ExitAddress 198.51.100.7 2022-08-18 14:44:33\n"
        "ExitAddress 2001:db8::5 2022-08-18 14:44:34\n"
        "Bogus line\n"
    )
    entries, report = parse("tor_exit_addresses", text)
    assert keys(entries) == [("ip", "198.51.100.7"), ("ip", "2001:db8::5")]
    assert entries[0].context["fingerprint"] == "AAAA"
    assert entries[0].context["laststatus"] == "2022-08-18 14:00:00"
    assert report.bad_lines[0].number == 6


def test_tor_exit_address_before_node_is_bad() -> None:
    entries, report = parse("tor_exit_addresses", "ExitAddress 198.51.100.7 x\n")
    assert entries == []
    assert "before any ExitNode" in report.bad_lines[0].reason


def test_phishtank_csv_quoted_comma() -> None:
    text = (
        "phish_id,url,phish_detail_url,submission_time,verified,"
        "verification_time,online,target\n"
        '7,"https://bank.example/a,b/login",http://x/7,2023-02-09T07:00:00+00:00,'
        "yes,2023-02-09T07:07:07+00:00,yes,Microsoft\n"
    )
    entries, report = parse("phishtank_csv", text)
    assert keys(entries) == [("url", "https://bank.example/a,b/login")]
    assert entries[0].context["target"] == "Microsoft"
    assert entries[0].context["phish_id"] == 7
    assert report.bad_count == 0


def test_phishtank_json_non_object_item_is_bad() -> None:
    text = json.dumps([{"phish_id": 1, "url": "http://phish.example/"}, "oops"])
    entries, report = parse("phishtank_json", text)
    assert keys(entries) == [("url", "http://phish.example/")]
    assert report.bad_lines[0].number == 2
    assert report.bad_lines[0].unit == "item"


def test_url_list_canonicalizes() -> None:
    entries, report = parse("url_list", "HTTPS://Login.Example.TEST:443/verify\nnope\n")
    assert keys(entries) == [("url", "https://login.example.test/verify")]
    assert report.bad_count == 1


def test_tranco_csv_keeps_ranks_up_to_limit() -> None:
    text = f"1,Google.com\n{TOP_SITES_MAX_RANK + 1},late.example\nx,bad.example\n"
    entries, report = parse("tranco_csv", text)
    assert keys(entries) == [("hostname", "google.com")]
    assert entries[0].context == {"rank": 1}
    assert report.meta["beyond_max_rank"] == 1
    assert report.bad_lines[0].reason == "expected rank,domain"


def test_domain_list_gives_hostnames() -> None:
    entries, _ = parse("domain_list", "# top sites\nExample.com.\n")
    assert keys(entries) == [("hostname", "example.com")]


def test_warninglist_cidr_accepts_bare_addresses() -> None:
    document = {"list": ["192.0.2.0/24", "2001:db8::1", "192.0.2.300"], "type": "cidr"}
    entries, report = parse("misp_warninglist", json.dumps(document))
    assert keys(entries) == [("cidr", "192.0.2.0/24"), ("ip", "2001:db8::1")]
    assert report.bad_lines[0].number == 3


def test_warninglist_hostname_and_metadata() -> None:
    document = {
        "name": "Example list",
        "type": "hostname",
        "version": 3,
        "list": ["api.example.com", ".cdn.example.net"],
    }
    entries, report = parse("misp_warninglist", json.dumps(document))
    assert keys(entries) == [
        ("hostname", "api.example.com"),
        ("hostname", "cdn.example.net"),
    ]
    assert report.meta["name"] == "Example list"
    assert report.meta["version"] == 3


def test_warninglist_string_entries_are_classified() -> None:
    document = {
        "type": "string",
        "list": ["D41D8CD98F00B204E9800998ECF8427E", "192.0.2.1", "a.example"],
    }
    entries, _ = parse("misp_warninglist", json.dumps(document))
    assert keys(entries) == [
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("ip", "192.0.2.1"),
        ("domain", "a.example"),
    ]


def test_warninglist_substring_entries() -> None:
    document = {"type": "substring", "list": ["Tracker."]}
    entries, _ = parse("misp_warninglist", json.dumps(document))
    assert keys(entries) == [("substring", "tracker.")]


def test_warninglist_regex_rejected() -> None:
    document = {"type": "regex", "list": ["^a"]}
    with pytest.raises(FeedError, match="type 'regex' is not supported"):
        list(get_format("misp_warninglist").parse(json.dumps(document), ParseReport()))


def test_invalid_json_document_raises() -> None:
    with pytest.raises(FeedError, match="invalid JSON"):
        list(get_format("feodo_json").parse("[{", ParseReport()))


def test_get_format_unknown_lists_names() -> None:
    with pytest.raises(FeedError) as caught:
        get_format("nope")
    for name in FORMATS:
        assert name in caught.value.message


def test_bad_lines_kept_are_capped() -> None:
    text = "x\n" * 500
    _, report = parse("ip_list", text)
    assert report.bad_count == 500
    assert len(report.bad_lines) == 100


# -- detection ----------------------------------------------------------------

EXPECTED_DETECTION = {
    "blocklist_de_all.derived.txt": ("ip_list", "blocklist_de"),
    "blocklist_de_firehol_ipset_excerpt.txt": ("ip_list", "blocklist_de"),
    "cins_army_ci-badguys.derived.txt": ("ip_list", "cins_army"),
    "cins_army_firehol_ipset_excerpt.txt": ("ip_list", "cins_army"),
    "feodo_ipblocklist.csv": ("feodo_csv", "feodo_tracker"),
    "feodo_ipblocklist.json": ("feodo_json", "feodo_tracker"),
    "firehol_level1_excerpt.txt": ("ip_list", "firehol_level1"),
    "malwarebazaar_recent.constructed.csv": ("malwarebazaar_csv", "malwarebazaar"),
    "openphish_feed.constructed.txt": ("url_list", "openphish"),
    "phishtank_online-valid.constructed.csv": ("phishtank_csv", "phishtank"),
    "phishtank_online-valid.constructed.json": ("phishtank_json", "phishtank"),
    "spamhaus_asndrop_jsonl_excerpt.txt": ("spamhaus_asndrop_json", "spamhaus_asndrop"),
    "spamhaus_drop.txt": ("spamhaus_drop_txt", "spamhaus_drop"),
    "spamhaus_drop_v4_jsonl_excerpt.txt": ("spamhaus_drop_json", "spamhaus_drop"),
    "spamhaus_drop_v6_jsonl_excerpt.txt": ("spamhaus_drop_json", "spamhaus_drop"),
    "threatfox_recent.constructed.csv": ("threatfox_csv", "threatfox"),
    "threatfox_recent.constructed.json": ("threatfox_json", "threatfox"),
    "tor_exit_addresses_excerpt.txt": ("tor_exit_addresses", "tor_exit"),
    "tor_exit_nodes_list.txt": ("ip_list", "tor_exit"),
    "tranco_top.constructed.csv": ("tranco_csv", "top_sites"),
    "tranco_top10k_membership_misp_20250115.txt": ("domain_list", "top_sites"),
    "urlhaus_csv_online.constructed.csv": ("urlhaus_csv", "urlhaus"),
}


def feed_files(shared_fixtures: Path) -> list[Path]:
    folder = shared_fixtures / "feeds"
    return sorted(path for path in folder.iterdir() if path.name != "SOURCE.md")


def test_detection_covers_every_snapshot(shared_fixtures: Path) -> None:
    names = {path.name for path in feed_files(shared_fixtures)}
    assert names == set(EXPECTED_DETECTION)


@pytest.mark.parametrize("file_name", sorted(EXPECTED_DETECTION))
def test_detects_snapshot_format_and_feed(
    shared_fixtures: Path, file_name: str
) -> None:
    text = (shared_fixtures / "feeds" / file_name).read_text()
    expected_format, expected_feed = EXPECTED_DETECTION[file_name]
    found = detect_format(text)
    assert found == expected_format
    assert resolve_feed(found, file_name=file_name, text=text) == expected_feed


def test_plain_list_without_hint_needs_feed() -> None:
    text = "198.51.100.7\n198.51.100.8\n"
    with pytest.raises(FeedError, match="pass --feed with one of: firehol_level1"):
        resolve_feed("ip_list", file_name="list.txt", text=text)


def test_plain_domain_list_never_guessed_as_allow_list() -> None:
    text = "evil.example\nbad.example\n"
    assert detect_format(text) == "domain_list"
    with pytest.raises(FeedError, match="cannot tell which feed"):
        resolve_feed("domain_list", file_name="iocs.txt", text=text)


def test_given_format_with_one_owner_needs_no_hint() -> None:
    found = resolve_feed("domain_list", file_name="x.txt", text="", format_given=True)
    assert found == "top_sites"


def test_explicit_feed_must_accept_format() -> None:
    with pytest.raises(FeedError, match="does not take format feodo_csv"):
        resolve_feed("feodo_csv", file_name="x.csv", text="", feed="urlhaus")


def test_explicit_feed_unknown_lists_feeds() -> None:
    with pytest.raises(FeedError, match="known feeds: feodo_tracker"):
        resolve_feed("ip_list", file_name="x.txt", text="", feed="nope")


def test_undetectable_content_lists_formats() -> None:
    with pytest.raises(FeedError) as caught:
        detect_format("hello world\nsomething else entirely\n")
    assert "pass --format with one of: feodo_csv" in caught.value.message


def test_warninglist_feed_named_after_list() -> None:
    found = resolve_feed(
        "misp_warninglist", file_name="lists/public-dns-v4/list.json", text=""
    )
    assert found == "misp_warninglists:public-dns-v4"
    assert warninglist_part("/x/cloudflare.json") == "cloudflare"


# -- payloads -----------------------------------------------------------------

PLAIN = "198.51.100.7\n"


def test_payload_plain_with_bom() -> None:
    assert decode_payload(b"\xef\xbb\xbf" + PLAIN.encode(), "x") == PLAIN


def test_payload_invalid_utf8_replaced() -> None:
    assert decode_payload(b"\xff\n", "x") == "\ufffd\n"


def test_payload_gzip_and_bzip2() -> None:
    assert decode_payload(gzip.compress(PLAIN.encode()), "x.gz") == PLAIN
    assert decode_payload(bz2.compress(PLAIN.encode()), "x.bz2") == PLAIN


def zipped(*members: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in members:
            archive.writestr(name, PLAIN)
    return buffer.getvalue()


def test_payload_single_file_zip() -> None:
    assert decode_payload(zipped("top-1m.csv"), "top-1m.csv.zip") == PLAIN


def test_payload_zip_with_two_files_rejected() -> None:
    with pytest.raises(FeedError, match="zip archive with 2 files"):
        decode_payload(zipped("a.csv", "b.csv"), "x.zip")


def test_payload_size_cap() -> None:
    with pytest.raises(FeedError, match="larger than"):
        decode_payload(gzip.compress(b"a" * 3_000_000), "x.gz", max_bytes=1_000_000)


def test_payload_broken_gzip() -> None:
    with pytest.raises(FeedError, match="cannot unpack"):
        decode_payload(b"\x1f\x8b\x08\x00garbage", "x.gz")


def test_entry_kinds_cover_observable_types() -> None:
    from iocscope.models import ObservableType

    assert {kind.value for kind in ObservableType} <= {kind.value for kind in EntryKind}


def test_huge_network_is_a_bad_line() -> None:
    from iocscope.feeds.formats import parse_ip_list
    from iocscope.feeds.records import ParseReport

    report = ParseReport()
    entries = list(parse_ip_list("0.0.0.0/0\n::/0\n224.0.0.0/4\n", report))
    assert [entry.key for entry in entries] == ["224.0.0.0/4"]
    assert report.bad_count == 2
