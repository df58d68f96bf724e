"""The wing-selection model: condor labels replayed through the cost engine over simulated
(and, where the kit has a settlement, recorded) sessions, the features, the grouped
splits, the XGBoost model and its evaluation."""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from shared.adapters.providers import parse_payload
from shared.adapters.providers.simulator import MarketSimulator
from shared.costs import default_cost_schedule
from shared.domain.costs import Leg, round_trip
from shared.domain.models.wings import (
    BASELINE_WING,
    FEATURE_NAMES,
    REGIMES,
    CondorConfig,
    CondorOutcome,
    ReplaySession,
    WingFeatures,
    WingFit,
    WingModel,
    candidate_features,
    evaluate_wings,
    group_splits,
    replay_condor_outcomes,
    sample_session_specs,
    simulate_sessions,
    spearman,
)
from shared.rules import default_calendar

ROOT = Path(__file__).resolve().parents[2]
TRIMMED = ROOT / "tests" / "fixtures" / "chains"
KIT = ROOT.parent / "shared" / "fixtures"
N_SESSIONS = 16


@pytest.fixture(scope="module")
def cal():
    return default_calendar()


@pytest.fixture(scope="module")
def schedule():
    return default_cost_schedule()


def _sessions(cal, n: int = N_SESSIONS) -> tuple[ReplaySession, ...]:
    specs = sample_session_specs(np.random.default_rng(1234), n, calendar=cal)
    return simulate_sessions(specs, calendar=cal, simulator=MarketSimulator, parse=parse_payload)


@pytest.fixture(scope="module")
def sessions(cal):
    return _sessions(cal)


@pytest.fixture(scope="module")
def data(sessions, schedule):
    return replay_condor_outcomes(sessions, schedule=schedule)


def _by_session(data) -> dict[int, list[CondorOutcome]]:
    out: dict[int, list[CondorOutcome]] = {}
    for o in data.outcomes:
        out.setdefault(o.group, []).append(o)
    return {g: sorted(rows, key=lambda o: o.wing) for g, rows in out.items()}


def _legs(o: CondorOutcome, settlement: float) -> list[Leg]:
    """The four legs as the test (not the module) builds them for the cost engine."""
    q = o.quote

    def intr(k: float, call: bool) -> float:
        return round(max(settlement - k, 0.0) if call else max(k - settlement, 0.0), 6)

    return [Leg("option", "short", o.qty, q.short_call_bid,
                settlement_intrinsic=intr(q.short_call, True)),
            Leg("option", "short", o.qty, q.short_put_bid,
                settlement_intrinsic=intr(q.short_put, False)),
            Leg("option", "long", o.qty, q.long_call_ask,
                settlement_intrinsic=intr(q.long_call, True)),
            Leg("option", "long", o.qty, q.long_put_ask,
                settlement_intrinsic=intr(q.long_put, False))]


# ----------------------------------------------------------------------------- labels


def test_the_replay_labels_simulated_sessions(data):
    assert data.n_sessions == N_SESSIONS
    assert data.features.names == FEATURE_NAMES
    assert data.features.n_rows == data.n_rows == len(data.y)
    assert np.isfinite(data.y).all()
    assert set(np.unique(data.features.groups)) == set(range(N_SESSIONS))
    assert {o.source for o in data.outcomes} == {"simulated"}
    assert {o.exit_mode for o in data.outcomes} == {"expiry"}
    # one-hot regimes: exactly one per row
    onehot = data.features.values[:, [FEATURE_NAMES.index(f"regime_{r}") for r in REGIMES]]
    assert (onehot.sum(axis=1) == 1).all()
    # the feature table and the outcomes are aligned row by row
    np.testing.assert_array_equal(data.features.distance, [o.wing for o in data.outcomes])
    np.testing.assert_array_equal(data.features.groups, [o.group for o in data.outcomes])


def test_labels_are_reproducible_for_a_seed(cal, schedule, data):
    again = replay_condor_outcomes(_sessions(cal), schedule=schedule)
    np.testing.assert_array_equal(again.y, data.y)
    np.testing.assert_array_equal(again.features.values, data.features.values)
    assert again.sessions == data.sessions
    other = sample_session_specs(np.random.default_rng(4321), N_SESSIONS, calendar=cal)
    assert {s.session_id for s in other}.isdisjoint(data.sessions)


