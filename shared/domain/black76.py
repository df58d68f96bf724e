"""Black-76 pricing, implied volatility and greeks for options on a forward (pure numpy).

Every function is vectorised over legs: inputs broadcast against each other (scalars,
``(n,)`` arrays, or any broadcastable shapes) and results have the broadcast shape, at
least 1-D (all-scalar inputs give shape ``(1,)``). There are no per-option Python loops
and no I/O; the module depends on numpy only (the normal CDF is W. J. Cody's rational
Chebyshev approximation of ``erfc``, accurate to about 1e-15 relative, also in the tails).

Conventions
-----------
``forward`` ``F``
    Forward (futures) price of the underlying for the option's expiry, rupees.
``strike`` ``K``
    Strike, rupees.
``t``
    Time to expiry in years, ACT/365, fractional on expiry day (15 minutes before the
    close is ``15 / (365 * 24 * 60)``).
``rate`` ``r``
    Continuously compounded annual risk-free rate as a decimal (0.065 for 6.5 %). The
    discount factor is ``DF = exp(-r t)``.
``sigma``
    Annualised Black volatility as a decimal (0.145 for 14.5 %).
``is_call``
    Boolean, True for a call (CE), False for a put (PE).
prices
    Premiums in rupees per unit of the underlying, *discounted* (what trades).

With ``s = sigma * sqrt(t)`` (total standard deviation), ``d1 = (ln(F/K) + s**2/2) / s``
and ``d2 = d1 - s``, and ``N`` / ``phi`` the standard normal CDF / density::

    call = DF * (F N(d1) - K N(d2))
    put  = DF * (K N(-d2) - F N(-d1))

so that put-call parity reads ``call - put = DF * (F - K)``.

NaN policy
----------
A NaN result always has a documented reason: invalid inputs (non-finite, ``F <= 0``,
``K <= 0``, negative ``t`` or ``sigma``) for :func:`black76_price` and :func:`greeks`,
zero total variance for :func:`greeks`, and a per-leg :class:`IVStatus` code for
:func:`implied_vol`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAYS_PER_YEAR",
    "NSE_TICK",
    "Greeks",
    "ImpliedVol",
    "IVStatus",
    "black76_price",
    "greeks",
    "implied_vol",
]

# Shape annotations: one element per option leg. Results keep the broadcast shape of the
# inputs; ``(n,)`` is the usual case.
FloatLegs = Annotated[npt.NDArray[np.float64], "(n,)"]
StatusLegs = Annotated[npt.NDArray[np.int8], "(n,) IVStatus codes"]

DAYS_PER_YEAR = 365.0  # ACT/365: theta is per calendar day
NSE_TICK = 0.05  # rupees: NSE's tick for index options

TRACE = False
_EPS = np.finfo(np.float64).eps
_SQRT1_2 = 0.70710678118654752440  # 1/sqrt(2)
_INV_SQRT_2PI = 0.39894228040143267794  # 1/sqrt(2 pi) = phi(0)


class IVStatus(IntEnum):
    """Why an implied volatility is (or is not) available for a leg."""

    OK = 0  # solved; ``iv`` is finite
    NO_PRICE = 1  # price is NaN or <= 0
    EXPIRED = 2  # t <= 0
    BAD_INPUT = 3  # F <= 0, K <= 0, or a NaN / infinite forward, strike, t or rate
    BELOW_INTRINSIC = 4  # price < DF * intrinsic: no volatility reproduces it
    NO_TIME_VALUE = 5  # time value = price - DF * intrinsic < one tick: IV meaningless
    ABOVE_BOUND = 6  # call >= DF * F or put >= DF * K: no finite volatility reproduces it
    NOT_CONVERGED = 7  # the solver ran out of iterations


# --------------------------------------------------------------------------------------
# Standard normal distribution
# --------------------------------------------------------------------------------------

# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23
# (1969): three rational approximations of erf / erfc on |x| <= 0.46875, (0.46875, 4] and
# (4, inf), each with relative error below ~1e-16 (double-precision coefficients).
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1
_ERF_SMALL = 0.46875
_ERFC_BIG = 26.55  # erfc(x) underflows to 0 beyond ~26.55


def _exp_neg_square(y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``exp(-y**2)`` without the relative error ``y**2 * eps`` of squaring a large ``y``.

    ``y`` is split as ``y16 + (y - y16)`` with ``y16`` on a 1/16 grid, so ``y16**2`` is
    exact and the remainder ``(y - y16)(y + y16)`` is small.
    """
    y16 = np.trunc(y * 16.0) * 0.0625
    return np.exp(-y16 * y16) * np.exp(-(y - y16) * (y + y16))


