"""Volatility models (pure domain): realized measures, HAR-RV, GARCH/GJR and a walk-forward.

No I/O, no clock, no environment: inputs are numpy arrays (one element per trading day,
oldest first, or per intraday bar), results are frozen dataclasses whose arrays are
read-only copies. statsmodels and arch are imported lazily by the functions that need
them, so importing this module stays cheap.

Units
-----
returns
    Daily *log* returns as decimals: ``r_t = ln(C_t / C_{t-1})`` (0.01 is 1 %).
variance
    *Daily* variance of log returns, decimal, **not** annualised (a 1 %-a-day volatility
    is a variance of ``1e-4``). Every ``rv``, forecast and target in this module is a
    daily variance unless its name says ``vol``.
vol
    Annualised volatility as a decimal, ``sqrt(TRADING_DAYS * daily_variance)`` with
    :data:`TRADING_DAYS` ``= 252`` (0.15 is 15 % a year); see :func:`annualised_vol`.
horizon ``h``
    Trading days. An ``h``-day-ahead target at day ``t`` is the *average* daily variance
    over days ``t+1 .. t+h``: ``RV_{t+1:t+h} = (1/h) sum_{k=1..h} RV_{t+k}``.

Point in time
-------------
A value "at ``t``" uses observations ``0 .. t`` only (day ``t`` included, because a
forecast is made after day ``t`` has closed). :func:`har_features` and :func:`walk_forward`
honour this; the tests alter data after ``t`` and check nothing at or before ``t`` moves.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "HAR_WINDOWS",
    "TRADING_DAYS",
    "GarchFit",
    "GarchKind",
    "GarchParams",
    "HarCoefficients",
    "HarFeatures",
    "HarFit",
    "HarModel",
    "ModelScore",
    "RealizedSeries",
    "WalkForwardReport",
    "annualised_vol",
    "fit_garch",
    "forecast_garch_variance",
    "garman_klass_variance",
    "har_features",
    "har_target",
    "parkinson_variance",
    "realized_variance_from_bars",
    "score_forecasts",
    "walk_forward",
]

Floats = npt.NDArray[np.float64]
Days = Annotated[Floats, "(n_days,) daily values, oldest first"]
GarchKind = Literal["garch", "gjr"]

TRADING_DAYS = 252  # trading days per year, for annualising daily variance
HAR_WINDOWS = (1, 5, 22)  # daily, weekly and monthly windows of HAR-RV (trading days)
PERCENT = 100.0  # arch works on percent returns: r_pct = 100 * r
_LN2 = math.log(2.0)
_GK_K = 2.0 * _LN2 - 1.0  # 0.3863: Garman-Klass weight of the open-to-close term
_MIN_HAR_OBS = 30  # fewest (feature, target) pairs a HAR regression is fitted on
_MIN_GARCH_OBS = 100  # fewest returns a GARCH model is fitted on


def _frozen(a: npt.ArrayLike, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy of ``a``."""
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


def _as_days(x: npt.ArrayLike, name: str) -> Floats:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per day), got shape {a.shape}")
    return a


MIN_DAILY_VARIANCE = 1e-10
"""The floor of a day's realised variance for the log-HAR model (a flat day, open = high =
low = close, has a Garman-Klass variance of exactly 0, whose log is undefined)."""


def floor_variance(rv: npt.ArrayLike) -> Floats:
    """``rv`` with every finite value raised to at least :data:`MIN_DAILY_VARIANCE`; NaN
    (an unusable day) stays NaN. Training and serving both apply it."""
    a = np.asarray(rv, dtype=np.float64)
    return np.where(np.isfinite(a), np.maximum(a, MIN_DAILY_VARIANCE), np.nan)


def annualised_vol(daily_variance: npt.ArrayLike) -> Floats:
    """Annualised volatility from daily variance.

    Parameters
    ----------
    daily_variance : array_like of float
        Daily variance of log returns, decimal (``1e-4`` for 1 % a day).

    Returns
    -------
    ndarray of float64
        ``sqrt(TRADING_DAYS * daily_variance)``, decimal (``0.1587`` for ``1e-4``); NaN
        where the variance is negative or NaN.
    """
    v = np.asarray(daily_variance, dtype=np.float64)
    return np.sqrt(TRADING_DAYS * np.where(v >= 0.0, v, np.nan))


# --------------------------------------------------------------------------------------
# Realized measures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RealizedSeries:
    """Daily realized variance from intraday bars (arrays are read-only).

    Attributes
    ----------
    sessions : ndarray, shape (n_sessions,)
        The session ids, in the order they appear in the bars.
    rv : ndarray of float64, shape (n_sessions,)
        Realized variance of each session: the sum of squared intraday log returns,
        decimal daily variance, not annualised. NaN for a session with a single bar.
    n_bars : ndarray of int64, shape (n_sessions,)
        Bars in each session; the session's RV sums ``n_bars - 1`` squared returns.
    """

    sessions: np.ndarray
    rv: Days
    n_bars: npt.NDArray[np.int64]

    @property
    def vol(self) -> Floats:
        """Annualised realized volatility per session, decimal (``sqrt(252 rv)``)."""
        return annualised_vol(self.rv)