def test_wider_wings_risk_more_and_cost_less(data):
    for rows in _by_session(data).values():
        q0 = rows[0].quote
        for o in rows:
            q = o.quote
            # one pair of shorts per session; wings at exactly the candidate distance
            assert (q.short_call, q.short_put) == (q0.short_call, q0.short_put)
            assert q.long_call - q.short_call == o.wing == q.short_put - q.long_put
            assert q.short_put < q.short_call
            assert 0 < o.max_loss == pytest.approx((o.wing - q.credit) * o.qty, abs=1e-9)
            # held to expiry, the payoff is bounded by the credit and the max loss
            assert -o.max_loss - 1e-6 <= o.gross_pnl <= q.credit * o.qty + 1e-6
        for a, b in zip(rows, rows[1:], strict=False):
            assert b.max_loss > a.max_loss  # a wider wing: a larger maximum loss
            assert b.quote.wing_premium <= a.quote.wing_premium  # cheaper protection
            assert b.quote.credit >= a.quote.credit  # so at least as much net premium


def test_costs_are_the_cost_engines_and_reduce_the_return(data, schedule):
    for o in data.outcomes:
        rt = round_trip(schedule, _legs(o, o.settlement),
                        entry_date=o.entry_time.date(), exit_date=o.expiry)
        assert o.costs == float(rt.total) > 0
        assert o.net_pnl == o.gross_pnl - float(rt.total)
        assert o.net_return < o.gross_return
        assert o.net_return == pytest.approx(o.gross_return - o.costs / o.max_loss, abs=1e-12)
        q = o.quote
        payoff = (max(o.settlement - q.short_call, 0) - max(o.settlement - q.long_call, 0)
                  + max(q.short_put - o.settlement, 0) - max(q.long_put - o.settlement, 0))
        # (the module rounds intrinsic values to 1e-6 rupee for the cost engine)
        assert o.gross_pnl == pytest.approx((q.credit - payoff) * o.qty, abs=4e-6 * o.qty)
        # four entry orders under the standard plan (Rs 20 each), STT on the premium sold
        assert rt.entry.brokerage == 80
        assert rt.entry.stt > 0


def test_an_in_the_money_wing_pays_stt_on_exercise(sessions, data, schedule):
    o = data.outcomes[0]
    session = next(s for s in sessions if s.session_id == o.session_id)
    settle = o.quote.long_call + 300.0  # the whole call side in the money
    moved = replay_condor_outcomes([dataclasses.replace(session, settlement=settle)],
                                   schedule=schedule)
    out = next(x for x in moved.outcomes if x.wing == o.wing)
    rate = next(r for r in schedule.rates_on("option", "exercise", o.expiry)
                if r.charge == "stt").rate
    exercise = out.cost_detail.exit
    assert exercise.stt == rate / 100 * Decimal("300.0") * out.qty  # long call only
    assert exercise.brokerage == exercise.exchange == 0  # no trade at expiry
    assert out.gross_pnl == pytest.approx(-out.max_loss, abs=1e-6)
    assert out.net_return < -1.0  # the whole capital and the costs on top


def test_an_exit_snapshot_closes_at_the_touch(cal, schedule):
    sim = MarketSimulator("NIFTY", date(2025, 7, 16), seed=11, calendar=cal, n_expiries=1)
    entry, exit_ = parse_payload(sim.payload_at(30)), parse_payload(sim.payload_at(300))
    expiry = sim.expiries[0]
    session = ReplaySession(
        session_id="exit", source="simulated", entry=entry, expiry=expiry,
        t_years=float(sim.year_fractions(30)[0]), lot_size=sim.lot_sizes[expiry], exit=exit_)
    ds = replay_condor_outcomes([session], schedule=schedule)
    assert ds.n_rows > 0
    mask = exit_.for_expiry(expiry)

    def touch(k: float, call: bool, side: str) -> float:
        i = np.flatnonzero(mask & (exit_.strike == k) & (exit_.is_call == call))[0]
        v = float(getattr(exit_, side)[i])
        return v if math.isfinite(v) and v > 0 else 0.0

    for o in ds.outcomes:
        q = o.quote
        assert o.exit_mode == "exit_snapshot" and math.isnan(o.settlement)
        value = (touch(q.short_call, True, "ask") + touch(q.short_put, False, "ask")
                 - touch(q.long_call, True, "bid") - touch(q.long_put, False, "bid"))
        assert o.exit_value == pytest.approx(value, abs=1e-9)
        assert o.net_pnl == o.gross_pnl - o.costs
        assert o.cost_detail.exit.brokerage >= 40  # at least the two shorts bought back


