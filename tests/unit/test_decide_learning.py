"""Layer 2's learning state (``shared/domain/decide/learning.py``): the JSON round trip of
:class:`SignalState`, the realised outcomes of a past run and how :func:`score_runs` folds
them into the weights and the circuit breakers.

Random draws come from ``np.random.default_rng(1234)``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from itertools import permutations
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from shared.domain.decide.combine import (
    BreakerConfig,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    SignalWeights,
)
from shared.domain.decide.learning import (
    PastRun,
    ScoredRun,
    SignalState,
    realised_outcomes,
    score_runs,
)

IST = ZoneInfo("Asia/Kolkata")
T0 = datetime(2024, 7, 1, 9, 15, tzinfo=IST)
NOW = T0 + timedelta(days=7)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def seeded() -> np.random.Generator:
    return np.random.default_rng(1234)


def run(*readings: tuple[str, str, float, bool], asof: datetime = T0, spot: float = 22_000.0,
        atm_iv: float | None = 0.14, regime: str = "range") -> PastRun:
    return PastRun(asof=asof, spot=spot, atm_iv=atm_iv, regime=regime, readings=readings)


# --- SignalState JSON --------------------------------------------------------------------


def rich_state(config: BreakerConfig) -> SignalState:
    """Posteriors in two regimes and a closed, an open and a half-open breaker."""
    weights = SignalWeights(prior_a=1.5, prior_b=2.5, posteriors={
        ("range", "trend"): (3.25, 2.0), ("range", "vrp"): (2.0, 4.125),
        ("high_vol", "trend"): (1.5, 7.75)})
    closed = CircuitBreaker("trend", config=config)
    for good in (True, False, True, False, False):
        closed = closed.record(good, T0)
    opened = CircuitBreaker("vrp", config=config)
    for k in range(config.max_consecutive_bad):
        opened = opened.record(False, T0 + timedelta(hours=k))
    half = CircuitBreaker(
        "skew", config=config, state=BreakerState.HALF_OPEN, trial_good=2,
        last_transition=BreakerTransition(at=T0 - timedelta(days=1), from_state=BreakerState.OPEN,
                                          to_state=BreakerState.HALF_OPEN,
                                          reason="skew: cool-down elapsed"))
    return SignalState(weights=weights, breakers={"trend": closed, "vrp": opened, "skew": half},
                       breaker_config=config)


def test_round_trip_preserves_every_posterior_and_breaker_field() -> None:
    config = BreakerConfig(max_consecutive_bad=3)
    state = rich_state(config)
    # the fixture really holds the three states
    assert state.breakers["trend"].state is BreakerState.CLOSED
    assert state.breakers["trend"].recent == (True, False, True, False, False)
    assert state.breakers["trend"].consecutive_bad == 2
    assert state.breakers["vrp"].state is BreakerState.OPEN
    assert state.breakers["vrp"].opened_at == T0 + timedelta(hours=2)
    assert state.breakers["skew"].state is BreakerState.HALF_OPEN

    text = state.to_json()
    back = SignalState.from_json(text, breaker_config=config)

    assert back.weights.prior_a == 1.5 and back.weights.prior_b == 2.5
    assert dict(back.weights.posteriors) == dict(state.weights.posteriors)
    assert set(back.breakers) == {"trend", "vrp", "skew"}
    for name, b in state.breakers.items():
        got = back.breakers[name]
        assert got.name == name
        assert got.config == config
        assert got.state is b.state
        assert got.recent == b.recent
        assert got.consecutive_bad == b.consecutive_bad
        assert got.opened_at == b.opened_at
        assert got.trial_good == b.trial_good
        assert got.last_transition == b.last_transition
        assert got.multiplier == b.multiplier
    assert back.breakers["vrp"].last_transition is not None
    assert back.breakers["vrp"].last_transition.to_state is BreakerState.OPEN
    assert back.breakers["vrp"].last_transition.reason.startswith("vrp: 3 consecutive bad")
    assert back.breakers["vrp"].opened_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert back.breakers["trend"].last_transition is None
    assert back == state
    # canonical: writing the read-back state gives the same text, sorted keys
    assert back.to_json() == text
    assert json.loads(text)["format"] == "quantsentinel.decide.signal_state/v1"
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_round_trip_keeps_the_open_breaker_working() -> None:
    """The restored open breaker cools down and goes half-open exactly like the original."""
    config = BreakerConfig(max_consecutive_bad=3, cooldown=timedelta(hours=6))
    state = rich_state(config)
    back = SignalState.from_json(state.to_json(), breaker_config=config)
    later = T0 + timedelta(hours=2, minutes=1)
    assert back.breakers["vrp"].at(later) == state.breakers["vrp"].at(later)
    assert back.breakers["vrp"].at(later).state is BreakerState.OPEN
    cooled = T0 + timedelta(hours=8)
    assert back.breakers["vrp"].at(cooled).state is BreakerState.HALF_OPEN
    assert back.breakers["vrp"].at(cooled) == state.breakers["vrp"].at(cooled)


def test_from_json_accepts_bytes_and_mappings() -> None:
    config = BreakerConfig(max_consecutive_bad=3)
    state = rich_state(config)
    text = state.to_json()
    assert SignalState.from_json(text.encode(), breaker_config=config) == state
    assert SignalState.from_json(json.loads(text), breaker_config=config) == state


@pytest.mark.parametrize("empty", [None, "", {}])
def test_from_json_of_nothing_is_the_initial_state(empty: object) -> None:
    state = SignalState.from_json(empty)  # type: ignore[arg-type]
    assert state == SignalState()
    assert dict(state.weights.posteriors) == {} and dict(state.breakers) == {}
    assert state.weights.prior_a == 2.0 and state.weights.prior_b == 2.0
    assert state.breaker("anything").state is BreakerState.CLOSED
    config = BreakerConfig(max_consecutive_bad=3)
    configured = SignalState.from_json(empty, breaker_config=config)  # type: ignore[arg-type]
    assert configured.breaker_config == config
    assert configured.breaker("anything").config == config
    # the initial state's own JSON reads back to the initial state
    assert SignalState.from_json(SignalState().to_json()) == SignalState()


@pytest.mark.parametrize("fmt", ["quantsentinel.decide.signal_state/v2", "", None])
def test_from_json_rejects_another_format(fmt: str | None) -> None:
    doc = json.loads(rich_state(BreakerConfig()).to_json())
    doc["format"] = fmt
    with pytest.raises(ValueError, match="signal_state/v1"):
        SignalState.from_json(json.dumps(doc))
    del doc["format"]
    with pytest.raises(ValueError, match="signal_state/v1"):
        SignalState.from_json(doc)


# --- realised outcomes -------------------------------------------------------------------


def test_realised_outcomes_match_a_hand_computation() -> None:
    # 7 days 6 hours later, the index 1.5 % higher, IV 14 %
    now = T0 + timedelta(days=7, hours=6)
    direction, vol = realised_outcomes(run(spot=22_000.0, atm_iv=0.14), 22_330.0, now)
    r = math.log(22_330.0 / 22_000.0)  # 0.0148886...
    tau = 7.25 / 365.0  # ACT/365, calendar time (not trading days)
    assert direction == pytest.approx(r, rel=1e-15)
    assert direction == pytest.approx(0.014888612493750654, rel=1e-12)
    assert vol == pytest.approx(abs(r) - 0.14 * math.sqrt(tau) * SQRT_2_OVER_PI, rel=1e-12)
    # the options priced an absolute move of 1.5743 %: the market moved less (short vol right)
    assert vol == pytest.approx(0.014888612493750654 - 0.015743115012, abs=1e-11)
    assert vol < 0


def test_a_fall_is_a_negative_direction_and_a_big_move_a_positive_vol_outcome() -> None:
    now = T0 + timedelta(days=1)
    direction, vol = realised_outcomes(run(spot=22_000.0, atm_iv=0.10), 21_000.0, now)
    r = math.log(21_000.0 / 22_000.0)
    assert direction == pytest.approx(r) and direction < 0
    assert vol == pytest.approx(-r - 0.10 * math.sqrt(1 / 365) * SQRT_2_OVER_PI)
    assert vol > 0  # a 4.7 % day against a 0.42 % priced move


def test_tau_is_calendar_time_whatever_the_time_zones() -> None:
    """A weekend counts (ACT/365), and the same instant in UTC gives the same outcome."""
    friday = datetime(2024, 7, 5, 15, 30, tzinfo=IST)
    monday = datetime(2024, 7, 8, 15, 30, tzinfo=IST)
    past = run(asof=friday, spot=22_000.0, atm_iv=0.2)
    _, vol = realised_outcomes(past, 22_100.0, monday)
    r = math.log(22_100.0 / 22_000.0)
    assert vol == pytest.approx(r - 0.2 * math.sqrt(3 / 365) * SQRT_2_OVER_PI, rel=1e-12)
    assert realised_outcomes(past, 22_100.0, monday.astimezone(UTC)) == (
        pytest.approx(r, rel=1e-15), pytest.approx(vol, rel=1e-12))


@pytest.mark.parametrize("iv", [None, 0.0, -0.1, math.nan, math.inf])
def test_no_usable_iv_means_no_volatility_outcome(iv: float | None) -> None:
    direction, vol = realised_outcomes(run(spot=100.0, atm_iv=iv), 101.0, NOW)
    assert direction == pytest.approx(math.log(1.01))
    assert vol is None


def test_no_elapsed_time_means_no_volatility_outcome() -> None:
    assert realised_outcomes(run(spot=100.0), 101.0, T0)[1] is None
    assert realised_outcomes(run(spot=100.0), 101.0, T0 - timedelta(hours=1))[1] is None


@pytest.mark.parametrize(("spot0", "spot1"), [(0.0, 100.0), (100.0, 0.0), (-1.0, 100.0),
                                              (100.0, math.nan)])
def test_non_positive_spots_are_refused(spot0: float, spot1: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        realised_outcomes(run(spot=spot0), spot1, NOW)


def simulated_vol_outcomes(true_vol: float, iv: float, draws: int) -> np.ndarray:
    """Volatility outcomes of ``draws`` lognormal (risk-neutral GBM) moves over a week."""
    gen = seeded()
    horizon = timedelta(days=7)
    tau = horizon / timedelta(days=365)
    z = gen.standard_normal(draws)
    s1 = 22_000.0 * np.exp(true_vol * math.sqrt(tau) * z - 0.5 * true_vol**2 * tau)
    past = run(spot=22_000.0, atm_iv=iv)
    out = np.array([realised_outcomes(past, float(s), T0 + horizon)[1] for s in s1])
    assert out.shape == (draws,) and np.all(np.isfinite(out))
    return out


def test_vol_outcome_is_unbiased_when_the_market_moves_as_implied() -> None:
    y = simulated_vol_outcomes(true_vol=0.15, iv=0.15, draws=20_000)
    se = y.std(ddof=1) / math.sqrt(y.size)
    assert abs(y.mean()) < 3.0 * se
    # the test has power: a market 20 % more volatile than implied is clearly detected
    hot = simulated_vol_outcomes(true_vol=0.18, iv=0.15, draws=20_000)
    assert hot.mean() > 10.0 * hot.std(ddof=1) / math.sqrt(hot.size)


# --- score_runs ---------------------------------------------------------------------------


def test_a_right_bullish_and_a_wrong_bearish_reading_update_their_regime() -> None:
    state = SignalState()
    past = run(("trend", "direction", 0.6, True), ("meanrev", "direction", -0.4, True),
               regime="trending_up", spot=22_000.0, atm_iv=0.14)
    new, scored = score_runs(state, [past], 22_440.0, NOW)  # +2 %
    w = new.weights
    assert w.posterior("trend", "trending_up") == pytest.approx((2.6, 2.0))
    assert w.posterior("meanrev", "trending_up") == pytest.approx((2.0, 2.4))
    assert w.mean("trend", "trending_up") > 0.5 > w.mean("meanrev", "trending_up")
    # other regimes keep the prior
    assert w.posterior("trend", "range") == (2.0, 2.0)
    assert set(w.posteriors) == {("trending_up", "trend"), ("trending_up", "meanrev")}
    # the breakers record right / wrong at `now`
    assert new.breakers["trend"].recent == (True,)
    assert new.breakers["trend"].consecutive_bad == 0
    assert new.breakers["meanrev"].recent == (False,)
    assert new.breakers["meanrev"].consecutive_bad == 1
    assert all(b.state is BreakerState.CLOSED for b in new.breakers.values())
    direction, vol = realised_outcomes(past, 22_440.0, NOW)
    assert scored == (ScoredRun(direction=direction, volatility=vol, updated=2),)
    # the input state is untouched (immutable)
    assert state == SignalState()


def test_a_bullish_reading_after_a_fall_is_wrong() -> None:
    past = run(("trend", "direction", 0.75, True), regime="range")
    new, _ = score_runs(SignalState(), [past], 21_500.0, NOW)
    assert new.weights.posterior("trend", "range") == pytest.approx((2.0, 2.75))
    assert new.breakers["trend"].recent == (False,)


def test_volatility_readings_are_scored_against_the_priced_move() -> None:
    # a quiet week against 14 % IV: the short-vol reading was right, the long-vol one wrong
    past = run(("vrp", "volatility", -0.5, True), ("breakout", "volatility", 0.25, True),
               regime="low_vol", spot=22_000.0, atm_iv=0.14)
    new, scored = score_runs(SignalState(), [past], 22_050.0, NOW)
    assert scored[0].volatility is not None and scored[0].volatility < 0
    assert new.weights.posterior("vrp", "low_vol") == pytest.approx((2.5, 2.0))
    assert new.weights.posterior("breakout", "low_vol") == pytest.approx((2.0, 2.25))
    assert scored[0].updated == 2


def test_readings_without_information_change_nothing() -> None:
    state = SignalState.from_json(rich_state(BreakerConfig()).to_json())
    runs = [
        # unavailable, with a score
        run(("trend", "direction", 0.9, False), asof=T0),
        # a zero score: no view
        run(("trend", "direction", 0.0, True), asof=T0 + timedelta(hours=1)),
        # a volatility reading without an IV
        run(("vrp", "volatility", 0.7, True), asof=T0 + timedelta(hours=2), atm_iv=None),
        # an axis the run has no outcome for
        run(("news", "sentiment", 0.7, True), asof=T0 + timedelta(hours=3)),
        # the index did not move: a zero direction outcome
        run(("trend", "direction", 0.8, True), asof=T0 + timedelta(hours=4), spot=22_100.0),
    ]
    new, scored = score_runs(state, runs, 22_100.0, NOW)
    assert [s.updated for s in scored] == [0, 0, 0, 0, 0]
    assert scored[4].direction == 0.0
    assert new.to_json() == state.to_json()
    assert new == state


def test_no_runs_is_the_same_state() -> None:
    state = rich_state(BreakerConfig())
    new, scored = score_runs(state, [], 22_000.0, NOW)
    assert scored == () and new == state


def bearish_after_rises(k: int) -> list[PastRun]:
    """``k`` hourly runs whose bearish ``meanrev`` reading the later spot proves wrong."""
    return [run(("meanrev", "direction", -0.5, True), asof=T0 + timedelta(hours=i),
                spot=22_000.0 - 10.0 * i, regime="range") for i in range(k)]


def test_the_breaker_opens_after_max_consecutive_bad_outcomes() -> None:
    config = BreakerConfig(max_consecutive_bad=3)
    state = SignalState(breaker_config=config)
    two, _ = score_runs(state, bearish_after_rises(2), 22_500.0, NOW)
    assert two.breakers["meanrev"].state is BreakerState.CLOSED
    assert two.breakers["meanrev"].consecutive_bad == 2
    assert two.breakers["meanrev"].config == config

    three, scored = score_runs(state, bearish_after_rises(3), 22_500.0, NOW)
    b = three.breakers["meanrev"]
    assert [s.updated for s in scored] == [1, 1, 1]
    assert b.state is BreakerState.OPEN and b.multiplier == 0.0
    assert b.opened_at == NOW
    assert b.last_transition is not None
    assert b.last_transition.at == NOW
    assert b.last_transition.from_state is BreakerState.CLOSED
    assert b.last_transition.to_state is BreakerState.OPEN
    assert "3 consecutive bad outcomes (limit 3)" in b.last_transition.reason
    # every wrong outcome still counts against the weight
    assert three.weights.posterior("meanrev", "range") == pytest.approx((2.0, 3.5))

    # more bad outcomes while open (cool-down not over) leave the breaker as it was
    four, _ = score_runs(state, bearish_after_rises(4), 22_500.0, NOW)
    assert four.breakers["meanrev"] == b
    # and the open breaker survives the JSON round trip with its config
    assert SignalState.from_json(three.to_json(), breaker_config=config) == three

    # the default config needs five
    five_default, _ = score_runs(SignalState(), bearish_after_rises(4), 22_500.0, NOW)
    assert five_default.breakers["meanrev"].state is BreakerState.CLOSED


def test_a_cooled_down_breaker_is_on_trial_when_scored() -> None:
    config = BreakerConfig(max_consecutive_bad=3, cooldown=timedelta(days=1))
    opened, _ = score_runs(SignalState(breaker_config=config), bearish_after_rises(3),
                           22_500.0, NOW)
    right = run(("meanrev", "direction", -0.5, True), asof=NOW, spot=22_500.0)
    later = NOW + timedelta(days=2)
    trial, _ = score_runs(opened, [right], 22_000.0, later)
    b = trial.breakers["meanrev"]
    assert b.state is BreakerState.HALF_OPEN and b.trial_good == 1
    assert b.last_transition is not None and b.last_transition.at == later


def ordered_runs() -> list[PastRun]:
    """Five runs of one signal whose outcomes, oldest first, are good, bad, bad, good, bad
    (bullish ``trend`` readings; the final spot is 22,000: runs below it were right)."""
    spots = [21_900.0, 22_100.0, 22_050.0, 21_800.0, 22_200.0]
    scores = [0.3, 0.5, 0.7, 0.9, 0.4]
    return [run(("trend", "direction", s, True), asof=T0 + timedelta(hours=i), spot=p,
                regime="range") for i, (p, s) in enumerate(zip(spots, scores, strict=True))]


def test_runs_are_scored_oldest_first_whatever_the_input_order() -> None:
    config = BreakerConfig(max_consecutive_bad=3)
    state = SignalState(breaker_config=config)
    runs = ordered_runs()
    expected, expected_scored = score_runs(state, runs, 22_000.0, NOW)
    b = expected.breakers["trend"]
    assert b.state is BreakerState.CLOSED
    assert b.recent == (True, False, False, True, False)
    assert b.consecutive_bad == 1
    assert expected.weights.posterior("trend", "range") == pytest.approx(
        (2.0 + 0.3 + 0.9, 2.0 + 0.5 + 0.7 + 0.4))
    assert [s.direction for s in expected_scored] == pytest.approx(
        [math.log(22_000.0 / r.spot) for r in runs])

    gen = seeded()
    orders = [list(p) for p in permutations(range(len(runs)))][1:]  # not the identity
    for k in gen.choice(len(orders), size=12, replace=False):
        shuffled = [runs[i] for i in orders[int(k)]]
        got, got_scored = score_runs(state, shuffled, 22_000.0, NOW)
        assert got == expected
        assert got.to_json() == expected.to_json()
        assert got_scored == expected_scored  # reported oldest first too
    got, _ = score_runs(state, reversed(runs), 22_000.0, NOW)  # any iterable, newest first
    assert got == expected


def test_the_order_matters_for_the_breaker() -> None:
    """The check above has teeth: folding the runs newest first, one call each, gives
    another breaker (outcomes B G B B G) and the same weights (they commute)."""
    config = BreakerConfig(max_consecutive_bad=3)
    runs = ordered_runs()
    oldest_first, _ = score_runs(SignalState(breaker_config=config), runs, 22_000.0, NOW)
    newest_first = SignalState(breaker_config=config)
    for r in reversed(runs):
        newest_first, _ = score_runs(newest_first, [r], 22_000.0, NOW)
    assert newest_first.breakers["trend"].recent == (False, True, False, False, True)
    assert newest_first.breakers["trend"].consecutive_bad == 0
    assert newest_first.breakers != oldest_first.breakers
    assert newest_first.weights.posterior("trend", "range") == pytest.approx(
        oldest_first.weights.posterior("trend", "range"))
