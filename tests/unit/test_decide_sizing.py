"""Layer 4: sizing against the tenant's capital, appetite, policy and open book."""

from __future__ import annotations

import math
import time
from dataclasses import FrozenInstanceError
from datetime import date
from types import SimpleNamespace

import numpy as np
import pytest

from shared.domain.decide.sizing import (
    CONSTRAINT_ORDER,
    RiskAppetite,
    SizingDecision,
    dated_lot_size,
    size_position,
)
from shared.domain.risk.inputs import CorrelationMatrix, Portfolio, Position, TenantPolicy
from shared.domain.risk.walls import CorrelationWall, MarginWall, PolicyLimits, TailHedgeWall

CAP = 1_000_000.0
POLICY = TenantPolicy(capital=CAP)  # defaults: 0.25 / 5 / 0.50 / 0.02 / 0.30 / 0.80 ...
E1 = date(2024, 7, 25)
E2 = date(2024, 8, 1)
# default appetite: 0.10 * 1e6 / sqrt(252) / 5 positions = ₹1,259.88 of daily 1-SD P&L
DAILY = CAP * 0.10 / math.sqrt(252) / 5


def size(**kw: object) -> SizingDecision:
    args: dict[str, object] = dict(per_lot_max_loss=1_000.0, per_lot_margin=5_000.0,
                                   per_lot_daily_risk=10.0, confidence=1.0, policy=POLICY,
                                   appetite=RiskAppetite(), portfolio=Portfolio(),
                                   symbol="NIFTY")
    args.update(kw)
    return size_position(**args)  # type: ignore[arg-type]


def pos(symbol: str, margin: float, expiry: date | None = None, i: int = 0) -> Position:
    return Position(position_id=f"p{i}-{symbol}", symbol=symbol, margin=margin, expiry=expiry)


# --- appetite ----------------------------------------------------------------------------


def test_appetite_defaults_and_budget() -> None:
    a = RiskAppetite()
    assert a.target_annual_vol == 0.10 and a.trade_share is None and a.trading_days == 252
    assert a.daily_budget(CAP, 5, 1.0) == pytest.approx(DAILY)
    assert a.daily_budget(CAP, 5, 0.5) == pytest.approx(DAILY / 2)
    assert RiskAppetite(trade_share=1.0).daily_budget(CAP, 5, 1.0) == pytest.approx(DAILY * 5)
    assert RiskAppetite(confidence_power=2).daily_budget(CAP, 5, 0.5) == pytest.approx(DAILY / 4)
    capped = RiskAppetite(max_daily_risk_per_trade_pct=0.0005)
    assert capped.daily_budget(CAP, 5, 1.0) == pytest.approx(500.0)
    assert RiskAppetite(min_confidence=0.3).daily_budget(CAP, 5, 0.3) == 0.0
    with pytest.raises(FrozenInstanceError):
        a.target_annual_vol = 0.2  # type: ignore[misc]


