"""Benchmark the feed store: import 1,000,000 entries, look up 100,000 observables.

Run by hand (pytest does not collect it):

    .venv/bin/python bench/bench_feeds.py            # print the results
    .venv/bin/python bench/bench_feeds.py --write    # also update docs/benchmarks.md

It compares three ways to serve a lookup, measured in the same run:

* the store as shipped: exact keys and a per-prefix-length probe in SQLite;
* an in-memory radix tree (pytricia) plus a dict, loaded from the same SQLite
  file, which is the alternative the design considered;
* a plain Python ``set`` of canonical keys, exact only, as the floor.

Cold start is measured by running a fresh interpreter that opens the store
and does one lookup, as ``iocscope enrich`` would.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytricia

from iocscope.config import Settings
from iocscope.feeds.catalog import CATALOG
from iocscope.feeds.importer import import_paths
from iocscope.feeds.lookup import find_matches
from iocscope.feeds.store import FeedStore
from iocscope.models import Observable, ObservableType
from iocscope.observables import parse_observable
from iocscope.sources.base import SourceContext
from iocscope.sources.feeds import FeedSource

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
HEADING = "## Feeds"

COUNTS = {
    "ip": 300_000,
    "cidr": 100_000,
    "domain": 200_000,
    "url": 200_000,
    "hash": 200_000,
}
LOOKUPS = 100_000
SEED = 20_261_204


@dataclass
class Generated:
    files: list[Path]
    hits: list[str]
    misses: list[str]


# -- data ---------------------------------------------------------------------


def generate(folder: Path, rng: random.Random) -> Generated:
    """Write an IP list, a network list and a ThreatFox CSV; return raw
    values to look up, half of them listed."""
    hits: list[str] = []
    files = [
        _write_ips(folder / "blocklist_de_all.txt", rng, hits),
        _write_networks(folder / "firehol_level1.netset", rng, hits),
        _write_threatfox(folder / "threatfox_recent.csv", rng, hits),
    ]
    return Generated(files, hits, _misses(rng, LOOKUPS))


def _random_ipv4(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24)))


def _write_ips(path: Path, rng: random.Random, hits: list[str]) -> Path:
    with path.open("w") as out:
        for n in range(COUNTS["ip"]):
            address = _random_ipv4(rng)
            out.write(f"{address}\n")
            if n % 10 == 0:
                hits.append(address)
    return path


def _write_networks(path: Path, rng: random.Random, hits: list[str]) -> Path:
    """Write networks shaped like FireHOL level1 and Spamhaus DROP: one in a
    hundred IPv4 networks is a /8 to /15, the rest /16 to /30, and one in ten
    networks is IPv6 (a /29 to /64 inside 2001::/16). Every fifth network
    gives a listed address picked inside it."""
    with path.open("w") as out:
        out.write("#\n# firehol_level1\n#\n")
        for n in range(COUNTS["cidr"]):
            network = _random_network(rng, n)
            out.write(f"{network}\n")
            if n % 5 == 0:
                inside = network.network_address + rng.randrange(network.num_addresses)
                hits.append(str(inside))
    return path


def _random_network(rng: random.Random, n: int) -> Any:
    if n % 10 == 0:
        length = rng.randrange(29, 65)
        bits = rng.getrandbits(length - 16) << (128 - length)
        return ipaddress.IPv6Network(((0x2001 << 112) | bits, length))
    length = rng.randrange(8, 16) if n % 100 == 1 else rng.randrange(16, 31)
    return ipaddress.IPv4Network((_random_ipv4(rng), length), strict=False)


def _write_threatfox(path: Path, rng: random.Random, hits: list[str]) -> Path:
    columns = (
        '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type",'
        '"fk_malware","malware_alias","malware_printable","last_seen_utc",'
        '"confidence_level","reference","tags","anonymous","reporter"\n'
    )
    with path.open("w") as out:
        out.write(columns)
        for n, (value, ioc_type) in enumerate(_threatfox_values(rng)):
            out.write(
                f'"2024-01-01 00:00:00", "{n}", "{value}", "{ioc_type}", '
                '"botnet_cc", "win.example", "None", "Example", "", "75", '
                '"None", "None", "0", "bench"\n'
            )
            if n % 10 == 0:
                hits.append(value)
    return path


def _threatfox_values(rng: random.Random) -> Iterable[tuple[str, str]]:
    for n in range(COUNTS["domain"]):
        yield f"h{n}-{rng.getrandbits(32):08x}.example.com", "domain"
    for n in range(COUNTS["url"]):
        yield f"http://u{n % 5000}.example.net/p/{rng.getrandbits(48):012x}.exe", "url"
    for n in range(COUNTS["hash"]):
        if n % 2:
            yield f"{rng.getrandbits(256):064x}", "sha256_hash"
        else:
            yield f"{rng.getrandbits(128):032x}", "md5_hash"


def _misses(rng: random.Random, count: int) -> list[str]:
    makers: list[Callable[[], str]] = [
        lambda: _random_ipv4(rng),
        lambda: f"m{rng.getrandbits(40):010x}.example.org",
        lambda: f"http://m{rng.getrandbits(32):08x}.example.org/x",
        lambda: f"{rng.getrandbits(256):064x}",
        lambda: f"{rng.getrandbits(128):032x}",
    ]
    return [rng.choice(makers)() for _ in range(count)]


# -- measurements -------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def feeds_for(observable: Observable) -> list[str]:
    if observable.type in (ObservableType.IP, ObservableType.CIDR):
        return ["blocklist_de", "firehol_level1"]
    return ["threatfox"]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def time_store_lookups(
    store: FeedStore, observables: list[Observable]
) -> tuple[float, int]:
    start = time.perf_counter()
    hits = sum(1 for o in observables if find_matches(store, feeds_for(o), o))
    return time.perf_counter() - start, hits


def time_source_lookups(
    store: FeedStore, observables: list[Observable]
) -> tuple[float, int]:
    context = SourceContext(settings=Settings(), store=store)
    sources = {
        name: FeedSource(CATALOG[name], context.store)
        for name in ("blocklist_de", "firehol_level1", "threatfox")
    }

    async def run() -> int:
        found = 0
        for observable in observables:
            for name in feeds_for(observable):
                result = await sources[name].lookup(observable)
                found += result.status.value == "ok"
        return found

    start = time.perf_counter()
    hits = asyncio.run(run())
    return time.perf_counter() - start, hits


class RadixIndex:
    """The alternative design: a radix tree per IP version plus a dict."""

    def __init__(self, db_path: Path) -> None:
        self.v4 = pytricia.PyTricia(32)
        self.v6 = pytricia.PyTricia(128)
        self.exact: dict[str, str] = {}
        db = sqlite3.connect(db_path)
        for kind, key, context in db.execute("SELECT kind, key, context FROM entries"):
            if kind == "cidr":
                (self.v6 if ":" in key else self.v4)[key] = context
            else:
                self.exact[key] = context
        db.close()

    def match(self, observable: Observable) -> list[str]:
        found = [self.exact[observable.value]] if observable.value in self.exact else []
        if observable.type is not ObservableType.IP:
            return found
        tree = self.v6 if ":" in observable.value else self.v4
        key = tree.get_key(observable.value)
        while key is not None:
            found.append(tree[key])
            key = tree.parent(key)
        return found


def time_radix(
    db_path: Path, observables: list[Observable]
) -> tuple[float, float, int]:
    start = time.perf_counter()
    index = RadixIndex(db_path)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    hits = sum(1 for o in observables if index.match(o))
    return loaded, time.perf_counter() - start, hits


def time_set(db_path: Path, observables: list[Observable]) -> tuple[float, float, int]:
    start = time.perf_counter()
    db = sqlite3.connect(db_path)
    keys = {key for (key,) in db.execute("SELECT key FROM entries")}
    db.close()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    hits = sum(1 for o in observables if o.value in keys)
    return loaded, time.perf_counter() - start, hits


COLD_SQLITE = """
import sys, time
start = time.perf_counter()
from pathlib import Path
from iocscope.feeds.store import FeedStore
from iocscope.feeds.lookup import find_matches
from iocscope.observables import parse_observable
store = FeedStore(Path(sys.argv[1]))
feeds = ["blocklist_de", "firehol_level1"]
found = find_matches(store, feeds, parse_observable(sys.argv[2]))
print(time.perf_counter() - start, len(found))
"""

COLD_RADIX = """
import sys, time
start = time.perf_counter()
import sqlite3
import pytricia
import iocscope.feeds.lookup  # the same modules the shipped path imports
from iocscope.observables import parse_observable
trees = {4: pytricia.PyTricia(32), 6: pytricia.PyTricia(128)}
exact = {}
db = sqlite3.connect(sys.argv[1])
for kind, key, context in db.execute("SELECT kind, key, context FROM entries"):
    if kind == "cidr":
        trees[6 if ":" in key else 4][key] = context
    else:
        exact[key] = context
