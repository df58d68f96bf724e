"""risk_check through functions-framework, against the real Postgres and Pub/Sub emulator,
on a real (replayed) NIFTY chain stored the way chain_poll stores it."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from shared.contracts import (
    SignalApprovedV1,
    SignalBlockedV1,
    encode,
)
from tests.functions.conftest import cloudevent, pull_dead_letters
from tests.functions.risk_support import ASOF, NOW, PREVIOUS_CLOSE, condor, post, tenant_rows

pytestmark = pytest.mark.integration


def test_an_approved_proposal_is_recorded_audited_opened_and_published(
        risk_check, auth, app_db, make_tenant, snapshot, signals):
    tenant = make_tenant("risk-approve")
    proposal = condor(tenant, snapshot)
    response, event_id = post(risk_check, auth, proposal)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "done" and response.json["approved"] is True, response.json
    verdict = tenant_rows(app_db, tenant, "SELECT * FROM risk_verdicts WHERE proposal_id = :p",
                          p=proposal.proposal_id)
    assert len(verdict) == 1
    v = verdict[0]
    assert v["approved"] and v["blocked_by"] is None and v["event_id"] == event_id
    assert v["dry_run"] is True  # a new tenant is in its paper-only lock
    assert v["net_ev"] > 0 and v["total_costs"] > 0 and v["published_at"] is not None
    assert "net_ev ₹" in v["reason"]
    gates = [g["wall"] for g in v["verdicts"]]
    assert gates[0] == "master" and gates[-1] == "tail_hedge" and len(gates) == 19
    audit = tenant_rows(app_db, tenant, "SELECT actor, action, subject, event_id, details "
                                        "FROM audit_log WHERE subject = :p", p=str(proposal.proposal_id))
    assert len(audit) == 1
    assert (audit[0]["actor"], audit[0]["action"], audit[0]["event_id"]) == (
        "risk_check", "approved", event_id)
    assert audit[0]["details"]["numbers"]["net_ev"] == pytest.approx(v["net_ev"])
    position = tenant_rows(app_db, tenant, "SELECT * FROM paper_positions WHERE verdict_id = :v",
                           v=v["verdict_id"])
    assert len(position) == 1 and position[0]["status"] == "open"
    assert position[0]["margin"] > 0 and position[0]["entry_premium"] > 0  # a credit
    assert [leg["lots"] for leg in position[0]["legs"]] == [1, 1, 1, 1]
    published = signals("signal.approved")
    assert len(published) == 1 and isinstance(published[0], SignalApprovedV1)
    assert published[0].verdict_id == v["verdict_id"] and published[0].dry_run
    assert published[0].net_ev == pytest.approx(v["net_ev"])
    assert signals("signal.blocked") == []


def test_the_same_event_three_times_makes_one_verdict(risk_check, auth, app_db, make_tenant,
                                                      snapshot, signals):
    tenant = make_tenant("risk-dup")
    proposal = condor(tenant, snapshot)
    headers, body = cloudevent(proposal, published=NOW)
    statuses = [risk_check.post("/", headers={**headers, **auth}, data=body).json["status"]
                for _ in range(3)]
    assert statuses == ["done", "duplicate", "duplicate"]
    for table in ("risk_verdicts", "paper_positions"):
        n = tenant_rows(app_db, tenant, f"SELECT count(*) AS n FROM {table}")  # noqa: S608
        assert n == [{"n": 1}], table
    assert tenant_rows(app_db, tenant, "SELECT count(*) AS n FROM audit_log WHERE subject = :p",
                       p=str(proposal.proposal_id)) == [{"n": 1}]
    assert len(signals("signal.approved")) == 1


def test_a_failed_publish_is_published_by_the_redelivery(risk_check, auth, app_db, make_tenant,
                                                         snapshot, signals, monkeypatch):
    from shared.adapters.bus import PubSubBus
    from shared.errors import PublishFailed

    tenant = make_tenant("risk-outbox")
    proposal = condor(tenant, snapshot)
    headers, body = cloudevent(proposal, published=NOW)
    real = PubSubBus.publish

    def down(self, message):
        raise PublishFailed("pubsub is down")

    monkeypatch.setattr(PubSubBus, "publish", down)
    assert risk_check.post("/", headers={**headers, **auth}, data=body).status_code == 503
    stored = tenant_rows(app_db, tenant, "SELECT verdict_id, published_at FROM risk_verdicts")
    assert len(stored) == 1 and stored[0]["published_at"] is None  # committed, not published
    monkeypatch.setattr(PubSubBus, "publish", real)
    again = risk_check.post("/", headers={**headers, **auth}, data=body).json
    assert again["status"] == "duplicate" and again["republished"] is True
    published = signals("signal.approved")
    assert [m.verdict_id for m in published] == [stored[0]["verdict_id"]]
    assert tenant_rows(app_db, tenant, "SELECT count(*) AS n FROM risk_verdicts "
                                       "WHERE published_at IS NULL") == [{"n": 0}]


def _no_trace(app_db, tenant, proposal_id):
    for table in ("risk_verdicts", "paper_positions", "processed_events"):
        assert tenant_rows(app_db, tenant, f"SELECT count(*) AS n FROM {table} "  # noqa: S608
                                           "WHERE tenant_id = :t", t=tenant) == [{"n": 0}], table
    assert tenant_rows(app_db, tenant, "SELECT count(*) AS n FROM audit_log WHERE subject = :p",
                       p=str(proposal_id)) == [{"n": 0}]


def _rejection(owner_db, event_id):
    with owner_db.system() as s:
        return s.execute("SELECT reason_code, reason FROM rejections WHERE consumer = 'risk_check' "
                         "AND event_id = :e", e=event_id).dicts()


def test_a_leg_not_in_the_chain_is_rejected_without_a_verdict(risk_check, auth, app_db, owner_db,
                                                              make_tenant, snapshot, pubsub):
    tenant = make_tenant("risk-bad-leg")
    proposal = condor(tenant, snapshot, long_call=25600)  # the trimmed chain stops at 25400
    response, event_id = post(risk_check, auth, proposal)
    assert response.status_code == 200
    assert (response.json["status"], response.json["error"]) == ("rejected", "leg_not_in_market")
    _no_trace(app_db, tenant, proposal.proposal_id)
    assert _rejection(owner_db, event_id)[0]["reason_code"] == "leg_not_in_market"
    dead = [m for m in pull_dead_letters(pubsub[1]) if m.attributes.get("qs_source_event_id") == event_id]
    assert dead and dead[0].attributes["qs_reason_code"] == "leg_not_in_market"


def test_lots_that_are_not_whole_are_rejected(risk_check, auth, app_db, owner_db, make_tenant,
                                              snapshot):
    tenant = make_tenant("risk-bad-lots")
    proposal = condor(tenant, snapshot)
    data, attributes = encode(proposal)
    payload = json.loads(data)
    payload["legs"][0]["lots"] = 1.5
    response, event_id = post(risk_check, auth, data=json.dumps(payload).encode(),
                              attributes=attributes)
    assert response.json["status"] == "rejected"
    assert response.json["error"] == "contract_violation" and "lots" in response.json["reason"]
    _no_trace(app_db, tenant, proposal.proposal_id)
    assert _rejection(owner_db, event_id)[0]["reason_code"] == "contract_violation"


def test_a_tenant_attribute_that_is_not_the_payloads_tenant_is_rejected(
        risk_check, auth, app_db, owner_db, make_tenant, snapshot):
    victim, other = make_tenant("risk-victim"), make_tenant("risk-other")
    proposal = condor(victim, snapshot)
    data, attributes = encode(proposal)
    response, event_id = post(risk_check, auth, data=data,
                              attributes={**attributes, "tenant_id": str(other)})
    assert response.json["status"] == "rejected" and response.json["error"] == "contract_violation"
    assert "does not match" in response.json["reason"]
    _no_trace(app_db, victim, proposal.proposal_id)
    _no_trace(app_db, other, proposal.proposal_id)


def test_an_unknown_tenant_and_an_unknown_symbol_are_rejected(risk_check, auth, owner_db,
                                                              make_tenant, snapshot):
    response, _ = post(risk_check, auth, condor(uuid.uuid4(), snapshot))
    assert (response.json["status"], response.json["error"]) == ("rejected", "unknown_tenant")
    tenant = make_tenant("risk-no-market")
    response, event_id = post(risk_check, auth, condor(tenant, snapshot, symbol="FINNIFTY"))
    assert (response.json["status"], response.json["error"]) == ("rejected", "no_market_data")
    assert "FINNIFTY" in _rejection(owner_db, event_id)[0]["reason"]


def test_a_tripped_master_kill_blocks_with_its_reason(risk_check, auth, app_db, make_tenant,
                                                      snapshot, signals):
    tenant = make_tenant("risk-master")
    with app_db.tenant(tenant) as s:  # the master row, scoped to this tenant (tests share a db)
        s.execute("INSERT INTO kill_switches (switch, scope, scope_key, tenant_id, tripped, reason, "
                  "actor, changed_at) VALUES ('master', 'global', '', :t, true, 'drill', "
                  "'ops@qs', :at)", t=tenant, at=ASOF)
    proposal = condor(tenant, snapshot)
    response, _ = post(risk_check, auth, proposal)
    assert response.json["status"] == "done" and response.json["approved"] is False
    assert response.json["blocked_by"] == "master"
    v = tenant_rows(app_db, tenant, "SELECT * FROM risk_verdicts WHERE proposal_id = :p",
                    p=proposal.proposal_id)[0]
    assert (v["approved"], v["blocked_by"], v["reason_code"]) == (False, "master", "master_tripped")
    assert "drill" in v["reason"] and "ops@qs" in v["reason"]
    assert [g["wall"] for g in v["verdicts"]] == ["master"]
    assert tenant_rows(app_db, tenant, "SELECT count(*) AS n FROM paper_positions") == [{"n": 0}]
    audit = tenant_rows(app_db, tenant, "SELECT action FROM audit_log WHERE subject = :p",
                        p=str(proposal.proposal_id))
    assert audit == [{"action": "blocked"}]
    blocked = signals("signal.blocked")
    assert len(blocked) == 1 and isinstance(blocked[0], SignalBlockedV1)
    assert (blocked[0].blocked_by, blocked[0].reason_code) == ("master", "master_tripped")
    assert signals("signal.approved") == []


def test_a_blocked_verdict_carries_its_numbers(risk_check, auth, app_db, make_tenant, snapshot):
    tenant = make_tenant("risk-costly")
    # a narrow condor whose edge the costs eat: the cost wall blocks with its figures
    proposal = condor(tenant, snapshot, short_call=25350, long_call=25400, short_put=25100,
                      long_put=25050)
    response, _ = post(risk_check, auth, proposal)
    assert response.json["approved"] is False and response.json["blocked_by"] == "cost"
    v = tenant_rows(app_db, tenant, "SELECT reason, verdicts, total_costs FROM risk_verdicts")[0]
    assert "cost_ratio" in v["reason"] and "₹" in v["reason"]
    cost = v["verdicts"][-1]
    assert cost["wall"] == "cost" and cost["numbers"]["total_costs"] == pytest.approx(v["total_costs"])
    audit = tenant_rows(app_db, tenant, "SELECT details FROM audit_log WHERE subject = :p",
                        p=str(proposal.proposal_id))[0]["details"]
    assert audit["blocked_by"] == "cost" and audit["numbers"]["total_costs"] > 0


def _credit_at_mids(seed) -> float:
    """Rupees a structure receives (+) or pays (-) at its legs' reference prices."""
    return sum(float(leg.price) * leg.lots * seed.lot_size * (1 if leg.side == "sell" else -1)
               for leg in seed.legs)


