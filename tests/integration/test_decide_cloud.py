"""Scheduler → chain_poll → chain.snapshot → decide → decision.proposed → risk_check →
verdict, through the local cloud (every push delivered three times)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.integration.cloud_support import poll_chain_at
from tests.integration.test_local_cloud import wait_for

pytestmark = pytest.mark.integration

GENEROUS = {"risk": {"capital": 5_000_000},
            "decide": {"appetite": {"target_annual_vol": 0.5, "confidence_power": 0.5}}}


def test_a_snapshot_becomes_proposals_and_risk_verdicts(cloud):
    owner = cloud.owner_db()
    tenants = [uuid.uuid4() for _ in range(3)]
    with owner.system() as s:
        for t in tenants:
            s.execute("SELECT provision_tenant(:t, 'cloud-decide', 'standard', "
                      "CAST(:s AS jsonb))", t=t, s=json.dumps(GENEROUS))
    db = cloud.app_db()
    snapshot_id = poll_chain_at(cloud, datetime(2026, 11, 20, 5, 30, tzinfo=UTC))  # 11:00 IST

    def decided():
        found = {}
        for t in tenants:
            with db.tenant(t) as s:
                rows = s.execute("SELECT outcome, proposal_id, published_at, reason FROM "
                                 "decisions WHERE snapshot_id = :i", i=snapshot_id).dicts()
            if not rows or (rows[0]["outcome"] == "proposed" and rows[0]["published_at"] is None):
                return None
            found[t] = rows
        return found

    decisions = wait_for(decided, timeout=60, every=0.3)
    assert all(len(rows) == 1 for rows in decisions.values())  # three deliveries, one each
    proposed = {t: rows[0]["proposal_id"] for t, rows in decisions.items()
                if rows[0]["outcome"] == "proposed"}
    assert proposed, [rows[0]["reason"] for rows in decisions.values()]

    def verdicts():
        out = {}
        for t, proposal_id in proposed.items():
            with db.tenant(t) as s:
                rows = s.execute("SELECT approved, blocked_by, reason, published_at FROM "
                                 "risk_verdicts WHERE proposal_id = :p", p=proposal_id).dicts()
            if not rows or rows[0]["published_at"] is None:
                return None
            out[t] = rows
        return out

    decided_by_risk = wait_for(verdicts, timeout=60, every=0.3)
    for t, rows in decided_by_risk.items():
        assert len(rows) == 1 and rows[0]["reason"]  # one verdict per proposal
        with db.tenant(t) as s:
            actors = [a for (a,) in s.execute(
                "SELECT actor FROM audit_log WHERE subject = :p ORDER BY audit_id",
                p=str(proposed[t])).rows]
            positions = s.execute("SELECT count(*) FROM paper_positions p JOIN risk_verdicts v "
                                  "USING (verdict_id) WHERE v.proposal_id = :p",
                                  p=proposed[t]).scalar()
        # decide's proposal and risk_check's verdict, each audited once
        assert actors == ["decide", "risk_check"]
        assert positions == (1 if rows[0]["approved"] else 0)
