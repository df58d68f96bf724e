"""news_ingest through functions-framework: real feeds served over local HTTP (the kit's RSS
and a second outlet carrying some of the same stories), hostile feeds, conditional GET,
the calendar, and news.event."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from functools import partial

import pytest

from tests.conftest import KIT_FIXTURES
from tests.functions.conftest import PROJECT, topic_listener

pytestmark = pytest.mark.integration

FEED = KIT_FIXTURES / "rss_feeds" / "thehindu_business_economy_rss_2025-04-03_media-mosaic.xml"
RUN_AT = "2025-04-03T17:30:00Z"  # 23:00 IST, after the fixture's last item


def _second_outlet(text: str) -> str:
    """Another outlet's feed: three of the same stories under other URLs and lightly
    reworded titles, and one story of its own."""
    import re

    items = re.findall(r"<item>.*?</item>", text, flags=re.S)[:3]
    out = []
    for i, item in enumerate(items):
        item = item.replace("https://www.thehindu.com/", "https://www.example-news.in/markets/")
        item = re.sub(r"<title><!\[CDATA\[(.*?)\]\]></title>",
                      lambda m: f"<title><![CDATA[{m.group(1).replace(':', ' -')}]]></title>",
                      item, count=1)
        out.append(item.replace("<guid", f"<guid data-i='{i}'", 1))
    own = ("<item><title>RBI unexpectedly cuts repo rate by 50 basis points in emergency "
           "meeting</title><link>https://www.example-news.in/markets/rbi-cut</link>"
           "<guid>rbi-cut</guid><pubDate>Thu, 3 Apr 2025 21:00:00 +0530</pubDate>"
           "<description>The Monetary Policy Committee surprised markets.</description></item>")
    return ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
            "<title>Example</title><link>https://www.example-news.in/</link>"
            + "".join(out) + own + "</channel></rss>")


@pytest.fixture
def feeds(tmp_path):
    root = tmp_path / "feeds"
    root.mkdir()
    text = FEED.read_text(encoding="utf-8")
    (root / "hindu.rss").write_text(text, encoding="utf-8")
    (root / "other.rss").write_text(_second_outlet(text), encoding="utf-8")
    (root / "page.rss").write_text("<!doctype html><html><body>Access denied</body></html>")
    (root / "huge.rss").write_bytes(b"<rss>" + b" " * 6_000_000 + b"</rss>")
    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/broken.rss":  # promises 100 kB, sends 20 bytes, hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"<rss><channel><item>")
                self.wfile.flush()
                self.close_connection = True
                return
            super().do_GET()

    handler = partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base
    server.shutdown()


@pytest.fixture
def news_ingest(client_for, monkeypatch, feeds, pubsub, tmp_path):
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    if not FEED.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    with contextlib.suppress(AlreadyExists):
        pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/news.event")
    calendar = tmp_path / "calendar.csv"
    calendar.write_text("occurs_at,event_type,title,source\n"
                        "2025-04-09T10:00:00+05:30,rbi_policy,RBI MPC policy decision "
                        "(April 2025),test calendar\n", encoding="utf-8")
    monkeypatch.setenv("QS_EVENT_CALENDAR", str(calendar))
    monkeypatch.setenv("QS_NEWS_ALLOWED_HOSTS", json.dumps(["127.0.0.1"]))
    monkeypatch.setenv("QS_NEWS_FEEDS", json.dumps([
        {"name": "hindu", "url": f"{feeds}/hindu.rss"},
        {"name": "other", "url": f"{feeds}/other.rss"},
        {"name": "html-page", "url": f"{feeds}/page.rss"},
        {"name": "oversize", "url": f"{feeds}/huge.rss"},
        {"name": "not-allowed", "url": "http://169.254.169.254/latest/meta-data"},
        {"name": "cut-short", "url": f"{feeds}/broken.rss"},
    ]))
    return client_for("functions/news_ingest")


def fire(client, auth, at: str = RUN_AT):
    return client.post("/run", headers={**auth, "X-CloudScheduler-JobName": "news-ingest",
                                        "X-CloudScheduler-ScheduleTime": at}, json={})


def rows(db, sql, **params):
    with db.system() as s:
        return s.execute(sql, **params).dicts()


def test_feeds_are_stored_deduplicated_classified_and_published(news_ingest, auth, app_db,
                                                                 pubsub):
    with topic_listener(pubsub, ("news.event",), "news") as pull:
        first = fire(news_ingest, auth)
        assert first.status_code == 200, first.json
        out = first.json
        published = [m for _ in range(3) for m in pull("news.event")]
    assert out["by_feed"] == {"hindu": "ok", "other": "ok", "html-page": "error",
                              "oversize": "error", "not-allowed": "error",
                              "cut-short": "error"}
    errors = {r["feed"]: r["reason_code"] for r in rows(
        app_db, "SELECT feed, reason_code FROM news_feed_errors WHERE feed IN "
                "('html-page', 'oversize', 'not-allowed', 'cut-short')")}
    assert errors == {"html-page": "not_a_feed", "oversize": "too_large",
                      "not-allowed": "feed_refused",
                      "cut-short": "provider_unavailable"}  # a body cut short, retried
    # the same three stories from the second outlet joined the first outlet's stories
    shared = rows(app_db, "SELECT s.story_id, s.sources, array_agg(i.feed ORDER BY i.feed) AS f "
                          "FROM news_stories s JOIN news_items i USING (story_id) "
                          "GROUP BY s.story_id, s.sources HAVING count(*) > 1")
    assert len(shared) == 3 and all(r["sources"] == 2 and r["f"] == ["hindu", "other"]
                                    for r in shared)
    # the emergency cut is a high-impact monetary-policy story: a news event, published
    (cut,) = rows(app_db, "SELECT event_type, impact, action, window_minutes, why FROM "
                          "news_events WHERE kind = 'news' AND title LIKE 'RBI unexpectedly%'")
    assert cut["event_type"] == "monetary_policy" and cut["impact"] >= 0.6
    assert cut["action"] in ("reduce_25", "reduce_50") and cut["why"]
    (rbi,) = rows(app_db, "SELECT action, occurs_at FROM news_events WHERE kind = 'scheduled' "
                          "AND event_type = 'rbi_policy' AND title LIKE '%April 2025%'")
    assert rbi["action"] == "reduce_50"
    titles = {m.title for m in published}
    assert any(t.startswith("RBI unexpectedly") for t in titles)
    assert "RBI MPC policy decision (April 2025)" in titles


def test_a_second_poll_is_conditional_and_writes_nothing_twice(news_ingest, auth, app_db):
    assert fire(news_ingest, auth).status_code == 200
    before = rows(app_db, "SELECT count(*) AS n FROM news_items")[0]["n"]
    again = fire(news_ingest, auth, "2025-04-03T17:35:00Z")
    assert again.status_code == 200, again.json
    assert again.json["by_feed"]["hindu"] == "not_modified"  # If-Modified-Since → 304
    assert again.json["new_items"] == 0 and again.json["scheduled_events"] == 0
    assert rows(app_db, "SELECT count(*) AS n FROM news_items")[0]["n"] == before
    states = {r["name"]: r for r in rows(app_db, "SELECT name, last_status, last_modified "
                                                 "FROM news_feeds")}
    assert states["hindu"]["last_status"] == "not_modified"
    assert states["hindu"]["last_modified"]  # the validator of the first poll is kept
