"""decide through functions-framework: a real NSE snapshot stored by chain_poll (replay),
then the ``chain.snapshot`` CloudEvent → one decision per active tenant, proposals on
``decision.proposed``; redelivery; bad tenant settings; ``POST /decision``."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.adapters.decide_state import proposal_of
from shared.contracts import ChainSnapshotV1
from tests.functions.conftest import cloudevent, topic_listener
from tests.functions.test_chain_poll import NIFTY_2025, fire

pytestmark = pytest.mark.integration

GENEROUS = {"risk": {"capital": 5_000_000},
            "decide": {"appetite": {"target_annual_vol": 0.5, "confidence_power": 0.5}}}


@pytest.fixture
def snapshot(client_for, gcs, pubsub, monkeypatch, tmp_path, auth, app_db) -> ChainSnapshotV1:
    """The 2025-07-16 NIFTY chain, stored and published by chain_poll (replay)."""
    import contextlib

    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    from tests.functions.conftest import PROJECT

    publisher = pubsub_v1.PublisherClient()
    for topic in ("chain.snapshot", "decision.proposed"):
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=f"projects/{PROJECT}/topics/{topic}")
    replay = tmp_path / "replay"
    replay.mkdir()
    text = NIFTY_2025.read_text().replace("16-Jul-2025 15:30:00", "16-Jul-2025 11:00:00")
    (replay / "0001.json").write_text(text)
    monkeypatch.setenv("QS_CHAIN_SOURCE", f"replay:{replay}")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs[0].host)
    response = fire(client_for("functions/chain_poll"), auth, "2025-07-16T05:30:00Z")
    assert response.json["status"] in ("done", "duplicate"), response.json
    with app_db.system() as s:
        row = s.execute("SELECT snapshot_id, symbol, asof, spot, source, expiries, legs, raw_blob "
                        "FROM chain_snapshots WHERE symbol = 'NIFTY' AND asof = :a",
                        a="2025-07-16T11:00:00+05:30").dicts()[0]
    return ChainSnapshotV1(**{**row, "expiries": tuple(row["expiries"])})


def provision(owner_db, settings: dict | None = None) -> uuid.UUID:
    tenant = uuid.uuid4()
    with owner_db.system() as s:
        s.execute("SELECT provision_tenant(:t, 'decide-test', 'standard', CAST(:s AS jsonb))",
                  t=tenant, s=json.dumps(settings or {}))
    return tenant


def decisions(app_db, tenant: uuid.UUID) -> list[dict]:
    with app_db.tenant(tenant) as s:
        return s.execute("SELECT outcome, structure, lots, reason_code, reason, proposal_id, "
                         "proposal, explanation, published_at FROM decisions").dicts()


def test_a_snapshot_is_decided_once_per_tenant_and_proposals_are_published(
        client_for, auth, app_db, owner_db, pubsub, snapshot):
    rich = provision(owner_db, GENEROUS)
    small = provision(owner_db, {"risk": {"capital": 20_000}})
    broken = provision(owner_db, {"decide": {"appetite": {"target_annual_vol": -1}}})
    client = client_for("functions/decide")
    headers, body = cloudevent(snapshot)
    with topic_listener(pubsub, ("decision.proposed",), "decide") as pull:
        first = client.post("/", headers={**headers, **auth}, data=body)
        assert first.status_code == 200, first.json
        assert first.json["status"] == "done"
        again = client.post("/", headers={**headers, **auth}, data=body)  # a redelivery
        assert again.json["status"] == "done" and again.json["proposed"] == 0
        assert again.json["duplicate"] == first.json["tenants"]
        published = [m for _ in range(3) for m in pull("decision.proposed")]

    mine = {rich: decisions(app_db, rich), small: decisions(app_db, small),
            broken: decisions(app_db, broken)}
    assert all(len(rows) == 1 for rows in mine.values())  # once per tenant, redelivery or not
    r = mine[rich][0]
    assert r["outcome"] == "proposed", r["reason"]
    proposal = proposal_of(r)  # stored without its explanation, which has its own column
    assert "explanation" not in r["proposal"]
    assert proposal.tenant_id == rich and proposal.snapshot_id == snapshot.snapshot_id
    assert r["published_at"] is not None and r["lots"] >= 1
    assert all(leg.lots % r["lots"] == 0 for leg in proposal.legs)
    ours = [m for m in published if m.tenant_id in mine]
    assert [m.proposal_id for m in ours] == [proposal.proposal_id]  # published once
    expl = proposal.explanation
    assert expl["snapshot"]["snapshot_id"] == str(snapshot.snapshot_id)
    assert expl["snapshot"]["spot"] == pytest.approx(snapshot.spot)
    assert expl["bandit"]["arm"] == proposal.structure.value
    assert expl["structure"]["wing_source"] == "rule"
    assert {"regime", "consensus", "signals", "sizing", "models"} <= set(expl)
    # the two others are recorded no-trades with their reasons
    assert mine[small][0]["outcome"] == "no_trade"
    assert mine[small][0]["reason_code"] in ("sized_to_zero", "no_structure", "no_view")
    assert mine[broken][0]["reason_code"] == "bad_tenant_settings"
    assert "decide.appetite" in mine[broken][0]["reason"]
    with app_db.tenant(rich) as s:
        audit = s.execute("SELECT actor, action, subject FROM audit_log").rows
    assert list(audit) == [("decide", "proposed", str(proposal.proposal_id))]
    with app_db.system() as s:
        run = s.execute("SELECT regime, summary FROM decide_market_runs WHERE snapshot_id = :i",
                        i=snapshot.snapshot_id).dicts()
    assert len(run) == 1 and run[0]["regime"] == proposal.regime


def test_the_current_decision_is_served_and_decided_on_demand(
        client_for, auth, app_db, owner_db, snapshot):
    from shared.adapters.principals import grant
    from shared.auth import LocalTokenIssuer
    from tests.functions.conftest import SECRET

    late = provision(owner_db, GENEROUS)  # provisioned after the snapshot event was handled
    with owner_db.system() as s:
        grant(s, "trader@decide.example", late, "trader")
    client = client_for("functions/decide")

    def call(email: str, payload: dict):
        token = LocalTokenIssuer(SECRET).header("http://localhost/decision", email)
        return client.post("/decision", headers={"Authorization": token}, json=payload)

    first = call("trader@decide.example", {"tenant_id": str(late), "symbol": "NIFTY"})
    assert first.status_code == 200, first.json
    body = first.json
    assert body["snapshot"]["snapshot_id"] == str(snapshot.snapshot_id) or body["snapshot"]
    assert body["decided_on_demand"] is True and body["outcome"] in ("proposed", "no_trade")
    assert body["explanation"]["snapshot"]["snapshot_id"] == body["snapshot"]["snapshot_id"]
    second = call("trader@decide.example", {"tenant_id": str(late)})
    assert second.json["decided_on_demand"] is False
    assert second.json["decision_id"] == body["decision_id"]
    assert len(decisions(app_db, late)) == 1
    assert call("stranger@decide.example", {"tenant_id": str(late)}).status_code == 403
    assert call("trader@decide.example", {"tenant_id": "nope"}).status_code == 400
    unknown = call("trader@decide.example", {"tenant_id": str(late), "symbol": "FINNIFTY"})
    assert unknown.status_code == 404 and unknown.json["error"] == "no_snapshot"


def test_a_failed_publish_is_retried_from_the_stored_decisions(
        client_for, auth, app_db, owner_db, pubsub, snapshot, monkeypatch):
    """Pub/Sub refuses (the topic is missing in this project): the event answers 503 and the
    proposals stay stored and unpublished; the redelivery decides nobody again and publishes
    them once."""
    from google.cloud import pubsub_v1

    project = f"qs-decide-outage-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("QS_PROJECT_ID", project)
    tenant = provision(owner_db, GENEROUS)
    client = client_for("functions/decide")
    headers, body = cloudevent(snapshot)
    failed = client.post("/", headers={**headers, **auth}, data=body)
    assert failed.status_code == 503 and failed.json["error"] == "publish_failed"
    (row,) = decisions(app_db, tenant)
    assert row["outcome"] == "proposed" and row["published_at"] is None

    topic = f"projects/{project}/topics/decision.proposed"
    pubsub_v1.PublisherClient().create_topic(name=topic)
    _, subscriber = pubsub
    sub = f"projects/{project}/subscriptions/outage-{uuid.uuid4().hex[:6]}"
    subscriber.create_subscription(name=sub, topic=topic)
    retried = client.post("/", headers={**headers, **auth}, data=body)
    assert retried.status_code == 200 and retried.json["proposed"] == 0
    assert retried.json["published"] >= 1
    (again,) = decisions(app_db, tenant)
    assert again["published_at"] is not None
    got = subscriber.pull(subscription=sub, max_messages=50, timeout=5).received_messages
    mine = [m for m in got if str(tenant) in m.message.data.decode()]
    assert len(mine) == 1  # published once, with its explanation
    assert '"explanation"' in mine[0].message.data.decode()
    subscriber.delete_subscription(subscription=sub)


def test_one_broken_tenant_never_holds_back_the_others(client_for, auth, app_db, owner_db,
                                                        pubsub, snapshot):
    """A tenant whose stored bandit is unreadable fails alone: the others' proposals are
    published, and the event asks for a retry (which decides only the broken tenant)."""
    broken, fine = provision(owner_db, GENEROUS), provision(owner_db, GENEROUS)
    with app_db.tenant(broken) as s:
        s.execute("INSERT INTO decide_tenant_state (tenant_id, bandit, updated_at) VALUES "
                  "(:t, '{\"format\": \"something else\"}'::jsonb, now())", t=broken)
    client = client_for("functions/decide")
    headers, body = cloudevent(snapshot)
    try:
        with topic_listener(pubsub, ("decision.proposed",), "decide-broken") as pull:
            response = client.post("/", headers={**headers, **auth}, data=body)
            published = [m for _ in range(3) for m in pull("decision.proposed")]
    finally:  # later tests in this database decide every active tenant: retire this one
        with owner_db.system() as s:
            s.execute("UPDATE tenants SET active = false WHERE tenant_id = :t", t=broken)
    assert response.status_code == 503 and "1 tenant(s)" in response.json["reason"]
    assert decisions(app_db, broken) == []
    (row,) = decisions(app_db, fine)
    assert row["outcome"] == "proposed" and row["published_at"] is not None
    assert [m.tenant_id for m in published if m.tenant_id in (broken, fine)] == [fine]


def test_a_snapshot_event_that_overtakes_its_publication_record_is_retried_not_rejected(
        client_for, auth, app_db, owner_db, pubsub, snapshot, monkeypatch):
    """chain_poll publishes, then records ``published_at``: an event arriving in between is
    handed back for a retry (503), never rejected, and is decided once the record lands."""
    from shared.services.decide import DecideService

    tenant = provision(owner_db, GENEROUS)
    with owner_db.system() as s:
        s.execute("UPDATE chain_snapshots SET published_at = NULL WHERE snapshot_id = :i",
                  i=snapshot.snapshot_id)
    monkeypatch.setattr(DecideService, "publish_wait_s", 0.2)
    client = client_for("functions/decide")
    headers, body = cloudevent(snapshot)
    pending = client.post("/", headers={**headers, **auth}, data=body)
    assert pending.status_code == 503, pending.json
    assert pending.json["error"] == "snapshot_pending"
    assert decisions(app_db, tenant) == []
    with app_db.system() as s:
        assert s.execute("SELECT count(*) FROM rejections WHERE event_id = :e",
                         e=headers["ce-id"]).scalar() == 0
    with owner_db.system() as s:
        s.execute("UPDATE chain_snapshots SET published_at = now() WHERE snapshot_id = :i",
                  i=snapshot.snapshot_id)
    retried = client.post("/", headers={**headers, **auth}, data=body)
    assert retried.status_code == 200 and retried.json["status"] == "done", retried.json
    assert len(decisions(app_db, tenant)) == 1
