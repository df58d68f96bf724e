"""Odds of a single-expiry option structure at expiry under the market's view (pure).

The market's (risk-neutral, forward) view of the underlying at expiry is lognormal around
the forward::

    S_T = F exp(-sigma^2 t / 2 + sigma sqrt(t) Z),   Z ~ N(0, 1),   E[S_T] = F,

with ``F`` the expiry's forward (rupees), ``sigma`` an annualised volatility (decimal) and
``t`` the time to expiry (ACT/365 years). The structure's payoff at expiry is::

    payoff(S) = sum_i units_i * intrinsic_i(S) - net_premium

with signed ``units`` (positive when bought), undiscounted intrinsic values
(``max(S - K, 0)`` for a call, ``max(K - S, 0)`` for a put) and ``net_premium`` the
rupees paid (+) or received (-) for the whole structure, ``sum(units * execution
price)``. Premium carry is ignored: the premium is set against the payoff as is.

Everything is exact (closed form; no grid, no simulation): the payoff is piecewise linear
between the sorted strikes, so its zeros are found segment by segment (the two tails
included), and the probability of the set where it is positive is a sum of lognormal
interval probabilities. A single volatility for every strike is a simplification: with a
smile, pass the volatility that matters most (e.g. at the breakevens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.domain.black76 import black76_price

__all__ = ["ExpiryOdds", "breakevens", "expiry_odds"]

_EPS = float(np.finfo(np.float64).eps)
_SQRT1_2 = math.sqrt(0.5)
# Payoff values within this many ulps of the payoff's scale are rounding noise: zero.
_ZERO_ULPS = 16.0


@dataclass(frozen=True, slots=True)
class ExpiryOdds:
    """Odds of a structure at expiry (see the module docstring for the model).

    Attributes
    ----------
    win_probability
        ``P(payoff(S_T) > 0)`` under the lognormal view, in [0, 1]. Prices where the
        payoff is exactly zero do not count as a win.
    breakevens
        Underlying prices at expiry where the payoff changes sign, rupees, ascending: the
        finite, positive ends of the intervals where the payoff is positive. A price where
        the payoff only touches zero without changing sign is not a breakeven.
    expected_payoff
        ``E[payoff(S_T)] = sum_i units_i * B76u_i - net_premium``, rupees, where ``B76u_i``
        is the undiscounted Black-76 price (``rate = 0``) of leg ``i`` at ``forward``,
        ``t`` and ``sigma``. An expected value *at expiry* in forward terms: neither the
        payoff nor the premium is discounted.
    sigma, forward, t
        The inputs the odds were computed at: annualised volatility (decimal), forward
        (rupees) and time to expiry (ACT/365 years).
    """

    win_probability: float
    breakevens: tuple[float, ...]
    expected_payoff: float
    sigma: float
    forward: float
    t: float


def expiry_odds(units: npt.ArrayLike, strikes: npt.ArrayLike, is_call: npt.ArrayLike,
                net_premium: float, *, forward: float, t: float,
                sigma: float) -> ExpiryOdds:
    """Win probability, breakevens and expected payoff of a structure at expiry.

    Parameters
    ----------
    units : array_like, shape (n,)
        Signed quantity per leg, units of the underlying (+ bought, - sold).
    strikes : array_like, shape (n,)
        Strikes, rupees (> 0).
    is_call : array_like of bool, shape (n,)
        True for calls (CE), False for puts (PE).
    net_premium : float
        ``sum(units * execution price)``: rupees paid (+) or received (-).
    forward : float
        Forward of the expiry, rupees (> 0).
    t : float
        Time to expiry, ACT/365 years (> 0).
    sigma : float
        Annualised volatility, decimal (> 0).

    Returns
    -------
    ExpiryOdds

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one non-zero length, an input is not finite, a strike
        is not positive, ``is_call`` is not boolean, or ``forward``, ``t`` or ``sigma`` is
        not positive.
    """
    u = np.asarray(units, dtype=np.float64)
    k = np.asarray(strikes, dtype=np.float64)
    c = np.asarray(is_call)
    if u.ndim != 1 or u.size == 0 or k.shape != u.shape or c.shape != u.shape:
        raise ValueError("units, strikes and is_call must be 1-D arrays of one non-zero "
                         f"length, got shapes {u.shape}, {k.shape}, {c.shape}")
    if c.dtype.kind != "b":
        raise ValueError(f"is_call must be boolean (True = call), got dtype {c.dtype}")
    if not (np.isfinite(u).all() and np.isfinite(k).all()):
        raise ValueError("units and strikes must be finite")
    if not (k > 0).all():
        raise ValueError("strikes must be positive rupees")
    for name, value in (("net_premium", net_premium), ("forward", forward), ("t", t),
                        ("sigma", sigma)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    for name, value in (("forward", forward), ("t", t), ("sigma", sigma)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    net_premium, forward, t, sigma = float(net_premium), float(forward), float(t), float(sigma)

    intervals = _positive_intervals(u, k, c, net_premium)
    s = sigma * math.sqrt(t)
    p = math.fsum(_prob_between(lo, hi, forward, s) for lo, hi in intervals)
    breakevens = tuple(x for lo, hi in intervals for x in (lo, hi) if 0.0 < x < math.inf)
    forward_values = black76_price(forward, k, t, 0.0, sigma, c)
    expected = math.fsum((u * forward_values).tolist()) - net_premium
    return ExpiryOdds(win_probability=min(max(p, 0.0), 1.0), breakevens=breakevens,
                      expected_payoff=expected, sigma=sigma, forward=forward, t=t)


def breakevens(units: npt.ArrayLike, strikes: npt.ArrayLike, is_call: npt.ArrayLike,
               net_premium: float) -> tuple[float, ...]:
    """The structure's breakevens at expiry, ascending (those of :func:`expiry_odds`,
    without the odds): the finite, positive ends of the intervals where the payoff is
    positive. A price where it only touches zero is not one."""
    u = np.asarray(units, dtype=np.float64)
    k = np.asarray(strikes, dtype=np.float64)
    c = np.asarray(is_call, dtype=bool)
    return tuple(x for lo, hi in _positive_intervals(u, k, c, float(net_premium))
                 for x in (lo, hi) if 0.0 < x < math.inf)


def _payoff(x: npt.NDArray[np.float64], u: npt.NDArray[np.float64],
            k: npt.NDArray[np.float64], c: npt.NDArray[np.bool_],
            net_premium: float) -> npt.NDArray[np.float64]:
    """``sum_i u_i intrinsic_i(x) - net_premium`` at each price of ``x``, shape (m,)."""
    diff = x[:, None] - k[None, :]
    intrinsic = np.where(c[None, :], np.maximum(diff, 0.0), np.maximum(-diff, 0.0))
    return intrinsic @ u - net_premium


def _positive_intervals(u: npt.NDArray[np.float64], k: npt.NDArray[np.float64],
                        c: npt.NDArray[np.bool_],
                        net_premium: float) -> list[tuple[float, float]]:
    """The disjoint open intervals of ``(0, inf)`` where the payoff is positive, ascending.

    Intervals that meet at a point (where the payoff only touches zero) are merged.
    """
    knots = np.unique(k)
    x = np.concatenate(([0.0], knots))
    v = _payoff(x, u, k, c, net_premium)
    scale = float(np.abs(u).sum()) * float(knots[-1]) + abs(net_premium)
    v[np.abs(v) <= _ZERO_ULPS * _EPS * scale] = 0.0
    slope_right = float(u[c].sum())  # beyond the highest strike only calls move

    raw: list[tuple[float, float]] = []
    for a, b, va, vb in zip(x[:-1], x[1:], v[:-1], v[1:], strict=True):
        a, b, va, vb = float(a), float(b), float(va), float(vb)
        if va > 0 and vb > 0:
            raw.append((a, b))
        elif va > 0:  # vb <= 0: positive up to the zero in (a, b]
            raw.append((a, a + (b - a) * va / (va - vb)))
        elif vb > 0:  # va <= 0: positive from the zero in [a, b)
            raw.append((a + (b - a) * va / (va - vb), b))
    a, va = float(x[-1]), float(v[-1])
    if va > 0:
        raw.append((a, math.inf if slope_right >= 0 else a - va / slope_right))
    elif slope_right > 0:
        raw.append((a - va / slope_right, math.inf))

    merged: list[tuple[float, float]] = []
    for lo, hi in raw:
        if not hi > lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _norm_cdf(x: float) -> float:
    """Standard normal CDF via ``erfc``, accurate in both tails."""
    return 0.5 * math.erfc(-x * _SQRT1_2)


def _prob_between(lo: float, hi: float, forward: float, s: float) -> float:
    """``P(lo < S_T < hi)`` from the tails that avoid cancellation.

    With ``d2(x) = (ln(F/x) - s^2/2) / s`` (``s = sigma sqrt t``), ``P(S_T > x) = N(d2(x))``
    and ``P(S_T < x) = N(-d2(x))``. Both ends below the median (``d2(hi) >= 0``): the
    difference of lower-tail probabilities; otherwise of upper-tail ones.
    """
    d_lo, d_hi = _d2(lo, forward, s), _d2(hi, forward, s)
    if d_hi >= 0.0:
        return _norm_cdf(-d_hi) - _norm_cdf(-d_lo)
    return _norm_cdf(d_lo) - _norm_cdf(d_hi)


def _d2(x: float, forward: float, s: float) -> float:
    """``d2(x) = (ln(F/x) - s^2/2) / s``; +inf at ``x = 0`` and -inf at ``x = inf``."""
    if x <= 0.0:
        return math.inf
    if x == math.inf:
        return -math.inf
    return (math.log(forward / x) - 0.5 * s * s) / s
