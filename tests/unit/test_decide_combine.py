"""Layer 2: regime classifier, Bayesian weights, circuit breakers and the consensus."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.domain.decide.combine import (
    REGIME_LABELS,
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    RegimeCall,
    RegimeThresholds,
    SignalWeights,
    classify_regime,
    combine,
    outcome_is_good,
)
from shared.domain.decide.readings import Axis, SignalReading
from shared.domain.risk.walls import DEFAULT_REGIME_STRUCTURES

T0 = datetime(2024, 7, 1, 9, 15, tzinfo=UTC)


def reading(name: str, score: float, confidence: float = 0.8,
            axis: Axis = Axis.DIRECTION) -> SignalReading:
    return SignalReading(name=name, axis=axis, score=score, confidence=confidence)


# --- regime ------------------------------------------------------------------------------


def test_regime_labels_match_the_risk_castle_table() -> None:
    assert set(REGIME_LABELS) == set(DEFAULT_REGIME_STRUCTURES)


@pytest.mark.parametrize(("kwargs", "label"), [
    (dict(iv=0.14, rv=0.12, trend_z=0.3, iv_percentile=0.50), "range"),
    (dict(iv=0.10, rv=0.08, trend_z=-0.5, iv_percentile=0.10), "low_vol"),
    (dict(iv=0.25, rv=0.20, trend_z=0.2, iv_percentile=0.90), "high_vol"),
    (dict(iv=0.14, rv=0.20, trend_z=0.0, iv_percentile=0.50), "high_vol"),  # RV/IV 1.43
    (dict(iv=0.10, rv=0.14, trend_z=0.0, iv_percentile=0.10), "high_vol"),  # cheap, hot
    (dict(iv=0.14, rv=0.12, trend_z=2.1, iv_percentile=0.50), "trending_up"),
    (dict(iv=0.14, rv=0.12, trend_z=-1.5, iv_percentile=0.50), "trending_down"),
    (dict(iv=0.40, rv=0.60, trend_z=-3.0, iv_percentile=0.99), "crisis"),
    (dict(iv=0.40, rv=0.30, trend_z=-3.0, iv_percentile=0.99), "trending_down"),
    (dict(iv=0.14, rv=0.12, trend_z=2.0, iv_percentile=0.50, event_ahead=True), "event"),
    (dict(iv=0.40, rv=0.60, trend_z=0.0, iv_percentile=0.99, event_ahead=True), "crisis"),
])
def test_classify_regime_hand_made_cases(kwargs: dict, label: str) -> None:
    call = classify_regime(**kwargs)
    assert isinstance(call, RegimeCall)
    assert call.label == label
    assert call.label in DEFAULT_REGIME_STRUCTURES
    assert call.reason.startswith(label)
    assert call.rv_iv == pytest.approx(kwargs["rv"] / kwargs["iv"])
    assert call.inputs["iv_percentile"] == kwargs["iv_percentile"]


def test_classify_regime_thresholds_and_validation() -> None:
    kw = dict(iv=0.14, rv=0.12, trend_z=1.2, iv_percentile=0.5)
    assert classify_regime(**kw).label == "range"
    assert classify_regime(**kw, thresholds=RegimeThresholds(trend_z=1.0)).label == \
        "trending_up"
    with pytest.raises(ValueError):
        classify_regime(iv=0.0, rv=0.1, trend_z=0.0, iv_percentile=0.5)
    with pytest.raises(ValueError):
        classify_regime(iv=0.1, rv=0.1, trend_z=float("nan"), iv_percentile=0.5)
    with pytest.raises(ValueError):
        classify_regime(iv=0.1, rv=0.1, trend_z=0.0, iv_percentile=1.5)
    with pytest.raises(ValueError):
        RegimeThresholds(low_iv_percentile=0.9)


# --- weights -----------------------------------------------------------------------------


def test_outcome_is_good() -> None:
    assert outcome_is_good(0.5, 10.0) is True
    assert outcome_is_good(-0.5, 10.0) is False
    assert outcome_is_good(0.0, 10.0) is None
    assert outcome_is_good(0.5, 0.0) is None


def test_weights_move_toward_the_right_signal_and_away_from_the_wrong_one() -> None:
    rng = np.random.default_rng(7)
    w0 = SignalWeights()
    w = w0
    names = ["right", "wrong", "noise"]
    for _ in range(60):
        move = float(rng.normal())
        w = w.update("right", "range", 0.7 * np.sign(move), move)
        w = w.update("wrong", "range", -0.7 * np.sign(move), move)
        w = w.update("noise", "range", float(rng.choice([-0.7, 0.7])), move)
    start = w0.weights("range", names)
    end = w.weights("range", names)
    assert start == pytest.approx({n: 1 / 3 for n in names})
    assert end["right"] > 0.6 > start["right"]
    assert end["wrong"] < 0.05
    assert end["right"] > end["noise"] > end["wrong"]
    assert sum(end.values()) == pytest.approx(1.0)
    # the old object is untouched, and other regimes are unaffected
    assert w0.posteriors == {}
    assert w.weights("trending_up", names) == pytest.approx({n: 1 / 3 for n in names})


def test_new_signal_counts_but_does_not_dominate() -> None:
    w = SignalWeights()
    for _ in range(30):
        w = w.update("veteran", "range", 1.0, 1.0)
    ws = w.weights("range", ["veteran", "rookie"])
    assert 0.25 < ws["rookie"] < 0.5 < ws["veteran"]
    assert w.mean("rookie", "range") == 0.5


def test_weights_update_is_immutable_and_deterministic() -> None:
    w = SignalWeights()
    a = w.update("s", "range", 0.5, 2.0)
    b = w.update("s", "range", 0.5, 2.0)
    assert a == b and a is not w
    assert a.posterior("s", "range") == (2.5, 2.0)
    assert w.update("s", "range", 0.0, 2.0) is w  # no view: no information
    assert a.signals() == ("s",)
    with pytest.raises(TypeError):
        a.posteriors[("range", "s")] = (1.0, 1.0)  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        a.prior_a = 3.0  # type: ignore[misc]


# --- circuit breaker ---------------------------------------------------------------------


CFG = BreakerConfig(max_consecutive_bad=3, window=10, min_samples=6, min_hit_rate=0.4,
                    cooldown=timedelta(hours=6), half_open_weight=0.5, trial_successes=2)


def test_breaker_closed_open_half_open_closed() -> None:
    b = CircuitBreaker("iv_rv", CFG)
    assert b.state is BreakerState.CLOSED and b.multiplier == 1.0
    b = b.record(True, T0)
    b = b.record(False, T0 + timedelta(minutes=1))
    b = b.record(False, T0 + timedelta(minutes=2))
    assert b.state is BreakerState.CLOSED and b.consecutive_bad == 2
    opened = b.record(False, T0 + timedelta(minutes=3))
    assert opened.state is BreakerState.OPEN and opened.multiplier == 0.0
    assert opened.opened_at == T0 + timedelta(minutes=3)
    assert "3 consecutive bad" in opened.last_transition.reason
    assert b.state is BreakerState.CLOSED  # immutable
    # outcomes during the cool-down are ignored; before the cool-down it stays open
    early = T0 + timedelta(hours=6, minutes=2)
    assert opened.record(True, early) == opened
    assert opened.at(early).state is BreakerState.OPEN
    half = opened.at(T0 + timedelta(hours=6, minutes=3))
    assert half.state is BreakerState.HALF_OPEN and half.multiplier == 0.5
    assert half.last_transition.from_state is BreakerState.OPEN
    assert "cool-down" in half.last_transition.reason
    h1 = half.record(True, T0 + timedelta(hours=7))
    assert h1.state is BreakerState.HALF_OPEN and h1.trial_good == 1
    closed = h1.record(True, T0 + timedelta(hours=8))
    assert closed.state is BreakerState.CLOSED and closed.multiplier == 1.0
    assert closed.opened_at is None and closed.recent == ()
    assert closed.last_transition.at == T0 + timedelta(hours=8)
    assert "trial passed" in closed.last_transition.reason


def test_breaker_half_open_reopens_on_a_bad_trial() -> None:
    b = CircuitBreaker("skew", CFG)
    for i in range(3):
        b = b.record(False, T0 + timedelta(minutes=i))
    assert b.state is BreakerState.OPEN
    # record() itself advances past the cool-down, then the bad trial re-opens
    t = T0 + timedelta(hours=7)
    b2 = b.record(True, t)
    assert b2.state is BreakerState.HALF_OPEN and b2.trial_good == 1
    b3 = b2.record(False, t + timedelta(minutes=5))
    assert b3.state is BreakerState.OPEN
    assert b3.opened_at == t + timedelta(minutes=5)
    assert b3.last_transition.from_state is BreakerState.HALF_OPEN
    assert "re-opened" in b3.last_transition.reason
    # a fresh cool-down from the re-opening
    assert b3.at(t + timedelta(hours=6)).state is BreakerState.OPEN
    assert b3.at(t + timedelta(hours=6, minutes=5)).state is BreakerState.HALF_OPEN


def test_breaker_opens_on_a_low_hit_rate_without_a_long_losing_run() -> None:
    b = CircuitBreaker("pcr", CFG)
    pattern = [True, False, False, True, False, False]  # hit rate 1/3, never 3 in a row
    for i, good in enumerate(pattern):
        b = b.record(good, T0 + timedelta(minutes=i))
    assert b.state is BreakerState.OPEN
    assert "hit rate 0.33" in b.last_transition.reason


def test_breaker_rejects_naive_and_backwards_times() -> None:
    b = CircuitBreaker("x", CFG)
    with pytest.raises(ValueError):
        b.record(True, datetime(2024, 7, 1))
    for i in range(3):
        b = b.record(False, T0 + timedelta(minutes=i))
    with pytest.raises(ValueError):
        b.at(T0 - timedelta(days=1))


# --- consensus ---------------------------------------------------------------------------


def test_agreeing_signals_give_high_confidence() -> None:
    rs = [reading("a", 0.8, 0.9), reading("b", 0.6, 0.9), reading("c", 0.7, 0.9)]
    c = combine(rs, SignalWeights(), {}, "range")
    d = c[Axis.DIRECTION]
    assert d.score == pytest.approx(0.7)
    assert d.agreement == 1.0 and d.disagreement == 0.0
    assert d.confidence == pytest.approx(0.9)
    assert sum(x.contribution for x in d.contributions) == pytest.approx(d.score)
    assert all(x.agrees for x in d.contributions)
    v = c[Axis.VOLATILITY]
    assert v.score == 0.0 and v.confidence == 0.0 and v.participants == 0


def test_strong_disagreement_cuts_confidence_rather_than_averaging() -> None:
    agree = [reading("a", 0.8, 0.9), reading("b", 0.8, 0.9)]
    dissent = reading("c", -0.8, 0.9)
    base = combine(agree, SignalWeights(), {}, "range")[Axis.DIRECTION]
    cut = combine([*agree, dissent], SignalWeights(), {}, "range")[Axis.DIRECTION]
    assert cut.score == pytest.approx(0.8 / 3)
    assert cut.agreement == pytest.approx(2 / 3)
    assert cut.disagreement == pytest.approx(1 / 3)
    # an average of the confidences would still say 0.9; the cut says 0.9 * (2/3 - 1/3)
    assert cut.base_confidence == pytest.approx(0.9)
    assert cut.confidence == pytest.approx(0.3)
    assert cut.confidence < base.confidence / 2
    assert [x.agrees for x in cut.contributions] == [True, True, False]
    # an even split: no confidence at all
    even = combine([reading("a", 0.8, 0.9), reading("c", -0.8, 0.9)], SignalWeights(), {},
                   "range")[Axis.DIRECTION]
    assert even.score == 0.0 and even.confidence == 0.0 and even.disagreement == 1.0


def test_weights_and_half_open_breakers_shape_the_score() -> None:
    w = SignalWeights()
    for _ in range(20):
        w = w.update("good", "range", 1.0, 1.0)
    rs = [reading("good", 0.5, 1.0), reading("other", -0.5, 1.0)]
    d = combine(rs, w, {}, "range")[Axis.DIRECTION]
    assert d.score > 0.0
    # in another regime the record does not count
    assert combine(rs, w, {}, "crisis")[Axis.DIRECTION].score == 0.0
    # half-open halves a signal's weight
    half = CircuitBreaker("other", CFG, state=BreakerState.HALF_OPEN)
    same = combine(rs, SignalWeights(), {"other": half}, "range")[Axis.DIRECTION]
    assert same.score == pytest.approx((0.5 - 0.25) / 1.5)
    assert same.contributions[1].breaker_multiplier == 0.5


def test_unavailable_and_open_signals_are_excluded_and_listed() -> None:
    opened = CircuitBreaker("broken", CFG)
    for i in range(3):
        opened = opened.record(False, T0 + timedelta(minutes=i))
    rs = [reading("a", 0.6, 0.8), reading("broken", -1.0, 1.0),
          SignalReading.missing("gone", Axis.DIRECTION, "no chain snapshot"),
          reading("vol", -0.4, 0.5, axis=Axis.VOLATILITY)]
    c = combine(rs, SignalWeights(), {"broken": opened}, classify_regime(
        iv=0.14, rv=0.12, trend_z=0.0, iv_percentile=0.5))
    assert c.regime == "range"
    d = c[Axis.DIRECTION]
    assert [x.name for x in d.contributions] == ["a"]
    assert d.score == pytest.approx(0.6) and d.confidence == pytest.approx(0.8)
    ex = {e.name: e for e in c.excluded}
    assert set(ex) == {"broken", "gone"}
    assert ex["broken"].code == "breaker_open" and "consecutive" in ex["broken"].reason
    assert ex["gone"].code == "unavailable" and ex["gone"].reason == "no chain snapshot"
    assert c[Axis.VOLATILITY].score == pytest.approx(-0.4)
    # once the cool-down has passed (now given), the broken signal is back, half-weight
    later = combine(rs, SignalWeights(), {"broken": opened}, "range",
                    now=T0 + timedelta(hours=7))[Axis.DIRECTION]
    assert [x.name for x in later.contributions] == ["a", "broken"]
    assert later.contributions[1].breaker_multiplier == 0.5


def test_combine_rejects_duplicate_names_and_scores_stay_in_range() -> None:
    with pytest.raises(ValueError):
        combine([reading("a", 0.1), reading("a", 0.2)], SignalWeights(), {}, "range")
    rng = np.random.default_rng(11)
    for _ in range(200):
        rs = [reading(f"s{i}", float(rng.uniform(-1, 1)), float(rng.uniform(0, 1)))
              for i in range(5)]
        d = combine(rs, SignalWeights(), {}, "range")[Axis.DIRECTION]
        assert -1.0 <= d.score <= 1.0
        assert 0.0 <= d.confidence <= d.base_confidence <= 1.0
        assert d.agreement + d.disagreement == pytest.approx(1.0)
