"""The live IC of served forecasts: aligned with the right future sessions (a forecast that
*is* the realised outcome has IC 1 everywhere), decay detected when the skill goes, and
too little evidence said so."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from shared.domain.models.live_ic import live_ic, model_kind
from shared.domain.models.vol import floor_variance, garman_klass_variance

N = 160


def _bars(rng: np.random.Generator):
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(N)]
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.15, N)))  # daily vol that wanders
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, vol)))
    open_ = close * np.exp(rng.normal(0, 0.3 * vol))
    span = np.abs(rng.normal(0, vol, N)) + 0.2 * vol
    high = np.maximum(open_, close) * np.exp(span)
    low = np.minimum(open_, close) * np.exp(-span)
    return days, open_, high, low, close


def _realised_vol(o, h, lo, c, i: int, horizon: int) -> float:
    gk = floor_variance(garman_klass_variance(o, h, lo, c))
    return math.sqrt(252.0 * float(np.mean(gk[i + 1:i + 1 + horizon])))


def test_model_types_that_can_be_scored():
    assert model_kind("vol_har_5d") == ("volatility", 5)
    assert model_kind("vol_har_22d") == ("volatility", 22)
    assert model_kind("direction_lgbm_5d") == ("direction", 5)
    assert model_kind("wing_select") is None and model_kind("vol_har_xd") is None


@pytest.mark.parametrize("kind", ["volatility", "direction"])
def test_a_forecast_that_is_the_outcome_has_ic_one(kind):
    days, o, h, lo, c = _bars(np.random.default_rng(1234))
    horizon = 5
    k = N - horizon
    if kind == "volatility":
        truth = [_realised_vol(o, h, lo, c, i, horizon) for i in range(k)]
    else:
        truth = [math.log(c[i + horizon] / c[i]) for i in range(k)]
    out = live_ic(days[:k], truth, days, o, h, lo, c, kind=kind, horizon=horizon)
    assert out.pairs == k
    assert out.decay is not None and out.decay.determined
    assert out.decay.reference_mean == pytest.approx(1.0)
    assert out.decay.recent_mean == pytest.approx(1.0)
    assert not out.decay.decayed
    # one session off, the identity breaks: the alignment is what makes it 1
    shifted = live_ic(days[1:k], truth[:-1], days, o, h, lo, c, kind=kind, horizon=horizon)
    assert shifted.decay.recent_mean < 0.9


def test_skill_that_goes_is_flagged_as_decay():
    rng = np.random.default_rng(1234)
    days, o, h, lo, c = _bars(rng)
    horizon = 5
    k = N - horizon
    truth = np.array([_realised_vol(o, h, lo, c, i, horizon) for i in range(k)])
    preds = truth * np.exp(rng.normal(0, 0.05, k))
    preds[-25:] = rng.permutation(preds[-25:])  # the last stretch: no skill left
    out = live_ic(days[:k], preds, days, o, h, lo, c, kind="volatility", horizon=horizon)
    assert out.decay.reference_mean > 0.8
    assert out.decay.decayed and out.decay.recent_mean < 0.5 * out.decay.reference_mean


def test_too_little_evidence_is_said_and_future_horizons_are_left_out():
    days, o, h, lo, c = _bars(np.random.default_rng(1234))
    out = live_ic(days[-30:], [0.1] * 30, days, o, h, lo, c, kind="volatility", horizon=5)
    assert out.decay is None and out.pairs == 25  # the last 5 have no outcome yet
    assert "needs 79" in out.reason
    missing = live_ic([date(1999, 1, 1)], [0.1], days, o, h, lo, c, kind="direction",
                      horizon=5)
    assert missing.pairs == 0
    with pytest.raises(ValueError, match="horizon"):
        live_ic(days, [0.1] * N, days, o, h, lo, c, kind="direction", horizon=0)
