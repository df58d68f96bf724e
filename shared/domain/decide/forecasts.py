"""The production models' forecasts at a snapshot, from the underlying's daily bars. Pure.

The bars are the underlying's own sessions as chain_poll recorded them (one bar per IST
session from the spots of its published snapshots: open = first, high = max, low = min,
close = last), oldest first, and **completed sessions only** (:meth:`SpotBars.before`
today): the models are trained on whole days, and today's partial bar (flat at the first
snapshot) would bias the vol forecast low. Snapshot spots sample the
session every few minutes, so the high-low range, and with it the Garman-Klass variance,
is a slight under-estimate of the true one; the models see the same construction at every
snapshot.

* :func:`har_vol_forecast`: the log-HAR model's forecast of the mean daily variance over
  its horizon, annualised as ``sqrt(252 * variance)`` (trading-day convention, the models'
  own), from Garman-Klass daily variances (:func:`shared.domain.features.garman_klass_variance`).
* :func:`direction_probability`: the LightGBM direction model's calibrated P(up) on the
  last bar's point-in-time features (:func:`shared.domain.features.default_features`).

Each returns a :class:`Forecast` whose ``value`` is None with a ``reason`` when the bars
cannot feed the model (too few sessions, a non-finite feature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.domain.chain import ChainSnapshot
from shared.domain.features import Panel, compute_features, default_features, garman_klass_variance
from shared.domain.models.direction import DirectionPredictor
from shared.domain.models.vol import HarFit, annualised_vol, floor_variance, har_features

__all__ = ["Forecast", "SpotBars", "direction_probability", "har_vol_forecast", "wing_width"]

HAR_WINDOW = 22


@dataclass(frozen=True, slots=True)
class SpotBars:
    """Daily OHLC of the underlying, oldest first (index points); ``dates`` are
    ``datetime64[D]`` IST session dates, strictly ascending."""

    dates: npt.NDArray[np.datetime64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.dates)
        for name in ("open", "high", "low", "close"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (n,):
                raise ValueError(f"{name} has shape {a.shape}, dates has ({n},)")
            object.__setattr__(self, name, a)
        dates = np.asarray(self.dates, dtype="datetime64[D]")
        if n > 1 and not bool(np.all(dates[1:] > dates[:-1])):
            raise ValueError("dates must be strictly ascending")
        object.__setattr__(self, "dates", dates)

    def __len__(self) -> int:
        return len(self.dates)

    def before(self, day: np.datetime64) -> SpotBars:
        """The completed sessions before ``day`` (the models are trained on whole days)."""
        keep = self.dates < np.datetime64(day, "D")
        return SpotBars(self.dates[keep], self.open[keep], self.high[keep], self.low[keep],
                        self.close[keep])

    def panel(self) -> Panel:
        return Panel(self.dates, {"open": self.open, "high": self.high, "low": self.low,
                                  "close": self.close})


@dataclass(frozen=True, slots=True)
class Forecast:
    """A model's output at the last bar, or None and why."""

    value: float | None
    reason: str | None = None


def har_vol_forecast(fit: HarFit, bars: SpotBars) -> Forecast:
    """Annualised vol forecast over the model's horizon (see the module docstring)."""
    if len(bars) < HAR_WINDOW:
        return Forecast(None, f"{fit.horizon}-day HAR needs {HAR_WINDOW} daily bars, "
                              f"have {len(bars)}")
    # a flat day (today's first snapshot: open = high = low = close) gets the floor the
    # model was trained with; an unusable one (NaN) stays NaN and refuses the forecast
    rv = floor_variance(garman_klass_variance(bars.panel()))
    x = har_features(rv)
    if not bool(x.valid[-1]):
        return Forecast(None, "the last 22 sessions' realised variance is not all finite")
    var = float(fit.predict(x.X[-1])[0])
    if not (math.isfinite(var) and var > 0):
        return Forecast(None, f"HAR forecast {var!r} is not a positive variance")
    return Forecast(float(annualised_vol(var)))


def direction_probability(model: DirectionPredictor, bars: SpotBars) -> Forecast:
    """Calibrated P(up) over the model's horizon at the last bar."""
    fm = compute_features(bars.panel(), default_features())
    if tuple(model.feature_names) != tuple(fm.names):
        missing = sorted(set(model.feature_names) - set(fm.names))
        if missing:
            return Forecast(None, f"model wants features we do not compute: {missing}")
    row = np.array([fm.column(n)[-1] for n in model.feature_names]) if len(fm.index) else None
    if row is None or not np.all(np.isfinite(row)):
        return Forecast(None, f"features not all available at the last of {len(bars)} bars "
                              "(warm-up needs 23 sessions)")
    return Forecast(float(model.predict_one(row)))


def wing_width(fit: Any, chain: ChainSnapshot, *, expiry: date, t_years: float, lot_size: int,
               rate: float, previous_close: float | None = None) -> Forecast:
    """The production wing model's iron-condor wing (index points): the candidate distance
    with the highest predicted net return among the live candidates
    (:func:`shared.domain.models.wings.candidate_features`, the same features it was
    trained on; :meth:`WingFit.best_wing`). None with the reason when the snapshot has no
    candidate."""
    from shared.domain.models.wings import candidate_features

    cands = candidate_features(chain, expiry=expiry, t_years=t_years, lot_size=lot_size,
                               rate=rate, previous_close=previous_close)
    if cands.market is None or cands.features.n_rows == 0:
        why = "; ".join(s.reason for s in cands.skipped) or "no candidate condor"
        return Forecast(None, why)
    return Forecast(fit.best_wing(cands.features).distance)
