"""The production models' forecasts at a snapshot (``shared/domain/decide/forecasts.py``):
the log-HAR vol forecast and the direction model's P(up) from the underlying's daily bars.

Bars are seeded (``np.random.default_rng(1234)``) GBM sessions with clustered volatility,
so that the fitted log-HAR has real coefficients. Daily direction is a coin flip there, so
the direction model's Platt slope may well be 0 (every row the same P(up)); the checks that
need P(up) to vary with the row use the same trees with an identity calibration.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from shared.domain.decide.forecasts import (
    Forecast,
    SpotBars,
    direction_probability,
    har_vol_forecast,
)
from shared.domain.features import Panel, compute_features, default_features
from shared.domain.models.direction import (
    DirectionFit,
    DirectionModel,
    DirectionPredictor,
    PlattCalibration,
    direction_labels,
)
from shared.domain.models.trainers import HarVolTrainer
from shared.domain.models.vol import (
    TRADING_DAYS,
    HarFit,
    HarModel,
    annualised_vol,
    garman_klass_variance,
    har_features,
)

N_DAYS = 600
HORIZON = 5


def seeded() -> np.random.Generator:
    return np.random.default_rng(1234)


def session_bars(n: int, gen: np.random.Generator, steps: int = 20) -> SpotBars:
    """``n`` daily OHLC bars: each session a ``steps``-step GBM path from the open, daily vol
    ``exp(h_t)`` with ``h`` an AR(1) around ln 1 % and a small overnight gap."""
    base = math.log(0.01)
    h = base
    prev = 22_000.0
    o, hi, lo, c = (np.empty(n) for _ in range(4))
    for t in range(n):
        h = base + 0.9 * (h - base) + 0.2 * gen.standard_normal()
        sigma = math.exp(h)
        start = prev * math.exp(0.002 * gen.standard_normal())
        moves = sigma / math.sqrt(steps) * gen.standard_normal(steps)
        path = start * np.exp(np.r_[0.0, np.cumsum(moves)])
        o[t], hi[t], lo[t], c[t] = start, path.max(), path.min(), path[-1]
        prev = c[t]
    dates = np.datetime64("2022-01-03") + np.arange(n)
    return SpotBars(dates, o, hi, lo, c)


def head(bars: SpotBars, k: int) -> SpotBars:
    """The first ``k`` bars."""
    return SpotBars(bars.dates[:k], bars.open[:k], bars.high[:k], bars.low[:k], bars.close[:k])


def tail(bars: SpotBars, k: int) -> SpotBars:
    """The last ``k`` bars."""
    return SpotBars(bars.dates[-k:], bars.open[-k:], bars.high[-k:], bars.low[-k:],
                    bars.close[-k:])


def edited(bars: SpotBars, **columns: np.ndarray) -> SpotBars:
    return SpotBars(bars.dates, columns.get("open", bars.open), columns.get("high", bars.high),
                    columns.get("low", bars.low), columns.get("close", bars.close))


@pytest.fixture(scope="module")
def bars() -> SpotBars:
    return session_bars(N_DAYS, seeded())


@pytest.fixture(scope="module")
def har_fit(bars: SpotBars) -> HarFit:
    rv = garman_klass_variance(bars.open, bars.high, bars.low, bars.close)
    assert np.all(rv > 0)
    return HarModel(log=True).fit(rv, HORIZON)


@pytest.fixture(scope="module")
def direction_fit(bars: SpotBars) -> DirectionFit:
    fm = compute_features(bars.panel(), default_features())
    labels = direction_labels(bars.close, horizon=HORIZON)
    rows = fm.complete_rows & labels.trainable
    return DirectionModel(calibration_folds=2, num_boost_round=30,
                          params={"min_data_in_leaf": 20}).fit(
        fm.values[rows], labels.up[rows], feature_names=fm.names)


@pytest.fixture(scope="module")
def predictor(direction_fit: DirectionFit) -> DirectionPredictor:
    """What serving loads: the predictor from the fit's artifact bytes."""
    return DirectionPredictor.from_bytes(direction_fit.to_bytes())


