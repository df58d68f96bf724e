"""Event-impact model (``shared/domain/models/event_impact.py``) and the event calendar
(``shared/data/events.csv``).

Synthetic data come from ``np.random.default_rng(1234)`` (the ``rng`` fixture); run with
``-W error``. The NIFTY checks use the kit fixture
``nifty50_daily_2000-2019_yahoo_VatsalSin.csv`` (skipped when absent) and assert what the
data show, with the numbers in the comments.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from shared.datafiles import parse_csv
from shared.domain.models.event_impact import (
    ACTIONS,
    NON_EVENT,
    POSITION_SCALE,
    ActionThresholds,
    EventImpactModel,
    EventMoves,
    ScheduledEvent,
    evaluate_by_year,
    event_moves,
    roc_auc,
)
from shared.rules import EventRow

ROOT = Path(__file__).resolve().parents[2]
EVENTS_CSV = ROOT / "shared" / "data" / "events.csv"
NIFTY_DAILY = (ROOT.parent / "shared" / "fixtures" / "index_history"
               / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv")
GAUSS_ABS = math.sqrt(2.0 / math.pi)  # E|z| for z ~ N(0, 1)
SQRT_DAYS = math.sqrt(252.0)


# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


def business_days(n: int, start: str = "2001-01-01") -> np.ndarray:
    """``n`` weekday dates from ``start`` (a Monday)."""
    days = np.arange(np.datetime64(start), np.datetime64(start) + 2 * n, dtype="datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    return days[weekday < 5][:n]


def bars_from_returns(r: np.ndarray, rng: np.random.Generator, dates: np.ndarray):
    """OHLC bars whose closes follow ``r`` (log returns), with a consistent intraday range."""
    close = 1000.0 * np.exp(np.cumsum(r))
    prev = np.concatenate(([1000.0], close[:-1]))
    open_ = prev
    spread = np.abs(rng.normal(0.0, 0.003, size=r.size))
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    return dates, open_, high, low, close


def planted_market(rng: np.random.Generator, *, n: int = 6000, sigma: float = 0.01):
    """Gaussian returns at daily vol ``sigma`` with events whose return scale is planted.

    ``big`` events move 3x an ordinary day, ``flat`` events 1x (no effect), ``rare`` (five
    of them) 4x. Events sit on distinct sessions at least 16 sessions apart.
    """
    scales = {"big": 3.0, "flat": 1.0, "rare": 4.0}
    counts = {"big": 60, "flat": 300, "rare": 5}
    slots = np.arange(40, n - 1, 16)
    chosen = rng.choice(slots, size=sum(counts.values()), replace=False)
    kinds = np.repeat(list(counts), list(counts.values()))
    scale = np.ones(n)
    for k, kind in zip(chosen, kinds, strict=True):
        scale[k] = scales[kind]
    r = sigma * scale * rng.standard_normal(n)
    dates = business_days(n)
    events = [ScheduledEvent(dates[k], kind) for k, kind in zip(chosen, kinds, strict=True)]
    return bars_from_returns(r, rng, dates), events, scales, sigma


def event_rows(moves: EventMoves, kind: str) -> np.ndarray:
    return moves.event_type == kind


# -------------------------------------------------------------------------------------
# event_moves: reaction sessions and point in time
# -------------------------------------------------------------------------------------


def test_reaction_maps_same_day_and_next_session_to_bar_dates(rng):
    dates = business_days(80, "2001-01-01")  # Mondays to Fridays
    r = 0.01 * rng.standard_normal(dates.size)
    bars = bars_from_returns(r, rng, dates)
    friday = dates[39]  # 2001-02-23 is a Friday
    assert str(friday) == "2001-02-23"
    saturday = friday + np.timedelta64(1, "D")
    monday = dates[40]
    events = [
        ScheduledEvent(str(friday), "a", "same_day"),
        ScheduledEvent(friday, "b", "next_session"),
        ScheduledEvent(saturday, "c", "same_day"),  # closed day: first bar on or after
        ScheduledEvent(saturday, "d", "next_session"),  # e.g. votes counted on a Saturday
        ScheduledEvent(dates[42], "e", "next_session"),  # a Wednesday FOMC -> Thursday
    ]
    mv = event_moves(*bars, events)
    assert list(mv.event_type) == ["a", "b", "c", "d", "e"]
    assert list(mv.session_date) == [friday, monday, monday, monday, dates[43]]
    assert list(mv.session) == [39, 40, 40, 40, 43]
    # Events sharing a reaction session keep their own rows; the session is not a control.
    assert not np.isin(mv.session, mv.control_session).any()
    assert mv.unmatched == ()


def test_unmatched_events_say_why(rng):
    dates = business_days(60)
    bars = bars_from_returns(0.01 * rng.standard_normal(60), rng, dates)
    events = [
        ScheduledEvent(dates[5], "early"),  # fewer than 22 returns before it
        ScheduledEvent(dates[-1], "late", "next_session"),  # no bar after the last one
        ScheduledEvent(dates[-1] + np.timedelta64(30, "D"), "later"),
        ScheduledEvent(dates[30], "ok"),
    ]
    mv = event_moves(*bars, events)
    assert list(mv.event_type) == ["ok"]
    reasons = {u.event.event_type: u.reason for u in mv.unmatched}
    assert "fewer than 22 returns" in reasons["early"]
    assert "no session on or after" in reasons["late"]
    assert "no session on or after" in reasons["later"]
    # A hole in the data is not a reaction session.
    gap_dates = dates.copy()
    gap_dates[40:] += np.timedelta64(20, "D")
    holey = (gap_dates, *bars[1:])
    mv = event_moves(*holey, [ScheduledEvent(dates[40], "hole")], max_gap_days=7)
    assert len(mv) == 0 and "within 7 days" in mv.unmatched[0].reason
    # The first session after the 22-return window is the first one that qualifies.
    mv = event_moves(*bars, [ScheduledEvent(dates[22], "x"), ScheduledEvent(dates[23], "y")])
    assert list(mv.event_type) == ["y"]


def test_pre_event_vol_is_point_in_time(rng):
    dates = business_days(300)
    r = 0.012 * rng.standard_normal(300)
    bars = bars_from_returns(r, rng, dates)
    k = 150
    events = [ScheduledEvent(dates[k], "e")]
    base = event_moves(*bars, events)
    # Expected value: sqrt(252 * mean(r^2)) over the 22 returns before the reaction session.
    closes = bars[4]
    rets = np.diff(np.log(closes[k - 23:k]))
    assert base.pre_vol[0] == pytest.approx(math.sqrt(252 * np.mean(rets ** 2)), rel=1e-12)
    assert base.abs_return[0] == pytest.approx(abs(math.log(closes[k] / closes[k - 1])),
                                               rel=1e-12)
    # Alter everything from the reaction session on: the pre-event vol must not move.
    _, o, h, lo, c = (np.array(a, copy=True) for a in bars)
    shock = np.exp(rng.normal(0.0, 0.2, size=300 - k))
    for a in (o, h, lo, c):
        a[k:] *= shock
    h[k:] *= 1.5
    altered = event_moves(dates, o, h, lo, c, events)
    assert altered.pre_vol[0] == base.pre_vol[0]  # bit for bit
    assert altered.abs_return[0] != base.abs_return[0]
    assert altered.gk_vol[0] != base.gk_vol[0]


def test_moves_are_frozen_and_inputs_are_checked(rng):
    dates = business_days(100)
    bars = bars_from_returns(0.01 * rng.standard_normal(100), rng, dates)
    mv = event_moves(*bars, [ScheduledEvent(dates[50], "e")])
    for arr in (mv.pre_vol, mv.move_ratio, mv.event_type, mv.control_move_ratio):
        with pytest.raises(ValueError):
            arr[0] = arr[0]
    with pytest.raises(FrozenInstanceError):
        mv.window = 5  # type: ignore[misc]
    # Control sessions: every session with a full window that reacts to no event.
    assert mv.control_session.size == 100 - 23 - 1
    assert np.allclose(mv.control_move_ratio,
                       mv.control_abs_return / (mv.control_pre_vol / SQRT_DAYS))
    with pytest.raises(ValueError):
        event_moves(dates[::-1], *bars[1:], [])
    with pytest.raises(ValueError):
        event_moves(dates, bars[1], bars[2], bars[3], -bars[4], [])
    with pytest.raises(ValueError):
        ScheduledEvent("2001-01-02", "x", "tomorrow")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ScheduledEvent("2001-01-02", NON_EVENT)
    with pytest.raises(ValueError):
        ScheduledEvent("not a date", "x")


# -------------------------------------------------------------------------------------
# Fitting on synthetic data
# -------------------------------------------------------------------------------------


def test_planted_type_effects_are_recovered(rng):
    bars, events, scales, sigma = planted_market(rng)
    mv = event_moves(*bars, events)
    assert len(mv) == len(events)
    fit = EventImpactModel(shrinkage="none", fit_vol_elasticity=False).fit(mv)
    # Oracle: given each event's (noisy, event-inflated) pre-event vol, the expected ratio
    # is scale * sigma * sqrt(2/pi) / daily pre-vol. The fitted mean must match it.
    for kind, scale in scales.items():
        sel = event_rows(mv, kind)
        oracle = float(np.mean(scale * sigma * GAUSS_ABS / (mv.pre_vol[sel] / SQRT_DAYS)))
        est = fit.types[kind]
        assert est.n == int(sel.sum())
        assert est.mean_ratio == pytest.approx(oracle, abs=4 * est.se)
        assert est.ratio == est.mean_ratio and est.shrink_weight == 0.0
    # The baseline is the Gaussian sqrt(2/pi), inflated a little by the noise of a
    # 22-return vol estimate (E[1/sigma_hat] > 1/sigma) and deflated by event-inflated
    # windows.
    assert fit.baseline.mean_ratio == pytest.approx(GAUSS_ABS, abs=0.05)
    assert fit.types["big"].ratio > 2.5 * fit.baseline.ratio
    assert fit.types["flat"].ratio == pytest.approx(fit.baseline.ratio, abs=0.08)
    # Expected move = ratio * daily pre-vol.
    v = 0.01 * SQRT_DAYS
    assert fit.expected_move("big", v) == pytest.approx(fit.types["big"].ratio * 0.01)


def test_random_effects_shrinkage_pulls_small_types_harder(rng):
    bars, events, _, _ = planted_market(rng)
    mv = event_moves(*bars, events)
    raw = EventImpactModel(shrinkage="none", fit_vol_elasticity=False).fit(mv)
    fit = EventImpactModel(fit_vol_elasticity=False).fit(mv)
    assert fit.tau2 > 0.0
    w = {k: e.shrink_weight for k, e in fit.types.items()}
    assert 0.0 <= w["flat"] < w["big"] < w["rare"] <= 1.0
    for kind, est in fit.types.items():
        lo, hi = sorted((raw.types[kind].ratio, fit.pooled_ratio))
        assert lo - 1e-12 <= est.ratio <= hi + 1e-12  # between its own mean and the pool
        assert est.ratio_se <= raw.types[kind].se + 1e-12
    # The ranking of the planted effects survives shrinkage.
    assert fit.types["big"].ratio > fit.types["flat"].ratio
    # An unknown type gets the pooled estimate, never below the baseline.
    v = 0.2
    assert fit.expected_ratio("never seen", v) == pytest.approx(
        fit.pooled_ratio * (v / fit.ref_vol) ** fit.vol_elasticity)
    assert fit.pooled_ratio >= fit.baseline.ratio
    assert fit.expected_ratio(NON_EVENT, v) == pytest.approx(fit.baseline.ratio)


def test_equal_types_are_pooled_completely(rng):
    dates = business_days(3000)
    bars = bars_from_returns(0.01 * rng.standard_normal(3000), rng, dates)
    picks = rng.choice(np.arange(30, 3000), size=300, replace=False)
    events = [ScheduledEvent(dates[k], f"t{i % 3}") for i, k in enumerate(picks)]
    fit = EventImpactModel(fit_vol_elasticity=False).fit(event_moves(*bars, events))
    # Raw means 0.910, 0.843, 0.786 differ by noise only: Q <= k - 1, so tau2 = 0 and the
    # three types share the pooled mean.
    assert fit.tau2 == 0.0
    assert len({round(e.ratio, 12) for e in fit.types.values()}) == 1
    assert all(e.shrink_weight == 1.0 for e in fit.types.values())
    assert all(abs(e.ratio - fit.baseline.ratio) < 0.1 for e in fit.types.values())


def test_vol_elasticity_separates_noise_from_persistent_vol(rng):
    n = 5000
    dates = business_days(n)
    # Constant vol: all variation of the pre-event vol is estimation noise, so the move
    # ratio |r| / sigma_hat falls one for one with sigma_hat: beta ~ -1.
    flat = bars_from_returns(0.01 * rng.standard_normal(n), rng, dates)
    beta_flat = EventImpactModel().fit(event_moves(*flat, [])).vol_elasticity
    assert beta_flat == pytest.approx(-1.0, abs=0.15)
    # Persistent regimes (quiet 0.5 %/day, stormy 2 %/day, a year each): the pre-event vol
    # is informative, the ratio barely depends on it: beta ~ 0.
    regime = np.where((np.arange(n) // 250) % 2 == 0, 0.005, 0.02)
    persistent = bars_from_returns(regime * rng.standard_normal(n), rng, dates)
    fit = EventImpactModel().fit(event_moves(*persistent, []))
    assert abs(fit.vol_elasticity) < 0.15
    assert fit.vol_elasticity_se > 0.0
    assert fit.ref_vol == pytest.approx(np.median(event_moves(*persistent, []).control_pre_vol))
    off = EventImpactModel(fit_vol_elasticity=False).fit(event_moves(*persistent, []))
    assert off.vol_elasticity == 0.0 and math.isnan(off.vol_elasticity_se)


def test_fit_needs_a_baseline():
    empty = event_moves(business_days(10), *(np.ones(10),) * 4, [])
    with pytest.raises(ValueError, match="control"):
        EventImpactModel().fit(empty)
    with pytest.raises(ValueError):
        EventImpactModel(target="range")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------
# Actions
# -------------------------------------------------------------------------------------


def test_action_thresholds_are_monotone_with_documented_defaults():
    th = ActionThresholds()
    assert (th.proceed_below, th.reduce_25_below, th.reduce_50_below) == (1.25, 1.75, 2.5)
    assert [th.action(x) for x in (0.0, 1.2499, 1.25, 1.7499, 1.75, 2.4999, 2.5, 9.0)] == [
        "proceed", "proceed", "reduce_25", "reduce_25", "reduce_50", "reduce_50",
        "blackout", "blackout"]
    assert th.action(float("nan")) == "blackout"
    grid = np.linspace(0.0, 4.0, 401)
    severity = [ACTIONS.index(th.action(x)) for x in grid]
    assert severity == sorted(severity)
    scales = [POSITION_SCALE[a] for a in ACTIONS]
    assert scales == sorted(scales, reverse=True) and scales[-1] == 0.0
    for bad in ((1.0, 1.0, 2.0), (2.0, 1.5, 3.0), (0.0, 1.0, 2.0), (1.0, 2.0, math.inf)):
        with pytest.raises(ValueError):
            ActionThresholds(*bad)


def test_fitted_actions_are_monotone_in_type_ratio_and_pre_vol(rng):
    bars, events, _, _ = planted_market(rng)
    mv = event_moves(*bars, events)
    fit = EventImpactModel(thresholds=ActionThresholds(0.9, 1.5, 2.2)).fit(mv)
    for v in (0.08, 0.16, 0.3):
        ordered = sorted([*fit.types, NON_EVENT], key=lambda t: fit.expected_ratio(t, v))
        severity = [ACTIONS.index(fit.action(t, v)) for t in ordered]
        assert severity == sorted(severity)
    # Along pre-event vol the expected ratio moves with the sign of the elasticity.
    vols = np.linspace(0.05, 0.6, 56)
    ratios = np.array([fit.expected_ratio("big", v) for v in vols])
    assert np.all(np.diff(ratios) * np.sign(fit.vol_elasticity) >= 0.0)
    severity = [ACTIONS.index(fit.action("big", v)) for v in vols]
    assert severity == sorted(severity, reverse=fit.vol_elasticity < 0.0)
    with pytest.raises(ValueError):
        fit.expected_move("big", 0.0)


# -------------------------------------------------------------------------------------
# Out of sample
# -------------------------------------------------------------------------------------


def test_roc_auc_matches_mann_whitney(rng):
    assert roc_auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert roc_auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5
    assert math.isnan(roc_auc([1, 2], [1, 1]))
    s = np.round(rng.normal(size=400), 1)  # ties
    y = rng.random(400) < 0.3
    u = stats.mannwhitneyu(s[y], s[~y]).statistic
    assert roc_auc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()), rel=1e-12)


def test_oos_evaluation_on_planted_effects(rng):
    bars, events, _, _ = planted_market(rng)
    mv = event_moves(*bars, events)
    rep = evaluate_by_year(mv)
    assert rep.scheme == "leave_one_year_out" and len(rep.years) >= 20
    assert rep.n_event == len(mv) and rep.n_control == mv.control_session.size
    # Planted effects are real, so out of sample the model beats vol-only on event days
    # and ranks event days above ordinary ones.
    assert rep.event_model.rmse < rep.event_vol_only.rmse
    assert rep.by_type["big"].model.rmse < rep.by_type["big"].vol_only.rmse
    assert abs(rep.by_type["big"].model.bias) < abs(rep.by_type["big"].vol_only.bias)
    assert rep.by_type["big"].auc_expected_vs_control > 0.9
    assert rep.by_type["big"].auc_realized_vs_control > 0.7
    assert rep.auc_large_move_model > rep.auc_large_move_vol_only
    # Pooled over types, the "event vs ordinary day" AUC is dominated by the 300 events
    # with no effect: it says little about whether the gate works.
    assert rep.auc_expected_event_vs_control < rep.by_type["big"].auc_expected_vs_control
    wf = evaluate_by_year(mv, scheme="walk_forward", min_train_years=5)
    assert wf.years[0] == rep.years[5] and wf.n_event < rep.n_event
    with pytest.raises(ValueError):
        evaluate_by_year(mv, scheme="k_fold")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------
# The event calendar (shared/data/events.csv)
# -------------------------------------------------------------------------------------

EVENT_TYPES = {"union_budget", "interim_budget", "rbi_policy", "election_result", "fomc"}


def load_calendar() -> list[EventRow]:
    rows = parse_csv("events.csv", EVENTS_CSV.read_text(encoding="utf-8"), EventRow,
                     ValueError)
    return [row for _, row in rows]


def test_event_calendar_parses_with_the_shared_reader():
    rows = load_calendar()
    assert len(rows) >= 250
    assert {r.event_type for r in rows} == EVENT_TYPES
    for r in rows:
        assert date(2000, 1, 1) <= r.event_date <= date(2019, 12, 31)
        assert r.title and r.source, r
        assert "http" in r.source, f"{r.event_date} {r.event_type}: source without a URL"
    keys = [(r.event_type, r.event_date) for r in rows]
    assert len(keys) == len(set(keys))
    dates = [r.event_date for r in rows]
    assert dates == sorted(dates)
    for kind in EVENT_TYPES:
        own = [r.event_date for r in rows if r.event_type == kind]
        assert own == sorted(own)


def test_event_calendar_content():
    rows = load_calendar()
    by_type: dict[str, list[EventRow]] = {}
    for r in rows:
        by_type.setdefault(r.event_type, []).append(r)
    budgets = by_type["union_budget"] + by_type["interim_budget"]
    assert {r.event_date.year for r in budgets} == set(range(2000, 2020))
    assert {r.event_date for r in by_type["interim_budget"]} == {
        date(2004, 2, 3), date(2009, 2, 16), date(2014, 2, 17), date(2019, 2, 1)}
    elections = {r.event_date: r.reaction for r in by_type["election_result"]}
    assert elections == {date(2004, 5, 13): "same_day", date(2009, 5, 16): "next_session",
                         date(2014, 5, 16): "same_day", date(2019, 5, 23): "same_day"}
    fomc = by_type["fomc"]
    assert all(r.reaction == "next_session" for r in fomc)
    per_year = np.bincount([r.event_date.year - 2000 for r in fomc], minlength=20)
    assert per_year.tolist() == [8] * 20  # scheduled meetings only
    rbi = {r.event_date for r in by_type["rbi_policy"]}
    mpc = {d for d in rbi if d >= date(2016, 10, 1)}
    assert len(mpc) == 20 and date(2016, 10, 4) in mpc and date(2018, 10, 5) in mpc
    assert all(r.reaction == "same_day" for r in by_type["rbi_policy"])
    # The repo-rate file and the event calendar agree on the 2019 MPC dates.
    rates = (ROOT / "shared" / "data" / "rates.csv").read_text(encoding="utf-8")
    for line in rates.splitlines()[1:]:
        d = date.fromisoformat(line.split(",")[0])
        if d.year == 2019:
            assert d in rbi


# -------------------------------------------------------------------------------------
# NIFTY 2000-2019
# -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nifty_moves() -> EventMoves:
    if not NIFTY_DAILY.exists():
        pytest.skip(f"{NIFTY_DAILY} is not available")
    from shared.marketdata import HistoryFormat, read_history

    bars = read_history(NIFTY_DAILY, HistoryFormat.YAHOO_PANDAS, symbol="NIFTY")
    return event_moves(bars.dates, bars.open, bars.high, bars.low, bars.close,
                       load_calendar())


def test_nifty_reaction_sessions(nifty_moves):
    mv = nifty_moves
    # Unmatched: the first FOMC (no 22-return history yet) and the two events after the
    # fixture's last bar (2019-12-02).
    assert sorted((str(u.event.event_date), u.event.event_type) for u in mv.unmatched) == [
        ("2000-02-02", "fomc"), ("2019-12-05", "rbi_policy"), ("2019-12-11", "fomc")]
    when = {(str(d), t): str(s) for d, t, s in
            zip(mv.event_date, mv.event_type, mv.session_date, strict=True)}
    assert when[("2009-05-16", "election_result")] == "2009-05-18"  # Saturday -> Monday
    assert when[("2015-02-28", "union_budget")] == "2015-02-28"  # Saturday special session
    assert when[("2008-09-16", "fomc")] == "2008-09-17"
    # The data confirm the calendar: 2000-02-29 budget day Nifty -67.75 (domain-b: -67.8);
    # 2009-05-18 the +17 % upper-circuit day.
    i = int(np.flatnonzero((mv.event_type == "election_result")
                           & (mv.session_date == np.datetime64("2009-05-18")))[0])
    assert mv.abs_return[i] == pytest.approx(math.log(4323.15 / 3671.65), abs=1e-6)


def test_nifty_budget_and_election_days_move_more_than_ordinary_days(nifty_moves):
    mv = nifty_moves
    base = float(np.mean(mv.control_move_ratio))  # 0.810 (4654 sessions)
    assert 0.75 < base < 0.87  # near the Gaussian sqrt(2/pi) = 0.798

    def mean_ratio(kind: str) -> float:
        return float(np.mean(mv.move_ratio[event_rows(mv, kind)]))

    assert mean_ratio("union_budget") > 1.8 * base  # 1.655 over 20 budgets
    assert mean_ratio("election_result") > 2.5 * base  # 2.323, but 2009 alone is 7.33:
    elections = np.sort(mv.move_ratio[event_rows(mv, "election_result")])
    assert elections[-1] > 7.0 and np.median(elections) < 1.0  # median 0.87
    # Intraday (Garman-Klass) ranges: every election day was a wide session.
    _, gk_ratio = mv.target("gk_vol")
    _, gk_control = mv.control_target("gk_vol")
    gk_base = float(np.nanmean(gk_control))  # 0.841
    assert np.all(gk_ratio[event_rows(mv, "election_result")] > 1.9 * gk_base)  # 1.97..4.13
    assert np.nanmean(gk_ratio[event_rows(mv, "union_budget")]) > 2.0 * gk_base  # 1.959
    # FOMC nights and RBI days: small or no excess (0.849 and 0.950).
    assert mean_ratio("fomc") == pytest.approx(base, abs=0.1)
    assert base < mean_ratio("rbi_policy") < 1.3 * base


def test_nifty_fit_and_actions(nifty_moves):
    fit = EventImpactModel().fit(nifty_moves)
    # Vol mean reversion: the ratio falls as the pre-event vol rises (beta -0.20, se 0.04).
    assert -0.35 < fit.vol_elasticity < -0.05
    assert fit.ref_vol == pytest.approx(0.167, abs=0.01)
    budget, fomc = fit.types["union_budget"], fit.types["fomc"]
    assert budget.ratio > fit.baseline.ratio + 2 * budget.ratio_se  # 1.364 vs 0.817
    assert budget.mean_ratio > budget.ratio  # shrunk toward the pool (1.676 -> 1.364)
    assert abs(fomc.ratio - fit.baseline.ratio) < 0.15  # 0.863
    # Four elections with one outlier: shrunk almost all the way to the pool.
    assert fit.types["election_result"].shrink_weight > 0.9
    # Default thresholds at the median pre-event vol: budgets trim a quarter, FOMC and
    # RBI days proceed.
    v = fit.ref_vol
    assert fit.action("union_budget", v) == "reduce_25"
    assert fit.action("fomc", v) == "proceed" and fit.action("rbi_policy", v) == "proceed"
    assert fit.action(NON_EVENT, v) == "proceed"
    # Fitted on intraday range, election days are a blackout and budgets halve.
    gk = EventImpactModel(target="gk_vol").fit(nifty_moves)
    assert gk.action("election_result", v) == "blackout"  # ratio 2.98
    assert gk.action("union_budget", v) == "reduce_50"  # 1.96
    assert gk.action("fomc", v) == "proceed"


def test_nifty_out_of_sample(nifty_moves):
    loyo = evaluate_by_year(nifty_moves)
    assert loyo.years == tuple(range(2000, 2020))
    # Close-to-close: event types help a little out of sample (RMSE 0.01423 vs 0.01450;
    # AUC of expected move, event vs ordinary days, 0.60).
    assert loyo.auc_expected_event_vs_control > 0.55
    assert loyo.auc_realized_event_vs_control > 0.5
    assert loyo.event_model.rmse < loyo.event_vol_only.rmse
    assert abs(loyo.event_model.bias) < abs(loyo.event_vol_only.bias)
    assert (loyo.by_type["union_budget"].model.rmse
            < loyo.by_type["union_budget"].vol_only.rmse)  # 0.0164 vs 0.0185
    # Intraday range: a clear gain (event RMSE 0.0055 vs 0.0078, large-move AUC 0.54 vs
    # 0.48), leave-one-year-out and walk-forward alike.
    for scheme in ("leave_one_year_out", "walk_forward"):
        gk = evaluate_by_year(nifty_moves, EventImpactModel(target="gk_vol"), scheme=scheme)
        assert gk.event_model.rmse < 0.85 * gk.event_vol_only.rmse
        assert gk.auc_large_move_model > gk.auc_large_move_vol_only


# -------------------------------------------------------------------------------------
# Purity
# -------------------------------------------------------------------------------------


def test_module_imports_no_heavy_library():
    code = ("import json, sys; import shared.domain.models.event_impact; "
            "print(json.dumps(sorted(m for m in ('arch', 'statsmodels', 'scipy', 'pandas') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []
