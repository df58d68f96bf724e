"""The cost port over the real cost engine: the round trip is the sum of its fills."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.costs import default_cost_schedule
from shared.domain.costs import SlippageModel, quote
from shared.domain.risk.engine_costs import EngineCostModel
from shared.domain.risk.synthetic import iron_condor, synthetic_market

NOW = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)


def test_round_trip_equals_the_sum_of_entry_and_exit_fills():
    market = synthetic_market()
    proposal = iron_condor(market)
    schedule = default_cost_schedule()
    model = EngineCostModel(schedule, plan="standard")
    estimate = model.round_trip(proposal, market, now=NOW)
    expected = Decimal(0)
    for leg in proposal.legs:
        qty = leg.lots * proposal.lot_size
        q = market.quote(leg.expiry, float(leg.strike), leg.option_type.value)
        slip = SlippageModel().estimate(qty=qty, displayed_qty=qty, bid=q.bid, ask=q.ask)
        for side in ("buy", "sell"):
            expected += quote(schedule, trade_date=NOW.date(), instrument="option", side=side,
                              price=Decimal(str(leg.price)), qty=qty, plan="standard",
                              slippage=slip).total
    assert estimate.total == pytest.approx(float(expected), rel=1e-12)
    assert estimate.breakdown["brokerage"] == pytest.approx(len(proposal.legs) * 2 * 20.0)
    assert estimate.breakdown["stt"] > 0 and estimate.breakdown["slippage"] > 0


def test_size_multiplier_trades_whole_lots():
    market = synthetic_market()
    proposal = iron_condor(market, lots=4)
    model = EngineCostModel(default_cost_schedule())
    full = model.round_trip(proposal, market, now=NOW)
    half = model.round_trip(proposal, market, now=NOW, size_multiplier=0.5)  # 2 lots a leg
    none = model.round_trip(proposal, market, now=NOW, size_multiplier=0.2)  # 0 lots
    assert none.total == 0.0
    assert 0 < half.total < full.total