@pytest.fixture(scope="module")
def raw_predictor(predictor: DirectionPredictor) -> DirectionPredictor:
    """The same trees with the identity calibration: P(up) = sigmoid(raw score), which
    varies with the row whatever slope the Platt fit found."""
    return dataclasses.replace(predictor, calibration=PlattCalibration(a=1.0, b=0.0))


# --- SpotBars ----------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
def test_spot_bars_reject_a_column_of_another_length(column: str) -> None:
    cols = {k: np.full(5, 100.0) for k in ("open", "high", "low", "close")}
    cols[column] = np.full(4, 100.0)
    with pytest.raises(ValueError, match=rf"{column} has shape \(4,\), dates has \(5,\)"):
        SpotBars(np.datetime64("2024-07-01") + np.arange(5), **cols)


def test_spot_bars_reject_a_two_dimensional_column() -> None:
    cols = {k: np.full(4, 100.0) for k in ("open", "high", "low", "close")}
    cols["close"] = np.full((4, 1), 100.0)
    with pytest.raises(ValueError, match="close has shape"):
        SpotBars(np.datetime64("2024-07-01") + np.arange(4), **cols)


def test_spot_bars_coerce_their_types() -> None:
    b = SpotBars(np.array(["2024-07-01", "2024-07-02"]), [1, 2], [3, 4], [0, 1], [2, 3])
    assert len(b) == 2
    assert b.dates.dtype == np.dtype("datetime64[D]")
    assert all(getattr(b, k).dtype == np.float64 for k in ("open", "high", "low", "close"))
    panel = b.panel()
    assert isinstance(panel, Panel)
    assert sorted(panel.columns) == ["close", "high", "low", "open"]
    assert np.array_equal(panel["high"], [3.0, 4.0])


# --- har_vol_forecast --------------------------------------------------------------------


def test_har_forecast_is_the_fitted_models_forecast_at_the_last_bar(bars, har_fit) -> None:
    fc = har_vol_forecast(har_fit, bars)
    assert isinstance(fc, Forecast) and fc.reason is None
    assert isinstance(fc.value, float)
    # through the library's own pieces
    rv = garman_klass_variance(bars.open, bars.high, bars.low, bars.close)
    expected = float(annualised_vol(har_fit.predict(har_features(rv).X[-1])[0]))
    assert fc.value == pytest.approx(expected, rel=1e-12)
    # and by hand: exp(b0 + bd ln RV_d + bw ln RV_w + bm ln RV_m + s^2/2), annualised
    p = har_fit.params
    log_var = (p.const + p.daily * math.log(rv[-1]) + p.weekly * math.log(rv[-5:].mean())
               + p.monthly * math.log(rv[-22:].mean()) + 0.5 * har_fit.resid_var)
    assert fc.value == pytest.approx(math.sqrt(TRADING_DAYS * math.exp(log_var)), rel=1e-12)
    assert 0.05 < fc.value < 0.5  # a plausible vol for ~1 %-a-day sessions


def test_har_forecast_moves_with_the_bars(bars, har_fit) -> None:
    """Different snapshots give different forecasts, each the formula at its last bar."""
    rv = garman_klass_variance(bars.open, bars.high, bars.low, bars.close)
    all_rows = har_fit.predict(har_features(rv))
    values = []
    for k in (22, 60, 250, 480, N_DAYS - 1):
        fc = har_vol_forecast(har_fit, head(bars, k))
        assert fc.value == pytest.approx(float(annualised_vol(all_rows[k - 1])), rel=1e-12)
        values.append(fc.value)
    assert len(set(values)) == len(values)


def test_har_forecast_reads_only_the_last_22_sessions(bars, har_fit) -> None:
    full = har_vol_forecast(har_fit, bars).value
    assert har_vol_forecast(har_fit, tail(bars, 22)).value == pytest.approx(full, rel=1e-12)
    # a broken bar 23 sessions back does not matter; one 22 back does
    high = bars.high.copy()
    high[-23] = math.nan
    assert har_vol_forecast(har_fit, edited(bars, high=high)).value == pytest.approx(
        full, rel=1e-12)
    high = bars.high.copy()
    high[-22] = math.nan
    assert har_vol_forecast(har_fit, edited(bars, high=high)).value is None