def _open_position(app_db, tenant, seed, *, entry_premium: float, margin: float = 10_000.0,
                   opened_at=ASOF) -> None:
    """An open paper position of ``seed``'s legs, as an earlier approval would leave it."""
    with app_db.tenant(tenant) as s:
        vid = uuid.uuid4()
        s.execute("INSERT INTO risk_verdicts (verdict_id, tenant_id, proposal_id, event_id, "
                  "symbol, structure, approved, reason_code, reason, size_multiplier, dry_run, "
                  "verdicts, decided_at, published_at) VALUES (:v, :t, :p, 'seed', 'NIFTY', "
                  "'iron_condor', true, 'approved', 'seed', 1, true, '[]', :at, :at)",
                  v=vid, t=tenant, p=uuid.uuid4(), at=ASOF)
        s.execute("INSERT INTO paper_positions (position_id, tenant_id, verdict_id, symbol, "
                  "structure, strategy, legs, lot_size, margin, entry_premium, opened_at) VALUES "
                  "(:i, :t, :v, 'NIFTY', 'iron_condor', 'seeded', CAST(:legs AS jsonb), :lot, "
                  ":margin, :premium, :at)", i=uuid.uuid4(), t=tenant, v=vid,
                  legs=json.dumps([leg.model_dump(mode="json") for leg in seed.legs]),
                  lot=seed.lot_size, margin=margin, premium=entry_premium, at=opened_at)