def test_skipped_candidates_say_why(data):
    nifty = [s for s in data.skipped if s.session_id.startswith("sim:NIFTY:")]
    # NIFTY lists 50-point strikes: the 75 and 125 wings are never there
    assert {s.wing for s in nifty if s.reason.startswith("wing not listed")} >= {75.0, 125.0}
    assert all(s.reason for s in data.skipped)
    # the trimmed real chain keeps only 8 strikes around the money: no wing is listed
    snap = parse_payload((TRIMMED / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json")
                         .read_bytes())
    session = ReplaySession(session_id="trim", source="recorded", entry=snap,
                            expiry=date(2025, 7, 17), t_years=1 / 365, lot_size=75,
                            settlement=25111.45)
    ds = replay_condor_outcomes([session], schedule=default_cost_schedule())
    assert ds.n_rows == 0 and ds.n_sessions == 0
    assert {s.wing for s in ds.skipped} == set(CondorConfig().wings)


@pytest.mark.skipif(not KIT.is_dir(), reason="the kit's real fixtures are not beside the checkout")
def test_recorded_sessions_with_a_published_settlement(cal, schedule):
    from shared.marketdata.history import read_history

    bars = read_history(KIT / "index_history" / "nifty50_daily_2024-2025_nseformat_VolGuard.csv",
                        symbol="NIFTY")
    settle = float(bars.close[bars.dates == np.datetime64("2025-07-17")][0])
    assert settle == 25111.45
    snaps = {name: parse_payload((KIT / "nse_option_chain" / name).read_bytes())
             for name in ("nse_oc_NIFTY_2025-07-16_ethanelliott50.json",
                          "nse_oc_NIFTY_2019-08-23_aadityatamrakar.json")}
    recorded = []
    for (name, snap), expiry, s in zip(snaps.items(), (date(2025, 7, 17), date(2019, 8, 29)),
                                       (settle, 10948.3), strict=True):
        listed = cal.expiries("NIFTY", expiry, expiry)[0]
        recorded.append(ReplaySession(
            session_id=name, source="recorded", entry=snap, expiry=expiry,
            t_years=cal.year_fraction(snap.asof, listed),
            lot_size=cal.lot_size("NIFTY", listed).value, settlement=s))
    ds = replay_condor_outcomes(recorded, schedule=schedule)
    assert ds.sessions == ("nse_oc_NIFTY_2025-07-16_ethanelliott50.json",)
    assert sorted(o.wing for o in ds.outcomes) == [50.0, 100.0, 150.0, 200.0]
    for o in ds.outcomes:  # 25111.45 settled between the shorts: the credit is kept
        assert o.quote.short_put < settle < o.quote.short_call
        assert o.gross_pnl == pytest.approx(o.quote.credit * o.qty, abs=1e-6)
        assert 0 < o.net_return < o.gross_return
    # 2019 is before the cost data (options from 2021-01-01): skipped, with the reason
    old = [s for s in ds.skipped if s.session_id.startswith("nse_oc_NIFTY_2019")]
    assert any("cost engine" in s.reason for s in old)


def test_live_candidates_match_the_training_features(sessions, data):
    s = sessions[3]
    live = candidate_features(s.entry, expiry=s.expiry, t_years=s.t_years,
                              lot_size=s.lot_size, previous_close=s.previous_close,
                              rate=s.rate, group=3)
    train = data.features.group(3)
    np.testing.assert_array_equal(live.features.values, train.values)
    assert live.market is not None and live.market.regime in REGIMES
    assert live.market.sd_points == pytest.approx(
        live.market.atm_iv * live.market.forward * math.sqrt(s.t_years))
    wing_sd = live.features.column("wing_sd")
    np.testing.assert_allclose(wing_sd, live.features.distance / live.market.sd_points)


def test_sessions_are_validated(sessions):
    s = sessions[0]
    with pytest.raises(ValueError, match="settlement or an exit"):
        dataclasses.replace(s, settlement=None)
    with pytest.raises(ValueError, match="regime"):
        dataclasses.replace(s, regime="sideways")
    with pytest.raises(ValueError, match="duplicate"):
        replay_condor_outcomes([s, s], schedule=default_cost_schedule())


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("walk_forward", [False, True])
def test_group_splits_never_put_a_session_on_both_sides(walk_forward):
    rng = np.random.default_rng(1234)
    sizes = rng.integers(1, 7, 60)
    labels = rng.permutation(1000)[:60]  # arbitrary session labels, not 0..n
    groups = np.repeat(labels, sizes)
    order = list(dict.fromkeys(groups.tolist()))
    splits = group_splits(groups, 5, walk_forward=walk_forward)
    assert len(splits) == (4 if walk_forward else 5)
    tested = np.concatenate([s.test for s in splits])
    assert np.unique(tested).size == tested.size  # each row tested at most once
    if not walk_forward:
        assert np.array_equal(np.sort(tested), np.arange(groups.size))
    for s in splits:
        assert set(groups[s.train]).isdisjoint(groups[s.test])
        if walk_forward:  # training sessions all come before the tested ones
            assert max(order.index(g) for g in groups[s.train]) < min(
                order.index(g) for g in groups[s.test])


def test_the_fit_tests_each_session_in_one_fold(data):
    fit = WingModel(num_boost_round=20).fit(data.features, data.y)
    assert fit.fold is not None and fit.oos_prediction is not None
    for g in np.unique(data.features.groups):
        assert np.unique(fit.fold[data.features.groups == g]).size == 1
    assert np.isfinite(fit.oos_prediction).all()
    wf = WingModel(num_boost_round=20, walk_forward=True).fit(data.features, data.y)
    assert np.isnan(wf.oos_prediction[wf.fold == -1]).all()
    assert (wf.fold == -1).any() and (wf.fold >= 0).any()


# ----------------------------------------------------------------------------- model


def _planted(rng: np.random.Generator, n_groups: int) -> tuple[WingFeatures, np.ndarray]:
    """Six candidates per session; the best wing (in SDs) moves with a session's skew."""
    wings = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 2.0])
    skew = rng.uniform(-1, 1, n_groups)
    iv = rng.uniform(0.08, 0.3, n_groups)
    noise_feature = rng.normal(size=(n_groups, 1))
    rows, y, dist, groups = [], [], [], []
    for g in range(n_groups):
        best = 1.25 + 0.6 * skew[g]
        for w in wings:
            rows.append([w, skew[g], iv[g], noise_feature[g, 0]])
            y.append(-((w - best) ** 2) + 0.5 * iv[g] + rng.normal(0, 0.03))
            dist.append(100 * w)
            groups.append(g)
    feats = WingFeatures(("wing_sd", "skew", "atm_iv", "noise"), np.array(rows),
                         np.array(dist), np.array(groups))
    return feats, np.array(y)


