"""Scheduler → chain_poll → Postgres + GCS → chain.snapshot → decide, through the local cloud
(the simulator is the local cloud's default source)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from local.scheduler import LocalScheduler
from shared.contracts import ChainSnapshotV1, decode
from shared.schedules import load_schedules
from tests.integration.test_local_cloud import REPO_SCHEDULES, wait_for

pytestmark = pytest.mark.integration


def test_the_scheduler_fires_chain_poll_and_the_snapshot_event_flows_on(cloud):
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    sub = cloud.subscription_path(f"chain-snapshot-watch-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=sub, topic=cloud.topic_path("chain.snapshot"))
    jobs = [j for j in load_schedules(REPO_SCHEDULES) if j.name == "chain-poll-nifty"]
    # Friday 2026-11-20, 09:14 IST: the first two minutes of the session
    scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer,
                               start=datetime(2026, 11, 20, 3, 44, tzinfo=UTC))
    try:
        firings = scheduler.tick(datetime(2026, 11, 20, 3, 46, tzinfo=UTC))
        assert [(f.scheduled_for.strftime("%H:%M"), f.status) for f in firings] == [
            ("09:15", 200), ("09:16", 200)], [f.error for f in firings]
        messages: list = []

        def arrived():
            response = subscriber.pull(subscription=sub, max_messages=10, timeout=5)
            if response.received_messages:
                subscriber.acknowledge(subscription=sub,
                                       ack_ids=[m.ack_id for m in response.received_messages])
            messages.extend(m.message for m in response.received_messages)
            return len({m.message_id for m in messages}) >= 2

        wait_for(arrived, timeout=30, every=0.2)
    finally:
        scheduler.close()
        subscriber.delete_subscription(subscription=sub)
        subscriber.close()

    snapshots = [decode(m.data, dict(m.attributes)) for m in messages]
    assert all(isinstance(s, ChainSnapshotV1) for s in snapshots)
    assert {s.source for s in snapshots} == {"simulator"}
    assert sorted(s.asof.strftime("%H:%M") for s in snapshots)[:2] == ["09:15", "09:16"]
    with cloud.app_db().system() as s:
        polls = s.execute("SELECT status FROM chain_polls WHERE run_id LIKE 'chain-poll-nifty@2026-11-20T03:4%'"
                          ).rows
        assert sorted(polls) == [("published",), ("published",)]
        for snap in snapshots:
            legs = s.execute("SELECT count(*), count(iv) FROM chain_legs WHERE snapshot_id = :i",
                             i=snap.snapshot_id).rows[0]
            assert legs[0] == snap.legs and legs[1] > legs[0] // 3
    # the event reached decide by push: one market run per snapshot
    owner = cloud.owner_db()

    def decided():
        with owner.system() as s:
            return s.execute("SELECT count(*) FROM decide_market_runs WHERE snapshot_id = "
                             "ANY(CAST(:ids AS uuid[]))",
                             ids="{" + ",".join(str(x.snapshot_id) for x in snapshots) + "}"
                             ).scalar() == 2

    wait_for(decided, timeout=30, every=0.2)
    owner.close()
    # GCS holds the raw payloads the snapshots point at
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=cloud.config.project_id, credentials=AnonymousCredentials())
    for snap in snapshots:
        bucket, key = snap.raw_blob.removeprefix("gs://").split("/", 1)
        assert client.bucket(bucket).blob(key).exists()