def test_a_data_trip_is_persisted_once_and_announced(risk_check, auth, app_db, make_tenant,
                                                     snapshot, signals):
    """A tenant whose book is over its margin limit trips its margin-utilisation switch."""
    tenant = make_tenant("risk-trip")
    seed = condor(tenant, snapshot)  # an earlier approval left a big open position
    _open_position(app_db, tenant, seed, entry_premium=_credit_at_mids(seed), margin=900_000)
    first = post(risk_check, auth, condor(tenant, snapshot))[0].json
    second = post(risk_check, auth, condor(tenant, snapshot))[0].json
    assert first["blocked_by"] == second["blocked_by"] == "margin_utilisation"
    assert (first["trips"], second["trips"]) == (1, 0)  # the second finds it persisted
    switches = tenant_rows(app_db, tenant, "SELECT switch, scope, scope_key, tenant_id, tripped "
                                           "FROM kill_switches WHERE tenant_id = :t", t=tenant)
    assert switches == [{"switch": "margin_utilisation", "scope": "tenant",
                         "scope_key": str(tenant), "tenant_id": tenant, "tripped": True}]
    assert tenant_rows(app_db, tenant, "SELECT count(*) AS n FROM kill_switch_events "
                                       "WHERE tenant_id = :t", t=tenant) == [{"n": 1}]
    tripped = [m for m in signals("killswitch.tripped") if m.tenant_id == tenant]
    assert [(m.switch, m.actor) for m in tripped] == [("margin_utilisation", "auto")]
    second_reason = tenant_rows(app_db, tenant, "SELECT reason_code FROM risk_verdicts "
                                                "ORDER BY decided_at, recorded_at")
    assert [r["reason_code"] for r in second_reason][-1] == "margin_utilisation_tripped"