@pytest.mark.parametrize("kw", [
    dict(target_annual_vol=0.0), dict(target_annual_vol=-0.1), dict(target_annual_vol=math.nan),
    dict(target_annual_vol=3.0), dict(trade_share=0.0), dict(trade_share=1.5),
    dict(max_daily_risk_per_trade_pct=0.0), dict(confidence_power=0.0),
    dict(min_confidence=1.0), dict(min_confidence=-0.1), dict(trading_days=0),
    dict(trading_days=252.0), dict(trading_days=True),
])
def test_appetite_validation(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RiskAppetite(**kw)  # type: ignore[arg-type]


# --- one hand-computed case per binding constraint ---------------------------------------


def test_max_loss_per_trade_binds() -> None:
    # 20,000 / 6,000 = 3.33 -> 3; position 250,000 / 20,000 = 12; vol 1,259.88 / 100 = 12
    d = size(per_lot_max_loss=6_000.0, per_lot_margin=20_000.0, per_lot_daily_risk=100.0,
             lot_size=75)
    assert (d.lots, d.binding, d.units) == (3, "max_loss_per_trade", 225)
    got = {c.name: c.lots for c in d.constraints}
    assert got == {"open_positions": None, "max_loss_per_trade": 3, "position_pct": 12,
                   "symbol_exposure": 25, "correlated_exposure": 30, "margin": 38,
                   "margin_utilisation": 40, "vol_target": 12}
    assert [c.name for c in d.constraints] == [n for n in CONSTRAINT_ORDER if n in got]
    ml = d.allowance("max_loss_per_trade")
    assert ml is not None and (ml.budget, ml.per_lot, ml.used) == (20_000.0, 6_000.0, 18_000.0)
    assert d.max_loss == 18_000.0 and d.capital_required == 60_000.0 and d.margin == 60_000.0
    assert d.daily_risk == 300.0 and d.trade
    assert "3 lot(s) x 75 = 225 units: bound by max_loss_per_trade" in d.reason


def test_absolute_max_loss_cap_is_the_lower_limit() -> None:
    pol = TenantPolicy(capital=CAP, max_loss_per_trade=5_000.0)
    d = size(policy=pol, per_lot_max_loss=2_000.0)
    assert (d.lots, d.binding) == (2, "max_loss_per_trade")


def test_exact_multiple_is_allowed() -> None:
    d = size(per_lot_max_loss=5_000.0)  # 20,000 / 5,000 = exactly 4
    assert (d.lots, d.binding) == (4, "max_loss_per_trade")


def test_vol_target_binds_and_scales_with_confidence() -> None:
    d = size(per_lot_daily_risk=400.0)  # 1,259.88 / 400 = 3.15
    assert (d.lots, d.binding) == (3, "vol_target")
    half = size(per_lot_daily_risk=400.0, confidence=0.5)  # 629.94 / 400 = 1.57
    assert (half.lots, half.binding) == (1, "vol_target")
    vt = half.allowance("vol_target")
    assert vt is not None and vt.budget == pytest.approx(DAILY / 2)


def test_vol_target_uses_the_lower_of_capital_and_equity() -> None:
    d = size(per_lot_daily_risk=100.0, portfolio=Portfolio(equity=500_000.0))
    assert d.allowance("vol_target").lots == 6  # type: ignore[union-attr]  # 629.94 / 100


def test_position_pct_binds() -> None:
    d = size(per_lot_margin=60_000.0)  # 250,000 / 60,000 = 4.17
    assert (d.lots, d.binding) == (4, "position_pct")


def test_premium_paid_counts_as_capital_required() -> None:
    d = size(per_lot_margin=0.0, per_lot_premium_paid=60_000.0)
    assert (d.lots, d.binding) == (4, "position_pct")
    assert d.capital_required == 240_000.0 and d.margin == 0.0


def test_symbol_exposure_binds_given_the_open_book() -> None:
    book = Portfolio(positions=(pos("NIFTY", 400_000.0),))
    d = size(per_lot_margin=30_000.0, portfolio=book)  # (500,000 - 400,000) / 30,000 = 3.3
    assert (d.lots, d.binding) == (3, "symbol_exposure")
    assert d.allowance("symbol_exposure").budget == 100_000.0  # type: ignore[union-attr]
    assert size(per_lot_margin=30_000.0).lots == 8  # empty book: position_pct 8


def test_correlated_exposure_binds_unknown_correlation_counts_as_one() -> None:
    book = Portfolio(positions=(pos("BANKNIFTY", 450_000.0),))
    d = size(per_lot_margin=40_000.0, portfolio=book)  # (600,000 - 450,000) / 40,000 = 3.75
    assert (d.lots, d.binding) == (3, "correlated_exposure")
    rho = CorrelationMatrix(("NIFTY", "BANKNIFTY"), np.array([[1.0, 0.5], [0.5, 1.0]]))
    half = Portfolio(positions=book.positions, correlation=rho)  # 375,000 / 40,000 = 9
    d2 = size(per_lot_margin=40_000.0, portfolio=half)
    assert (d2.lots, d2.binding) == (6, "position_pct")
    assert d2.allowance("correlated_exposure").lots == 9  # type: ignore[union-attr]


def test_expiry_concentration_binds_only_when_the_expiry_is_given() -> None:
    book = Portfolio(positions=(pos("NIFTY", 300_000.0, E1),))
    d = size(per_lot_margin=30_000.0, portfolio=book, expiry=E1)  # 100,000 / 30,000 = 3.3
    assert (d.lots, d.binding) == (3, "expiry_concentration")
    assert size(per_lot_margin=30_000.0, portfolio=book, expiry=E2).lots == 6  # symbol 6
    no_exp = size(per_lot_margin=30_000.0, portfolio=book)
    assert no_exp.allowance("expiry_concentration") is None and no_exp.lots == 6


def test_margin_with_buffer_binds() -> None:
    pol = TenantPolicy(capital=CAP, margin_buffer=0.5)
    book = Portfolio(equity=300_000.0)
    # need 50,000 x 1.5 + 10,000 = 85,000 -> 300,000 / 85,000 = 3.5; util 240,000 / 60,000 = 4
    d = size(policy=pol, portfolio=book, per_lot_margin=50_000.0, per_lot_premium_paid=10_000.0)
    assert (d.lots, d.binding) == (3, "margin")
    assert d.allowance("margin_utilisation").lots == 4  # type: ignore[union-attr]


def test_margin_utilisation_binds_given_used_margin() -> None:
    pol = TenantPolicy(capital=CAP, max_position_pct=1.0, max_symbol_exposure_pct=1.0,
                       max_correlated_exposure_pct=2.0, margin_buffer=0.0)
    book = Portfolio(positions=(pos("FINNIFTY", 500_000.0),))
    # free 500,000 / 40,000 = 12; utilisation (800,000 - 500,000) / 40,000 = 7.5
    d = size(policy=pol, portfolio=book, per_lot_margin=40_000.0)
    assert (d.lots, d.binding) == (7, "margin_utilisation")
    assert d.allowance("margin").lots == 12  # type: ignore[union-attr]


def test_tail_loss_binds_when_given() -> None:
    d = size(per_lot_tail_loss=15_000.0)  # 50,000 / 15,000 = 3.3
    assert (d.lots, d.binding) == (3, "tail_loss")


def test_caller_cap_binds() -> None:
    d = size(max_lots=2)
    assert (d.lots, d.binding) == (2, "max_lots")


def test_open_positions_at_the_limit_is_a_no_trade() -> None:
    book = Portfolio(positions=tuple(pos("FINNIFTY", 1_000.0, i=i) for i in range(5)))
    d = size(portfolio=book)
    assert (d.lots, d.binding, d.trade) == (0, "open_positions", False)
    assert d.reason.startswith("no trade: open_positions allows 0 lots (5 of 5 positions")
    assert size(portfolio=Portfolio(positions=book.positions[:4])).lots > 0


# --- no-trade cases ----------------------------------------------------------------------


def test_confidence_zero_is_zero_lots() -> None:
    d = size(confidence=0.0)
    assert (d.lots, d.binding) == (0, "vol_target")
    assert d.daily_risk == 0.0 and d.max_loss == 0.0 and d.capital_required == 0.0


def test_confidence_at_the_minimum_is_zero_lots_with_the_reason() -> None:
    d = size(confidence=0.3, appetite=RiskAppetite(min_confidence=0.3))
    assert d.lots == 0 and "confidence 0.30 <= minimum 0.30" in d.reason


def test_unbounded_loss_is_zero_lots() -> None:
    d = size(per_lot_max_loss=math.inf)
    assert (d.lots, d.binding) == (0, "max_loss_per_trade") and d.max_loss == 0.0


def test_lot_larger_than_a_limit_is_zero_lots() -> None:
    d = size(per_lot_max_loss=25_000.0)
    assert (d.lots, d.binding) == (0, "max_loss_per_trade")
    assert "no trade: max_loss_per_trade allows 0 lots" in d.reason


def test_non_positive_equity_is_zero_lots() -> None:
    d = size(portfolio=Portfolio(equity=-1_000.0))
    assert d.lots == 0 and d.binding == "margin"


def test_ties_report_the_first_constraint_in_order() -> None:
    # max loss 20,000 / 5,000 = 4 and position 250,000 / 62,500 = 4
    d = size(per_lot_max_loss=5_000.0, per_lot_margin=62_500.0)
    assert (d.lots, d.binding) == (4, "max_loss_per_trade")


# --- the open book reduces lots ----------------------------------------------------------


def test_portfolio_near_the_limits_reduces_lots() -> None:
    kw = dict(per_lot_margin=20_000.0, per_lot_max_loss=500.0, per_lot_daily_risk=1.0)
    empty = size(**kw)
    assert empty.lots == 12  # position_pct
    sizes = []
    for used in (0.0, 200_000.0, 350_000.0, 450_000.0, 490_000.0, 500_000.0):
        book = Portfolio(positions=(pos("NIFTY", used),) if used else ())
        sizes.append(size(portfolio=book, **kw).lots)
    assert sizes == [12, 12, 7, 2, 0, 0]
    assert sizes == sorted(sizes, reverse=True)


# --- never above what risk_check's walls allow -------------------------------------------


def _walls_ctx(lots: int, *, per_lot: dict[str, float], policy: TenantPolicy,
               portfolio: Portfolio, symbol: str, expiry: date) -> SimpleNamespace:
    """The attributes PolicyLimits, MarginWall, CorrelationWall and TailHedgeWall read,
    with the position's figures at ``lots`` lots as the castle would see them."""
    margin = lots * per_lot["margin"]
    debit = lots * per_lot["premium"]
    position = SimpleNamespace(
        margin=margin, net_premium=debit, capital_required=margin + max(debit, 0.0),
        trade_max_loss=lots * per_lot["loss"], max_loss_basis="payoff",
        scan_risk=margin, exposure_margin=0.0, worst_scenario=1,
        tail_loss=lots * per_lot["tail"], expiry_max_loss=lots * per_lot["loss"], naked=(),
        units=np.array([1.0, -1.0]), lots=(lots, lots))
    proposal = SimpleNamespace(symbol=symbol, legs=(SimpleNamespace(expiry=expiry),))
    equity = policy.capital if portfolio.equity is None else portfolio.equity
    return SimpleNamespace(policy=policy, position=position, portfolio=portfolio,
                           proposal=proposal, size_multiplier=1.0, equity=equity)


WALLS = (PolicyLimits(), MarginWall(), CorrelationWall(), TailHedgeWall())
WALL_OF = {"open_positions": "policy", "max_loss_per_trade": "policy",
           "position_pct": "policy", "symbol_exposure": "policy",
           "correlated_exposure": "correlation", "expiry_concentration": "correlation",
           "margin": "margin", "margin_utilisation": "margin", "tail_loss": "tail_hedge"}


def test_never_exceeds_what_the_walls_allow_and_is_maximal() -> None:
    rng = np.random.default_rng(20240725)
    symbols = ("NIFTY", "BANKNIFTY", "FINNIFTY")
    checked = binding_walls = 0
    for _ in range(400):
        cap = float(rng.integers(2, 50)) * 100_000.0
        policy = TenantPolicy(
            capital=cap, max_position_pct=float(rng.uniform(0.05, 1.0)),
            max_open_positions=int(rng.integers(1, 8)),
            max_symbol_exposure_pct=float(rng.uniform(0.1, 1.0)),
            max_loss_per_trade_pct=float(rng.uniform(0.005, 0.05)),
            margin_buffer=float(rng.uniform(0.0, 0.6)),
            max_margin_utilisation=float(rng.uniform(0.3, 1.0)),
            max_correlated_exposure_pct=float(rng.uniform(0.2, 1.5)),
            max_expiry_concentration_pct=float(rng.uniform(0.1, 1.0)),
            max_tail_loss_pct=float(rng.uniform(0.01, 0.2)))
        n_pos = int(rng.integers(0, 6))
        positions = tuple(
            Position(position_id=f"p{i}", symbol=str(rng.choice(symbols)),
                     margin=float(rng.integers(0, 30)) * cap / 100,
                     expiry=E1 if rng.random() < 0.5 else E2) for i in range(n_pos))
        equity = None if rng.random() < 0.5 else cap * float(rng.uniform(0.5, 1.3))
        book = Portfolio(positions=positions, equity=equity)
        per_lot = dict(margin=float(rng.integers(0, 80_000)),
                       premium=float(rng.integers(0, 20_000)) if rng.random() < 0.5 else 0.0,
                       loss=float(rng.integers(500, 40_000)),
                       tail=float(rng.integers(500, 60_000)),
                       risk=float(rng.integers(1, 3_000)))
        d = size_position(
            per_lot_max_loss=per_lot["loss"], per_lot_margin=per_lot["margin"],
            per_lot_daily_risk=per_lot["risk"], per_lot_premium_paid=per_lot["premium"],
            per_lot_tail_loss=per_lot["tail"], confidence=float(rng.uniform(0, 1)),
            policy=policy, appetite=RiskAppetite(trade_share=float(rng.uniform(0.1, 1.0))),
            portfolio=book, symbol="NIFTY", expiry=E1)
        assert isinstance(d.lots, int) and d.lots >= 0
        assert all(c.lots is None or d.lots <= c.lots for c in d.constraints)
        if d.lots > 0:
            ctx = _walls_ctx(d.lots, per_lot=per_lot, policy=policy, portfolio=book,
                             symbol="NIFTY", expiry=E1)
            for wall in WALLS:
                v = wall.check(ctx)  # type: ignore[arg-type]
                assert not v.blocked, (d.reason, v.reason)
            checked += 1
        if d.binding in WALL_OF and d.binding != "open_positions":
            # one more lot is exactly what that wall would block
            ctx = _walls_ctx(d.lots + 1, per_lot=per_lot, policy=policy, portfolio=book,
                             symbol="NIFTY", expiry=E1)
            wall = next(w for w in WALLS if w.name == WALL_OF[d.binding])
            assert wall.check(ctx).blocked, d.reason  # type: ignore[arg-type]
            binding_walls += 1
    assert checked > 50 and binding_walls > 50


def test_boundary_rounding_never_overshoots() -> None:
    # 0.3 / 0.1 = 2.9999999999999996 but 3 * 0.1 = 0.30000000000000004 > 0.3
    pol = TenantPolicy(capital=10.0, max_loss_per_trade_pct=0.03)
    d = size(policy=pol, per_lot_max_loss=0.1, per_lot_margin=0.0, per_lot_daily_risk=0.0)
    assert d.lots * 0.1 <= pol.max_loss_per_trade_pct * pol.capital
    assert d.lots == 2


# --- inputs, lot size, determinism, speed ------------------------------------------------


@pytest.mark.parametrize("kw", [
    dict(per_lot_max_loss=0.0), dict(per_lot_max_loss=math.nan), dict(per_lot_margin=-1.0),
    dict(per_lot_daily_risk=math.inf), dict(per_lot_premium_paid=-1.0),
    dict(confidence=1.1), dict(confidence=-0.1), dict(confidence=math.nan),
    dict(per_lot_tail_loss=-1.0), dict(lot_size=0), dict(lot_size=75.0),
    dict(max_lots=-1), dict(max_lots=True),
])
def test_input_validation(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        size(**kw)


def test_dated_lot_size_follows_the_calendar() -> None:
    assert dated_lot_size("NIFTY", date(2021, 6, 24)) == 75
    assert dated_lot_size("NIFTY", date(2024, 7, 25)) == 25
    d = size(lot_size=dated_lot_size("NIFTY", E1), per_lot_max_loss=6_000.0)
    assert (d.lots, d.units) == (3, 75)
    assert size().units is None


def test_decision_is_frozen_and_deterministic() -> None:
    a, b = size(per_lot_daily_risk=400.0), size(per_lot_daily_risk=400.0)
    assert a == b
    with pytest.raises(FrozenInstanceError):
        a.lots = 9  # type: ignore[misc]


def test_sizing_is_fast() -> None:
    book = Portfolio(positions=tuple(pos(s, 50_000.0, E1, i)
                                     for i, s in enumerate(("NIFTY", "BANKNIFTY", "FINNIFTY"))))
    kw = dict(per_lot_max_loss=6_000.0, per_lot_margin=20_000.0, per_lot_daily_risk=100.0,
              per_lot_tail_loss=9_000.0, expiry=E1, lot_size=25, portfolio=book)
    for _ in range(200):
        size(**kw)
    n = 2_000
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            size(**kw)
        best = min(best, (time.perf_counter() - t0) / n)
    print(f"size_position: {best * 1e6:.1f} us per call")
    assert best < 200e-6
