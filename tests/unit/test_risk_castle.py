"""The castle: order, short-circuit, sizing, trips, explanations and input validation."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from shared.contracts import (
    Leg,
    SignalApprovedV1,
    SignalBlockedV1,
    Structure,
    WallVerdict,
)
from shared.domain.risk import (
    BadLots,
    CostEstimate,
    InvalidProposal,
    LegNotInMarket,
    NewsItem,
    NewsState,
    NonFiniteInput,
    NonFinitePrice,
    QuantityNotLotMultiple,
    RiskCastle,
    StructureMismatch,
    SwitchStates,
    SymbolMismatch,
    TenantMismatch,
    TenantPolicy,
    TrippedSwitch,
    UnknownStructure,
    Wall,
    default_walls,
)
from shared.domain.risk.castle import sized_lots
from shared.domain.risk.synthetic import (
    NOW,
    TENANT,
    FlatCostModel,
    context,
    iron_condor,
    later,
    random_proposal,
    short_strangle,
    synthetic_market,
)
from shared.errors import PermanentError

SWITCHES = ("master", "exchange", "source", "symbol", "stale_data", "model_staleness",
            "dry_run_lock", "capital_floor", "daily_loss", "strategy", "margin_utilisation",
            "correlation_cluster")
WALLS = ("regime", "news", "policy", "margin", "correlation", "cost", "tail_hedge")


class RatioCosts:
    """A fake cost model: costs are a fixed share of the gross edge."""

    def __init__(self, share: float) -> None:
        self.share = share
        self.calls: list[float] = []

    def round_trip(self, proposal, market, *, now, size_multiplier=1.0):
        self.calls.append(size_multiplier)
        total = self.share * proposal.expected_gross_edge * size_multiplier
        return CostEstimate(total, {"brokerage": total})


@pytest.fixture(scope="module")
def market():
    return synthetic_market(np.random.default_rng(1234))


@pytest.fixture
def costs():
    return RatioCosts(0.10)


@pytest.fixture
def castle(costs):
    return RiskCastle.default(costs)


def condor(market, **kw):
    kw.setdefault("edge", 2_000.0)
    return iron_condor(market, **kw)


# ------------------------------------------------------------------------------ order


def test_an_approved_proposal_passes_every_gate_in_order(castle, market, costs):
    v = castle.evaluate(context(condor(market), market))
    assert v.approved and v.blocked_by is None and v.reason_code == "approved"
    assert tuple(x.wall for x in v.verdicts) == SWITCHES + WALLS == castle.gate_names
    assert not any(x.blocked for x in v.verdicts)
    assert v.size_multiplier == 1.0
    assert v.total_costs == pytest.approx(200.0) and v.net_ev == pytest.approx(1_800.0)
    assert v.trips == () and not v.live and not v.dry_run
    assert v.explain().startswith("approved after 19 checks")
    assert costs.calls == [1.0]


def test_the_first_blocking_switch_short_circuits_everything_after_it(castle, market, costs):
    master = TrippedSwitch("master", "global", reason="market-wide halt", actor="ops")
    v = castle.evaluate(context(condor(market), market, switches=SwitchStates((master,))))
    assert not v.approved and v.blocked_by == "master" and v.reason_code == "master_tripped"
    assert [x.wall for x in v.verdicts] == ["master"]
    assert costs.calls == []  # no wall ran
    assert v.explain() == "blocked by master: master switch tripped (global) by ops: " \
                          "market-wide halt"


def test_a_blocking_wall_stops_the_walls_after_it(castle, market, costs):
    v = castle.evaluate(context(condor(market), market, regime="trending_up"))
    assert v.blocked_by == "regime"
    assert tuple(x.wall for x in v.verdicts) == SWITCHES + ("regime",)
    assert costs.calls == [] and v.net_ev is None and v.total_costs is None


def test_walls_run_only_after_every_switch_passed(castle, market):
    stale = later(context(condor(market), market), 90)
    v = castle.evaluate(stale)
    assert v.blocked_by == "stale_data"
    assert tuple(x.wall for x in v.verdicts) == SWITCHES[:5]


def test_switch_trips_are_reported_even_after_an_earlier_block(castle, market):
    master = TrippedSwitch("master", "global", reason="halt")
    ctx = later(context(condor(market), market, switches=SwitchStates((master,))), 90)
    ctx = replace(ctx, portfolio=replace(ctx.portfolio, realized_pnl_today=-40_000.0))
    v = castle.evaluate(ctx)
    assert v.blocked_by == "master" and len(v.verdicts) == 1
    assert [t.switch for t in v.trips] == ["stale_data", "daily_loss"]
    events = v.trip_events(NOW)
    assert [e.switch for e in events] == ["stale_data", "daily_loss"]
    assert events[1].tenant_id == TENANT


def test_the_cost_block_explains_itself_with_its_numbers(market):
    castle = RiskCastle.default(RatioCosts(0.52))
    v = castle.evaluate(context(condor(market), market))
    assert v.blocked_by == "cost" and v.reason_code == "cost_ratio"
    assert v.explain().startswith("blocked by cost: cost_ratio 0.52 > 0.40")
    assert v.net_ev == pytest.approx(960.0) and v.total_costs == pytest.approx(1_040.0)
    assert v.verdicts[-1].numbers["cost_ratio"] == pytest.approx(0.52)


# ------------------------------------------------------------------------------ sizing


def test_a_news_reduction_sizes_the_walls_after_the_gate(market, costs, castle):
    event = NewsItem("e1", "US CPI", NOW + timedelta(minutes=20), 60, "reduce_25")
    p = condor(market, lots=4, edge=8_000.0)
    full = castle.evaluate(context(p, market, capital=5_000_000))
    v = castle.evaluate(context(p, market, capital=5_000_000, news=NewsState((event,))))
    assert v.approved and v.reason_code == "approved_reduced"
    assert v.size_multiplier == pytest.approx(0.75)
    assert costs.calls == [1.0, 0.75]
    policy = {x.wall: x for x in v.verdicts}["policy"]
    policy_full = {x.wall: x for x in full.verdicts}["policy"]
    assert policy.numbers["exposure"] == pytest.approx(0.75 * policy_full.numbers["exposure"])
    assert v.net_ev == pytest.approx(0.75 * full.net_ev)
    assert "size x0.75 (news x0.75)" in v.reason


def test_a_reduction_trades_whole_copies_of_the_structure(market, castle):
    event = NewsItem("e1", "US CPI", NOW + timedelta(minutes=20), 60, "reduce_50")
    v = castle.evaluate(context(condor(market, lots=1, edge=8_000.0), market,
                                capital=5_000_000, news=NewsState((event,))))
    assert not v.approved and v.blocked_by == "news"
    assert v.reason_code == "news_reduce_below_one_lot"
    three = castle.evaluate(context(condor(market, lots=3, edge=8_000.0), market,
                                    capital=5_000_000, news=NewsState((event,))))
    assert three.approved and sized_lots(condor(market, lots=3), 0.5) == (1, 1, 1, 1)


def test_a_news_blackout_blocks(market, castle):
    event = NewsItem("e1", "RBI policy", NOW + timedelta(minutes=5), 30, "blackout", ("NIFTY",))
    v = castle.evaluate(context(condor(market), market, news=NewsState((event,))))
    assert v.blocked_by == "news" and v.reason_code == "news_blackout"


# ------------------------------------------------------------------------------ tail hedge


def test_the_castle_accepts_an_iron_condor_and_blocks_a_naked_short_strangle(market, castle):
    loose = TenantPolicy(capital=1_000_000, max_loss_per_trade_pct=0.5)
    ok = castle.evaluate(context(condor(market), market, policy=loose))
    assert ok.approved and ok.verdicts[-1].reason_code == "tail_hedged"
    naked = castle.evaluate(context(short_strangle(market, edge=3_000.0), market, policy=loose))
    assert naked.blocked_by == "tail_hedge" and naked.reason_code == "naked_short"
    assert tuple(x.wall for x in naked.verdicts) == SWITCHES + WALLS


# ------------------------------------------------------------------------------ dry run


def test_a_locked_tenants_live_order_is_blocked_or_forced_to_paper(market, costs):
    ctx = context(condor(market), market, dry_run=True, live_order=True)
    blocked = RiskCastle.default(costs).evaluate(ctx)
    assert blocked.blocked_by == "dry_run_lock" and blocked.dry_run
    forced = RiskCastle.default(costs, force_paper=True).evaluate(ctx)
    assert forced.approved and not forced.live and forced.dry_run
    assert forced.reason.endswith("paper")
    unlocked = RiskCastle.default(costs).evaluate(replace(ctx, dry_run=False))
    assert unlocked.approved and unlocked.live


# ------------------------------------------------------------------------------ contracts


def test_verdicts_become_signal_messages(market, castle):
    p = condor(market)
    approved = castle.evaluate(context(p, market))
    msg = approved.to_signal(verdict_id=uuid.uuid4(), proposal=p, decided_at=NOW)
    assert isinstance(msg, SignalApprovedV1) and msg.size_multiplier == 1.0 and msg.dry_run
    assert len(msg.verdicts) == 19
    blocked = castle.evaluate(context(p, market, regime="event"))
    msg = blocked.to_signal(verdict_id=uuid.uuid4(), proposal=p, decided_at=NOW)
    assert isinstance(msg, SignalBlockedV1) and msg.blocked_by == "regime"
    assert msg.reason == blocked.reason


# ------------------------------------------------------------------------------ extension


def test_adding_a_wall_is_one_class(market, costs):
    class WeekendWall(Wall):
        name = "weekend"

        def check(self, ctx) -> WallVerdict:
            if ctx.now.weekday() >= 5:
                return self.blocked("weekend", f"weekday {ctx.now.weekday()} >= 5")
            return self.passed("weekday", f"weekday {ctx.now.weekday()} < 5")

    castle = RiskCastle((*default_walls(costs), WeekendWall()))
    v = castle.evaluate(context(condor(market), market))
    assert v.approved and v.verdicts[-1].wall == "weekend"
    sunday = castle.evaluate(replace(context(condor(market), market),
                                     now=NOW + timedelta(days=2), market_open=False))
    assert sunday.blocked_by == "weekend" and sunday.reason == "weekday 6 >= 5"
    with pytest.raises(ValueError, match="unique"):
        RiskCastle((*default_walls(costs), *default_walls(costs)))


# ------------------------------------------------------------------------------ invariants


def test_random_proposals_give_consistent_verdicts(market):
    rng = np.random.default_rng(1234)
    castle = RiskCastle.default(FlatCostModel())
    seen = set()
    for _ in range(300):
        v = castle.evaluate(context(random_proposal(rng, market), market))
        seen.add(v.blocked_by)
        assert v.approved == (v.blocked_by is None)
        assert sum(x.blocked for x in v.verdicts) == (0 if v.approved else 1)
        assert v.approved or v.verdicts[-1].blocked
        assert 0 < v.size_multiplier <= 1 and len(v.verdicts) <= 19
        assert all(math.isfinite(n) for x in v.verdicts for n in x.numbers.values())
        if not v.approved:
            assert v.explain().startswith(f"blocked by {v.blocked_by}: ")
    assert None in seen and len(seen) >= 3


def test_the_same_context_gives_the_same_verdict(market, castle):
    ctx = context(condor(market), market)
    assert castle.evaluate(ctx) == castle.evaluate(ctx)


# ------------------------------------------------------------------------------ bad input


def bad_legs(p, **over):
    """The proposal with its first leg replaced by an unvalidated copy."""
    first = p.legs[0]
    fields = dict(first.__dict__)
    fields.update(over)
    return p.model_copy(update={"legs": (Leg.model_construct(**fields), *p.legs[1:])})


def bad_quote(market, proposal, **over):
    """The market with the quote of the proposal's first leg changed."""
    first = proposal.legs[0]
    target = market.quote(first.expiry, first.strike, first.option_type)
    quotes = tuple(replace(q, **over) if q is target else q for q in market.quotes)
    return replace(market, quotes=quotes)