def test_a_tenant_session_reads_global_switches_but_cannot_change_them(app_db, make_tenant):
    from pg8000.exceptions import DatabaseError

    tenant = make_tenant("iso-global")
    with pytest.raises(DatabaseError, match="row-level security"), app_db.tenant(tenant) as s:
        s.execute("INSERT INTO kill_switches (switch, scope, scope_key, tripped, reason, actor, "
                  "changed_at) VALUES ('master', 'global', '', false, 'r', 'x', now())")
    with app_db.tenant(tenant) as s:  # an UPDATE of a global row matches nothing
        assert s.execute("UPDATE kill_switches SET tripped = false WHERE tenant_id IS NULL "
                         "RETURNING 1").rows == ()
    with pytest.raises(DatabaseError, match="automatic changes"), app_db.tenant(tenant) as s:
        s.execute("SELECT change_global_switch('master', 'global', '', false, 'r', "
                  "'mallory@x.example', NULL, now())")
    with pytest.raises(DatabaseError, match="automatic changes"), app_db.tenant(tenant) as s:
        s.execute("SELECT change_global_switch('symbol', 'symbol', 'NIFTY', true, 'r', 'auto', "
                  "NULL, now())")


def test_the_risk_tables_are_isolated_and_history_is_append_only(app_db, make_tenant):
    from pg8000.exceptions import DatabaseError

    a, b = make_tenant("iso-a"), make_tenant("iso-b")
    with app_db.tenant(a) as s:
        s.execute("INSERT INTO kill_switch_events (switch, scope, scope_key, tenant_id, tripped, "
                  "reason, actor, occurred_at) VALUES ('strategy', 'strategy', 'x', :t, true, 'r', "
                  "'auto', now())", t=a)
    assert tenant_rows(app_db, b, "SELECT count(*) AS n FROM kill_switch_events "
                                  "WHERE tenant_id = :t", t=a) == [{"n": 0}]
    with pytest.raises(DatabaseError), app_db.tenant(b) as s:  # writing another tenant's row
        s.execute("INSERT INTO kill_switches (switch, scope, scope_key, tenant_id, tripped, reason, "
                  "actor, changed_at) VALUES ('strategy', 'strategy', 'x', :t, true, 'r', 'auto', "
                  "now())", t=a)
    with pytest.raises(DatabaseError), app_db.tenant(a) as s:
        s.execute("UPDATE kill_switch_events SET reason = 'rewritten' WHERE tenant_id = :t", t=a)
    with pytest.raises(DatabaseError), app_db.tenant(a) as s:
        s.execute("UPDATE risk_verdicts SET approved = true")