def test_har_forecast_from_the_trainers_artifact_is_the_same(bars, har_fit) -> None:
    """Serving loads the fit from the artifact HarVolTrainer writes; same forecast."""
    artifact = json.dumps({
        "kind": "har_rv", "horizon": har_fit.horizon, "log": True,
        "params": list(har_fit.params.as_array()), "resid_var": har_fit.resid_var,
        "n_obs": har_fit.n_obs, "in_sample_r2": har_fit.r2,
        "features": ["rv_d", "rv_w", "rv_m"], "rv": "garman_klass_daily_variance",
    }, sort_keys=True).encode()
    loaded = HarVolTrainer.load(artifact)
    assert har_vol_forecast(loaded, bars) == har_vol_forecast(har_fit, bars)


@pytest.mark.parametrize("n", [0, 1, 21])
def test_har_forecast_needs_22_bars(bars, har_fit, n: int) -> None:
    fc = har_vol_forecast(har_fit, head(bars, n))
    assert fc.value is None
    assert fc.reason == f"5-day HAR needs 22 daily bars, have {n}"
    assert har_vol_forecast(har_fit, head(bars, 22)).value is not None


@pytest.mark.parametrize(("column", "back"), [("high", 1), ("low", 10), ("close", 22),
                                              ("open", 5)])
def test_har_forecast_is_none_when_the_window_holds_a_nan(bars, har_fit, column: str,
                                                          back: int) -> None:
    values = getattr(bars, column).copy()
    values[-back] = math.nan
    fc = har_vol_forecast(har_fit, edited(bars, **{column: values}))
    assert fc.value is None
    assert fc.reason is not None and "22" in fc.reason and "not all finite" in fc.reason


def test_har_forecast_is_none_for_an_inconsistent_bar(bars, har_fit) -> None:
    high = bars.high.copy()
    high[-3] = bars.low[-3] * 0.999  # a high below the low: no Garman-Klass variance
    fc = har_vol_forecast(har_fit, edited(bars, high=high))
    assert fc.value is None and fc.reason is not None and "22" in fc.reason


def test_a_non_positive_variance_forecast_is_refused(bars, har_fit) -> None:
    """A level-form HAR can forecast a negative variance: None with the reason."""
    negative = dataclasses.replace(har_fit, log=False, params=dataclasses.replace(
        har_fit.params, const=-1.0, daily=0.0, weekly=0.0, monthly=0.0))
    fc = har_vol_forecast(negative, bars)
    assert fc.value is None
    assert fc.reason == "HAR forecast -1.0 is not a positive variance"


def test_a_flat_last_session_gets_the_trainers_floor(bars, har_fit) -> None:
    """Today's bar at the session's first snapshot is open = high = low = close."""
    o, hi, lo, c = (x.copy() for x in (bars.open, bars.high, bars.low, bars.close))
    o[-1] = hi[-1] = lo[-1] = c[-1] = bars.close[-2]
    flat = SpotBars(bars.dates, o, hi, lo, c)
    rv = garman_klass_variance(o, hi, lo, c)
    assert rv[-1] == 0.0
    floored = np.maximum(rv, 1e-10)  # what HarVolTrainer trained on
    expected = float(annualised_vol(har_fit.predict(har_features(floored).X[-1])[0]))
    assert har_vol_forecast(har_fit, flat).value == pytest.approx(expected, rel=1e-12)


# --- direction_probability ---------------------------------------------------------------


def test_the_served_predictor_is_the_fit(bars, predictor, direction_fit) -> None:
    """Precondition of the checks below: the predictor loaded from the artifact bytes
    is the fit (same names, calibration and trees) and the trees are not trivial."""
    assert predictor.feature_names == direction_fit.feature_names
    assert predictor.feature_names == tuple(f.name for f in default_features())
    assert predictor.calibration == direction_fit.calibration
    fm = compute_features(bars.panel(), default_features())
    rows = fm.values[fm.complete_rows]
    assert np.array_equal(predictor.ensemble.raw(rows), direction_fit.ensemble.raw(rows))
    assert np.unique(predictor.ensemble.raw(rows)).size > 10