value = parse_observable(sys.argv[2]).value
tree = trees[6 if ":" in value else 4]
found = [exact[value]] if value in exact else []
if tree.get_key(value) is not None:
    found.append(tree[value])
print(time.perf_counter() - start, len(found))
"""

COLD_IMPORTS = """
import sys, time
start = time.perf_counter()
from iocscope.feeds.store import FeedStore
from iocscope.feeds.lookup import find_matches
from iocscope.observables import parse_observable
print(time.perf_counter() - start, 0)
"""


def cold_run(script: str, db_path: Path, value: str) -> float:
    """Return the median seconds of three fresh interpreters running ``script``."""
    times = []
    for _ in range(3):
        output = subprocess.run(
            [sys.executable, "-c", script, str(db_path), value, str(REPO / "bench")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        times.append(float(output.split()[0]))
    return sorted(times)[1]


# -- report -------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def render(results: dict[str, Any]) -> str:
    r = results
    set_rate = r["set_rate"]
    rows = [
        ("SQLite probe (shipped): store match", r["store_rate"], r["cold_sqlite"], 0.0),
        ("SQLite probe (shipped): Source.lookup", r["source_rate"], None, None),
        (
            "radix tree + dict, loaded from SQLite",
            r["radix_rate"],
            r["cold_radix"],
            r["radix_load"],
        ),
        ("plain Python set (exact keys only)", set_rate, None, r["set_load"]),
    ]
    lines = [
        HEADING,
        "",
        "Command: `.venv/bin/python bench/bench_feeds.py --write`, "
        f"run on {r['date']}.",
        f"Machine: {r['machine']}.",
        "",
        f"Data: {r['entries']:,} entries ({r['mix']}), imported from three "
        "generated files: an IP list, a network list and a ThreatFox CSV. The "
        "networks are shaped like FireHOL level1 and Spamhaus DROP: 99% of the "
        "IPv4 ones are /16 to /30, and one in ten networks is IPv6 (/29 to /64). "
        f"Lookups: {r['lookups']:,} observables of every type, "
        f"{r['hit_share']:.0%} of them listed.",
        "",
        "| import | value |",
        "| --- | --- |",
        f"| time for {r['entries']:,} entries | {r['import_s']:.1f} s "
        f"({rate(r['entries'], r['import_s']):,.0f} entries/s) |",
        f"| peak RSS of the process after import | {r['rss_after_import']:.0f} MiB "
        f"(before import: {r['rss_before_import']:.0f} MiB) |",
        f"| store file size | {r['db_mib']:.0f} MiB |",
        "",
        "| lookup path | lookups/s | ratio to `set` | cold process, one lookup "
        "| load before first lookup |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, value, cold, load in rows:
        cold_text = f"{cold * 1000:.0f} ms" if cold is not None else "-"
        load_text = f"{load:.2f} s" if load is not None else "-"
        lines.append(
            f"| {name} | {value:,.0f} | {value / set_rate:.3f} "
            f"| {cold_text} | {load_text} |"
        )
    lines += [
        "",
        "Cold figures are the median of three fresh interpreters, each opening "
        "the store and looking up one address. An interpreter that only imports "
        f"the lookup modules takes {r['cold_imports'] * 1000:.0f} ms of that. The "
        "`set` and radix rows must load the whole index before the first lookup, "
        "while the SQLite probe reads only the index pages it touches. "
        "Lookups/s are single-threaded. The `set` row does no containment, so it "
        f"finds {r['set_hits']:,} listed values where the store finds "
        f"{r['store_hits']:,}.",
        "",
        "Peak memory during import is about twice the largest file, because a "
        "file is read whole and then decoded. The store ships the SQLite probe: "
        "its cold lookup needs no load, and a Source lookup costs well under a "
        "millisecond, less than any network source in the same report (see "
        "docs/feeds.md).",
        "",
    ]
    return "\n".join(lines)


def write_section(section: str) -> None:
    """Replace the feeds section of docs/benchmarks.md, or append it."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    start = text.find(HEADING + "\n")
    if start < 0:
        DOC.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = text.find("\n## ", start + len(HEADING))
    tail = text[end + 1 :] if end >= 0 else ""
    DOC.write_text(text[:start] + section + ("\n" + tail if tail else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help="update docs/benchmarks.md"
    )
    args = parser.parse_args()
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = generate(folder, rng)
        results = run(folder, data, rng)
    section = render(results)
    print(section)
    if args.write:
        write_section(section)


def run(folder: Path, data: Generated, rng: random.Random) -> dict[str, Any]:
    db_path = folder / "feeds.sqlite3"
    rss_before = peak_rss_mib()
    store = FeedStore(db_path)
    start = time.perf_counter()
    result = import_paths(store, data.files)
    import_s = time.perf_counter() - start
    assert result.ok, result.failures
    rss_after = peak_rss_mib()
    entries = sum(info.entry_count for info in store.feeds())

    raw = rng.sample(data.hits, LOOKUPS // 2) + data.misses[: LOOKUPS // 2]
    rng.shuffle(raw)
    observables = [parse_observable(value) for value in raw]

    store_s, store_hits = time_store_lookups(store, observables)
    source_s, _ = time_source_lookups(store, observables)
    radix_load, radix_s, _ = time_radix(db_path, observables)
    set_load, set_s, set_hits = time_set(db_path, observables)
    probe_value = next(
        value for value in data.hits if "." in value and value[0].isdigit()
    )
    store.close()
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "entries": entries,
        "mix": ", ".join(f"{count:,} {kind}" for kind, count in COUNTS.items()),
        "lookups": len(observables),
        "hit_share": store_hits / len(observables),
        "import_s": import_s,
        "rss_before_import": rss_before,
        "rss_after_import": rss_after,
        "db_mib": db_path.stat().st_size / 2**20,
        "store_rate": rate(len(observables), store_s),
        "store_hits": store_hits,
        "source_rate": rate(len(observables), source_s),
        "radix_rate": rate(len(observables), radix_s),
        "radix_load": radix_load,
        "set_rate": rate(len(observables), set_s),
        "set_load": set_load,
        "set_hits": set_hits,
        "cold_sqlite": cold_run(COLD_SQLITE, db_path, probe_value),
        "cold_radix": cold_run(COLD_RADIX, db_path, probe_value),
        "cold_imports": cold_run(COLD_IMPORTS, db_path, probe_value),
    }


if __name__ == "__main__":
    main()