def test_open_positions_are_marked_to_market_and_feed_the_daily_loss_switch(
        risk_check, auth, app_db, make_tenant, snapshot, signals):
    """A condor sold for ₹40,000 less than its legs are worth now has lost ₹40,000 today:
    over the 3 % daily-loss limit of ₹1,000,000 capital, the switch trips from the marks."""
    tenant = make_tenant("risk-mtm")
    seed = condor(tenant, snapshot, lots=2)
    _open_position(app_db, tenant, seed, entry_premium=_credit_at_mids(seed) - 40_000)
    response, _ = post(risk_check, auth, condor(tenant, snapshot))
    assert response.json["blocked_by"] == "daily_loss", response.json
    verdict = tenant_rows(app_db, tenant, "SELECT verdicts FROM risk_verdicts "
                                            "WHERE event_id <> 'seed'")[0]["verdicts"]
    pnl = {v["wall"]: v for v in verdict}["daily_loss"]["numbers"]["pnl_today"]
    assert pnl == pytest.approx(-40_000, abs=0.05 * 2 * 75 * 4)  # mids vs 0.05-tick prices
    tripped = [m for m in signals("killswitch.tripped") if m.tenant_id == tenant]
    assert [m.switch for m in tripped] == ["daily_loss"]


def test_a_carried_position_counts_only_todays_move_against_the_daily_limit(
        risk_check, auth, app_db, make_tenant, snapshot, previous_snapshot):
    """Down ₹40,000 since entry yesterday, flat since yesterday's close: today's loss is 0,
    so the daily-loss switch passes, while equity carries the whole loss."""
    tenant = make_tenant("risk-carried")
    seed = condor(tenant, snapshot, lots=2)
    _open_position(app_db, tenant, seed, entry_premium=_credit_at_mids(seed) - 40_000,
                   opened_at=PREVIOUS_CLOSE - timedelta(hours=2))
    response, _ = post(risk_check, auth, condor(tenant, snapshot))
    assert response.json["approved"] is True, response.json
    verdict = tenant_rows(app_db, tenant, "SELECT verdicts FROM risk_verdicts "
                                            "WHERE event_id <> 'seed'")[0]["verdicts"]
    gates = {v["wall"]: v["numbers"] for v in verdict}
    assert gates["daily_loss"]["pnl_today"] == pytest.approx(0.0, abs=1e-6)
    assert gates["capital_floor"]["equity"] == pytest.approx(960_000, abs=0.05 * 2 * 75 * 4)


def test_a_position_marked_at_its_entry_leaves_the_book_flat(risk_check, auth, app_db,
                                                             make_tenant, snapshot):
    tenant = make_tenant("risk-flat")
    seed = condor(tenant, snapshot)
    _open_position(app_db, tenant, seed, entry_premium=_credit_at_mids(seed))
    response, _ = post(risk_check, auth, condor(tenant, snapshot))
    assert response.json["approved"] is True, response.json
    verdict = tenant_rows(app_db, tenant, "SELECT verdicts FROM risk_verdicts "
                                            "WHERE event_id <> 'seed'")[0]["verdicts"]
    numbers = {v["wall"]: v for v in verdict}["daily_loss"]["numbers"]
    assert abs(numbers["pnl_today"]) <= 0.05 * 75 * 4  # within the prices' tick rounding


