"""`qs news parse` on the kit's real feed: the JSON contract of the command."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from shared.cli import main
from tests.conftest import KIT_FIXTURES

FEED = KIT_FIXTURES / "rss_feeds" / "thehindu_business_economy_rss_2025-04-03_media-mosaic.xml"


def test_news_parse_prints_classified_items(capsys):
    if not FEED.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    assert main(["news", "parse", str(FEED), "--now", "2025-04-04T00:00+05:30"]) == 0
    out = json.loads(capsys.readouterr().out)
    n = len(re.findall(rb"<item>", FEED.read_bytes()))
    assert len(out["items"]) == n and out["rejected"] == []
    for item in out["items"]:
        assert {"title", "published", "link", "story", "event_type", "symbols", "sentiment",
                "impact", "why", "ruleset"} <= item.keys()
        assert item["title"] and "CDATA" not in item["title"]
        assert datetime.fromisoformat(item["published"]).utcoffset() is not None
        assert -1 <= item["sentiment"] <= 1 and 0 <= item["impact"] <= 1
        assert item["why"] and item["ruleset"]


def test_news_parse_refuses_what_is_not_a_feed(tmp_path, capsys):
    page = tmp_path / "page.rss"
    page.write_text("<!doctype html><html><body>blocked</body></html>")
    assert main(["news", "parse", str(page), "--now", "2025-04-04T00:00+05:30"]) != 0
    assert "not" in capsys.readouterr().err.lower()
    with pytest.raises(SystemExit):
        main(["news", "parse", "--help"])