def test_the_model_recovers_a_planted_relation():
    rng = np.random.default_rng(1234)
    feats, y = _planted(rng, 160)
    fit = WingModel(num_boost_round=200).fit(feats, y)
    report = evaluate_wings(y, fit.oos_prediction, feats.distance, feats.groups)
    assert report.n_sessions == 160 and report.n_rank_sessions == 160
    assert report.rank_corr_mean > 0.8
    assert report.model_mean > report.baseline_mean
    assert report.hindsight_mean - report.model_mean < 0.1 * (report.hindsight_mean
                                                              - report.baseline_mean) + 0.02
    # fresh sessions: the planted optimum 1.25 + 0.6 skew is nearest 0.75 SD at skew -0.9,
    # 1.25 SD at skew 0 and 1.5 SD at skew 0.4 (wings 75, 125, 150 points)
    for skew, expected in ((-0.9, 75.0), (0.0, 125.0), (0.4, 150.0)):
        fresh = WingFeatures(
            feats.names, np.array([[w, skew, 0.15, 0.0] for w in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)]),
            np.array([50.0, 75.0, 100.0, 125.0, 150.0, 200.0]), np.zeros(6, int))
        choice = fit.best_wing(fresh)
        assert choice.distance == expected
        assert choice.predicted_return == max(choice.as_dict().values())
    assert [d for d, _ in choice.all_predictions] == [50.0, 75.0, 100.0, 125.0, 150.0, 200.0]


