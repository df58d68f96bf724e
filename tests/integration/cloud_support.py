"""Helpers shared by the local-cloud tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from local.scheduler import LocalScheduler
from shared.schedules import load_schedules
from tests.integration.test_local_cloud import REPO_SCHEDULES


def poll_chain_at(cloud, at: datetime, job: str = "chain-poll-nifty") -> uuid.UUID:
    """Fire chain_poll's job once through the scheduler at ``at`` (UTC, on a minute of the
    session) and return the snapshot it stored and published."""
    jobs = [j for j in load_schedules(REPO_SCHEDULES) if j.name == job]
    scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer, start=at - timedelta(seconds=30))
    try:
        firings = scheduler.tick(at)
        assert [f.status for f in firings] == [200], [f.error for f in firings]
    finally:
        scheduler.close()
    with cloud.app_db().system() as s:
        snapshot_id = s.execute(
            "SELECT snapshot_id FROM chain_polls WHERE run_id = :r AND status = 'published'",
            r=f"{job}@{at.isoformat()}").scalar()
    assert snapshot_id is not None
    return snapshot_id