def test_p_up_is_the_predictor_on_the_last_rows_features(bars, predictor, raw_predictor,
                                                         direction_fit) -> None:
    fm = compute_features(bars.panel(), default_features())
    last = np.array([fm.column(n)[-1] for n in predictor.feature_names])
    assert np.all(np.isfinite(last))
    fc = direction_probability(predictor, bars)
    assert fc.reason is None and isinstance(fc.value, float)
    assert fc.value == predictor.predict_one(last)
    assert fc.value == direction_fit.predict_one(last)
    assert fc.value == pytest.approx(float(direction_fit.predict(last[None])[0]), rel=1e-12)
    assert 0.0 <= fc.value <= 1.0
    # with P(up) varying by row: the last row's, not the one before
    raw = direction_probability(raw_predictor, bars).value
    assert raw == raw_predictor.predict_one(last)
    assert raw != raw_predictor.predict_one(fm.values[-2])
    assert raw == pytest.approx(1.0 / (1.0 + math.exp(-direction_fit.ensemble.raw_one(last))))
    assert 0.0 < raw < 1.0


@pytest.mark.parametrize("which", ["predictor", "raw_predictor"])
def test_p_up_at_each_snapshot_uses_only_bars_up_to_it(bars, which: str,
                                                       request: pytest.FixtureRequest) -> None:
    """A prefix's P(up) is the predictor on the full history's features at that row
    (point in time)."""
    predictor: DirectionPredictor = request.getfixturevalue(which)
    fm = compute_features(bars.panel(), default_features())
    values = []
    for k in (23, 24, 100, 301, 450, N_DAYS):
        fc = direction_probability(predictor, head(bars, k))
        assert fc.value == predictor.predict_one(fm.values[k - 1])
        assert 0.0 <= fc.value <= 1.0
        values.append(fc.value)
    if which == "raw_predictor":  # the check has teeth: the rows' probabilities differ
        assert len(set(values)) == len(values)


def test_p_up_picks_the_features_by_name(bars, raw_predictor) -> None:
    """A model whose columns are in another order gets its row in its own order."""
    predictor = raw_predictor
    names = predictor.feature_names[::-1]
    shuffled = dataclasses.replace(predictor, feature_names=names)
    fm = compute_features(bars.panel(), default_features())
    row = np.array([fm.column(n)[-1] for n in names])
    fc = direction_probability(shuffled, bars)
    assert fc.value == predictor.predict_one(row)
    assert fc.value != direction_probability(predictor, bars).value


def test_p_up_is_none_for_a_feature_we_do_not_compute(bars, predictor) -> None:
    odd = dataclasses.replace(predictor,
                              feature_names=(*predictor.feature_names[:-1], "vix_close"))
    fc = direction_probability(odd, bars)
    assert fc.value is None
    assert fc.reason == "model wants features we do not compute: ['vix_close']"


@pytest.mark.parametrize("n", [0, 1, 5, 21, 22])
def test_p_up_is_none_during_the_features_warm_up(bars, predictor, n: int) -> None:
    fc = direction_probability(predictor, head(bars, n))
    assert fc.value is None
    assert fc.reason == (f"features not all available at the last of {n} bars "
                         "(warm-up needs 23 sessions)")


def test_23_bars_are_enough_for_p_up(bars, predictor) -> None:
    fm = compute_features(head(bars, 23).panel(), default_features())
    assert fm.complete_rows.tolist() == [False] * 22 + [True]
    assert direction_probability(predictor, head(bars, 23)).value is not None


def test_p_up_is_none_when_the_last_bar_is_broken(bars, predictor) -> None:
    close = bars.close.copy()
    close[-1] = math.nan
    fc = direction_probability(predictor, edited(bars, close=close))
    assert fc.value is None and fc.reason is not None and "warm-up" in fc.reason
    # a broken bar long ago (outside every feature's window) does not matter
    close = bars.close.copy()
    close[-40] = math.nan
    assert direction_probability(predictor, edited(bars, close=close)) == \
        direction_probability(predictor, bars)


def test_the_models_see_completed_sessions_only(bars) -> None:
    """decide hands the models the bars before today: today's partial bar is left out."""
    last = bars.dates[-1]
    before = bars.before(last)
    assert len(before) == len(bars) - 1 and before.dates[-1] < last
    assert np.array_equal(before.close, bars.close[:-1])
    assert len(bars.before(bars.dates[0])) == 0