def test_bytes_round_trip_gives_equal_predictions(data):
    fit = WingModel(num_boost_round=60).fit(data.features, data.y)
    back = WingFit.from_bytes(fit.to_bytes())
    np.testing.assert_array_equal(back.predict(data.features), fit.predict(data.features))
    assert back.feature_names == fit.feature_names == FEATURE_NAMES
    assert (back.n_train, back.n_groups) == (data.n_rows, data.n_sessions)
    one = data.features.group(0)
    assert back.best_wing(one) == fit.best_wing(one)
    assert fit.to_bytes() == back.to_bytes()
    with pytest.raises(ValueError, match="payload"):
        WingFit.from_bytes(b'{"format": "something else"}')
    with pytest.raises(ValueError, match="payload"):
        WingFit.from_bytes(b"\xff not json")


def test_training_is_deterministic(data):
    a = WingModel(num_boost_round=40).fit(data.features, data.y)
    b = WingModel(num_boost_round=40).fit(data.features, data.y)
    np.testing.assert_array_equal(a.oos_prediction, b.oos_prediction)
    assert a.to_bytes() == b.to_bytes()


def test_best_wing_takes_one_snapshot(data):
    fit = WingModel(num_boost_round=20).fit(data.features, data.y)
    with pytest.raises(ValueError, match="one snapshot"):
        fit.best_wing(data.features)
    one = data.features.group(1)
    pred = fit.predict(one)
    choice = fit.best_wing(one)
    assert choice.distance == one.distance[int(np.argmax(pred))]
    with pytest.raises(ValueError, match="distance"):
        fit.best_wing(one.values)
    assert fit.best_wing(one.values, distance=one.distance) == choice


# ----------------------------------------------------------------------------- evaluation


def test_evaluation_on_known_numbers():
    d = np.array([50, 100, 150, 50, 100, 150, 200], dtype=float)
    g = np.array([0, 0, 0, 1, 1, 1, 1])
    y = np.array([0.3, 0.1, -0.2, -1.0, -0.5, -0.2, 0.1])
    p = np.array([3.0, 2.0, 1.0, 0.0, 1.0, 3.0, 2.0])  # session 1: picks 150, not the best
    r = evaluate_wings(y, p, d, g)
    assert (r.n_sessions, r.n_rank_sessions, r.n_compared) == (2, 2, 2)
    assert r.rank_corr_mean == pytest.approx((1.0 + 0.8) / 2)
    assert r.model_mean == pytest.approx((0.3 - 0.2) / 2)
    assert r.baseline_mean == pytest.approx((0.1 - 0.5) / 2) and r.baseline == BASELINE_WING
    assert r.widest_mean == pytest.approx((-0.2 + 0.1) / 2)
    assert r.hindsight_mean == pytest.approx((0.3 + 0.1) / 2)
    assert r.model_minus_baseline == pytest.approx((0.2 + 0.3) / 2)
    assert dict((w, n) for w, _, n in r.fixed) == {50.0: 2, 100.0: 2, 150.0: 2, 200.0: 1}
    assert r.choices == ((50.0, 1), (150.0, 1))
    # rows never tested (NaN prediction) are left out
    r2 = evaluate_wings(y, np.where(g == 1, np.nan, p), d, g)
    assert r2.n_sessions == 1 and r2.model_mean == pytest.approx(0.3)


def test_spearman_handles_ties_and_constants():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_replayed_labels_train_and_evaluate_end_to_end(data):
    fit = WingModel(num_boost_round=50).fit(data.features, data.y)
    r = evaluate_wings(data.y, fit.oos_prediction, data.features.distance, data.features.groups)
    assert r.n_sessions == data.n_sessions and r.n_compared == data.n_sessions
    assert r.hindsight_mean >= max(r.model_mean, r.baseline_mean, r.widest_mean)
    assert -1.0 <= r.rank_corr_mean <= 1.0
