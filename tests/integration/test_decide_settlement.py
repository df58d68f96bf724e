"""decide's learning loop on the real database: a paper position opened from one of decide's
proposals expires, the next snapshot settles it at the expiry day's spot, and its realised
P&L is credited to the tenant's bandit exactly once."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.contracts import ChainSnapshotV1, Leg, OptionType, Side
from tests.functions.risk_support import IST, store_chain

pytestmark = pytest.mark.integration

EXPIRED = date(2025, 7, 10)
LOT = 75
PREMIUM = 3_000.0  # received
MARGIN = 50_000.0
LEGS = ((25_300, "CE", Side.SELL), (25_400, "CE", Side.BUY),
        (25_100, "PE", Side.SELL), (25_000, "PE", Side.BUY))
# a bought leg deep in the money at expiry: its sign matters (a debit call spread, ITM)
ITM_BOUGHT = ((24_000, "CE", Side.BUY), (24_500, "CE", Side.SELL))


def _message(app_db, snapshot_id: uuid.UUID) -> ChainSnapshotV1:
    with app_db.system() as s:
        row = s.execute("SELECT snapshot_id, symbol, asof, spot, source, expiries, legs, raw_blob "
                        "FROM chain_snapshots WHERE snapshot_id = :i", i=snapshot_id).dicts()[0]
    return ChainSnapshotV1(**{**row, "expiries": tuple(row["expiries"])})


def _open_position(app_db, tenant: uuid.UUID, snapshot_id: uuid.UUID, legs_spec=LEGS
                   ) -> uuid.UUID:
    """A decided, approved iron condor expiring on EXPIRED, as decide and risk_check leave it."""
    proposal_id, verdict_id, position_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    legs = [Leg(expiry=EXPIRED, strike=Decimal(k), option_type=OptionType(t), side=side, lots=1,
                price=Decimal("10")).model_dump(mode="json") for k, t, side in legs_spec]
    opened = datetime(2025, 7, 9, 11, 0, tzinfo=IST)
    with app_db.tenant(tenant) as s:
        s.execute("INSERT INTO decisions (decision_id, tenant_id, snapshot_id, event_id, symbol, "
                  "regime, outcome, structure, lots, proposal_id, proposal, explanation, "
                  "decided_at, published_at) VALUES (:d, :t, :sid, 'e-1', 'NIFTY', 'range', "
                  "'proposed', 'iron_condor', 1, :p, '{}'::jsonb, '{}'::jsonb, :at, :at)",
                  d=uuid.uuid4(), t=tenant, sid=snapshot_id, p=proposal_id, at=opened)
        s.execute("INSERT INTO risk_verdicts (verdict_id, tenant_id, proposal_id, event_id, "
                  "symbol, structure, approved, reason_code, reason, size_multiplier, dry_run, "
                  "verdicts, decided_at, published_at) VALUES (:v, :t, :p, 'e-1', 'NIFTY', "
                  "'iron_condor', true, 'approved', 'every wall passed', 1, true, '[]'::jsonb, "
                  ":at, :at)", v=verdict_id, t=tenant, p=proposal_id, at=opened)
        s.execute("INSERT INTO paper_positions (position_id, tenant_id, verdict_id, symbol, "
                  "structure, strategy, nearest_expiry, legs, lot_size, margin, entry_premium, "
                  "opened_at) VALUES (:i, :t, :v, 'NIFTY', 'iron_condor', 'iron_condor', :e, "
                  "CAST(:legs AS jsonb), :lot, :m, :prem, :at)", i=position_id, t=tenant,
                  v=verdict_id, e=EXPIRED, legs=json.dumps(legs), lot=LOT, m=MARGIN,
                  prem=PREMIUM, at=opened)
    return position_id


@pytest.mark.parametrize("legs_spec", [LEGS, ITM_BOUGHT], ids=["condor", "itm_bought_leg"])
def test_an_expired_position_is_settled_and_credited_to_the_bandit_once(pg, app_db, make_tenant,
                                                                         legs_spec):
    from shared.adapters.bus import PubSubBus
    from shared.domain.decide.bandit import ArmPosterior, ThompsonBandit
    from shared.rules import default_calendar, risk_free_rate
    from shared.services.decide import DecideService, ModelSource

    m = 0 if legs_spec is LEGS else 1  # each case stores its own snapshots (one database)
    settle_day, _ = store_chain(pg, f"10-Jul-2025 15:0{m}:00",
                                datetime(2025, 7, 10, 15, m, tzinfo=IST))
    later, _ = store_chain(pg, f"14-Jul-2025 11:0{m}:00", datetime(2025, 7, 14, 11, m, tzinfo=IST))
    again, _ = store_chain(pg, f"15-Jul-2025 11:0{m}:00", datetime(2025, 7, 15, 11, m, tzinfo=IST))
    tenant = make_tenant("decide-settlement")
    position = _open_position(app_db, tenant, settle_day, legs_spec)
    service = DecideService(db=app_db, bus=PubSubBus("qs-settlement-test"),
                            calendar=default_calendar(), rate_on=risk_free_rate,
                            models=ModelSource.none())

    stage = service.market(_message(app_db, later), "e-later")
    assert service.decide_tenant(stage, "e-later", tenant).status in ("proposed", "no_trade")

    with app_db.system() as s:
        spot = s.execute("SELECT spot FROM chain_snapshots WHERE snapshot_id = :i",
                         i=settle_day).scalar()
    value = sum((1 if side is Side.BUY else -1) * LOT *
                (max(spot - k, 0.0) if t == "CE" else max(k - spot, 0.0))
                for k, t, side in legs_spec)
    if legs_spec is ITM_BOUGHT:
        assert spot > 24_500  # both legs in the money: a wrong sign would flip the P&L
    expected_pnl = value + PREMIUM
    with app_db.tenant(tenant) as s:
        closed = s.execute("SELECT status, realized_pnl, closed_at FROM paper_positions "
                           "WHERE position_id = :i", i=position).dicts()[0]
        audit = s.execute("SELECT details FROM audit_log WHERE action = "
                          "'paper position settled at expiry' AND subject = :i",
                          i=str(position)).scalar()
        credited = s.execute("SELECT bandit_credited_at FROM decisions WHERE structure = "
                             "'iron_condor' AND snapshot_id = :i", i=settle_day).scalar()
        bandit = ThompsonBandit.from_json(json.dumps(s.execute(
            "SELECT bandit FROM decide_tenant_state").scalar()))
    assert closed["status"] == "closed"
    assert closed["realized_pnl"] == pytest.approx(expected_pnl, abs=1e-6)
    assert closed["closed_at"] - datetime(2025, 7, 14, 11, m, tzinfo=IST) == timedelta(0)
    details = audit if isinstance(audit, dict) else json.loads(audit)
    assert details["settlement_spot"] == pytest.approx(spot)
    assert credited is not None
    reward = expected_pnl / MARGIN  # capital tied up: margin (the condor was a credit)
    assert bandit.posterior("range", "iron_condor") == ArmPosterior().update(reward)

    # the next snapshot neither settles nor credits it again
    stage = service.market(_message(app_db, again), "e-again")
    service.decide_tenant(stage, "e-again", tenant)
    with app_db.tenant(tenant) as s:
        n = ThompsonBandit.from_json(json.dumps(s.execute(
            "SELECT bandit FROM decide_tenant_state").scalar())).posterior(
            "range", "iron_condor").n
        settled = s.execute("SELECT count(*) FROM audit_log WHERE action = "
                            "'paper position settled at expiry'").scalar()
    assert (n, settled) == (1, 1)