@pytest.mark.parametrize(("name", "make", "error", "code"), [
    ("tenant", lambda p, m: (p.model_copy(update={"tenant_id": uuid.uuid4()}), m),
     TenantMismatch, "tenant_mismatch"),
    ("symbol", lambda p, m: (p.model_copy(update={"symbol": "BANKNIFTY"}), m),
     SymbolMismatch, "symbol_mismatch"),
    ("structure", lambda p, m: (p.model_copy(update={"structure": "wheel"}), m),
     UnknownStructure, "unknown_structure"),
    ("edge", lambda p, m: (p.model_copy(update={"expected_gross_edge": math.nan}), m),
     NonFiniteInput, "nan_input"),
    ("zero lots", lambda p, m: (bad_legs(p, lots=0), m), BadLots, "bad_lots"),
    ("negative lots", lambda p, m: (bad_legs(p, lots=-2), m), BadLots, "bad_lots"),
    ("fractional lots", lambda p, m: (bad_legs(p, lots=1.5), m), BadLots, "bad_lots"),
    ("nan leg price", lambda p, m: (bad_legs(p, price=Decimal("NaN")), m),
     NonFinitePrice, "nan_price"),
    ("nan iv", lambda p, m: (p, bad_quote(m, p, iv=math.nan)), NonFinitePrice, "nan_price"),
    ("no bid to sell", lambda p, m: (p, bad_quote(m, p, bid=math.nan)),
     NonFinitePrice, "nan_price"),
    ("unknown strike", lambda p, m: (bad_legs(p, strike=Decimal("99950")), m),
     LegNotInMarket, "leg_not_in_market"),
    ("unlisted expiry", lambda p, m: (bad_legs(p, expiry=p.legs[0].expiry + timedelta(days=1)), m),
     LegNotInMarket, "leg_not_in_market"),
    ("lot multiple", lambda p, m: (p.model_copy(update={"lot_size": 50}), m),
     QuantityNotLotMultiple, "quantity_not_lot_multiple"),
    ("shape", lambda p, m: (p.model_copy(update={"legs": p.legs[:3]}), m),
     StructureMismatch, "structure_mismatch"),
    ("vertical shape", lambda p, m: (p.model_copy(update={
        "structure": Structure.CREDIT_VERTICAL}), m), StructureMismatch, "structure_mismatch"),
])
def test_bad_input_raises_a_permanent_error_before_any_gate(market, name, make, error, code):
    costs = RatioCosts(0.1)
    castle = RiskCastle.default(costs)
    p, m = make(condor(market), market)
    ctx = replace(context(condor(market), market), proposal=p, market=m)
    with pytest.raises(error) as info:
        castle.evaluate(ctx)
    assert isinstance(info.value, InvalidProposal) and isinstance(info.value, PermanentError)
    assert info.value.reason_code == code
    assert costs.calls == []


def test_a_quantity_that_is_a_lot_multiple_is_accepted(market, castle):
    """lots x proposal lot size only has to be a multiple of the market lot."""
    p = condor(market, lots=2).model_copy(update={"lot_size": 130})
    p = p.model_copy(update={"legs": tuple(x.model_copy(update={"lots": 1}) for x in p.legs)})
    v = castle.evaluate(context(p, market, capital=2_000_000))
    assert v.approved, v.explain()