def realized_variance_from_bars(
    session_ids: npt.ArrayLike, close: npt.ArrayLike
) -> RealizedSeries:
    """Realized variance per session from intraday (e.g. 1-minute) closing prices.

    ``RV_s = sum_i (ln C_{s,i} - ln C_{s,i-1})^2`` over consecutive bars ``i`` of session
    ``s``. The return from one session's last bar to the next session's first bar (the
    overnight gap) is never included, so RV measures open-to-close variation only.

    Parameters
    ----------
    session_ids : array_like, shape (n_bars,)
        The session (trading day) of each bar: dates, ints or strings. Bars are in time
        order and each session's bars are contiguous.
    close : array_like of float, shape (n_bars,)
        Bar closing prices, strictly positive and finite.

    Returns
    -------
    RealizedSeries
        Sessions in order, their daily realized variance (decimal, not annualised) and
        bar counts.

    Raises
    ------
    ValueError
        On mismatched or empty inputs, a non-positive or non-finite price, or a session
        whose bars are not contiguous.
    """
    ids = np.asarray(session_ids)
    px = np.asarray(close, dtype=np.float64)
    if ids.ndim != 1 or px.ndim != 1 or ids.shape != px.shape:
        raise ValueError("session_ids and close must be 1-D arrays of the same length")
    n = px.size
    if n == 0:
        raise ValueError("no bars")
    if not np.all(np.isfinite(px)) or np.any(px <= 0.0):
        raise ValueError("close must be finite and strictly positive")
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = ids[1:] != ids[:-1]
    starts = np.flatnonzero(new)
    sessions = ids[starts]
    if np.unique(sessions).size != sessions.size:
        raise ValueError("a session's bars are not contiguous (bars must be in time order)")
    r = np.diff(np.log(px))
    # r[i] is the return from bar i to bar i+1; zero it when bar i+1 opens a new session.
    r2 = np.zeros(n)
    r2[: n - 1] = np.where(new[1:], 0.0, r * r)
    rv = np.add.reduceat(r2, starts)
    n_bars = np.diff(np.append(starts, n)).astype(np.int64)
    rv = np.where(n_bars >= 2, rv, np.nan)
    return RealizedSeries(
        sessions=_frozen(sessions, dtype=sessions.dtype),
        rv=_frozen(rv),
        n_bars=_frozen(n_bars, dtype=np.int64),
    )


def _ohlc_valid(*arrays: Floats) -> npt.NDArray[np.bool_]:
    ok = np.ones(np.broadcast(*arrays).shape, dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a) & (a > 0.0)
    return ok


def parkinson_variance(high: npt.ArrayLike, low: npt.ArrayLike) -> Days:
    """Parkinson (1980) range-based daily variance from the day's high and low.

    ``sigma^2 = (ln(H / L))^2 / (4 ln 2)``

    Unbiased for the open-to-close variance of a driftless geometric Brownian motion
    observed continuously; with discrete bars the observed range is too narrow, so the
    estimate is biased down slightly (about 4 % with 375 one-minute bars). Overnight
    gaps are not measured.

    Parameters
    ----------
    high, low : array_like of float, shape (n_days,)
        Daily high and low prices.

    Returns
    -------
    ndarray of float64, shape (n_days,)
        Daily variance, decimal, not annualised. NaN where a price is non-positive or
        non-finite or ``high < low``.
    """
    h = _as_days(high, "high")
    lo = _as_days(low, "low")
    if h.shape != lo.shape:
        raise ValueError("high and low must have the same length")
    ok = _ohlc_valid(h, lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.log(np.where(ok, h, 1.0) / np.where(ok, lo, 1.0))
    ok &= hl >= 0.0
    return np.where(ok, hl * hl / (4.0 * _LN2), np.nan)


def garman_klass_variance(
    open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> Days:
    """Garman-Klass (1980) daily variance from the day's open, high, low and close.

    ``sigma^2 = 0.5 (ln(H / L))^2 - (2 ln 2 - 1) (ln(C / O))^2``

    The "practical" Garman-Klass estimator: unbiased for the open-to-close variance of a
    driftless GBM observed continuously, about 7x as efficient as the squared
    open-to-close return. With discrete bars the observed range is too narrow, so it is
    biased down (about 7 % with 375 one-minute bars, against about 4 % for Parkinson).
    It is non-negative whenever ``L <= min(O, C)`` and ``H >= max(O, C)``. Overnight
    gaps (previous close to open) are not measured.

    Parameters
    ----------
    open_, high, low, close : array_like of float, shape (n_days,)
        Daily OHLC prices.

    Returns
    -------
    ndarray of float64, shape (n_days,)
        Daily variance, decimal, not annualised. NaN where a price is non-positive or
        non-finite or the bar is inconsistent (``H < max(O, C)`` or ``L > min(O, C)``).
    """
    o, h, lo, c = (_as_days(x, k) for x, k in ((open_, "open"), (high, "high"),
                                                 (low, "low"), (close, "close")))
    if not (o.shape == h.shape == lo.shape == c.shape):
        raise ValueError("open, high, low and close must have the same length")
    ok = _ohlc_valid(o, h, lo, c)
    ok &= (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c))
    o, h, lo, c = (np.where(ok, x, 1.0) for x in (o, h, lo, c))
    hl = np.log(h / lo)
    co = np.log(c / o)
    return np.where(ok, 0.5 * hl * hl - _GK_K * co * co, np.nan)


# --------------------------------------------------------------------------------------
# HAR-RV
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HarFeatures:
    """Point-in-time HAR regressors, one row per day (arrays are read-only).

    Attributes
    ----------
    X : ndarray of float64, shape (n_days, 3)
        Row ``t`` is ``(RV_d, RV_w, RV_m)`` known at the close of day ``t``: ``RV_t``,
        the mean of ``RV_{t-4..t}`` and the mean of ``RV_{t-21..t}``, in daily variance
        (decimal, not annualised, never logged). NaN where not ``valid``.
    valid : ndarray of bool, shape (n_days,)
        True where the whole 22-day window is available and finite (``t >= 21``).
    """

    X: Floats
    valid: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.valid.size)


