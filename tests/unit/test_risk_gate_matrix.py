"""Every gate of the castle, blocking and passing: one case per switch and wall.

For each of the nineteen gates (twelve kill switches, seven walls) a case builds

* a context that the gate blocks, both through its own ``check(ctx)`` and through the
  default castle, where ``blocked_by`` names the gate (so every gate before it passed);
* a context that the gate passes (``check(ctx).blocked is False``), where the castle
  does not block at this gate or any earlier one. Where there is a limit, the passing
  context sits on or just inside it (a near miss), so the comparison's direction is shown.

The cases must cover exactly ``RiskCastle.default(...).gate_names``: a new gate without a
case fails :func:`test_the_matrix_covers_every_gate_of_the_castle`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pytest

from shared.domain.risk import (
    CorrelationMatrix,
    ModelFreshness,
    NewsItem,
    NewsState,
    Portfolio,
    Position,
    RiskCastle,
    RiskContext,
    SwitchStates,
    TenantPolicy,
    TrippedSwitch,
    default_switches,
    default_walls,
)
from shared.domain.risk.synthetic import (
    EXPIRIES,
    NOW,
    TENANT,
    FlatCostModel,
    context,
    iron_condor,
    later,
    short_strangle,
    synthetic_market,
)

OPS = "ops@desk.example"  # an operator: data never resets an operator's row
OTHER_TENANT = uuid.UUID("99999999-9999-4999-8999-999999999999")

MARKET = synthetic_market(np.random.default_rng(1234))
COSTS = FlatCostModel()
GATES = {g.name: g for g in (*default_switches(force_paper=False), *default_walls(COSTS))}


def castle() -> RiskCastle:
    return RiskCastle.default(COSTS, force_paper=False)


def base() -> RiskContext:
    """A 1-lot NIFTY iron condor, edge ₹2,000, capital ₹10 lakh, empty book, market open:
    the default castle approves it (FlatCostModel costs about ₹229)."""
    return context(iron_condor(MARKET, edge=2_000.0), MARKET)


# ------------------------------------------------------------------------------ builders


def operator_row(switch: str, scope: str, key: str | None, **kw) -> SwitchStates:
    row = TrippedSwitch(switch, scope, key, reason="operator halt", actor=OPS,
                        at=NOW - timedelta(minutes=5), **kw)
    return SwitchStates((row,))


def with_rows(switch: str, scope: str, key: str | None, **kw) -> Callable[[RiskContext],
                                                                           RiskContext]:
    return lambda c: replace(c, switches=operator_row(switch, scope, key, **kw))


def model(hours_ago: float) -> tuple[ModelFreshness, ...]:
    return (ModelFreshness("regime", NOW - timedelta(hours=hours_ago), timedelta(hours=24)),)


def losing_today(realised: float, mtm: float) -> Portfolio:
    return Portfolio(positions=(Position("p1", "NIFTY", 50_000.0, mtm_pnl=mtm),),
                     realized_pnl_today=realised)


def strategy_loss(strategy: str, loss: float) -> Portfolio:
    # the day's total includes the strategy's loss, and stays under the daily limit (₹30,000)
    return Portfolio(realized_pnl_today=-loss,
                     realized_pnl_today_by_strategy={strategy: -loss})


def margin_used(margin: float) -> Portfolio:
    return Portfolio(positions=(Position("p1", "BANKNIFTY", margin),))


def cluster(rho: float, nifty: float = 250_000.0, banknifty: float = 200_000.0) -> Portfolio:
    corr = CorrelationMatrix(("NIFTY", "BANKNIFTY"), np.array([[1.0, rho], [rho, 1.0]]))
    return Portfolio(positions=(Position("a", "NIFTY", nifty), Position("b", "BANKNIFTY", banknifty)),
                     correlation=corr)


def news(minutes_away: int, action: str = "blackout") -> NewsState:
    return NewsState((NewsItem("e1", "RBI policy", NOW + timedelta(minutes=minutes_away), 30,
                               action, ("NIFTY",)),))


def open_positions(n: int) -> Portfolio:
    return Portfolio(positions=tuple(Position(f"p{i}", "BANKNIFTY", 10_000.0) for i in range(n)))


def nifty_on(expiry) -> Portfolio:
    # ₹3.5 lakh on NIFTY: with the condor (~₹72,700) 0.42 of capital on one expiry (> 0.40)
    return Portfolio(positions=(Position("p1", "NIFTY", 350_000.0, expiry=expiry),),
                     correlation=CorrelationMatrix(("NIFTY",), np.array([[1.0]])))


LOOSE = TenantPolicy(capital=1_000_000, max_loss_per_trade_pct=0.5)  # lets a strangle reach wall 7


@dataclass(frozen=True)
class Case:
    name: str
    block: Callable[[RiskContext], RiskContext]
    code: str  # the blocking verdict's reason_code
    passes: Callable[[RiskContext], RiskContext]


CASES = (
    # ---- kill switches, in castle order
    Case("master", with_rows("master", "global", None), "master_tripped",
         with_rows("master", "global", None, tenant_id=OTHER_TENANT)),
    Case("exchange", with_rows("exchange", "exchange", "NSE"), "exchange_tripped",
         with_rows("exchange", "exchange", "BSE")),
    Case("source", with_rows("source", "source", "simulator"), "source_tripped",
         with_rows("source", "source", "upstox")),
    Case("symbol", with_rows("symbol", "symbol", "NIFTY"), "symbol_tripped",
         with_rows("symbol", "symbol", "BANKNIFTY")),
    # snapshot age > 60 s in market hours; exactly 60 s is still fresh
    Case("stale_data", lambda c: later(c, 61), "stale_data", lambda c: later(c, 60)),
    # trained 49 h ago on a 24 h cadence: > 2 x 24 = 48 h; exactly 48 h passes
    Case("model_staleness", lambda c: replace(c, models=model(49)), "model_staleness",
         lambda c: replace(c, models=model(48))),
    # a live order from a tenant in the paper-only lock (castle built with force_paper=False)
    Case("dry_run_lock", lambda c: replace(c, dry_run=True, live_order=True), "dry_run_lock",
         lambda c: replace(c, dry_run=True, live_order=False)),
    # equity < 0.80 x ₹10,00,000 = ₹8,00,000; exactly at the floor passes
    Case("capital_floor", lambda c: replace(c, portfolio=Portfolio(equity=790_000.0)),
         "capital_floor", lambda c: replace(c, portfolio=Portfolio(equity=800_000.0))),
    # realised -₹20,000 + MTM -₹10,000 reaches 0.03 x capital = ₹30,000
    Case("daily_loss", lambda c: replace(c, portfolio=losing_today(-20_000.0, -10_000.0)),
         "daily_loss", lambda c: replace(c, portfolio=losing_today(-20_000.0, -9_999.0))),
    # the proposal's strategy lost 0.015 x capital = ₹15,000 today; another one's loss passes
    Case("strategy", lambda c: replace(c, strategy="condor_weekly",
                                       portfolio=strategy_loss("condor_weekly", 15_000.0)),
         "strategy", lambda c: replace(c, strategy="condor_weekly",
                                       portfolio=strategy_loss("momentum", 20_000.0))),
    # used margin / equity > 0.80; exactly 0.80 passes
    Case("margin_utilisation", lambda c: replace(c, portfolio=margin_used(810_000.0)),
         "margin_utilisation", lambda c: replace(c, portfolio=margin_used(800_000.0))),
    # NIFTY + BANKNIFTY, rho 0.85 > 0.7, hold ₹4.5 lakh > 0.40 x capital; ₹4 lakh passes
    Case("correlation_cluster", lambda c: replace(c, portfolio=cluster(0.85)),
         "correlation_cluster",
         lambda c: replace(c, portfolio=cluster(0.85, banknifty=150_000.0))),
    # ---- walls, in castle order
    Case("regime", lambda c: replace(c, regime="trending_up"), "regime_structure",
         lambda c: replace(c, regime="range")),
    # a NIFTY blackout 10 min away with a +-30 min window; 31 min away is outside it
    Case("news", lambda c: replace(c, news=news(10)), "news_blackout",
         lambda c: replace(c, news=news(31))),
    # five open positions + the new one > 5; four pass
    Case("policy", lambda c: replace(c, portfolio=open_positions(5)),
         "policy_concurrent_positions", lambda c: replace(c, portfolio=open_positions(4))),
    # ₹7.5 lakh used + the condor's margin > 0.80 of equity (the switch alone sees 0.75)
    Case("margin", lambda c: replace(c, portfolio=margin_used(750_000.0)), "margin_utilisation",
         lambda c: replace(c, portfolio=margin_used(500_000.0))),
    # same underlying, same expiry: 0.42 of capital > 0.40; on the other expiry it passes
    Case("correlation", lambda c: replace(c, portfolio=nifty_on(EXPIRIES[0])),
         "expiry_concentration", lambda c: replace(c, portfolio=nifty_on(EXPIRIES[1]))),
    # edge ₹500 against ~₹229 of flat costs: cost_ratio ~0.46 > 0.40 (net_ev still > 0)
    Case("cost", lambda c: replace(c, proposal=iron_condor(MARKET, edge=500.0)), "cost_ratio",
         lambda c: c),
    # a short strangle sells calls and puts without wings; the condor buys them
    Case("tail_hedge",
         lambda c: replace(c, proposal=short_strangle(MARKET, edge=3_000.0), policy=LOOSE),
         "naked_short", lambda c: replace(c, policy=LOOSE)),
)


def test_the_matrix_covers_every_gate_of_the_castle():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) == 19
    assert set(names) == set(castle().gate_names) == set(GATES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_gate_blocks_and_passes(case: Case):
    gate = GATES[case.name]
    order = castle().gate_names
    here = order.index(case.name)

    blocking = case.block(base())
    own = gate.check(blocking)
    assert own.blocked, own.reason
    assert own.wall == case.name and own.reason_code == case.code
    v = castle().evaluate(blocking)
    assert not v.approved and v.blocked_by == case.name, v.explain()
    assert v.reason_code == case.code
    assert tuple(x.wall for x in v.verdicts) == order[:here + 1]
    assert not any(x.blocked for x in v.verdicts[:-1])

    passing = case.passes(base())
    ok = gate.check(passing)
    assert ok.blocked is False, ok.reason
    # the castle lets it through this gate (a later one may still block, none here does)
    after = castle().evaluate(passing)
    assert after.blocked_by is None or order.index(after.blocked_by) > here, after.explain()


def test_the_base_context_is_approved_by_every_gate():
    v = castle().evaluate(base())
    assert v.approved, v.explain()
    assert v.trips == () and v.resets == ()
    assert base().tenant_id == TENANT and not v.live