def test_fresh_data_resets_an_automatic_stale_data_trip_and_announces_it(
        risk_check, auth, app_db, owner_db, make_tenant, snapshot, signals):
    tenant = make_tenant("risk-reset")
    with owner_db.system() as s:  # chain_poll stalled earlier: a global automatic trip
        s.execute("INSERT INTO kill_switches (switch, scope, scope_key, tripped, reason, actor, "
                  "changed_at) VALUES ('stale_data', 'symbol', 'NIFTY', true, 'old', 'auto', :at) "
                  "ON CONFLICT (switch, scope, scope_key, tenant_key) DO UPDATE SET "
                  "tripped = true, actor = 'auto'", at=ASOF - timedelta(minutes=5))
    try:
        response, event_id = post(risk_check, auth, condor(tenant, snapshot))
        assert response.json["approved"] is True and response.json["resets"] == 1, response.json
        with owner_db.system() as s:
            row = s.execute("SELECT tripped, actor FROM kill_switches WHERE switch = 'stale_data' "
                            "AND scope_key = 'NIFTY' AND tenant_key = ''").rows
            history = s.execute("SELECT tripped, source_event FROM kill_switch_events WHERE "
                                "switch = 'stale_data' ORDER BY event_id DESC LIMIT 1").rows
        assert row == ((False, "auto"),) and history == ((False, event_id),)
        resets = [m for m in signals("killswitch.reset") if m.switch == "stale_data"]
        assert resets and resets[-1].reason.startswith("cleared: snapshot_age 20s")
    finally:
        with owner_db.system() as s:
            s.execute("UPDATE kill_switches SET tripped = false WHERE switch = 'stale_data'")


def _production_model(owner_db, model_type: str, *, promoted_at, flagged=False,
                      reasons=()) -> None:
    with owner_db.system() as s:
        s.execute("INSERT INTO model_versions (model_type, version, state, artifact_uri, sha256, "
                  "size_bytes, feature_schema, metrics, code_commit, data_version, data_end, "
                  "run_id, promoted_at) VALUES (:m, 1, 'production', 'gs://b/k', repeat('a', 64), "
                  "10, '[]', '{}', 'c', 'd', '2025-07-16', 'r', :at)", m=model_type,
                  at=promoted_at)
        s.execute("INSERT INTO model_pointers (model_type, version, sha256, artifact_uri, "
                  "updated_at, flagged, health) VALUES (:m, 1, repeat('a', 64), 'gs://b/k', :at, "
                  ":f, CAST(:h AS jsonb))", m=model_type, at=promoted_at, f=flagged,
                  h=json.dumps({"reasons": list(reasons)}))


def test_the_models_a_proposal_relies_on_must_be_fresh_and_healthy(
        risk_check, auth, app_db, owner_db, make_tenant, snapshot, signals):
    tenant = make_tenant("risk-models")
    suffix = uuid.uuid4().hex[:6]
    missing, fresh, drifted = (f"vol_{suffix}_a", f"vol_{suffix}_b", f"vol_{suffix}_c")
    _production_model(owner_db, fresh, promoted_at=NOW - timedelta(days=1))
    _production_model(owner_db, drifted, promoted_at=NOW - timedelta(days=1), flagged=True,
                      reasons=("drifted: 2 of 10 features (gk_vol_1d, range_1d)",))

    def decide_with(models):
        proposal = condor(tenant, snapshot, explanation={"strategy": "m", "models": models})
        return post(risk_check, auth, proposal)[0].json

    never = decide_with([missing])
    assert never["blocked_by"] == "model_staleness" and "never trained" in never["reason"]
    flagged = decide_with([fresh, drifted])
    assert flagged["blocked_by"] == "model_staleness"
    assert "flagged by its health check: drifted: 2 of 10" in flagged["reason"]
    ok = decide_with([fresh])
    assert ok["approved"] is True, ok
    with owner_db.system() as s:  # the data-driven trips are global rows: clear them
        s.execute("UPDATE kill_switches SET tripped = false WHERE switch = 'model_staleness' "
                  "AND scope_key LIKE :p", p=f"vol_{suffix}_%")
