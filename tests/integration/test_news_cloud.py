"""The calendar drives risk_check's news wall, through a local cloud of its own: the
functions run on a replayed market clock (Friday 2026-11-20, 10:00 IST), news_ingest polls
a feed served locally (the kit's real RSS) and stores the scheduled calendar, which here
holds an RBI policy decision at 10:20 IST; a proposal made at 10:00 is then cut by the
news wall, and the verdict names the RBI decision."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from local.cloud import CloudConfig, LocalCloud
from local.scheduler import LocalScheduler
from shared.schedules import load_schedules
from tests.conftest import KIT_FIXTURES
from tests.integration.cloud_support import condor_on, poll_chain_at
from tests.integration.conftest import FAST_RETRY
from tests.integration.test_local_cloud import REPO_SCHEDULES, wait_for

pytestmark = pytest.mark.integration

MARKET_NOW = datetime(2026, 11, 20, 4, 30, tzinfo=UTC)  # Friday, 10:00 IST
RBI_AT = MARKET_NOW + timedelta(minutes=20)
FEED = KIT_FIXTURES / "rss_feeds" / "thehindu_business_economy_rss_2025-04-03_media-mosaic.xml"


@pytest.fixture(scope="module")
def feed_server(tmp_path_factory):
    if not FEED.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    root = tmp_path_factory.mktemp("feeds")
    (root / "economy.rss").write_bytes(FEED.read_bytes())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/economy.rss"
    server.shutdown()


@pytest.fixture(scope="module")
def news_cloud(tmp_path_factory, feed_server):
    calendar = tmp_path_factory.mktemp("calendar") / "extra.csv"
    calendar.write_text(
        "occurs_at,event_type,title,source\n"
        f"{RBI_AT.isoformat()},rbi_policy,RBI MPC policy decision (test),"
        "an operator's extra calendar in the integration test\n", encoding="utf-8")
    offset = (MARKET_NOW - datetime.now(UTC)).total_seconds()
    config = CloudConfig(
        state_dir=tmp_path_factory.mktemp("news-cloud"), fresh=True, retry=FAST_RETRY,
        extra_env={"QS_CLOCK_OFFSET_S": str(offset), "QS_EVENT_CALENDAR": str(calendar),
                   "QS_NEWS_FEEDS": json.dumps([{"name": "thehindu-economy",
                                                 "url": feed_server}]),
                   "QS_NEWS_ALLOWED_HOSTS": json.dumps(["127.0.0.1"])})
    with LocalCloud(config) as running:
        yield running


def _fire_news(cloud, at: datetime):
    jobs = [j for j in load_schedules(REPO_SCHEDULES) if j.name == "news-ingest"]
    scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer, start=at - timedelta(minutes=4))
    try:
        firings = scheduler.tick(at)
    finally:
        scheduler.close()
    assert [f.status for f in firings] == [200], [f.error for f in firings]


def test_the_rbi_window_cuts_a_proposal_and_the_verdict_names_it(news_cloud):
    cloud = news_cloud
    _fire_news(cloud, MARKET_NOW)
    db = cloud.app_db()
    with db.system() as s:
        rbi = s.execute("SELECT event_id, action, window_minutes, occurs_at, why FROM "
                        "news_events WHERE event_type = 'rbi_policy'").dicts()
        items = s.execute("SELECT count(*) FROM news_items WHERE feed = 'thehindu-economy'"
                          ).scalar()
        errors = list(s.execute("SELECT reason_code FROM news_feed_errors").rows)
    assert len(rbi) == 1 and rbi[0]["action"] == "reduce_50"
    assert rbi[0]["occurs_at"] == RBI_AT and rbi[0]["window_minutes"] == 90
    assert items > 0 and errors == []  # the real feed, fetched and stored

    snapshot_id = poll_chain_at(cloud, MARKET_NOW)
    tenant = uuid.uuid4()
    with cloud.owner_db().system() as s:
        s.execute("SELECT provision_tenant(:t, 'news-wall')", t=tenant)
    proposal = condor_on(cloud, tenant, snapshot_id, proposed_at=MARKET_NOW)
    cloud.publish(proposal)

    def verdict():
        with db.tenant(tenant) as s:
            rows = s.execute("SELECT approved, blocked_by, reason_code, reason, verdicts FROM "
                             "risk_verdicts WHERE proposal_id = :p",
                             p=proposal.proposal_id).dicts()
        return rows or None

    (v,) = wait_for(verdict, timeout=30, every=0.2)
    news = next(w for w in v["verdicts"] if w["wall"] == "news")
    # one lot halved is less than a lot: the wall blocks, naming the RBI decision
    assert v["approved"] is False and v["blocked_by"] == "news", v["reason"]
    assert news["reason_code"] == "news_reduce_below_one_lot"
    assert "RBI MPC policy decision (test)" in v["reason"]
    assert "reduce_50" in v["reason"]