def _trailing_mean(x: Floats, window: int) -> Floats:
    """Mean of ``x[t-window+1 .. t]`` at each ``t``; NaN for the first ``window-1`` days.

    Computed window by window (not by a running sum), so a value at ``t`` is bit-for-bit
    independent of anything after ``t``.
    """
    out = np.full(x.size, np.nan)
    if x.size >= window:
        out[window - 1:] = np.lib.stride_tricks.sliding_window_view(x, window).mean(axis=1)
    return out


def _leading_mean(x: Floats, horizon: int) -> Floats:
    """Mean of ``x[t+1 .. t+horizon]`` at each ``t``; NaN for the last ``horizon`` days."""
    out = np.full(x.size, np.nan)
    if x.size > horizon:
        out[: x.size - horizon] = _trailing_mean(x, horizon)[horizon:]
    return out


def har_features(rv: npt.ArrayLike) -> HarFeatures:
    """HAR regressors ``(RV_d, RV_w, RV_m)`` at every day, using RV up to that day only.

    Parameters
    ----------
    rv : array_like of float, shape (n_days,)
        Daily realized variance (decimal, not annualised), oldest first. NaNs are
        allowed; a window containing one makes its row invalid.

    Returns
    -------
    HarFeatures
        ``X`` aligned with ``rv`` (row ``t`` known at the close of day ``t``) and the
        ``valid`` mask.
    """
    x = _as_days(rv, "rv")
    X = np.column_stack([_trailing_mean(x, w) for w in HAR_WINDOWS])
    valid = np.all(np.isfinite(X), axis=1)
    X[~valid] = np.nan
    return HarFeatures(X=_frozen(X), valid=_frozen(valid, dtype=bool))


def har_target(rv: npt.ArrayLike, horizon: int) -> Days:
    """The ``h``-day-ahead HAR target at every day: ``mean(RV_{t+1 .. t+h})``.

    Parameters
    ----------
    rv : array_like of float, shape (n_days,)
        Daily realized variance (decimal, not annualised), oldest first.
    horizon : int
        ``h >= 1`` trading days.

    Returns
    -------
    ndarray of float64, shape (n_days,)
        Average daily variance over the next ``h`` days; NaN for the last ``h`` days (not
        yet observed) and wherever a window holds a NaN.
    """
    h = _check_horizon(horizon)
    return _leading_mean(_as_days(rv, "rv"), h)


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer of days, got {horizon!r}")
    return int(horizon)


@dataclass(frozen=True, slots=True)
class HarCoefficients:
    """One number per HAR regressor (coefficients, standard errors or t-statistics).

    Attributes
    ----------
    const, daily, weekly, monthly : float
        Intercept and the ``RV_d``, ``RV_w``, ``RV_m`` terms, in the regression's units
        (daily variance for the level model; log daily variance for the log model, where
        the slopes are elasticities).
    """

    const: float
    daily: float
    weekly: float
    monthly: float

    def as_array(self) -> Floats:
        """``[const, daily, weekly, monthly]`` as a new float64 array."""
        return np.array([self.const, self.daily, self.weekly, self.monthly])

    @classmethod
    def from_array(cls, values: npt.ArrayLike) -> HarCoefficients:
        v = np.asarray(values, dtype=np.float64).reshape(4)
        return cls(float(v[0]), float(v[1]), float(v[2]), float(v[3]))


