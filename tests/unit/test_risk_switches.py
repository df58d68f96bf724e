"""The twelve kill switches: each trips (from data or an operator row) and passes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pytest

from shared.contracts import KillSwitchTrippedV1
from shared.domain.calendar import IST
from shared.domain.risk import (
    CapitalFloorSwitch,
    CorrelationClusterSwitch,
    CorrelationMatrix,
    DailyLossSwitch,
    DryRunLock,
    ExchangeSwitch,
    MarginUtilisationSwitch,
    MasterKill,
    ModelFreshness,
    ModelStalenessSwitch,
    Portfolio,
    Position,
    Scope,
    SourceSwitch,
    StaleDataSwitch,
    StrategySwitch,
    SwitchStates,
    SymbolSwitch,
    TrippedSwitch,
    default_switches,
)
from shared.domain.risk.switches import FORCED_PAPER
from shared.domain.risk.synthetic import NOW, TENANT, context, iron_condor, later, synthetic_market

OTHER_TENANT = uuid.UUID("99999999-9999-4999-8999-999999999999")


@pytest.fixture(scope="module")
def market():
    return synthetic_market(np.random.default_rng(1234))


@pytest.fixture(scope="module")
def ctx(market):
    return context(iron_condor(market, edge=2_000.0), market)


def rows(*tripped: TrippedSwitch) -> SwitchStates:
    return SwitchStates(tripped)


def book(*positions: Position, **kw) -> Portfolio:
    return Portfolio(positions=positions, **kw)


def test_there_are_twelve_switches_with_unique_names():
    names = [s.name for s in default_switches()]
    assert len(names) == 12 == len(set(names))
    assert names[0] == "master"


# ------------------------------------------------------------------------ operator switches


@pytest.mark.parametrize(("switch", "scope", "hit", "miss"), [
    (MasterKill(), Scope.GLOBAL, None, None),
    (ExchangeSwitch(), Scope.EXCHANGE, "nse", "BSE"),
    (SourceSwitch(), Scope.SOURCE, "simulator", "upstox"),
    (SymbolSwitch(), Scope.SYMBOL, "NIFTY", "BANKNIFTY"),
])
def test_operator_switches_block_on_a_matching_row_and_pass_otherwise(ctx, switch, scope, hit,
                                                                      miss):
    assert not switch.check(ctx).blocked
    row = TrippedSwitch(switch.name, str(scope), hit, reason="exchange outage", actor="ops@qs",
                        at=NOW - timedelta(minutes=5))
    v = switch.check(replace(ctx, switches=rows(row)))
    assert v.blocked and v.reason_code == f"{switch.name}_tripped"
    assert "by ops@qs" in v.reason and "exchange outage" in v.reason
    if miss is not None:
        other = replace(row, scope_key=miss)
        assert not switch.check(replace(ctx, switches=rows(other))).blocked
    assert switch.detect(ctx) == ()  # operator-only: data never trips them


def test_a_row_for_another_tenant_does_not_apply(ctx):
    row = TrippedSwitch("master", "global", tenant_id=OTHER_TENANT)
    assert not MasterKill().check(replace(ctx, switches=rows(row))).blocked
    mine = replace(row, tenant_id=TENANT)
    assert MasterKill().check(replace(ctx, switches=rows(mine))).blocked


def test_a_row_with_an_unknown_scope_fails_closed(ctx):
    row = TrippedSwitch("symbol", "galaxy", "andromeda")
    assert SymbolSwitch().check(replace(ctx, switches=rows(row))).blocked


def test_a_row_of_another_switch_does_not_apply(ctx):
    row = TrippedSwitch("symbol", "global")
    assert not MasterKill().check(replace(ctx, switches=rows(row))).blocked


def test_persisted_rows_round_trip_through_the_contract(ctx):
    event = KillSwitchTrippedV1(switch="symbol", scope="symbol", scope_key="NIFTY",
                                reason="circuit", actor="ops", at=NOW)
    row = TrippedSwitch.from_event(event)
    assert SymbolSwitch().check(replace(ctx, switches=rows(row))).blocked


# ------------------------------------------------------------------------ stale data


def test_stale_data_trips_in_market_hours(ctx):
    stale = later(ctx, 61)
    v = StaleDataSwitch().check(stale)
    assert v.blocked and v.reason_code == "stale_data"
    assert v.reason.startswith("snapshot_age 61s > 60s in market hours (NIFTY as of")
    (trip,) = StaleDataSwitch().detect(stale)
    assert (trip.switch, trip.scope, trip.scope_key) == ("stale_data", "symbol", "NIFTY")
    assert trip.numbers["age_s"] == 61.0


def test_stale_data_passes_a_fresh_snapshot_or_a_closed_market(ctx):
    assert not StaleDataSwitch().check(later(ctx, 30)).blocked
    closed = replace(later(ctx, 3_600), market_open=False)
    v = StaleDataSwitch().check(closed)
    assert not v.blocked and v.reason_code == "stale_data_market_closed"


def test_a_persisted_trip_is_not_reported_again(ctx):
    stale = later(ctx, 61)
    row = TrippedSwitch("stale_data", "symbol", "NIFTY", reason="old")
    persisted = replace(stale, switches=rows(row))
    assert StaleDataSwitch().detect(persisted) == ()
    v = StaleDataSwitch().check(persisted)
    assert v.blocked and v.reason_code == "stale_data_tripped"


# ------------------------------------------------------------------------ model staleness


def model(hours_ago: float | None, cadence_h: float = 24, name: str = "regime"):
    at = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return ModelFreshness(name, at, timedelta(hours=cadence_h))


def test_model_staleness_trips_over_twice_the_cadence(ctx):
    stale = replace(ctx, models=(model(10, name="alpha"), model(49)))
    v = ModelStalenessSwitch().check(stale)
    assert v.blocked and v.reason == "model_age regime 49.0h > 2 x cadence = 48.0h"
    (trip,) = ModelStalenessSwitch().detect(stale)
    assert (trip.scope, trip.scope_key) == ("model", "regime")


def test_model_staleness_passes_within_twice_the_cadence(ctx):
    v = ModelStalenessSwitch().check(replace(ctx, models=(model(47), model(1, 1, "vol"))))
    assert not v.blocked and v.reason_code == "model_staleness_ok"


def test_a_never_trained_model_is_stale(ctx):
    v = ModelStalenessSwitch().check(replace(ctx, models=(model(None),)))
    assert v.blocked and "never trained" in v.reason


def test_a_model_row_applies_only_to_proposals_using_that_model(ctx):
    row = TrippedSwitch("model_staleness", "model", "regime", reason="retrain failing",
                        actor="ops@desk.example")
    assert ModelStalenessSwitch().check(replace(ctx, models=(model(1),),
                                                switches=rows(row))).blocked
    assert not ModelStalenessSwitch().check(replace(ctx, models=(model(1, name="vol"),),
                                                    switches=rows(row))).blocked


# ------------------------------------------------------------------------ dry-run lock


def test_dry_run_lock_blocks_a_live_order_from_a_locked_tenant(ctx):
    until = datetime(2026, 11, 30, 9, 0, tzinfo=NOW.tzinfo)
    locked = replace(ctx, dry_run=True, live_order=True, dry_run_until=until)
    v = DryRunLock().check(locked)
    assert v.blocked and v.reason_code == "dry_run_lock"
    assert "paper-only until 2026-11-30T09:00" in v.reason
    assert DryRunLock().detect(locked) == ()  # the database owns the lock


def test_dry_run_lock_passes_paper_orders_and_unlocked_tenants(ctx):
    assert not DryRunLock().check(replace(ctx, dry_run=True, live_order=False)).blocked
    assert not DryRunLock().check(replace(ctx, dry_run=False, live_order=True)).blocked


def test_dry_run_lock_can_force_paper_instead(ctx):
    v = DryRunLock(force_paper=True).check(replace(ctx, dry_run=True, live_order=True))
    assert not v.blocked and v.reason_code == FORCED_PAPER


# ------------------------------------------------------------------------ capital floor


def test_capital_floor_trips_below_the_floor(ctx):
    low = replace(ctx, portfolio=book(equity=790_000.0))
    v = CapitalFloorSwitch().check(low)
    assert v.blocked and v.reason.startswith("equity ₹790,000 < capital_floor ₹800,000")
    (trip,) = CapitalFloorSwitch().detect(low)
    assert (trip.scope, trip.scope_key, trip.tenant_id) == ("tenant", str(TENANT), TENANT)


def test_capital_floor_passes_above_the_floor(ctx):
    assert not CapitalFloorSwitch().check(replace(ctx, portfolio=book(equity=810_000.0))).blocked


# ------------------------------------------------------------------------ daily loss


def test_daily_loss_trips_at_the_limit(ctx):
    losing = book(Position("p1", "NIFTY", 50_000.0, mtm_pnl=-10_000.0), realized_pnl_today=-20_000.0)
    v = DailyLossSwitch().check(replace(ctx, portfolio=losing))
    assert v.blocked and v.reason.startswith("daily_loss ₹30,000 >= ₹30,000 (0.03 of capital")
    assert v.numbers["pnl_today"] == -30_000.0


def test_daily_loss_passes_below_the_limit(ctx):
    fine = book(Position("p1", "NIFTY", 50_000.0, mtm_pnl=-9_000.0), realized_pnl_today=-20_000.0)
    assert not DailyLossSwitch().check(replace(ctx, portfolio=fine)).blocked


# ------------------------------------------------------------------------ strategy


def test_strategy_switch_trips_on_the_strategys_loss(market):
    p = iron_condor(market, explanation={"strategy": "condor_weekly"})
    losing = book(Position("p1", "NIFTY", 50_000.0, mtm_pnl=-6_000.0, strategy="condor_weekly"),
                  realized_pnl_today_by_strategy={"condor_weekly": -9_000.0})
    c = context(p, market, portfolio=losing)
    v = StrategySwitch().check(c)
    assert v.blocked and v.reason.startswith("strategy_loss condor_weekly ₹15,000 >= ₹15,000")
    (trip,) = StrategySwitch().detect(c)
    assert (trip.scope, trip.scope_key, trip.tenant_id) == ("strategy", "condor_weekly", TENANT)


def test_strategy_switch_passes_when_another_strategy_loses(market):
    p = iron_condor(market, explanation={"strategy": "condor_weekly"})
    other = book(realized_pnl_today_by_strategy={"momentum": -50_000.0})
    assert not StrategySwitch().check(context(p, market, portfolio=other)).blocked


def test_strategy_row_matches_the_strategy_name(market):
    p = iron_condor(market, explanation={"strategy": "condor_weekly"})
    row = TrippedSwitch("strategy", "strategy", "condor_weekly", reason="operator")
    assert StrategySwitch().check(context(p, market, switches=rows(row))).blocked
    assert not StrategySwitch().check(context(p, market, strategy="other",
                                              switches=rows(row))).blocked


# ------------------------------------------------------------------------ margin utilisation


def test_margin_utilisation_trips_over_80_percent(ctx):
    v = MarginUtilisationSwitch().check(replace(ctx, portfolio=book(
        Position("p1", "NIFTY", 810_000.0))))
    assert v.blocked and v.reason.startswith("margin_utilisation 0.81 > 0.80")


def test_margin_utilisation_passes_under_80_percent(ctx):
    assert not MarginUtilisationSwitch().check(replace(ctx, portfolio=book(
        Position("p1", "NIFTY", 790_000.0)))).blocked


# ------------------------------------------------------------------------ correlation cluster


def cluster_book(rho: float) -> Portfolio:
    corr = CorrelationMatrix(("NIFTY", "BANKNIFTY"), np.array([[1.0, rho], [rho, 1.0]]))
    return book(Position("a", "NIFTY", 250_000.0), Position("b", "BANKNIFTY", 200_000.0),
                correlation=corr)


def test_correlation_cluster_trips_over_0_7(ctx):
    c = replace(ctx, portfolio=cluster_book(0.85))
    v = CorrelationClusterSwitch().check(c)
    assert v.blocked and v.reason == ("correlation cluster BANKNIFTY+NIFTY (rho > 0.70) holds "
                                      "₹450,000 > ₹400,000")
    assert v.numbers["max_rho"] == 0.85
    (trip,) = CorrelationClusterSwitch().detect(c)
    assert trip.scope == "tenant"


def test_correlation_cluster_passes_under_0_7_or_for_one_symbol(ctx):
    assert not CorrelationClusterSwitch().check(replace(ctx, portfolio=cluster_book(0.5))).blocked
    one = book(Position("a", "NIFTY", 250_000.0), Position("b", "NIFTY", 200_000.0))
    assert not CorrelationClusterSwitch().check(replace(ctx, portfolio=one)).blocked


# ------------------------------------------------------------------------ trips as events


def test_a_trip_becomes_a_killswitch_event(ctx):
    (trip,) = StaleDataSwitch().detect(later(ctx, 120))
    event = trip.to_event(NOW)
    assert isinstance(event, KillSwitchTrippedV1)
    assert (event.switch, event.scope, event.scope_key, event.actor) == (
        "stale_data", "symbol", "NIFTY", "auto")
    assert event.reason == trip.reason


# ------------------------------------------------------------------------ reset policy


def test_fresh_data_resets_an_automatic_stale_data_trip(ctx):
    row = TrippedSwitch("stale_data", "symbol", "NIFTY", reason="old", actor="auto",
                        at=NOW - timedelta(minutes=5))
    evaluation = StaleDataSwitch().evaluate(replace(later(ctx, 10), switches=rows(row)))
    assert not evaluation.verdict.blocked and evaluation.trips == ()
    (reset,) = evaluation.resets
    assert (reset.switch, reset.scope, reset.scope_key, reset.tenant_id) == \
        ("stale_data", "symbol", "NIFTY", None)
    assert reset.reason.startswith("cleared: snapshot_age 10s <= 60s")
    event = reset.to_event(NOW)
    assert event.topic == "killswitch.reset" and event.actor == "auto"


def test_still_stale_data_keeps_the_trip_and_reports_nothing_new(ctx):
    row = TrippedSwitch("stale_data", "symbol", "NIFTY", reason="old", actor="auto")
    evaluation = StaleDataSwitch().evaluate(replace(later(ctx, 90), switches=rows(row)))
    assert evaluation.verdict.blocked and evaluation.verdict.reason_code == "stale_data_tripped"
    assert evaluation.trips == () and evaluation.resets == ()


def test_data_never_resets_an_operators_trip(ctx):
    row = TrippedSwitch("stale_data", "symbol", "NIFTY", reason="feed is wrong",
                        actor="ops@desk.example")
    evaluation = StaleDataSwitch().evaluate(replace(later(ctx, 10), switches=rows(row)))
    assert evaluation.verdict.blocked and evaluation.resets == ()


def test_the_capital_floor_waits_for_an_operator_even_when_equity_recovers(ctx):
    row = TrippedSwitch("capital_floor", "tenant", str(TENANT), reason="low", actor="auto",
                        tenant_id=TENANT)
    evaluation = CapitalFloorSwitch().evaluate(replace(ctx, switches=rows(row)))
    assert evaluation.verdict.blocked and evaluation.resets == ()


def test_a_daily_loss_trip_resets_in_the_next_ist_session(ctx):
    # tripped at 15:00 IST the day before; today the book has lost nothing
    yesterday = NOW.astimezone(IST).replace(hour=15, minute=0) - timedelta(days=1)
    row = TrippedSwitch("daily_loss", "tenant", str(TENANT), reason="lost", actor="auto",
                        at=yesterday, tenant_id=TENANT)
    next_day = DailyLossSwitch().evaluate(replace(ctx, switches=rows(row)))
    assert not next_day.verdict.blocked
    (reset,) = next_day.resets
    assert reset.reason.startswith("new session ")
    same_day = replace(row, at=NOW - timedelta(minutes=1))
    evaluation = DailyLossSwitch().evaluate(replace(ctx, switches=rows(same_day)))
    assert evaluation.verdict.blocked and evaluation.resets == ()


def test_a_new_session_does_not_reset_a_loss_the_data_still_shows(ctx):
    row = TrippedSwitch("daily_loss", "tenant", str(TENANT), reason="lost", actor="auto",
                        at=NOW - timedelta(days=1), tenant_id=TENANT)
    losing = book(Position("p", "NIFTY", 10_000.0, mtm_pnl=-50_000.0))
    evaluation = DailyLossSwitch().evaluate(replace(ctx, switches=rows(row), portfolio=losing))
    assert evaluation.verdict.blocked and evaluation.resets == () and evaluation.trips == ()


def test_the_castle_reports_resets_with_an_approved_verdict(ctx):
    from shared.domain.risk import RiskCastle
    from shared.domain.risk.synthetic import FlatCostModel

    row = TrippedSwitch("margin_utilisation", "tenant", str(TENANT), reason="high",
                        actor="auto", tenant_id=TENANT)
    verdict = RiskCastle.default(FlatCostModel()).evaluate(replace(ctx, switches=rows(row)))
    assert verdict.approved, verdict.explain()
    assert [r.switch for r in verdict.resets] == ["margin_utilisation"]
    assert verdict.reset_events(NOW)[0].scope_key == str(TENANT)


def test_a_symbol_key_in_another_case_is_the_same_trip(ctx):
    row = TrippedSwitch("stale_data", "symbol", "nifty", reason="old", actor="auto")
    stale = StaleDataSwitch().evaluate(replace(later(ctx, 90), switches=rows(row)))
    assert stale.verdict.blocked and stale.trips == () and stale.resets == ()
    fresh = StaleDataSwitch().evaluate(replace(later(ctx, 5), switches=rows(row)))
    assert not fresh.verdict.blocked and [r.scope_key for r in fresh.resets] == ["nifty"]


def test_daily_limits_count_the_open_pnl_made_today_not_since_entry(ctx):
    carried = Position("old", "NIFTY", 10_000.0, mtm_pnl=-50_000.0, strategy="condor",
                       mtm_pnl_today=-1_000.0)  # lost 49k before today, 1k today
    fresh = Position("new", "NIFTY", 10_000.0, mtm_pnl=-2_000.0, strategy="condor")
    b = book(carried, fresh, equity=1_000_000 - 52_000)
    assert (b.mtm_pnl, b.mtm_pnl_today) == (-52_000.0, -3_000.0)
    assert b.mtm_today_by_strategy["condor"] == -3_000.0
    c = replace(ctx, portfolio=b)
    assert DailyLossSwitch().check(c).numbers["pnl_today"] == -3_000.0
    assert not DailyLossSwitch().check(c).blocked  # 3k < 3 % of 1M
    today = replace(ctx, portfolio=book(replace(carried, mtm_pnl_today=-31_000.0)))
    assert DailyLossSwitch().check(today).blocked


def test_a_model_flagged_by_its_health_check_trips_the_staleness_switch(ctx):
    fresh = ModelFreshness("vol_har_5d", NOW - timedelta(hours=1), timedelta(days=3))
    assert not ModelStalenessSwitch().check(replace(ctx, models=(fresh,))).blocked
    flagged = replace(fresh, flags=("drifted: 2 of 10 features (gk_vol_1d, range_1d)",))
    v = ModelStalenessSwitch().check(replace(ctx, models=(flagged,)))
    assert v.blocked and "flagged by its health check: drifted" in v.reason
    (trip,) = ModelStalenessSwitch().detect(replace(ctx, models=(flagged,)))
    assert trip.scope_key == "vol_har_5d"
