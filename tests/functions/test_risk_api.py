"""risk_check's HTTP API through functions-framework: POST /check (a tenant's own trade idea)
and POST /killswitch (operators), on the real Postgres, Pub/Sub emulator and a stored chain."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.auth import LocalTokenIssuer
from tests.functions.conftest import SECRET
from tests.functions.risk_support import EXPIRY, NOW, tenant_rows

pytestmark = pytest.mark.integration


def bearer(email: str) -> dict[str, str]:
    return {"Authorization": LocalTokenIssuer(SECRET).header("http://localhost/", email)}


@pytest.fixture
def grant(owner_db):
    from shared.adapters.principals import grant as give

    def make(email: str, tenant_id, role: str = "trader") -> dict[str, str]:
        with owner_db.system() as s:
            give(s, email, tenant_id, role)  # type: ignore[arg-type]
        return bearer(email)

    return make


def idea(tenant_id, *, lots=1, quantity=None, short_put=25150, **over) -> dict:
    """An iron condor on the stored chain as a tenant would send it (no prices)."""
    legs = []
    for strike, kind, side in ((25300, "CE", "sell"), (25400, "CE", "buy"),
                               (short_put, "PE", "sell"), (25050, "PE", "buy")):
        leg = {"expiry": EXPIRY.isoformat(), "strike": strike, "option_type": kind, "side": side}
        leg.update({"quantity": quantity} if quantity is not None else {"lots": lots})
        legs.append(leg)
    body = {"tenant_id": str(tenant_id), "symbol": "NIFTY", "structure": "iron_condor",
            "legs": legs, "regime": "range", "expected_gross_edge": 2_000.0,
            "win_probability": 0.65}
    body.update(over)
    return body


def check(client, headers, body):
    return client.post("/check", headers=headers, data=json.dumps(body),
                       content_type="application/json")


def counts(app_db, tenant) -> dict[str, int]:
    out = {}
    for table in ("risk_verdicts", "paper_positions", "processed_events", "audit_log"):
        out[table] = tenant_rows(app_db, tenant, f"SELECT count(*) AS n FROM {table} "  # noqa: S608
                                                 "WHERE tenant_id = :t", t=tenant)[0]["n"]
    return out


# ----------------------------------------------------------------------------- /check


def test_a_tenants_trade_idea_gets_the_castles_verdict_recorded_not_traded(
        risk_check, app_db, make_tenant, grant, signals):
    tenant = make_tenant("api-check")
    headers = grant("trader@desk.example", tenant)
    response = check(risk_check, headers, idea(tenant))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["approved"] is True and body["reason_code"] == "approved", body["reason"]
    assert body["dry_run"] is True and len(body["verdicts"]) == 19
    assert body["position"]["lot_size"] == 75 and body["position"]["lots"] == [1, 1, 1, 1]
    assert body["position"]["margin"] > 0 and 0 < body["net_ev"] < 2_000.0 < body["net_ev"] + body["total_costs"] + 1e-6
    assert body["assumptions"]["win_probability_source"] == "declared"
    row = tenant_rows(app_db, tenant, "SELECT origin, caller, approved, published_at "
                                      "FROM risk_verdicts WHERE verdict_id = :v",
                      v=uuid.UUID(body["verdict_id"]))
    assert row == [{"origin": "api", "caller": "trader@desk.example", "approved": True,
                    "published_at": row[0]["published_at"]}]
    audit = tenant_rows(app_db, tenant, "SELECT actor, action FROM audit_log WHERE subject = :s",
                        s=body["request_id"])
    assert audit == [{"actor": "trader@desk.example", "action": "approved (api)"}]
    assert counts(app_db, tenant)["paper_positions"] == 0  # a check opens nothing
    assert signals("signal.approved") == [] and signals("signal.blocked") == []


def test_quantities_in_units_and_market_odds_by_default(risk_check, make_tenant, grant):
    tenant = make_tenant("api-units")
    headers = grant("units@desk.example", tenant)
    body = idea(tenant, quantity=150)
    del body["win_probability"], body["expected_gross_edge"]
    response = check(risk_check, headers, body)
    assert response.status_code == 200, response.json
    out = response.json
    assert out["position"]["lots"] == [2, 2, 2, 2]
    odds = out["assumptions"]
    assert odds["win_probability_source"].startswith("market lognormal")
    assert 0.0 < odds["win_probability"] < 1.0
    low, high = odds["odds"]["breakevens"]
    assert low < 25150 < 25300 < high  # a short condor wins between its breakevens
    # With no edge declared the market's own prices leave only costs: blocked by cost.
    assert out["approved"] is False and out["blocked_by"] == "cost"
    assert out["reason"].startswith("blocked by cost: net_ev")


def test_the_same_request_id_answers_the_recorded_verdict(risk_check, app_db, make_tenant, grant):
    tenant = make_tenant("api-idem")
    headers = grant("idem@desk.example", tenant)
    body = idea(tenant, request_id=str(uuid.uuid4()))
    first, second = (check(risk_check, headers, body).json for _ in range(2))
    assert first["replayed"] is False and second["replayed"] is True
    assert first["verdict_id"] == second["verdict_id"] and first["reason"] == second["reason"]
    assert counts(app_db, tenant)["risk_verdicts"] == 1


@pytest.mark.parametrize(("change", "status", "error"), [
    ({"lots": 0}, 400, "bad_request"),
    ({"lots": -1}, 400, "bad_request"),
    ({"lots": 1.5}, 400, "bad_request"),
    ({"quantity": 100}, 422, "quantity_not_lot_multiple"),
    ({"structure": "jade_lizard"}, 400, "bad_request"),
    ({"price": float("nan")}, 400, "bad_request"),
    ({"short_put": 25175}, 422, "leg_not_in_market"),
    ({"expiry": "2025-07-25"}, 422, "leg_not_in_market"),
    ({"symbol": "FINNIFTY"}, 422, "no_market_data"),
])
def test_bad_ideas_get_a_4xx_with_a_reason_and_write_nothing(risk_check, app_db, make_tenant,
                                                            grant, change, status, error):
    tenant = make_tenant("api-bad")
    headers = grant("bad@desk.example", tenant)
    change = dict(change)
    body = idea(tenant, short_put=change.pop("short_put", 25150),
                quantity=change.pop("quantity", None))
    for key in ("lots", "price", "expiry"):
        if key in change:
            value = change.pop(key)
            for leg in body["legs"]:
                leg.pop("quantity" if key == "lots" else "_", None)
                leg[key] = value
    body.update(change)
    response = check(risk_check, headers, body)
    assert response.status_code == status, response.json
    assert response.json["error"] == error and response.json["reason"]
    assert counts(app_db, tenant) == {"risk_verdicts": 0, "paper_positions": 0,
                                      "processed_events": 0, "audit_log": 0}


def test_a_caller_without_a_grant_for_the_tenant_is_refused(risk_check, app_db, make_tenant,
                                                           grant):
    mine, theirs = make_tenant("api-mine"), make_tenant("api-theirs")
    headers = grant("mine@desk.example", mine)
    for tenant in (theirs, uuid.uuid4()):
        response = check(risk_check, headers, idea(tenant))
        assert response.status_code == 403 and response.json["error"] == "forbidden"
        assert "another tenant" in response.json["reason"]
    assert counts(app_db, theirs)["risk_verdicts"] == 0
    stranger = check(risk_check, bearer("nobody@elsewhere.example"), idea(mine))
    assert stranger.status_code == 403
    assert check(risk_check, {}, idea(mine)).status_code == 401


# ------------------------------------------------------------------------- /killswitch


def switch(client, headers, **body):
    return client.post("/killswitch", headers=headers, data=json.dumps(body),
                       content_type="application/json")


def test_an_operator_trips_and_resets_a_tenant_switch_audited_and_published(
        risk_check, app_db, make_tenant, grant, signals):
    tenant = make_tenant("api-ops")
    ops = grant("ops@desk.example", tenant, "operator")
    trader = grant("trader2@desk.example", tenant)
    trip = dict(action="trip", switch="daily_loss", tenant_id=str(tenant),
                reason="broker reports a loss we do not see")
    first = switch(risk_check, ops, **trip)
    assert first.status_code == 200 and first.json["changed"] is True, first.json
    assert switch(risk_check, ops, **trip).json["changed"] is False  # already tripped
    rows = tenant_rows(app_db, tenant, "SELECT switch, scope_key, tripped, actor FROM "
                                       "kill_switches WHERE tenant_id = :t", t=tenant)
    assert rows == [{"switch": "daily_loss", "scope_key": str(tenant), "tripped": True,
                     "actor": "ops@desk.example"}]
    blocked = check(risk_check, trader, idea(tenant)).json
    assert blocked["blocked_by"] == "daily_loss" and blocked["reason_code"] == "daily_loss_tripped"
    assert "by ops@desk.example" in blocked["reason"]

    # the trader cannot reset it; the operator can
    assert switch(risk_check, trader, **{**trip, "action": "reset"}).status_code == 403
    reset = switch(risk_check, ops, **{**trip, "action": "reset", "reason": "reconciled"})
    assert reset.json["changed"] is True
    assert check(risk_check, trader, idea(tenant)).json["approved"] is True

    history = tenant_rows(app_db, tenant, "SELECT tripped, actor FROM kill_switch_events "
                                          "WHERE tenant_id = :t ORDER BY event_id", t=tenant)
    assert history == [{"tripped": True, "actor": "ops@desk.example"},
                       {"tripped": False, "actor": "ops@desk.example"}]
    audit = tenant_rows(app_db, tenant, "SELECT action FROM audit_log WHERE action LIKE "
                                        "'killswitch.%' ORDER BY audit_id")
    assert [a["action"] for a in audit] == ["killswitch.trip", "killswitch.reset"]
    tripped = [m for m in signals("killswitch.tripped") if m.tenant_id == tenant]
    resets = [m for m in signals("killswitch.reset") if m.tenant_id == tenant]
    assert [(m.switch, m.actor) for m in tripped] == [("daily_loss", "ops@desk.example")]
    assert [(m.switch, m.reason) for m in resets] == [("daily_loss", "reconciled")]


def test_a_tenant_operator_stops_its_own_tenant_but_not_the_platform(
        risk_check, make_tenant, grant):
    tenant = make_tenant("api-own-master")
    ops = grant("own-ops@desk.example", tenant, "operator")
    trader = grant("own-trader@desk.example", tenant)
    refused = switch(risk_check, ops, action="trip", switch="master", reason="stop everything")
    assert refused.status_code == 403 and "platform operator" in refused.json["reason"]
    mine = switch(risk_check, ops, action="trip", switch="master", tenant_id=str(tenant),
                  reason="stop our desk")
    assert mine.json["changed"] is True
    assert check(risk_check, trader, idea(tenant)).json["blocked_by"] == "master"


def test_a_platform_operator_trips_a_global_row(risk_check, owner_db, make_tenant, grant,
                                                signals):
    a, b = make_tenant("api-global-a"), make_tenant("api-global-b")
    root = grant("root@quantsentinel.example", None, "operator")
    try:
        response = switch(risk_check, root, action="trip", switch="source", scope_key="nse",
                          reason="NSE feed is publishing yesterday's chain")
        assert response.json["changed"] is True and response.json["tenant_id"] is None
        for tenant in (a, b):  # a platform operator may also check for any tenant
            verdict = check(risk_check, root, idea(tenant)).json
            assert verdict["blocked_by"] == "source", verdict
        event = [m for m in signals("killswitch.tripped") if m.switch == "source"]
        assert event and event[-1].tenant_id is None and event[-1].scope_key == "nse"
    finally:
        switch(risk_check, root, action="reset", switch="source", scope_key="nse",
               reason="feed fixed")
    with owner_db.system() as s:
        assert s.execute("SELECT tripped FROM kill_switches WHERE switch = 'source' "
                         "AND scope_key = 'nse'").rows == ((False,),)


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"action": "trip", "switch": "dry_run_lock", "reason": "let me trade"}, 409,
     "switch_not_operable"),
    ({"action": "trip", "switch": "kill_everything", "reason": "typo"}, 400, "bad_request"),
    ({"action": "trip", "switch": "capital_floor", "reason": "no tenant"}, 400, "bad_request"),
    ({"action": "flip", "switch": "master", "reason": "???"}, 400, "bad_request"),
    ({"action": "trip", "switch": "master", "reason": ""}, 400, "bad_request"),
])
def test_bad_switch_calls_are_refused(risk_check, make_tenant, grant, body, status, error):
    tenant = make_tenant("api-bad-switch")
    ops = grant("bad-ops@desk.example", tenant, "operator")
    if body["switch"] == "dry_run_lock":
        body = {**body, "tenant_id": str(tenant)}
    response = switch(risk_check, ops, **body)
    assert response.status_code == status and response.json["error"] == error, response.json


def test_the_dry_run_lock_survives_every_api_path(risk_check, app_db, make_tenant, grant):
    tenant = make_tenant("api-lock")
    ops = grant("lock-ops@desk.example", tenant, "operator")
    before = tenant_rows(app_db, tenant, "SELECT dry_run_until FROM tenants")
    for action in ("trip", "reset"):
        response = switch(risk_check, ops, action=action, switch="dry_run_lock",
                          tenant_id=str(tenant), reason="attempt")
        assert response.status_code == 409
    assert tenant_rows(app_db, tenant, "SELECT dry_run_until FROM tenants") == before
    assert before[0]["dry_run_until"] > NOW
    assert check(risk_check, grant("lock-trader@desk.example", tenant),
                 idea(tenant)).json["dry_run"] is True


def test_a_request_id_reused_for_another_idea_is_refused(risk_check, app_db, make_tenant,
                                                         grant):
    tenant = make_tenant("api-reuse")
    headers = grant("reuse@desk.example", tenant)
    request_id = str(uuid.uuid4())
    assert check(risk_check, headers, idea(tenant, request_id=request_id)).status_code == 200
    other = check(risk_check, headers, idea(tenant, request_id=request_id, lots=2))
    assert other.status_code == 409 and other.json["error"] == "request_id_reused"
    assert counts(app_db, tenant)["risk_verdicts"] == 1


def test_an_operator_trip_takes_over_an_automatic_one(risk_check, app_db, make_tenant, grant):
    """Data tripped margin_utilisation; the operator trips it too: now only a person resets it."""
    from shared.adapters.risk_state import record_switch_change
    from shared.contracts import KillSwitchResetV1, KillSwitchTrippedV1

    tenant = make_tenant("api-takeover")
    ops = grant("takeover@desk.example", tenant, "operator")
    auto = KillSwitchTrippedV1(switch="margin_utilisation", scope="tenant",
                               scope_key=str(tenant), tenant_id=tenant, reason="0.91 > 0.80",
                               actor="auto", at=NOW)
    with app_db.tenant(tenant) as s:
        assert record_switch_change(s, auto)
    taken = switch(risk_check, ops, action="trip", switch="margin_utilisation",
                   tenant_id=str(tenant), reason="hold until the broker reconciles")
    assert taken.json["changed"] is True
    data_reset = KillSwitchResetV1(**{**auto.model_dump(), "reason": "cleared"})
    with app_db.tenant(tenant) as s:
        assert not record_switch_change(s, data_reset, only_auto=True)
        assert s.execute("SELECT actor, tripped FROM kill_switches WHERE tenant_id = :t",
                         t=tenant).rows == (("takeover@desk.example", True),)


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"scope_key": "someone-else"}, 400, "bad_request"),
    ({"tenant_id": str(uuid.uuid4())}, 422, "unknown_tenant"),
])
def test_tenant_switches_name_a_real_tenant_and_only_it(risk_check, make_tenant, grant, body,
                                                        status, error):
    tenant = make_tenant("api-keys")
    root = grant("keys-root@quantsentinel.example", None, "operator")
    call = {"action": "trip", "switch": "daily_loss", "tenant_id": str(tenant),
            "reason": "check keys", **body}
    response = switch(risk_check, root, **call)
    assert response.status_code == status and response.json["error"] == error, response.json