def _har_regressors(X: Floats, log: bool) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """``[1, RV_d, RV_w, RV_m]`` rows (logged when ``log``) and the usable-row mask."""
    usable = np.all(np.isfinite(X), axis=1)
    if log:
        usable &= np.all(X > 0.0, axis=1)
        X = np.log(np.where(usable[:, None], X, 1.0))
    return np.column_stack([np.ones(X.shape[0]), X]), usable


def _har_design(
    X: Floats, target: Floats, log: bool
) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """Regressors with a constant column, the regressand, and the usable-row mask."""
    design, usable = _har_regressors(X, log)
    usable &= np.isfinite(target)
    if log:
        usable &= target > 0.0
        target = np.log(np.where(usable, target, 1.0))
    return design, target, usable


@dataclass(frozen=True, slots=True)
class HarFit:
    """A fitted HAR-RV regression for one horizon (Corsi 2009).

    Level form::

        RV_{t+1:t+h} = b0 + bd RV_d,t + bw RV_w,t + bm RV_m,t + e_{t+h}

    log form (``log=True``): the same with every RV term replaced by its natural log.

    Attributes
    ----------
    horizon : int
        ``h``, trading days; the regressand is the average daily variance over
        ``t+1 .. t+h``.
    log : bool
        Whether the regression is in logs.
    params : HarCoefficients
        OLS coefficients.
    std_errors : HarCoefficients
        HAC (Newey-West, Bartlett kernel, ``maxlags = h``, small-sample corrected)
        standard errors, robust to the MA(h-1) overlap of the targets.
    t_stats : HarCoefficients
        ``params / std_errors``.
    n_obs : int
        Number of (features, target) pairs fitted.
    r2 : float
        In-sample R^2 of the regression (in log space when ``log``).
    resid_var : float
        Residual variance ``SSR / (n_obs - 4)`` of the regression (log space when
        ``log``); used for the log-normal correction in :meth:`predict`.
    """

    horizon: int
    log: bool
    params: HarCoefficients
    std_errors: HarCoefficients
    t_stats: HarCoefficients
    n_obs: int
    r2: float
    resid_var: float

    def predict(self, features: HarFeatures | npt.ArrayLike) -> Floats:
        """Forecast the average daily variance over the next ``h`` days.

        Parameters
        ----------
        features : HarFeatures or array_like of float, shape (m, 3) or (3,)
            ``(RV_d, RV_w, RV_m)`` rows in daily variance (levels, even for the log
            model), e.g. :func:`har_features` of the RV history.

        Returns
        -------
        ndarray of float64, shape (m,)
            Forecast of ``mean(RV_{t+1..t+h})``, decimal daily variance. The log model
            returns ``exp(fitted + resid_var / 2)`` (log-normal mean correction). NaN for
            invalid rows (and, in the log model, rows with a non-positive RV). The level
            model can return a non-positive forecast; callers that need a variance
            should filter it (:func:`walk_forward` replaces it with the expanding mean).
        """
        X = features.X if isinstance(features, HarFeatures) else np.asarray(
            features, dtype=np.float64)
        X = np.atleast_2d(X)
        if X.ndim != 2 or X.shape[1] != 3:
            raise ValueError(f"features must have 3 columns (RV_d, RV_w, RV_m), got {X.shape}")
        design, usable = _har_regressors(X, self.log)
        fitted = design @ self.params.as_array()
        if self.log:
            fitted = np.exp(np.where(usable, fitted, 0.0) + 0.5 * self.resid_var)
        return np.where(usable, fitted, np.nan)


@dataclass(frozen=True, slots=True)
class HarModel:
    """HAR-RV model specification.

    Attributes
    ----------
    log : bool
        Fit ``log RV_{t+1:t+h}`` on ``log RV_d, log RV_w, log RV_m`` instead of levels.
        Needs strictly positive RV.
    """

    log: bool = False

    def fit(self, rv: npt.ArrayLike, horizon: int) -> HarFit:
        """Fit by OLS with Newey-West HAC standard errors (statsmodels).

        Uses every day ``t`` with a full 22-day feature window and an observed target
        (``t + h <= n_days - 1``).

        Parameters
        ----------
        rv : array_like of float, shape (n_days,)
            Daily realized variance (decimal, not annualised), oldest first.
        horizon : int
            ``h >= 1``: forecast the average daily variance over the next ``h`` days.

        Returns
        -------
        HarFit

        Raises
        ------
        ValueError
            If fewer than 30 usable (features, target) pairs exist.
        """
        from statsmodels.regression.linear_model import OLS

        h = _check_horizon(horizon)
        x = _as_days(rv, "rv")
        feats = har_features(x)
        design, y, usable = _har_design(feats.X, _leading_mean(x, h), self.log)
        n_obs = int(usable.sum())
        if n_obs < _MIN_HAR_OBS:
            raise ValueError(f"HAR needs at least {_MIN_HAR_OBS} usable days, got {n_obs}")
        res = OLS(y[usable], design[usable]).fit(
            cov_type="HAC", cov_kwds={"maxlags": h, "use_correction": True}
        )
        params = np.asarray(res.params, dtype=np.float64)
        bse = np.asarray(res.bse, dtype=np.float64)
        return HarFit(
            horizon=h,
            log=self.log,
            params=HarCoefficients.from_array(params),
            std_errors=HarCoefficients.from_array(bse),
            t_stats=HarCoefficients.from_array(params / bse),
            n_obs=n_obs,
            r2=float(res.rsquared),
            resid_var=float(res.ssr / (n_obs - 4)),
        )


