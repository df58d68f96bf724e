"""chain_poll through functions-framework on real payloads (replay), against the real
Postgres, GCS emulator and Pub/Sub emulator."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import shutil
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from google.api_core.exceptions import AlreadyExists

from tests.functions.conftest import PROJECT

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHAINS = ROOT / "tests" / "fixtures" / "chains"
NIFTY_2025 = CHAINS / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json"


@pytest.fixture
def snapshots_sub(pubsub):
    """A pull subscription on chain.snapshot, to see what chain_poll publishes."""
    from google.cloud import pubsub_v1

    emulator, subscriber = pubsub
    publisher = pubsub_v1.PublisherClient()
    topic = f"projects/{PROJECT}/topics/chain.snapshot"
    with contextlib.suppress(AlreadyExists):  # created by an earlier test
        publisher.create_topic(name=topic)
    name = f"projects/{PROJECT}/subscriptions/chain-snapshot-test-{id(object())}"
    subscriber.create_subscription(name=name, topic=topic)
    yield subscriber, name
    subscriber.delete_subscription(subscription=name)


def pull(subscriber, name):
    response = subscriber.pull(subscription=name, max_messages=10, timeout=5)
    if response.received_messages:
        subscriber.acknowledge(subscription=name, ack_ids=[m.ack_id for m in response.received_messages])
    return [m.message for m in response.received_messages]


@pytest.fixture
def chain_poll(client_for, gcs, monkeypatch, tmp_path):
    """A chain_poll whose provider replays the files put in ``tmp_path/replay``."""
    replay = tmp_path / "replay"
    replay.mkdir()
    monkeypatch.setenv("QS_CHAIN_SOURCE", f"replay:{replay}")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs[0].host)
    return client_for("functions/chain_poll"), replay


def fire(client, auth, run_time: str, job: str = "chain-poll-nifty", **payload):
    headers = {**auth, "X-CloudScheduler": "true", "X-CloudScheduler-JobName": job,
               "X-CloudScheduler-ScheduleTime": run_time}
    return client.post("/run", headers=headers, json={"symbol": "NIFTY", **payload})


def rows(db, sql, **params):
    with db.system() as s:
        return s.execute(sql, **params).dicts()


def test_a_real_payload_is_stored_analysed_and_published(chain_poll, auth, app_db, gcs, snapshots_sub):
    client, replay = chain_poll
    shutil.copy(NIFTY_2025, replay / "0001.json")
    response = fire(client, auth, "2025-07-16T04:30:00Z")  # 10:00 IST, in session
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "done"
    sid = body["snapshot_id"]
    poll = rows(app_db, "SELECT status, snapshot_id FROM chain_polls WHERE run_id = :r",
                r="chain-poll-nifty@2025-07-16T04:30:00+00:00")
    assert poll == [{"status": "published", "snapshot_id": uuid.UUID(sid)}]
    snap = rows(app_db, "SELECT legs, raw_blob, published_at, bad_chain FROM chain_snapshots "
                        "WHERE snapshot_id = :i", i=sid)[0]
    assert snap["published_at"] is not None and snap["bad_chain"] is False
    legs = rows(app_db, "SELECT count(*) AS n, count(iv) AS with_iv FROM chain_legs WHERE snapshot_id = :i",
                i=sid)[0]
    assert legs["n"] == snap["legs"] and 0 < legs["with_iv"] < legs["n"]
    expiries = rows(app_db, "SELECT expiry, forward, atm_iv, details FROM chain_expiry_analytics "
                            "WHERE snapshot_id = :i ORDER BY expiry", i=sid)
    assert expiries and all(e["forward"] > 0 for e in expiries)
    # the raw payload, gzipped, content-addressed in GCS
    bucket, key = snap["raw_blob"].removeprefix("gs://").split("/", 1)
    assert gzip.decompress(gcs[1].bucket(bucket).blob(key).download_as_bytes()) == NIFTY_2025.read_bytes()
    published = pull(*snapshots_sub)
    assert len(published) == 1 and published[0].attributes["contract"] == "chain.snapshot"
    assert sid in published[0].data.decode()


def with_time(stamp: str) -> str:
    """The 2025 payload with its snapshot time replaced (a new snapshot for the database)."""
    return NIFTY_2025.read_text().replace("16-Jul-2025 15:30:00", stamp)


def test_retries_and_stale_payloads_are_not_republished(chain_poll, auth, app_db, snapshots_sub):
    client, replay = chain_poll
    for i in range(3):
        (replay / f"{i:04d}.json").write_text(with_time("16-Jul-2025 10:01:00"))
    first = fire(client, auth, "2025-07-16T04:31:00Z")
    assert first.json["status"] == "done"
    again = fire(client, auth, "2025-07-16T04:31:00Z")  # the same firing, retried
    assert again.json["status"] == "duplicate"
    later = fire(client, auth, "2025-07-16T04:32:00Z")  # a new firing, the same snapshot time
    assert later.json == {"status": "skipped", "reason": "stale payload",
                          "asof": "2025-07-16T10:01:00+05:30"}
    assert rows(app_db, "SELECT status, reason_code FROM chain_polls WHERE run_id = :r",
                r="chain-poll-nifty@2025-07-16T04:32:00+00:00") == [
        {"status": "stale", "reason_code": "stale_payload"}]
    assert len(pull(*snapshots_sub)) == 1  # published once


def test_a_repeat_of_the_newest_bytes_is_stale_even_with_a_new_time(chain_poll, auth, app_db,
                                                                   monkeypatch):
    """Upstox payloads carry no time (asof is the fetch time): a frozen feed repeats bytes."""
    from shared.adapters.providers.replay import ReplayProvider

    client, replay = chain_poll
    body = with_time("16-Jul-2025 10:02:00")
    (replay / "0001.json").write_text(body)
    (replay / "0002.json").write_text(body)
    assert fire(client, auth, "2025-07-16T04:33:00Z").json["status"] == "done"
    original = ReplayProvider.parse

    def shifted(self, raw):  # what a timeless feed does: the snapshot time moves on
        snap = original(self, raw)
        return dataclasses.replace(snap, asof=snap.asof.replace(minute=3))

    monkeypatch.setattr(ReplayProvider, "parse", shifted)
    response = fire(client, auth, "2025-07-16T04:34:00Z")
    assert response.json["status"] == "skipped"
    reason = rows(app_db, "SELECT reason FROM chain_polls WHERE run_id = :r",
                  r="chain-poll-nifty@2025-07-16T04:34:00+00:00")[0]["reason"]
    assert "repeats the bytes" in reason


def test_a_failed_publish_is_published_by_the_next_run(chain_poll, auth, app_db, snapshots_sub,
                                                       monkeypatch):
    from shared.adapters.bus import PubSubBus
    from shared.errors import PublishFailed

    client, replay = chain_poll
    (replay / "0001.json").write_text(with_time("16-Jul-2025 10:05:00"))
    (replay / "0002.json").write_text(with_time("16-Jul-2025 10:06:00"))
    real = PubSubBus.publish

    def down(self, message):
        raise PublishFailed("pubsub is down")

    monkeypatch.setattr(PubSubBus, "publish", down)
    failed = fire(client, auth, "2025-07-16T04:35:00Z")
    assert failed.status_code == 503  # committed, not published: the outbox keeps it
    sid = rows(app_db, "SELECT snapshot_id, published_at FROM chain_snapshots s JOIN chain_polls p "
                       "USING (snapshot_id) WHERE p.run_id = :r",
               r="chain-poll-nifty@2025-07-16T04:35:00+00:00")[0]
    assert sid["published_at"] is None
    monkeypatch.setattr(PubSubBus, "publish", real)
    assert fire(client, auth, "2025-07-16T04:36:00Z").json["status"] == "done"
    published = [m.data.decode() for m in pull(*snapshots_sub)]
    assert sum(str(sid["snapshot_id"]) in p for p in published) == 1  # the old one, once
    assert len(published) == 2  # and the new one
    assert rows(app_db, "SELECT count(*) AS n FROM chain_snapshots WHERE published_at IS NULL "
                        "AND NOT bad_chain") == [{"n": 0}]


def test_a_bad_chain_is_stored_but_not_published(chain_poll, auth, app_db, snapshots_sub):
    import json as _json

    client, replay = chain_poll
    payload = _json.loads(with_time("16-Jul-2025 10:07:00"))
    rows_ = payload["records"]["data"]
    # cross the quotes of every leg of the nearest expiry (17-Jul-2025): ask below bid
    for r in rows_:
        for side in ("CE", "PE"):
            leg = r.get(side)
            if leg and r["expiryDate"] == "17-Jul-2025" and leg["bidprice"] > 0:
                leg["askPrice"] = max(leg["bidprice"] - 5, 0.05)
    (replay / "0001.json").write_text(_json.dumps(payload))
    response = fire(client, auth, "2025-07-16T04:37:00Z")
    assert response.json["status"] == "rejected" and response.json["reason_code"] == "arbitrage"
    poll = rows(app_db, "SELECT status, snapshot_id FROM chain_polls WHERE run_id = :r",
                r="chain-poll-nifty@2025-07-16T04:37:00+00:00")[0]
    assert poll["status"] == "bad_chain"
    stored = rows(app_db, "SELECT bad_chain, published_at FROM chain_snapshots WHERE snapshot_id = :i",
                  i=poll["snapshot_id"])
    assert stored == [{"bad_chain": True, "published_at": None}]
    assert pull(*snapshots_sub) == []


def test_an_unavailable_provider_is_recorded_and_its_retry_replaces_the_record(
        chain_poll, auth, app_db, monkeypatch):
    from shared.adapters.providers.base import ProviderUnavailable
    from shared.adapters.providers.replay import ReplayProvider

    client, replay = chain_poll
    (replay / "0001.json").write_text(with_time("16-Jul-2025 10:08:00"))
    real = ReplayProvider.fetch

    def down(self, symbol, now):
        raise ProviderUnavailable("nse timed out after 4 attempts", reason_code="provider_timeout",
                                  attempts=4)

    monkeypatch.setattr(ReplayProvider, "fetch", down)
    assert fire(client, auth, "2025-07-16T04:38:00Z").status_code == 503
    run_id = "chain-poll-nifty@2025-07-16T04:38:00+00:00"
    assert rows(app_db, "SELECT status FROM chain_polls WHERE run_id = :r", r=run_id) == [
        {"status": "failed"}]
    monkeypatch.setattr(ReplayProvider, "fetch", real)
    assert fire(client, auth, "2025-07-16T04:38:00Z").json["status"] == "done"  # the retry
    assert rows(app_db, "SELECT status FROM chain_polls WHERE run_id = :r", r=run_id) == [
        {"status": "published"}]


@pytest.mark.parametrize(("body", "code"), [
    (b"<html><body>Access Denied</body></html>", "html_not_json"),
    (b'{"records": {"timestamp": "16-Jul-2025 10:00:00"}}', "schema_changed"),
    (b"{\"records\": {\"data\": [], \"timestamp\": \"16-Jul-2025 10:00:00\", \"underlyingValue\": 1}}",
     "empty_chain"),
])
def test_bad_payloads_are_recorded_with_a_reason_and_leave_no_rows(chain_poll, auth, app_db, body, code):
    client, replay = chain_poll
    (replay / "0001.json").write_bytes(body)
    run_time = f"2025-07-17T05:{len(body) % 60:02d}:00Z"
    response = fire(client, auth, run_time)
    assert response.status_code == 200
    assert response.json["status"] == "rejected" and response.json["reason_code"] == code
    run_id = f"chain-poll-nifty@{run_time.replace('Z', '+00:00')}"
    poll = rows(app_db, "SELECT status, reason_code, reason, snapshot_id FROM chain_polls WHERE run_id = :r",
                r=run_id)
    assert poll[0]["status"] == "rejected" and poll[0]["reason_code"] == code
    assert poll[0]["reason"] and poll[0]["snapshot_id"] is None
    if code != "html_not_json":  # bodies that reached the parser are kept for forensics
        assert "gs://" in poll[0]["reason"]
    assert rows(app_db, "SELECT count(*) AS n FROM chain_snapshots WHERE run_id = :r", r=run_id) == [{"n": 0}]


def test_outside_market_hours_nothing_is_polled(chain_poll, auth, app_db):
    client, replay = chain_poll
    shutil.copy(NIFTY_2025, replay / "0001.json")
    response = fire(client, auth, "2025-07-19T05:00:00Z")  # a Saturday
    assert response.json == {"status": "skipped", "reason": "market closed",
                             "at": "2025-07-19T05:00:00+00:00"}
    assert rows(app_db, "SELECT count(*) AS n FROM chain_polls WHERE run_id LIKE '%2025-07-19%'") == [{"n": 0}]


def test_a_bad_command_is_refused(chain_poll, auth):
    client, _ = chain_poll
    response = client.post("/run", headers=auth, json={"symbol": "NIFTY", "surprise": 1})
    assert response.status_code == 422
    assert response.json["error"] == "bad_command"


def test_two_firings_racing_on_one_snapshot_store_it_once(chain_poll, auth, app_db, monkeypatch):
    """Both pass the stale check; the database's unique key lets one win, the other is stale."""
    from shared.services.chain_poll import ChainPollService

    client, replay = chain_poll
    body = NIFTY_2025.read_text().replace("16-Jul-2025 15:30:00", "16-Jul-2025 11:11:11")
    for i in range(2):
        (replay / f"{i:04d}.json").write_text(body)
    monkeypatch.setattr(ChainPollService, "_stale_reason", lambda self, snap, digest: None)
    first = fire(client, auth, "2025-07-16T05:41:00Z")
    second = fire(client, auth, "2025-07-16T05:42:00Z")
    assert first.json["status"] == "done"
    assert second.json == {"status": "skipped", "reason": "stale payload",
                           "asof": "2025-07-16T11:11:11+05:30"}
    stored = rows(app_db, "SELECT count(*) AS n FROM chain_snapshots WHERE asof = :a",
                  a=datetime.fromisoformat("2025-07-16T11:11:11+05:30"))
    assert stored == [{"n": 1}]
    assert rows(app_db, "SELECT status FROM chain_polls WHERE run_id = :r",
                r="chain-poll-nifty@2025-07-16T05:42:00+00:00") == [{"status": "stale"}]
