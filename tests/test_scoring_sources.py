"""Scoring through sources registered by entry point: weak counts and categories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from iocscope.config import Settings
from iocscope.models import Verdict
from iocscope.runtime import open_engine
from tests import sources_for_tests as plugin
from tests.plugins import registered_sources

URL = "http://login.example/verify"
ONLY = ["test_engines", "test_categories"]


@pytest.fixture(autouse=True)
def scoring_sources(tmp_path: Path) -> Iterator[None]:
    plugin.ENGINE_COUNTS.clear()
    plugin.CATEGORIES.clear()
    entry = {"test_scoring": "tests.sources_for_tests:load_scoring"}
    with registered_sources(tmp_path / "plugin", entry):
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


async def test_one_engine_alone_is_suspicious(settings: Settings) -> None:
    plugin.ENGINE_COUNTS[URL] = (1, 65)
    async with open_engine(settings, only=ONLY) as engine:
        report = await engine.enrich(URL)
    engines = report.enrichment["test_engines"]
    assert engines.data["detections"] == "1/65"
    assert engines.verdict is Verdict.SUSPICIOUS
    assert (engines.confidence or 1.0) < 0.5
    assert report.verdict is Verdict.SUSPICIOUS


async def test_phishing_category_is_malicious(settings: Settings) -> None:
    plugin.ENGINE_COUNTS[URL] = (1, 65)
    plugin.CATEGORIES[URL] = "Phishing"
    async with open_engine(settings, only=ONLY) as engine:
        report = await engine.enrich(URL)
    assert report.enrichment["test_categories"].verdict is Verdict.MALICIOUS
    assert report.verdict is Verdict.MALICIOUS


@pytest.mark.parametrize("category", ["Phishing", "malware", "Spam"])
async def test_threat_categories_map_malicious(
    settings: Settings, category: str
) -> None:
    plugin.CATEGORIES[URL] = category
    async with open_engine(settings, only=ONLY) as engine:
        report = await engine.enrich(URL)
    assert report.enrichment["test_categories"].verdict is Verdict.MALICIOUS


async def test_unmapped_category_is_never_safe(settings: Settings) -> None:
    plugin.CATEGORIES[URL] = "travel"
    async with open_engine(settings, only=ONLY) as engine:
        report = await engine.enrich(URL)
    assert report.enrichment["test_categories"].verdict is Verdict.UNKNOWN
    assert report.verdict is Verdict.UNKNOWN


async def test_zero_engines_is_clean(settings: Settings) -> None:
    plugin.ENGINE_COUNTS[URL] = (0, 65)
    async with open_engine(settings, only=ONLY) as engine:
        report = await engine.enrich(URL)
    assert report.verdict is Verdict.CLEAN