# --------------------------------------------------------------------------------------
# GARCH(1,1) and GJR-GARCH(1,1,1)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GarchParams:
    """GARCH(1,1) / GJR-GARCH(1,1,1) parameters in decimal daily units.

    ``r_t = mu + e_t``, ``e_t = sigma_t z_t`` with ``z_t ~ N(0, 1)`` and::

        sigma^2_t = omega + (alpha + gamma 1[e_{t-1} < 0]) e^2_{t-1} + beta sigma^2_{t-1}

    (``gamma = 0`` for plain GARCH).

    Attributes
    ----------
    kind : {"garch", "gjr"}
    mu : float
        Mean daily log return, decimal.
    omega : float
        Variance intercept, decimal daily variance (arch's percent-scale omega / 1e4).
    alpha, gamma, beta : float
        ARCH, asymmetry (leverage) and GARCH coefficients (unitless).
    """

    kind: GarchKind
    mu: float
    omega: float
    alpha: float
    gamma: float
    beta: float

    @property
    def persistence(self) -> float:
        """``alpha + gamma / 2 + beta``: the decay rate of variance shocks per day."""
        return self.alpha + 0.5 * self.gamma + self.beta

    @property
    def unconditional_variance(self) -> float:
        """``omega / (1 - persistence)`` in decimal daily variance; inf if not stationary."""
        p = self.persistence
        return self.omega / (1.0 - p) if p < 1.0 else math.inf

    def to_arch(self) -> Floats:
        """The parameter vector of arch's model on percent returns."""
        head = [self.mu * PERCENT, self.omega * PERCENT**2, self.alpha]
        tail = [self.gamma, self.beta] if self.kind == "gjr" else [self.beta]
        return np.array(head + tail, dtype=np.float64)

    @classmethod
    def from_arch(cls, kind: GarchKind, values: npt.ArrayLike) -> GarchParams:
        v = np.asarray(values, dtype=np.float64)
        gamma, beta = (v[3], v[4]) if kind == "gjr" else (0.0, v[3])
        return cls(kind, float(v[0] / PERCENT), float(v[1] / PERCENT**2), float(v[2]),
                   float(gamma), float(beta))


def _check_kind(kind: str) -> GarchKind:
    if kind not in ("garch", "gjr"):
        raise ValueError(f"kind must be 'garch' or 'gjr', got {kind!r}")
    return kind  # type: ignore[return-value]


def _arch_model(returns: Floats, kind: GarchKind) -> Any:
    from arch import arch_model

    return arch_model(
        returns * PERCENT,
        mean="Constant",
        vol="GARCH",
        p=1,
        o=1 if kind == "gjr" else 0,
        q=1,
        dist="normal",
        rescale=False,
    )


