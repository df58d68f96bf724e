"""The seven walls, each blocking and passing; the margin estimate against brute force."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from shared.contracts import OptionType, Side, Structure
from shared.domain.black76 import black76_price
from shared.domain.risk import (
    CorrelationMatrix,
    CorrelationWall,
    CostEstimate,
    CostWall,
    MarginWall,
    NewsGate,
    NewsItem,
    NewsState,
    PolicyLimits,
    Portfolio,
    Position,
    RegimeWall,
    ScanParameters,
    TailHedgeWall,
    TenantPolicy,
)
from shared.domain.risk.synthetic import (
    EXPIRIES,
    NOW,
    FlatCostModel,
    LegSpec,
    build_proposal,
    context,
    iron_condor,
    long_straddle,
    random_proposal,
    short_strangle,
    synthetic_market,
    vertical,
)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(np.random.default_rng(1234))


@pytest.fixture(scope="module")
def condor(market):
    return iron_condor(market, lots=1, edge=2_000.0)


class FixedCosts:
    """A fake cost model with a fixed total at full size (linear in the multiplier)."""

    def __init__(self, total: float, breakdown: dict | None = None) -> None:
        self.total = total
        self.breakdown = breakdown or {"brokerage": total}
        self.sizes: list[float] = []

    def round_trip(self, proposal, market, *, now, size_multiplier=1.0):
        self.sizes.append(size_multiplier)
        return CostEstimate(self.total * size_multiplier,
                            {k: v * size_multiplier for k, v in self.breakdown.items()})


def book(*positions, **kw):
    return Portfolio(positions=tuple(positions), **kw)


def pos(symbol="NIFTY", margin=100_000.0, **kw):
    return Position(position_id=f"{symbol}-{margin}-{kw.get('strategy', '')}", symbol=symbol,
                    margin=margin, **kw)


# ------------------------------------------------------------------------------ 1 regime


def test_regime_wall_passes_an_allowed_structure(market, condor):
    v = RegimeWall().check(context(condor, market, regime="range"))
    assert not v.blocked and v.reason_code == "regime_ok"
    assert v.numbers["regime_matches_proposal"] == 1.0


def test_regime_wall_blocks_a_structure_the_regime_forbids(market, condor):
    v = RegimeWall().check(context(condor, market, regime="trending_up"))
    assert v.blocked and v.reason_code == "regime_structure"
    assert "iron_condor not allowed in regime 'trending_up'" in v.reason
    assert "the proposal assumed 'range'" in v.reason


def test_regime_wall_fails_closed_on_an_unknown_regime(market, condor):
    v = RegimeWall().check(context(condor, market, regime="martian"))
    assert v.blocked and v.reason_code == "regime_unknown"


def test_regime_wall_takes_a_custom_table(market, condor):
    wall = RegimeWall({"calm": frozenset({Structure.IRON_CONDOR})})
    assert not wall.check(context(condor, market, regime="calm")).blocked
    assert wall.check(context(condor, market, regime="range")).blocked


# ------------------------------------------------------------------------------ 2 news


def news(action, *, minutes_away=10, window=30, symbols=("NIFTY",), title="RBI policy"):
    return NewsState((NewsItem("e1", title, NOW + timedelta(minutes=minutes_away), window,
                               action, symbols),))


def test_news_gate_proceeds_without_events(market, condor):
    v = NewsGate().check(context(condor, market))
    assert not v.blocked and v.reason_code == "news_proceed"
    assert v.numbers["size_multiplier"] == 1.0


def test_news_gate_blackout_blocks(market, condor):
    v = NewsGate().check(context(condor, market, news=news("blackout")))
    assert v.blocked and v.reason_code == "news_blackout"
    assert "RBI policy" in v.reason and "+-30 min" in v.reason


@pytest.mark.parametrize(("action", "lots", "multiplier"), [
    ("reduce_25", 4, 0.75), ("reduce_50", 4, 0.5), ("reduce_50", 3, 1 / 3), ("reduce_25", 2, 0.5),
])
def test_news_gate_reduce_sets_the_size_multiplier_in_whole_lots(market, action, lots, multiplier):
    p = iron_condor(market, lots=lots)
    v = NewsGate().check(context(p, market, news=news(action)))
    assert not v.blocked and v.reason_code == f"news_{action}"
    assert v.numbers["size_multiplier"] == pytest.approx(multiplier)
    assert v.numbers["requested_multiplier"] == {"reduce_25": 0.75, "reduce_50": 0.5}[action]


def test_news_gate_blocks_a_reduction_below_one_lot(market):
    p = iron_condor(market, lots=1)
    v = NewsGate().check(context(p, market, news=news("reduce_50")))
    assert v.blocked and v.reason_code == "news_reduce_below_one_lot"


def test_news_gate_keeps_leg_ratios(market):
    legs = [LegSpec(24300, OptionType.CE, Side.SELL, 2), LegSpec(24500, OptionType.CE, Side.BUY, 4)]
    p = build_proposal(market, Structure.CUSTOM, legs)
    v = NewsGate().check(context(p, market, news=news("reduce_50")))
    assert v.numbers["size_multiplier"] == pytest.approx(0.5)  # 2 copies of (1, 2) -> 1 copy


def test_news_gate_ignores_inactive_and_other_symbol_events_but_not_market_wide(market, condor):
    far = news("blackout", minutes_away=120, window=30)
    other = news("blackout", symbols=("BANKNIFTY",))
    wide = news("blackout", symbols=())
    assert not NewsGate().check(context(condor, market, news=far)).blocked
    assert not NewsGate().check(context(condor, market, news=other)).blocked
    assert NewsGate().check(context(condor, market, news=wide)).blocked


def test_news_gate_takes_the_most_severe_active_event(market):
    p = iron_condor(market, lots=4)
    state = NewsState(news("reduce_25").events + news("reduce_50", title="CPI").events)
    v = NewsGate().check(context(p, market, news=state))
    assert v.numbers["size_multiplier"] == 0.5 and "CPI" in v.reason


# ------------------------------------------------------------------------------ 3 policy


def test_policy_limits_pass_within_limits(market, condor):
    v = PolicyLimits().check(context(condor, market))
    assert not v.blocked and v.reason_code == "policy_ok"
    assert v.numbers["open_positions_after"] == 1


def test_policy_blocks_too_many_concurrent_positions(market, condor):
    full = book(*(pos("BANKNIFTY", 10_000.0, strategy=str(i)) for i in range(5)))
    v = PolicyLimits().check(context(condor, market, portfolio=full))
    assert v.blocked and v.reason_code == "policy_concurrent_positions"
    assert v.reason == "concurrent_positions 6 > 5"


def test_policy_blocks_a_position_too_large_for_the_capital(market, condor):
    ctx = context(condor, market, capital=250_000)
    v = PolicyLimits().check(ctx)
    assert v.blocked and v.reason_code == "policy_position_pct"
    pct = ctx.position.capital_required / 250_000
    assert pct > 0.25 and v.reason.startswith(f"position_pct {pct:.2f} > 0.25")


def test_policy_blocks_per_underlying_exposure(market, condor):
    held = book(pos("NIFTY", 450_000.0))
    v = PolicyLimits().check(context(condor, market, portfolio=held))
    assert v.blocked and v.reason_code == "policy_symbol_exposure"
    assert v.reason.startswith("symbol_exposure_pct NIFTY ")
    assert not PolicyLimits().check(context(condor, market, portfolio=book(
        pos("BANKNIFTY", 400_000.0)))).blocked


def test_policy_blocks_the_max_loss_per_trade(market, condor):
    ctx = context(condor, market, policy=TenantPolicy(capital=1_000_000,
                                                      max_loss_per_trade_pct=0.01))
    v = PolicyLimits().check(ctx)
    assert v.blocked and v.reason_code == "policy_max_loss"
    assert v.numbers["trade_max_loss"] == pytest.approx(ctx.position.trade_max_loss)
    assert "> ₹10,000 (basis: payoff)" in v.reason
    absolute = TenantPolicy(capital=1_000_000, max_loss_per_trade=5_000.0)
    assert PolicyLimits().check(context(condor, market, policy=absolute)).blocked


def test_policy_uses_the_stress_loss_for_an_unbounded_structure(market):
    p = short_strangle(market)
    assert p.max_loss is None
    ctx = context(p, market)
    v = PolicyLimits().check(ctx)
    assert ctx.position.max_loss_basis == "stress"
    assert v.numbers["trade_max_loss"] == pytest.approx(ctx.position.tail_loss)
    assert v.blocked and "(basis: stress)" in v.reason


# ------------------------------------------------------------------------------ 4 margin


def brute_force_margin(ctx, scan: ScanParameters):
    """The documented SPAN-like grid, one scenario and one leg at a time."""
    p, m = ctx.proposal, ctx.market
    legs = []
    for leg in p.legs:
        q = m.quote(leg.expiry, leg.strike, leg.option_type)
        units = leg.lots * p.lot_size * (1 if leg.side == Side.BUY else -1)
        legs.append((units, q))

    def value(move, shift, base=False):
        total = 0.0
        for units, q in legs:
            vol = q.iv if base else max(q.iv + shift, scan.min_vol)
            price = black76_price(q.forward * (1 + move), q.strike, q.t, m.rate, vol,
                                  q.option_type == OptionType.CE)[0]
            total += units * price
        return total

    v0 = value(0.0, 0.0, base=True)
    losses = []
    for frac in (0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1, -1):
        for vol in (+1, -1):
            losses.append(v0 - value(frac * scan.price_scan, vol * scan.vol_scan))
    for sign in (+1, -1):
        losses.append(scan.extreme_cover
                      * (v0 - value(sign * scan.extreme_multiple * scan.price_scan, 0.0)))
    scan_risk = max(0.0, *losses)
    sold = sum(-u for u, _ in legs if u < 0)
    exposure = scan.exposure_margin_pct * m.spot * sold
    tail = max(0.0, *(v0 - value(s * scan.extreme_multiple * scan.price_scan, dv)
                      for dv in (0.0, scan.tail_vol_up) for s in (1, -1)))
    return scan_risk, exposure, (scan_risk + exposure if sold else 0.0), tail, losses


@pytest.mark.parametrize("scan", [ScanParameters(),
                                  ScanParameters(price_scan=0.09, vol_scan=0.06,
                                                 exposure_margin_pct=0.03)])
def test_margin_estimate_matches_a_brute_force_repricing_of_the_grid(market, scan):
    rng = np.random.default_rng(1234)
    proposals = [iron_condor(market), short_strangle(market), long_straddle(market),
                 vertical(market, credit=False, regime="trending_up")]
    proposals += [random_proposal(rng, market) for _ in range(30)]
    for p in proposals:
        ctx = context(p, market, scan=scan)
        scan_risk, exposure, margin, tail, losses = brute_force_margin(ctx, scan)
        got = ctx.position
        assert got.scan_risk == pytest.approx(scan_risk, rel=1e-9, abs=1e-6)
        assert got.exposure_margin == pytest.approx(exposure, rel=1e-12)
        assert got.margin == pytest.approx(margin, rel=1e-9, abs=1e-6)
        assert got.tail_loss == pytest.approx(tail, rel=1e-9, abs=1e-6)
        np.testing.assert_allclose(got.scenario_loss[1:17], losses, rtol=1e-9, atol=1e-6)
        if scan_risk > 0:
            assert losses[got.worst_scenario - 1] == pytest.approx(scan_risk)


def test_margin_of_an_iron_condor_is_bounded_by_its_wings(market):
    p = iron_condor(market, wing=200)
    ctx = context(p, market)
    width_loss = 200 * 65  # the wing width times the quantity, before the credit
    assert 0 < ctx.position.scan_risk <= width_loss
    strangle = context(short_strangle(market), market).position
    assert strangle.scan_risk > ctx.position.scan_risk
    assert context(long_straddle(market), market).position.margin == 0.0


def test_margin_wall_passes_with_room(market, condor):
    v = MarginWall().check(context(condor, market))
    assert not v.blocked and v.reason_code == "margin_ok"
    assert v.numbers["margin_need"] == pytest.approx(
        v.numbers["margin_estimate"] * 1.3 + v.numbers["premium_paid"])


def test_margin_wall_blocks_when_the_buffered_margin_exceeds_free_capital(market, condor):
    ctx = context(condor, market)
    margin = ctx.position.margin
    # free capital between the bare margin and the margin with its 30 % buffer
    equity = 1_000_000.0
    used = equity - margin * 1.15
    tight = context(condor, market, portfolio=book(pos("BANKNIFTY", used), equity=equity),
                    policy=TenantPolicy(capital=1_000_000, max_margin_utilisation=1.0))
    v = MarginWall().check(tight)
    assert v.blocked and v.reason_code == "margin_insufficient"
    assert f"margin_need ₹{margin * 1.3:,.0f} > free ₹{margin * 1.15:,.0f}" in v.reason
    assert "x1.30 buffer" in v.reason
    no_buffer = replace(tight, policy=TenantPolicy(capital=1_000_000, margin_buffer=0.0,
                                                   max_margin_utilisation=1.0))
    assert not MarginWall().check(no_buffer).blocked


def test_margin_wall_blocks_utilisation_after_the_trade(market, condor):
    ctx = context(condor, market, portfolio=book(pos("BANKNIFTY", 750_000.0)))
    v = MarginWall().check(ctx)
    assert v.blocked and v.reason_code == "margin_utilisation"
    assert v.reason.startswith("margin_utilisation_after 0.") and v.reason.endswith("> 0.80")


def test_margin_wall_scales_with_the_size_multiplier(market, condor):
    full = MarginWall().check(context(condor, market))
    half = MarginWall().check(context(condor, market, size_multiplier=0.5))
    assert half.numbers["margin_estimate"] == pytest.approx(full.numbers["margin_estimate"] / 2)


# ------------------------------------------------------------------------------ 5 correlation


CORR = CorrelationMatrix(("NIFTY", "BANKNIFTY", "GOLD"),
                         np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.05], [0.1, 0.05, 1.0]]))


def test_correlation_wall_passes_an_empty_book(market, condor):
    v = CorrelationWall().check(context(condor, market))
    assert not v.blocked and v.reason_code == "correlation_ok"


def test_correlation_wall_blocks_correlated_exposure(market, condor):
    held = book(pos("BANKNIFTY", 300_000.0, expiry=EXPIRIES[1]),
                pos("BANKNIFTY", 300_000.0, expiry=EXPIRIES[1], strategy="b"),
                correlation=CORR)
    v = CorrelationWall().check(context(condor, market, portfolio=held))
    assert v.blocked and v.reason_code == "correlated_exposure"
    assert v.reason.startswith("correlated_exposure ₹") and "> ₹600,000" in v.reason
    assert v.numbers["mean_correlation"] == pytest.approx(0.9)


def test_correlation_wall_passes_uncorrelated_exposure(market, condor):
    held = book(pos("GOLD", 300_000.0), pos("GOLD", 300_000.0, strategy="b"), correlation=CORR)
    assert not CorrelationWall().check(context(condor, market, portfolio=held)).blocked


def test_correlation_wall_treats_unknown_correlation_as_one(market, condor):
    held = book(pos("GOLD", 300_000.0), pos("GOLD", 300_000.0, strategy="b"))  # no matrix
    v = CorrelationWall().check(context(condor, market, portfolio=held))
    assert v.blocked and "unknown correlation(s) taken as 1" in v.reason
    assert v.numbers["unknown_correlations"] == 1


def test_correlation_wall_blocks_expiry_concentration(market, condor):
    held = book(pos("NIFTY", 350_000.0, expiry=EXPIRIES[0]), correlation=CORR)
    v = CorrelationWall().check(context(condor, market, portfolio=held))
    assert v.blocked and v.reason_code == "expiry_concentration"
    assert v.reason.startswith(f"expiry_concentration NIFTY {EXPIRIES[0].isoformat()} 0.")
    other_expiry = book(pos("NIFTY", 350_000.0, expiry=EXPIRIES[1]), correlation=CORR)
    assert not CorrelationWall().check(context(condor, market, portfolio=other_expiry)).blocked


def test_correlation_matrix_from_seeded_returns():
    rng = np.random.default_rng(1234)
    common = rng.normal(0, 0.01, 250)
    returns = np.column_stack([common + rng.normal(0, 0.003, 250),
                               common + rng.normal(0, 0.004, 250),
                               rng.normal(0, 0.01, 250)])
    m = CorrelationMatrix.from_returns(("NIFTY", "BANKNIFTY", "GOLD"), returns)
    assert m.rho("NIFTY", "BANKNIFTY") > 0.85
    assert abs(m.rho("NIFTY", "GOLD")) < 0.2
    assert m.rho("NIFTY", "NIFTY") == 1.0 and m.rho("NIFTY", "SILVER") is None
    with pytest.raises(ValueError):
        CorrelationMatrix(("A", "B"), np.array([[1.0, 0.5], [0.4, 1.0]]))


# ------------------------------------------------------------------------------ 6 costs


def test_cost_wall_passes_a_trade_that_pays_for_its_costs(market, condor):
    costs = FixedCosts(300.0, {"stt": 100.0, "brokerage": 200.0})
    v = CostWall(costs).check(context(condor, market))
    assert not v.blocked and v.reason_code == "cost_ok"
    assert v.numbers["net_ev"] == 1_700.0 and v.numbers["total_costs"] == 300.0
    assert v.numbers["cost_stt"] == 100.0 and v.numbers["cost_ratio"] == pytest.approx(0.15)


def test_cost_wall_blocks_a_non_positive_net_ev(market, condor):
    v = CostWall(FixedCosts(2_100.0)).check(context(condor, market))
    assert v.blocked and v.reason_code == "net_ev_non_positive"
    assert v.reason == "net_ev ₹-100 <= 0 (gross edge ₹2,000 - costs ₹2,100)"
    negative_edge = condor.model_copy(update={"expected_gross_edge": -50.0})
    assert CostWall(FixedCosts(0.0)).check(context(negative_edge, market)).reason_code \
        == "net_ev_non_positive"


def test_cost_wall_blocks_a_cost_ratio_over_40_percent(market, condor):
    v = CostWall(FixedCosts(1_040.0)).check(context(condor, market))
    assert v.blocked and v.reason_code == "cost_ratio"
    assert v.reason.startswith("cost_ratio 0.52 > 0.40")
    assert v.numbers["cost_ratio"] == pytest.approx(0.52)


def test_cost_ratio_reason_never_reads_equal_numbers(market, condor):
    v = CostWall(FixedCosts(804.0)).check(context(condor, market))  # ratio 0.402
    assert v.blocked and v.reason.startswith("cost_ratio 0.402 > 0.400")


def test_cost_wall_blocks_a_low_win_probability(market, condor):
    low = condor.model_copy(update={"win_probability": 0.41})
    v = CostWall(FixedCosts(300.0)).check(context(low, market))
    assert v.blocked and v.reason_code == "win_probability"
    assert v.reason == "win_probability 0.41 < 0.45"


def test_cost_wall_fails_closed_on_an_invalid_cost(market, condor):
    v = CostWall(FixedCosts(math.nan)).check(context(condor, market))
    assert v.blocked and v.reason_code == "cost_invalid"


def test_cost_wall_prices_the_reduced_size(market, condor):
    costs = FixedCosts(300.0)
    v = CostWall(costs).check(context(condor, market, size_multiplier=0.5))
    assert costs.sizes == [0.5]
    assert v.numbers["gross_edge"] == 1_000.0 and v.numbers["total_costs"] == 150.0


def test_flat_cost_model_implements_the_port(market, condor):
    est = FlatCostModel().round_trip(condor, market, now=NOW)
    assert est.valid and est.total == pytest.approx(sum(est.breakdown.values()))


# ------------------------------------------------------------------------------ 7 tail hedge


def test_tail_hedge_accepts_an_iron_condor(market, condor):
    v = TailHedgeWall().check(context(condor, market))
    assert not v.blocked and v.reason_code == "tail_hedged"
    assert v.numbers["naked_lots"] == 0
    assert v.numbers["expiry_max_loss"] == pytest.approx(condor.max_loss, rel=0.01)


def test_tail_hedge_blocks_a_naked_short_strangle(market):
    v = TailHedgeWall().check(context(short_strangle(market, lots=2), market))
    assert v.blocked and v.reason_code == "naked_short"
    assert "2 lot(s) of short CE 24300" in v.reason and "short PE 23700" in v.reason
    assert "without a protective wing" in v.reason
    assert v.numbers["naked_lots"] == 4


def test_tail_hedge_accepts_covered_verticals_and_long_premium(market):
    for p in (vertical(market, credit=True), vertical(market, credit=False)):
        assert TailHedgeWall().check(context(p, market)).reason_code == "tail_hedged"
    assert TailHedgeWall().check(context(long_straddle(market), market)).reason_code \
        == "no_short_premium"


def test_tail_hedge_blocks_a_ratio_spread_with_too_few_wings(market):
    legs = [LegSpec(24300, OptionType.CE, Side.SELL, 2), LegSpec(24500, OptionType.CE, Side.BUY, 1)]
    v = TailHedgeWall().check(context(build_proposal(market, Structure.CUSTOM, legs), market))
    assert v.blocked and v.reason.startswith("1 lot(s) of short CE 24300")


def test_tail_hedge_blocks_a_wing_too_far_to_protect(market):
    far = iron_condor(market, distance=300, wing=1_500, lots=2)
    ctx = context(far, market)
    v = TailHedgeWall().check(ctx)
    assert v.blocked and v.reason_code == "tail_loss"
    assert v.reason == (f"tail_loss ₹{ctx.position.tail_loss:,.0f} > ₹50,000 "
                        f"(0.05 of capital)")
    assert not TailHedgeWall().check(context(far, market, capital=5_000_000)).blocked


def test_a_later_expiry_wing_covers_a_calendar_but_an_earlier_one_does_not(market):
    near, far = EXPIRIES
    spec = [LegSpec(24300, OptionType.CE, Side.SELL), LegSpec(24300, OptionType.CE, Side.BUY)]

    def calendar(sold_expiry, bought_expiry):
        p = build_proposal(market, Structure.CUSTOM, spec)
        first, second = p.legs
        legs = (first.model_copy(update={"expiry": sold_expiry}),
                second.model_copy(update={"expiry": bought_expiry}))
        return p.model_copy(update={"legs": legs, "max_loss": 50_000.0})

    covered = context(calendar(near, far), market)
    assert covered.position.expiry_max_loss is None  # two expiries: no single payoff
    assert covered.position.max_loss_basis == "declared"  # 50,000 > the stress loss
    assert covered.position.trade_max_loss == 50_000.0 > covered.position.tail_loss
    assert TailHedgeWall().check(covered).reason_code == "tail_hedged"
    reverse = TailHedgeWall().check(context(calendar(far, near), market))
    assert reverse.blocked and reverse.reason_code == "naked_short"
    assert f"short CE 24300 {far.isoformat()}" in reverse.reason