def _erfc(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Complementary error function, elementwise (Cody 1969); NaN stays NaN."""
    y = np.abs(x)
    out = np.full(x.shape, np.nan)

    small = np.flatnonzero(y <= _ERF_SMALL)
    if small.size:
        xs = x[small]
        z = xs * xs
        num = _ERF_A[4] * z
        den = z.copy()
        for a, b in zip(_ERF_A[:3], _ERF_B[:3], strict=True):
            num += a
            num *= z
            den += b
            den *= z
        out[small] = 1.0 - xs * (num + _ERF_A[3]) / (den + _ERF_B[3])

    mid = np.flatnonzero((y > _ERF_SMALL) & (y <= 4.0))
    if mid.size:
        ys = y[mid]
        num = _ERFC_C[8] * ys
        den = ys.copy()
        for c, d in zip(_ERFC_C[:7], _ERFC_D[:7], strict=True):
            num += c
            num *= ys
            den += d
            den *= ys
        r = _exp_neg_square(ys) * (num + _ERFC_C[7]) / (den + _ERFC_D[7])
        out[mid] = np.where(x[mid] < 0.0, 2.0 - r, r)

    tail = np.flatnonzero(y > 4.0)
    if tail.size:
        ys = np.minimum(y[tail], _ERFC_BIG)  # also maps +-inf to a finite argument
        z = 1.0 / (ys * ys)
        num = _ERFC_P[5] * z
        den = z.copy()
        for p, q in zip(_ERFC_P[:4], _ERFC_Q[:4], strict=True):
            num += p
            num *= z
            den += q
            den *= z
        r = (_INV_SQRT_PI - z * (num + _ERFC_P[4]) / (den + _ERFC_Q[4])) / ys
        r = np.where(y[tail] >= _ERFC_BIG, 0.0, _exp_neg_square(ys) * r)
        out[tail] = np.where(x[tail] < 0.0, 2.0 - r, r)
    return out


def _norm_cdf(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Standard normal CDF ``N(d) = erfc(-d / sqrt(2)) / 2``, relatively accurate in both tails."""
    return 0.5 * _erfc(d * -_SQRT1_2)


def _norm_pdf(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Standard normal density ``phi(d) = exp(-d**2 / 2) / sqrt(2 pi)``."""
    return _INV_SQRT_2PI * np.exp(-0.5 * d * d)


# --------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------


def _legs(
    is_call: npt.ArrayLike, *values: npt.ArrayLike
) -> tuple[tuple[int, ...], npt.NDArray[np.bool_], list[npt.NDArray[np.float64]]]:
    """Broadcast the inputs; return the result shape, flat ``is_call`` and flat floats."""
    flag = np.asarray(is_call)
    if flag.dtype.kind not in "bi":
        raise TypeError(f"is_call must be boolean (True = call), got dtype {flag.dtype}")
    arrays = np.broadcast_arrays(flag.astype(bool), *(np.asarray(v, dtype=np.float64)
                                                      for v in values))
    shape = arrays[0].shape or (1,)
    flat = [np.array(a, dtype=np.float64).reshape(-1) for a in arrays[1:]]
    return shape, np.array(arrays[0]).reshape(-1), flat


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------
# Pricing
# --------------------------------------------------------------------------------------


def black76_price(
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    rate: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> FloatLegs:
    r"""Black-76 price of European options on a forward.

    .. math::

        C = DF\,[F N(d_1) - K N(d_2)], \quad P = DF\,[K N(-d_2) - F N(-d_1)],

        d_{1,2} = \frac{\ln(F/K) \pm \tfrac12 \sigma^2 t}{\sigma \sqrt t}, \quad DF = e^{-r t}.

    Parameters
    ----------
    forward, strike : array_like
        Forward and strike, rupees (> 0).
    t : array_like
        Time to expiry, years (ACT/365, fractional on expiry day), >= 0.
    rate : array_like
        Continuously compounded rate, decimal.
    sigma : array_like
        Annualised volatility, decimal, >= 0.
    is_call : array_like of bool
        True for calls, False for puts.

    Returns
    -------
    ndarray of float64, broadcast shape (at least 1-D)
        Discounted premium, rupees. Where ``sigma * sqrt(t) == 0`` (expired or zero
        volatility) this is the limit, ``DF * max(+-(F - K), 0)``. NaN where an input is
        non-finite, ``F <= 0``, ``K <= 0``, ``t < 0`` or ``sigma < 0`` (invalid input).
    """
    shape, call, (f, k, tt, r, vol) = _legs(is_call, forward, strike, t, rate, sigma)
    out = np.full(f.shape, np.nan)
    ok = (np.isfinite(f) & np.isfinite(k) & np.isfinite(tt) & np.isfinite(r)
          & np.isfinite(vol) & (f > 0) & (k > 0) & (tt >= 0) & (vol >= 0))
    idx = np.flatnonzero(ok)
    f, k, tt, r, vol, call = f[idx], k[idx], tt[idx], r[idx], vol[idx], call[idx]
    theta = np.where(call, 1.0, -1.0)
    df = np.exp(-r * tt)
    s = vol * np.sqrt(tt)
    value = df * np.maximum(theta * (f - k), 0.0)  # zero-variance limit
    live = np.flatnonzero(s > 0)
    if live.size:
        fl, kl, sl, th = f[live], k[live], s[live], theta[live]
        # ln(F/K)/s overflows to +-inf only for a vanishing s; N(+-inf) is then exact.
        with np.errstate(over="ignore"):
            d1 = np.log(fl / kl) / sl + 0.5 * sl
        n = _norm_cdf(np.concatenate([th * d1, th * (d1 - sl)]))
        value[live] = df[live] * th * (fl * n[: live.size] - kl * n[live.size:])
    out[idx] = value
    return out.reshape(shape)


# --------------------------------------------------------------------------------------
# Greeks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Greeks:
    r"""Analytic Black-76 sensitivities with respect to the *forward* (arrays are read-only).

    Attributes
    ----------
    delta : ndarray, shape (n,)
        :math:`\partial V/\partial F`, discounted: ``DF N(d1)`` for calls,
        ``DF (N(d1) - 1)`` for puts. Per rupee of forward.
    gamma : ndarray, shape (n,)
        :math:`\partial^2 V/\partial F^2 = DF\,\phi(d_1) / (F \sigma \sqrt t)`, per rupee².
    vega : ndarray, shape (n,)
        :math:`\partial V/\partial\sigma = DF\,F\,\phi(d_1)\sqrt t`, rupees per 1.00 (i.e.
        100 vol points) of volatility; divide by 100 for the change per 1 % vol point.
    theta : ndarray, shape (n,)
        Change in value as one calendar day passes, forward and volatility held fixed:
        :math:`-\partial V/\partial t / 365 = [r V - DF\,F\,\phi(d_1)\,\sigma/(2\sqrt t)]/365`,
        rupees per day. The ``r V`` term is the discount factor's roll; it can make deep
        ITM options' theta positive, otherwise theta of a long option is negative.

    Notes
    -----
    Spot greeks. When the forward comes from a spot ``S`` with carry, ``F = S e^{(r-q)t}``,
    ``dF/dS = F/S`` (and ``d²F/dS² = 0``), so

    * ``spot_delta = delta * F / S``,
    * ``spot_gamma = gamma * (F / S) ** 2``,
    * spot-fixed theta adds the forward's drift: ``theta + delta * (r - q) * F / 365``.
    """

    delta: FloatLegs
    gamma: FloatLegs
    vega: FloatLegs
    theta: FloatLegs


def greeks(
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    rate: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> Greeks:
    """Analytic Black-76 delta, gamma, vega and theta (see :class:`Greeks` for definitions).

    Parameters are as for :func:`black76_price`. All four arrays are NaN where an input is
    invalid (non-finite, ``F <= 0``, ``K <= 0``) or the total variance is zero (``t <= 0``
    or ``sigma <= 0``: the value is a step function of ``F`` there, so its derivatives
    are not defined).
    """
    shape, call, (f, k, tt, r, vol) = _legs(is_call, forward, strike, t, rate, sigma)
    out = np.full((4, f.size), np.nan)
    ok = (np.isfinite(f) & np.isfinite(k) & np.isfinite(tt) & np.isfinite(r)
          & np.isfinite(vol) & (f > 0) & (k > 0) & (tt > 0) & (vol > 0))
    idx = np.flatnonzero(ok)
    if idx.size:
        f, k, tt, r, vol, call = f[idx], k[idx], tt[idx], r[idx], vol[idx], call[idx]
        theta_sign = np.where(call, 1.0, -1.0)
        df = np.exp(-r * tt)
        sqrt_t = np.sqrt(tt)
        s = vol * sqrt_t
        with np.errstate(over="ignore"):  # see black76_price
            d1 = np.log(f / k) / s + 0.5 * s
        m = d1.size
        n = _norm_cdf(np.concatenate([theta_sign * d1, theta_sign * (d1 - s)]))
        df_pdf = df * _norm_pdf(d1)
        value = df * theta_sign * (f * n[:m] - k * n[m:])
        out[0, idx] = df * theta_sign * n[:m]
        out[1, idx] = df_pdf / (f * s)
        out[2, idx] = df_pdf * f * sqrt_t
        out[3, idx] = (r * value - df_pdf * f * vol / (2.0 * sqrt_t)) / DAYS_PER_YEAR
    delta, gamma, vega, theta = (_readonly(a.reshape(shape)) for a in out)
    return Greeks(delta=delta, gamma=gamma, vega=vega, theta=theta)


# --------------------------------------------------------------------------------------
# Implied volatility
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImpliedVol:
    """Implied Black-76 volatilities with a per-leg status (arrays are read-only).

    Attributes
    ----------
    iv : ndarray of float64, shape (n,)
        Annualised implied volatility, decimal; NaN wherever ``status != IVStatus.OK``.
    status : ndarray of int8, shape (n,)
        :class:`IVStatus` code per leg.
    """

    iv: FloatLegs
    status: StatusLegs

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        """Mask of legs with a valid IV, shape (n,)."""
        return self.status == IVStatus.OK

    def reasons(self) -> list[str]:
        """The :class:`IVStatus` name of every leg (flattened, C order)."""
        names = np.array([s.name for s in IVStatus])
        return names[self.status.reshape(-1)].tolist()

    def counts(self) -> dict[str, int]:
        """How many legs carry each :class:`IVStatus` (only statuses that occur)."""
        counts = np.bincount(self.status.reshape(-1), minlength=len(IVStatus))
        return {s.name: int(counts[s]) for s in IVStatus if counts[s]}


def implied_vol(
    price: npt.ArrayLike,
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    rate: npt.ArrayLike,
    is_call: npt.ArrayLike,
    *,
    tick: float = NSE_TICK,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> ImpliedVol:
    r"""Black-76 implied volatility of every leg at once.

    Solves ``black76_price(F, K, t, r, sigma, is_call) == price`` for ``sigma``.

    Method
    ------
    Each leg is reduced to its out-of-the-money equivalent: the time value
    ``price - DF * intrinsic`` is, by put-call parity, the price of the OTM option, so with
    ``x = -|ln(F/K)|`` and ``s = sigma sqrt(t)`` it suffices to solve the normalised OTM call

    .. math:: b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2) = \beta,
              \qquad \beta = \frac{\text{time value}}{DF \sqrt{F K}} \in (0, e^{x/2}),

    which avoids the cancellation of ITM prices. ``b`` increases in ``s``, is convex below
    the inflection point ``s_c = sqrt(2|x|)`` and concave above it. Following P. Jäckel
    ("By implication", 2006; "Let's be rational", 2015) the domain is split at ``s_c`` and
    at ``s_u`` (where the tangent at ``s_c`` reaches ``e^{x/2}``) and each part gets an
    objective that is close to linear there: ``ln b`` below ``s_c`` (initial guess from
    the small-``s`` asymptote of ``b``), ``b`` between (guess: the tangent at ``s_c``) and
    ``ln(e^{x/2} - b)`` above ``s_u`` (guess from the large-``s`` asymptote). Halley steps
    on that objective are safeguarded by a bracket that every evaluation tightens, with
    bisection whenever a step leaves it; only the unconverged legs are iterated.

    Parameters
    ----------
    price : array_like
        Discounted option premium, rupees.
    forward, strike : array_like
        Forward and strike, rupees.
    t : array_like
        Time to expiry, years (ACT/365, fractional on expiry day).
    rate : array_like
        Continuously compounded rate, decimal; ``DF = exp(-r t)``.
    is_call : array_like of bool
        True for calls, False for puts.
    tick : float, default 0.05
        Minimum time value in rupees (NSE's tick). A leg with less gets ``NO_TIME_VALUE``:
        its price carries too little information for a meaningful volatility.
    tol : float, default 1e-12
        Absolute tolerance on ``sigma`` (annualised, decimal). A leg also converges when
        its price is reproduced to within a few ulps (the volatility is then as accurate as
        the price allows).
    max_iter : int, default 50
        Maximum safeguarded Halley iterations; legs still unconverged are
        ``NOT_CONVERGED``. Typical legs need 2-4.

    Returns
    -------
    ImpliedVol
        ``iv`` (annualised, decimal; NaN unless ``status == OK``) and ``status``
        (:class:`IVStatus`), both of the broadcast shape (at least 1-D). Status precedence:
        ``BAD_INPUT``, ``EXPIRED``, ``NO_PRICE``, ``BELOW_INTRINSIC``, ``ABOVE_BOUND``,
        ``NO_TIME_VALUE``, then ``OK`` or ``NOT_CONVERGED``.
    """
    if not (tick >= 0.0 and tol > 0.0 and max_iter >= 0):
        raise ValueError("need tick >= 0, tol > 0 and max_iter >= 0")
    shape, call, (p, f, k, tt, r) = _legs(is_call, price, forward, strike, t, rate)
    status = np.full(p.size, IVStatus.OK, dtype=np.int8)
    iv = np.full(p.size, np.nan)

    # Comparisons with NaN are False and raise no warning, so NaNs fall through to the
    # right status without sanitising.
    bad = ~(np.isfinite(f) & np.isfinite(k) & np.isfinite(tt) & np.isfinite(r)
            & (f > 0) & (k > 0))
    status[bad] = IVStatus.BAD_INPUT
    status[~bad & (tt <= 0)] = IVStatus.EXPIRED
    status[(status == IVStatus.OK) & ~(p > 0)] = IVStatus.NO_PRICE

    idx = np.flatnonzero(status == IVStatus.OK)
    p, f, k, tt, r, call = p[idx], f[idx], k[idx], tt[idx], r[idx], call[idx]
    df = np.exp(-r * tt)
    discounted_intrinsic = df * np.maximum(np.where(call, f - k, k - f), 0.0)
    time_value = p - discounted_intrinsic
    code = np.full(idx.size, IVStatus.OK, dtype=np.int8)
    code[p >= df * np.where(call, f, k)] = IVStatus.ABOVE_BOUND
    code[(code == IVStatus.OK) & ((time_value < tick) | (time_value <= 0))] = (
        IVStatus.NO_TIME_VALUE)
    code[p < discounted_intrinsic] = IVStatus.BELOW_INTRINSIC

    # Normalised OTM problem (x <= 0, 0 < beta < e^{x/2}).
    x = -np.abs(np.log(f / k))
    beta = time_value / (df * np.sqrt(f) * np.sqrt(k))
    # Rounding can put a price just under the bound in rupees but not in beta.
    code[(code == IVStatus.OK) & (beta >= np.exp(0.5 * x))] = IVStatus.ABOVE_BOUND

    solve = np.flatnonzero(code == IVStatus.OK)
    sqrt_t = np.sqrt(tt[solve])
    s, converged = _solve_normalised(x[solve], beta[solve], tol * sqrt_t, max_iter)
    sig = np.full(idx.size, np.nan)
    sig[solve] = np.where(converged, s / sqrt_t, np.nan)
    code[solve[~converged]] = IVStatus.NOT_CONVERGED

    status[idx] = code
    iv[idx] = sig
    return ImpliedVol(iv=_readonly(iv.reshape(shape)), status=_readonly(status.reshape(shape)))


def _normalised_otm(
    x: npt.NDArray[np.float64], s: npt.NDArray[np.float64], upper: npt.NDArray[np.bool_],
    e_half: npt.NDArray[np.float64], e_mhalf: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Normalised OTM call and its ``s``-derivative (x <= 0, s > 0).

    Returns ``(v, vega)`` with ``v = b(x, s)`` where ``upper`` is False and
    ``v = e^{x/2} - b(x, s) = e^{x/2} N(-d1) + e^{-x/2} N(d2)`` (computed without
    cancellation) where it is True; ``vega = db/ds = e^{x/2} phi(d1)``.
    """
    # x/s only overflows for a vanishing s, where N(-inf) = 0 is exact.
    with np.errstate(over="ignore"):
        d1 = x / s + 0.5 * s
    m = d1.size
    sign = np.where(upper, -1.0, 1.0)
    n = _norm_cdf(np.concatenate([sign * d1, d1 - s]))
    v = e_half * n[:m] - sign * e_mhalf * n[m:]
    return v, e_half * _norm_pdf(d1)


def _solve_normalised(
    x: npt.NDArray[np.float64],
    beta: npt.NDArray[np.float64],
    tol_s: npt.NDArray[np.float64],
    max_iter: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Solve ``b(x, s) = beta`` for ``s`` (all arrays shape (m,)); see :func:`implied_vol`.

    Returns ``(s, converged)``; ``s`` is meaningless where ``converged`` is False.
    """
    m = x.size
    s_out = np.full(m, np.nan)
    conv_out = np.zeros(m, dtype=bool)
    if m == 0:
        return s_out, conv_out
    e_half = np.exp(0.5 * x)  # b_max, the s -> inf limit of b
    e_mhalf = np.exp(-0.5 * x)
    s_c = np.sqrt(-2.0 * x)
    # At the inflection point d1 = 0 and d2 = -s_c.
    b_c = 0.5 * e_half - e_mhalf * _norm_cdf(-s_c)
    slope_c = _INV_SQRT_2PI * e_half
    s_u = s_c + (e_half - b_c) / slope_c

    # Regions: 0 = lower (beta < b_c, objective ln b), 1 = middle (objective b),
    # 2 = upper (beta > b(s_u), objective ln(b_max - b)).
    region = np.where(beta < b_c, 0, 1)
    lo = np.where(region == 0, 0.0, s_c)
    hi = np.where(region == 0, s_c, np.inf)
    cand = np.flatnonzero((region == 1) & (beta > b_c + 0.5 * (e_half - b_c)))
    if cand.size:
        c_u, _ = _normalised_otm(x[cand], s_u[cand], np.zeros(cand.size, bool),
                                 e_half[cand], e_mhalf[cand])
        above = beta[cand] > c_u
        region[cand[above]] = 2
        lo[cand[above]] = s_u[cand[above]]
        hi[cand[~above]] = s_u[cand[~above]]

    # Initial guesses.
    s = s_c + (beta - b_c) / slope_c  # tangent at s_c (middle); below the root there
    low = np.flatnonzero(region == 0)
    if low.size:
        # Small-s asymptote b ~ phi(x/s) e^{-s^2/8} s^3 / x^2: with u = x^2 / (2 s^2),
        # u + 1.5 ln u = ln|x| - ln beta - 1.5 ln 2 - 0.5 ln(2 pi); two fixed-point steps.
        ax = -x[low]
        rhs = np.log(ax / beta[low]) - 1.5 * np.log(2.0) - 0.5 * np.log(2.0 * np.pi)
        u = np.maximum(rhs, 1.0)
        for _ in range(2):
            u = np.maximum(rhs - 1.5 * np.log(u), 0.5)
        s[low] = np.minimum(ax / np.sqrt(2.0 * u), s_c[low])
    up = np.flatnonzero(region == 2)
    if up.size:
        # Large-s asymptote b_max - b ~ 4 phi(s/2) / s: with w = s^2 / 8,
        # w + 0.5 ln(8 w) = ln(4 / sqrt(2 pi)) - ln(b_max - beta).
        rhs = np.log(4.0 * _INV_SQRT_2PI / (e_half[up] - beta[up]))
        w = np.maximum(rhs, 1.0)
        for _ in range(2):
            w = np.maximum(rhs - 0.5 * np.log(8.0 * w), 0.5)
        s[up] = np.maximum(np.sqrt(8.0 * w), s_u[up])
    s = np.where((s > lo) & (s < hi), s, np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * lo))

    # Objective targets: ln beta (lower), beta (middle), ln(b_max - beta) (upper).
    target = np.where(region == 0, np.log(beta),
                      np.where(region == 2, np.log(np.maximum(e_half - beta, 1e-300)), beta))
    pos = np.arange(m)
    for _ in range(max_iter):
        if pos.size == 0:
            break
        upper = region == 2
        logobj = region != 1
        v, vega = _normalised_otm(x, s, upper, e_half, e_mhalf)
        kappa = x * x / (s * s * s) - 0.25 * s  # (d^2b/ds^2) / (db/ds)
        # The objective f (increasing in s, same sign as b - beta), the Newton step
        # f/f' and h = f''/f'. Underflowed values (v <= 0 or vega == 0) give non-finite
        # steps: those legs bisect, so the divide/invalid warnings are expected.
        with np.errstate(divide="ignore", invalid="ignore"):
            lnv = np.log(np.where(logobj & (v > 0), v, 1.0))
            w = vega / v
            fval = np.where(region == 1, v - target,
                            np.where(upper, target - lnv, lnv - target))
            fval = np.where(logobj & ~(v > 0), np.where(upper, np.inf, -np.inf), fval)
            newton = np.where(region == 1, fval / vega, fval / w)
            h = np.where(region == 1, kappa, np.where(upper, kappa + w, kappa - w))
            denom = 1.0 - 0.5 * newton * h
            step = -newton / np.where(denom > 0.5, denom, 1.0)  # Halley, else Newton
        lo = np.where(fval < 0, s, lo)
        hi = np.where(fval > 0, s, hi)
        # Residual at the level of rounding: the price is reproduced as well as it can be.
        resid = np.abs(np.where(region == 1, fval / target, fval))
        done_here = resid <= 4.0 * _EPS
        s_new = s + step
        # A step below tolerance is accepted even if rounding puts it on the bracket edge.
        small = np.abs(step) <= tol_s
        inside = small | (np.isfinite(s_new) & (s_new > lo) & (s_new < hi))
        bisect = np.where(np.isfinite(hi),
                          np.where(hi > 4.0 * lo, np.sqrt(lo * hi), 0.5 * (lo + hi)),
                          2.0 * np.maximum(lo, s))
        bisect = np.where(lo > 0, bisect, 0.25 * hi)
        s_new = np.where(inside, s_new, bisect)
        done = done_here | small | (hi - lo <= tol_s)
        s_new = np.where(done_here, s, s_new)
        if done.any():
            fin = np.flatnonzero(done)
            s_out[pos[fin]] = s_new[fin]
            conv_out[pos[fin]] = True
            keep = np.flatnonzero(~done)
            pos, s_new, lo, hi, x, region, target = (
                a[keep] for a in (pos, s_new, lo, hi, x, region, target))
            e_half, e_mhalf, tol_s = e_half[keep], e_mhalf[keep], tol_s[keep]
        s = s_new
        if TRACE: print("s", s, "lo", lo, "hi", hi, "region", region, "step", step, "f", fval)
    return s_out, conv_out