def _as_returns(returns: npt.ArrayLike, minimum: int) -> Floats:
    r = _as_days(returns, "returns")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite (drop the first day's missing return)")
    if r.size < minimum:
        raise ValueError(f"need at least {minimum} returns, got {r.size}")
    return r


def _mean_variance_forecast(result: Any, horizon: int) -> float:
    """Mean of arch's 1..h-step variance forecasts from the sample end, decimal."""
    fc = result.forecast(horizon=horizon, reindex=False)
    return float(np.asarray(fc.variance)[-1].mean() / PERCENT**2)


@dataclass(frozen=True, eq=False)
class GarchFit:
    """A GARCH(1,1) or GJR-GARCH(1,1,1) fitted by Gaussian maximum likelihood (arch).

    Attributes
    ----------
    params : GarchParams
        Estimates in decimal daily units.
    std_errors : GarchParams
        Robust (Bollerslev-Wooldridge) standard errors in the same units (``gamma = 0``
        for plain GARCH).
    loglikelihood : float
        Log-likelihood of the *decimal* returns: arch's percent-scale value plus
        ``n_obs * ln(100)``.
    n_obs : int
        Returns fitted.
    converged : bool
        Whether the optimiser reported success.
    """

    params: GarchParams
    std_errors: GarchParams
    loglikelihood: float
    n_obs: int
    converged: bool
    _result: Any = field(repr=False, compare=False)

    @property
    def kind(self) -> GarchKind:
        return self.params.kind

    @property
    def persistence(self) -> float:
        """``alpha + gamma / 2 + beta``."""
        return self.params.persistence

    def forecast_variance(self, horizon: int) -> float:
        """Mean daily variance over the next ``h`` days after the sample's last day.

        Parameters
        ----------
        horizon : int
            ``h >= 1`` trading days.

        Returns
        -------
        float
            ``(1/h) sum_{k=1..h} E_T[sigma^2_{T+k}]``, decimal daily variance (not
            annualised, not a vol). Comparable with :func:`har_target`.
        """
        return _mean_variance_forecast(self._result, _check_horizon(horizon))


def fit_garch(
    returns: npt.ArrayLike, kind: GarchKind = "garch", *, start: GarchParams | None = None
) -> GarchFit:
    """Fit GARCH(1,1) (``kind="garch"``) or GJR-GARCH(1,1,1) (``kind="gjr"``).

    A constant-mean model with normal innovations, fitted with ``arch.arch_model`` on
    percent returns (``100 r``, the scale arch's optimiser expects); estimates are
    converted back to decimal units.

    Parameters
    ----------
    returns : array_like of float, shape (n_days,)
        Daily log returns, decimal, oldest first, all finite; at least 100.
    kind : {"garch", "gjr"}
    start : GarchParams, optional
        Starting values for the optimiser (e.g. the previous fit's estimates, which
        speeds up refits); must be of the same ``kind``. arch ignores them (silently
        here) when they fall outside the bounds it derives from this sample.

    Returns
    -------
    GarchFit
        Convergence problems are reported by ``converged``, not by warnings.
    """
    from arch.utility.exceptions import StartingValueWarning

    k = _check_kind(kind)
    r = _as_returns(returns, _MIN_GARCH_OBS)
    model = _arch_model(r, k)
    sv = None
    if start is not None:
        if start.kind != k:
            raise ValueError(f"start is a {start.kind} parameter set, fitting {k}")
        sv = start.to_arch()
    with warnings.catch_warnings():
        # arch ignores (with this warning) a start outside this sample's bounds.
        warnings.simplefilter("ignore", StartingValueWarning)
        res = model.fit(disp="off", show_warning=False, starting_values=sv)
    params = GarchParams.from_arch(k, res.params)
    bse = np.asarray(res.std_err, dtype=np.float64)
    return GarchFit(
        params=params,
        std_errors=GarchParams.from_arch(k, bse),
        loglikelihood=float(res.loglikelihood + r.size * math.log(PERCENT)),
        n_obs=int(r.size),
        converged=bool(res.convergence_flag == 0),
        _result=res,
    )


def forecast_garch_variance(returns: npt.ArrayLike, params: GarchParams, horizon: int) -> float:
    """Variance forecast with fixed parameters, filtered through ``returns``.

    Runs the variance recursion of ``params`` (arch's ``fix()``) over ``returns`` and
    forecasts from their last day: the way to update a forecast with new data without
    refitting.

    Parameters
    ----------
    returns : array_like of float, shape (n_days,)
        Daily log returns, decimal, oldest first, all finite.
    params : GarchParams
    horizon : int
        ``h >= 1`` trading days.

    Returns
    -------
    float
        Mean daily variance over the next ``h`` days, decimal (not annualised).
    """
    h = _check_horizon(horizon)
    r = _as_returns(returns, 2)
    result = _arch_model(r, params.kind).fix(params.to_arch())
    return _mean_variance_forecast(result, h)


# --------------------------------------------------------------------------------------
# Walk-forward evaluation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelScore:
    """Out-of-sample accuracy of one model's variance forecasts.

    Attributes
    ----------
    name : str
    n : int
        Forecast origins scored.
    r2 : float
        ``1 - SSE / SST``, ``SST`` around the mean of the test targets (the standard
        out-of-sample R^2; the benchmark knows the test mean, so this is harsh).
    r2_os : float
        Campbell-Thompson ``1 - SSE / SSE_bench`` against the expanding-mean forecast
        (the mean of all daily RV known at each origin).
    qlike : float
        Mean of ``y / f - ln(y / f) - 1`` (Patton 2011; 0 for a perfect forecast,
        robust to noise in the RV proxy).
    mse : float
        Mean squared error, (daily variance)^2.
    bias : float
        Mean of ``f - y``, daily variance.
    n_filtered : int
        Non-positive or non-finite forecasts replaced with the expanding mean before
        scoring.
    """

    name: str
    n: int
    r2: float
    r2_os: float
    qlike: float
    mse: float
    bias: float
    n_filtered: int = 0


def score_forecasts(
    name: str,
    forecast: npt.ArrayLike,
    target: npt.ArrayLike,
    benchmark: npt.ArrayLike,
    *,
    n_filtered: int = 0,
) -> ModelScore:
    """Score variance forecasts against realised targets.

    Parameters
    ----------
    name : str
    forecast, target, benchmark : array_like of float, shape (n,)
        Forecast, realised value and benchmark (expanding-mean) forecast per origin, all
        strictly positive daily variances.
    n_filtered : int
        Carried into the score (see :class:`ModelScore`).

    Returns
    -------
    ModelScore
    """
    f = np.asarray(forecast, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    b = np.asarray(benchmark, dtype=np.float64)
    if not (f.shape == y.shape == b.shape) or f.ndim != 1 or f.size < 2:
        raise ValueError("forecast, target and benchmark must be 1-D, same length >= 2")
    if not (np.all(f > 0) and np.all(y > 0) and np.all(b > 0)):
        raise ValueError("forecasts, targets and benchmark must be strictly positive")
    err = y - f
    sse = float(err @ err)
    sst = float(((y - y.mean()) ** 2).sum())
    sse_b = float(((y - b) ** 2).sum())
    ratio = y / f
    return ModelScore(
        name=name,
        n=int(f.size),
        r2=1.0 - sse / sst if sst > 0 else math.nan,
        r2_os=1.0 - sse / sse_b if sse_b > 0 else math.nan,
        qlike=float(np.mean(ratio - np.log(ratio) - 1.0)),
        mse=sse / f.size,
        bias=float(np.mean(-err)),
        n_filtered=int(n_filtered),
    )


@dataclass(frozen=True, eq=False)
class WalkForwardReport:
    """Result of :func:`walk_forward` (arrays are read-only, one element per origin).

    Attributes
    ----------
    horizon : int
        ``h``, trading days.
    origins : ndarray of int64, shape (n,)
        Day index ``t`` of each forecast origin (data ``0 .. t`` used).
    target : ndarray of float64, shape (n,)
        Realised ``mean(RV_{t+1..t+h})``, daily variance.
    benchmark : ndarray of float64, shape (n,)
        Expanding-mean forecast ``mean(RV_{0..t})``, daily variance.
    forecasts : Mapping[str, ndarray], each shape (n,)
        Each model's forecast of the target (after the positivity filter), daily
        variance. Keys: ``"har"``, ``"har_log"``, ``"garch"``, ``"gjr"``, ``"combo"``.
    combo_weight_har : ndarray of float64, shape (n,)
        Weight of HAR in the HAR/GARCH combination (GARCH gets ``1 - w``).
    scores : tuple of ModelScore
        One per model, in the order of ``forecasts``.
    garch_refits : int
        How many times each GARCH model was re-estimated.
    """

    horizon: int
    origins: npt.NDArray[np.int64]
    target: Floats
    benchmark: Floats
    forecasts: Mapping[str, Floats]
    combo_weight_har: Floats
    scores: tuple[ModelScore, ...]
    garch_refits: int

    def score(self, name: str) -> ModelScore:
        """The :class:`ModelScore` of model ``name``."""
        for s in self.scores:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def benchmark_score(self) -> ModelScore:
        """The expanding-mean benchmark scored like a model (its ``r2_os`` is 0)."""
        return score_forecasts("expanding_mean", self.benchmark, self.target, self.benchmark)


def _har_ols_forecast(design: Floats, y: Floats, rows: npt.NDArray[np.bool_],
                      x_now: Floats, log: bool) -> float:
    """OLS point forecast from the rows flagged ``rows`` (numpy; same estimates as
    :meth:`HarModel.fit`, without the HAC step)."""
    A = design[rows]
    b = y[rows]
    beta, *_ = np.linalg.lstsq(A, b, rcond=None)
    fitted = float(x_now @ beta)
    if log:
        resid = b - A @ beta
        resid_var = float(resid @ resid) / (b.size - A.shape[1])
        return math.exp(fitted + 0.5 * resid_var)
    return fitted


def walk_forward(
    rv: npt.ArrayLike,
    returns: npt.ArrayLike,
    horizon: int,
    *,
    min_train: int = 504,
    step: int = 1,
    refit_every: int = 22,
    combo_window: int = 250,
) -> WalkForwardReport:
    """Expanding-window out-of-sample evaluation of the variance models, never shuffled.

    At each origin ``t`` (``t = min_train - 1, min_train - 1 + step, ...`` while
    ``t + h`` is observed) every model uses data ``0 .. t`` only and forecasts the
    average daily variance over ``t+1 .. t+h``:

    ``har`` / ``har_log``
        HAR-RV in levels / logs, refitted by OLS at every origin on the pairs whose
        target is complete by ``t`` (``s + h <= t``).
    ``garch`` / ``gjr``
        GARCH(1,1) / GJR-GARCH(1,1,1) on ``returns[0..t]``, re-estimated every
        ``refit_every`` origins (warm-started); in between the last estimates are kept
        fixed (arch ``fix()``) and the variance is filtered through the new returns.
        Close-to-close returns include the overnight gap, so when ``rv`` is an intraday
        or range measure GARCH forecasts a larger quantity than the target (see
        ``bias``).
    ``combo``
        ``w har + (1 - w) garch`` with ``w`` proportional to the inverse MSE of each over
        the last ``combo_window`` origins whose targets were complete by ``t``
        (``s + h <= t``); equal weights before any exist.

    A non-positive or non-finite forecast (possible for the level HAR) is replaced by the
    expanding mean and counted in ``ModelScore.n_filtered``.

    Parameters
    ----------
    rv : array_like of float, shape (n_days,)
        Daily realized variance (or a range proxy), decimal, not annualised, strictly
        positive, oldest first.
    returns : array_like of float, shape (n_days,)
        Daily log returns, decimal, aligned with ``rv`` (``returns[t]`` is close ``t-1``
        to close ``t``), all finite.
    horizon : int
        ``h >= 1`` trading days.
    min_train : int
        Days available at the first origin (at least 100 and enough for 30 HAR pairs).
    step : int
        Days between consecutive origins.
    refit_every : int
        Origins between GARCH re-estimations (1 refits at every origin).
    combo_window : int
        Most recent completed origins used for the combination weights.

    Returns
    -------
    WalkForwardReport
    """
    h = _check_horizon(horizon)
    x = _as_days(rv, "rv")
    r = _as_days(returns, "returns")
    if x.shape != r.shape:
        raise ValueError("rv and returns must be aligned (same length)")
    if not np.all(np.isfinite(x)) or np.any(x <= 0.0):
        raise ValueError("rv must be finite and strictly positive")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    for name, value in (("step", step), ("refit_every", refit_every),
                        ("combo_window", combo_window)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    first_pairs = min_train - 1 - h - (HAR_WINDOWS[-1] - 1) + 1
    if min_train < _MIN_GARCH_OBS or first_pairs < _MIN_HAR_OBS:
        raise ValueError(f"min_train={min_train} too small for horizon {h}")
    origins = np.arange(min_train - 1, x.size - h, step, dtype=np.int64)
    if origins.size < 2:
        raise ValueError("fewer than 2 forecast origins: shorten min_train or step")

    # Point-in-time by construction: feature row s uses rv[..s]; target s uses rv[..s+h].
    feats = har_features(x).X
    lead = _leading_mean(x, h)
    designs = {log: _har_design(feats, lead, log) for log in (False, True)}
    now = {log: _har_regressors(feats, log)[0] for log in (False, True)}  # no target
    cums = np.cumsum(x)
    day = np.arange(x.size)

    n = origins.size
    target = lead[origins]
    bench = cums[origins] / (origins + 1)
    raw: dict[str, Floats] = {k: np.empty(n) for k in ("har", "har_log", "garch", "gjr")}
    garch_params: dict[str, GarchParams | None] = {"garch": None, "gjr": None}
    refits = 0
    for i, t in enumerate(origins):
        for key, log in (("har", False), ("har_log", True)):
            design, y, usable = designs[log]
            rows = usable & (day + h <= t)
            raw[key][i] = _har_ols_forecast(design, y, rows, now[log][t], log)
        history = r[: t + 1]
        if i % refit_every == 0:
            refits += 1
            for kind in ("garch", "gjr"):
                garch_params[kind] = fit_garch(history, kind, start=garch_params[kind]).params
        for kind in ("garch", "gjr"):
            p = garch_params[kind]
            assert p is not None
            raw[kind][i] = forecast_garch_variance(history, p, h)

    forecasts: dict[str, Floats] = {}
    filtered: dict[str, int] = {}
    for key, f in raw.items():
        bad = ~np.isfinite(f) | (f <= 0.0)
        forecasts[key] = np.where(bad, bench, f)
        filtered[key] = int(bad.sum())

    # Combination weights: only origins whose target is complete by t (s + h <= t).
    se_har = (forecasts["har"] - target) ** 2
    se_garch = (forecasts["garch"] - target) ** 2
    w = np.full(n, 0.5)
    done = np.searchsorted(origins, origins - h, side="right")  # origins[:done[i]] complete
    for i in range(n):
        hi = int(done[i])
        lo = max(0, hi - combo_window)
        if hi > lo:
            inv_h = 1.0 / max(float(se_har[lo:hi].mean()), np.finfo(float).tiny)
            inv_g = 1.0 / max(float(se_garch[lo:hi].mean()), np.finfo(float).tiny)
            w[i] = inv_h / (inv_h + inv_g)
    forecasts["combo"] = w * forecasts["har"] + (1.0 - w) * forecasts["garch"]
    filtered["combo"] = 0

    scores = tuple(
        score_forecasts(k, f, target, bench, n_filtered=filtered[k]) for k, f in forecasts.items()
    )
    return WalkForwardReport(
        horizon=h,
        origins=_frozen(origins, dtype=np.int64),
        target=_frozen(target),
        benchmark=_frozen(bench),
        forecasts=MappingProxyType({k: _frozen(v) for k, v in forecasts.items()}),
        combo_weight_har=_frozen(w),
        scores=scores,
        garch_refits=refits,
    )
