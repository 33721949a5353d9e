"""Local threat feeds: parse feed files, store them, match observables.

``formats`` parses each feed format, ``catalog`` declares the known feeds,
``store`` keeps imported entries in SQLite, ``importer`` and ``download``
bring files and URLs into the store, and ``lookup`` matches observables.
See docs/feeds.md.
"""

from iocscope.feeds.catalog import CATALOG, FEEDS, FeedDefinition, FeedRole, get_feed
from iocscope.feeds.formats import FORMATS, get_format
from iocscope.feeds.importer import ImportResult, import_paths
from iocscope.feeds.records import EntryKind, FeedEntry
from iocscope.feeds.store import FeedInfo, FeedStore, Match

__all__ = [
    "CATALOG",
    "FEEDS",
    "FORMATS",
    "EntryKind",
    "FeedDefinition",
    "FeedEntry",
    "FeedInfo",
    "FeedRole",
    "FeedStore",
    "ImportResult",
    "Match",
    "get_feed",
    "get_format",
    "import_paths",
]
