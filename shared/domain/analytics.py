"""Full-chain analytics for one snapshot: forwards, IVs, greeks, smiles, flows, GEX, the
risk-neutral density and no-arbitrage checks.

Everything is vectorised over legs; the only Python loops run over expiries (at most a
few dozen per snapshot).

Conventions
-----------
* Time ``t`` is the ACT/365 year fraction from the snapshot to the expiry close, supplied
  by the caller (the market calendar), fractional on expiry day.
* ``rate`` is a continuously compounded annual rate; ``DF = exp(-rate * t)``.
* Volatilities are annualised decimals. Prices and strikes are rupees per unit.
* Open interest is in contracts; ``lot_size`` converts it to units of the underlying.
* Greeks are Black-76 greeks with respect to the forward (see :mod:`shared.domain.black76`);
  GEX converts gamma to spot terms with ``dF/dS = F/S``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

import numpy as np
import numpy.typing as npt

from shared.domain.black76 import black76_price, gamma, greeks, implied_vol
from shared.domain.chain import ChainSnapshot, Missing

Floats = npt.NDArray[np.float64]
Grid = Annotated[Floats, "(n_grid,)"]
ByStrike = Annotated[Floats, "(n_strikes,)"]

NSE_TICK = 0.05
MIN_IV = 0.01  # floor of the extrapolated smile (annualised)


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """Knobs of the analytics, with defaults suited to NSE index options."""

    tick: float = NSE_TICK
    parity_strikes: int = 6  # strikes nearest the spot used for the implied forward
    max_relative_spread: float = 0.5  # a quote wider than this (vs its mid) is not a price
    smile_degree: int = 3  # polynomial degree in log-moneyness for the smoothed smile
    density_points: int = 401
    density_width_sd: float = 7.0  # grid half-width in ATM standard deviations
    crash_move: float = 0.05  # left-tail probability of S_T <= F * (1 - crash_move)
    gex_grid_points: int = 61
    gex_grid_width: float = 0.08  # +/- 8 % of spot for the gamma-flip search
    arbitrage_tolerance_ticks: float = 1.0  # per leg of the arbitrage portfolio
    max_arbitrage_fraction: float = 0.05  # more violating strikes than this: a bad chain
    min_arbitrage_violations: int = 3  # ... and at least this many
    min_smile_points: int = 5  # OTM IVs needed for a smile, with 2 on each side of F
    max_clipped_density: float = 0.01  # more negative mass clipped than this: no density
    max_density_mean_error: float = 0.005  # |E[S_T]/F - 1| above this: no density


@dataclass(frozen=True, slots=True)
class LegAnalytics:
    """Per-leg results, aligned with the snapshot's leg arrays (shape (n_legs,))."""

    price: Floats  # the price used for IV: mid if the quote is usable, else last traded
    iv: Floats  # our Black-76 IV (NaN where ``iv_status`` != OK)
    iv_status: npt.NDArray[np.int8]
    delta: Floats
    gamma: Floats
    vega: Floats
    theta: Floats
    t: Floats  # year fraction of the leg's expiry
    forward: Floats  # the implied forward of the leg's expiry


@dataclass(frozen=True, slots=True)
class Smile:
    """A smoothed smile: IV as a polynomial in log-moneyness ``x = ln(K/F)``.

    Outside ``[x_min, x_max]`` (the quoted OTM range) the IV continues linearly with the
    slope it has at the edge (no kink, so no spurious lobe in the density), floored at
    ``MIN_IV``.
    """

    coefficients: tuple[float, ...]  # highest power first (numpy.polyval order)
    x_min: float
    x_max: float
    points: int  # OTM quotes the fit used

    def iv(self, x: Floats) -> Floats:
        c = np.asarray(self.coefficients)
        inner = np.clip(x, self.x_min, self.x_max)
        slope = np.polyval(np.polyder(c), inner) if c.size > 1 else np.zeros_like(inner)
        return np.maximum(np.polyval(c, inner) + slope * (x - inner), MIN_IV)


@dataclass(frozen=True, slots=True)
class Density:
    """The Breeden-Litzenberger risk-neutral density of ``S_T`` on a strike grid.

    ``pdf = exp(r t) * d2C/dK2``, computed from call prices of the smoothed smile; negative
    values (butterfly arbitrage in the fit) are clipped and their mass reported, then the
    density is normalised so that its trapezoidal integral is 1. Moments are of ``S_T`` in
    rupees; ``skew`` and ``kurtosis`` are standardised (kurtosis is Pearson's, 3 for normal).
    """

    grid: Grid
    pdf: Grid
    mean: float
    variance: float
    skew: float
    kurtosis: float
    crash_probability: float  # P(S_T <= crash_level)
    crash_level: float
    clipped_negative_mass: float
    raw_integral: float  # integral before normalisation (near 1 for a sound smile)


@dataclass(frozen=True, slots=True)
class ArbitrageCheck:
    """Vertical and butterfly checks on one expiry's quoted prices."""

    strikes_checked: int
    vertical_violations: int
    butterfly_violations: int
    bad: bool
    worst: str | None = None


@dataclass(frozen=True, slots=True)
class ExpiryAnalytics:
    expiry: date
    t: float
    forward: float
    forward_method: str  # "parity" or "spot_carry" (fallback, flagged)
    atm_iv: float
    smile: Smile | None
    pcr_oi: float
    pcr_volume: float
    max_pain: float
    strikes: ByStrike
    call_oi: ByStrike
    put_oi: ByStrike
    call_oi_change: ByStrike
    put_oi_change: ByStrike
    gex_by_strike: ByStrike  # rupees per 1 % move in spot, dealer-signed
    gex_total: float
    gamma_flip: float  # spot level where total dealer GEX changes sign (NaN: see reasons)
    density: Density | None
    arbitrage: ArbitrageCheck
    reasons: tuple[str, ...] = ()  # why something above is NaN or None


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    legs: LegAnalytics
    expiries: tuple[ExpiryAnalytics, ...]
    skipped: Mapping[date, str] = field(default_factory=dict)  # expiry -> why not analysed

    @property
    def bad(self) -> bool:
        """True when any analysed expiry fails the no-arbitrage checks."""
        return any(e.arbitrage.bad for e in self.expiries)

    def term_structure(self) -> list[tuple[date, float, float]]:
        """(expiry, t, ATM IV) for every analysed expiry."""
        return [(e.expiry, e.t, e.atm_iv) for e in self.expiries]


# --- prices and forwards --------------------------------------------------------------


def usable_prices(snap: ChainSnapshot, cfg: AnalyticsConfig) -> Floats:
    """Mid of a two-sided quote when its spread is sane, else the last traded price.

    A stale last price (yesterday's close, zero volume) is not used.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = 0.5 * (snap.bid + snap.ask)
        spread_ok = (snap.ask - snap.bid) <= cfg.max_relative_spread * mid
    two_sided = np.isfinite(mid) & spread_ok & (snap.bid > 0)
    stale = (snap.missing & np.uint16(Missing.STALE_PRICE)) != 0
    last_ok = np.isfinite(snap.last) & ~stale
    return np.where(two_sided, mid, np.where(last_ok, snap.last, np.nan))


def implied_forward(strikes: ByStrike, call: ByStrike, put: ByStrike, spot: float, df: float,
                    n: int, weights: ByStrike | None = None) -> float:
    """Forward from put-call parity ``C - P = DF (F - K)`` on the ``n`` strikes nearest spot
    that have both prices: the ``weights``-weighted mean of ``K + (C - P) / DF`` (equal
    weights by default). NaN if no strike qualifies."""
    both = np.isfinite(call) & np.isfinite(put)
    if weights is not None:
        both &= np.isfinite(weights) & (weights > 0)
    if not both.any():
        return float("nan")
    k = strikes[both]
    nearest = np.argsort(np.abs(k - spot))[:n]
    estimates = k[nearest] + (call[both][nearest] - put[both][nearest]) / df
    w = np.ones(nearest.shape) if weights is None else weights[both][nearest]
    return float(np.sum(w * estimates) / np.sum(w))


def two_sided_mids(bid: Floats, ask: Floats, max_relative_spread: float) -> tuple[Floats, Floats]:
    """Mid and spread of quotes with both sides, a positive bid and a sane spread (NaN
    elsewhere): the only prices trusted for the parity forward."""
    with np.errstate(invalid="ignore"):
        mid = 0.5 * (bid + ask)
        spread = ask - bid
        ok = (bid > 0) & (spread >= 0) & (spread <= max_relative_spread * mid)
    return np.where(ok, mid, np.nan), np.where(ok, spread, np.nan)


# --- per-expiry pieces ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrikeIndex:
    """The unique strikes of one expiry and where each leg sits among them."""

    strikes: ByStrike
    position: npt.NDArray[np.intp]  # (n_legs,) index into ``strikes``
    is_call: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, strike: Floats, is_call: npt.NDArray[np.bool_]) -> StrikeIndex:
        strikes, position = np.unique(strike, return_inverse=True)
        return cls(strikes, position, is_call)

    def split(self, values: Floats) -> tuple[ByStrike, ByStrike]:
        """Call and put values per strike (NaN where that leg is absent)."""
        call = np.full(self.strikes.shape, np.nan)
        put = np.full(self.strikes.shape, np.nan)
        call[self.position[self.is_call]] = values[self.is_call]
        put[self.position[~self.is_call]] = values[~self.is_call]
        return call, put


def max_pain(strikes: ByStrike, call_oi: ByStrike, put_oi: ByStrike) -> float:
    """The settlement strike that minimises the intrinsic value paid to option holders."""
    c = np.nan_to_num(call_oi)
    p = np.nan_to_num(put_oi)
    settle = strikes[:, None]
    payout = (np.maximum(settle - strikes[None, :], 0.0) * c[None, :]
              + np.maximum(strikes[None, :] - settle, 0.0) * p[None, :]).sum(axis=1)
    return float(strikes[int(np.argmin(payout))])


def fit_smile(x: Floats, iv: Floats, weights: Floats, degree: int,
              min_points: int = 5) -> Smile | None:
    """Weighted least-squares polynomial of IV in log-moneyness over OTM quotes.

    ``weights`` should be vega over the quote's half-spread: the fit then minimises the
    price error in units of the spread. Needs ``min_points`` IVs, at least two on each side
    of the forward (so the ATM IV is interpolated, not extrapolated); the degree stays
    below ``n - 1`` so the fit smooths instead of interpolating. ``None`` otherwise.
    """
    ok = np.isfinite(x) & np.isfinite(iv) & np.isfinite(weights) & (weights > 0)
    n = int(ok.sum())
    if n < min_points or (x[ok] < 0).sum() < 2 or (x[ok] > 0).sum() < 2:
        return None
    deg = min(degree, n - 2)
    coeffs = np.polyfit(x[ok], iv[ok], deg, w=weights[ok])
    return Smile(tuple(float(c) for c in coeffs), float(x[ok].min()), float(x[ok].max()), n)


def risk_neutral_density(smile: Smile, forward: float, t: float, rate: float, atm_iv: float,
                         cfg: AnalyticsConfig) -> Density:
    """Breeden-Litzenberger density from the smoothed smile (see :class:`Density`)."""
    sd = atm_iv * np.sqrt(t)
    x = np.linspace(-cfg.density_width_sd * sd, cfg.density_width_sd * sd, cfg.density_points)
    k = forward * np.exp(x)
    # a uniform strike grid keeps the second difference simple and exact to O(h^2)
    grid = np.linspace(k[0], k[-1], cfg.density_points)
    h = grid[1] - grid[0]
    vol = smile.iv(np.log(grid / forward))
    calls = black76_price(forward, grid, t, rate, vol, True)
    pdf = np.empty_like(grid)
    pdf[1:-1] = np.exp(rate * t) * (calls[2:] - 2.0 * calls[1:-1] + calls[:-2]) / (h * h)
    pdf[0] = pdf[-1] = 0.0
    raw_integral = float(np.trapezoid(pdf, grid))
    negative = float(np.trapezoid(np.minimum(pdf, 0.0), grid))
    pdf = np.maximum(pdf, 0.0)
    total = float(np.trapezoid(pdf, grid))
    pdf = pdf / total
    mean = float(np.trapezoid(grid * pdf, grid))
    centred = grid - mean
    variance = float(np.trapezoid(centred**2 * pdf, grid))
    sd_st = np.sqrt(variance)
    skew = float(np.trapezoid(centred**3 * pdf, grid)) / sd_st**3
    kurt = float(np.trapezoid(centred**4 * pdf, grid)) / variance**2
    level = forward * (1.0 - cfg.crash_move)
    cdf = np.concatenate(([0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))))
    crash = float(np.interp(level, grid, cdf))
    return Density(grid, pdf, mean, variance, skew, kurt, crash, level, -negative, raw_integral)


def arbitrage_check(strikes: ByStrike, call_bid: ByStrike, call_ask: ByStrike, put_bid: ByStrike,
                    put_ask: ByStrike, forward: float, df: float, tolerance: float,
                    max_fraction: float, min_violations: int = 3) -> ArbitrageCheck:
    """Executable vertical and butterfly arbitrage in one expiry's quotes.

    Call quotes are taken from the out-of-the-money side: below the forward a call is
    synthesised from the put by parity, ``C = P + DF (F - K)``. With bid ``b`` and ask
    ``a`` at strikes ``K1 < K2 < K3``, a violation is a portfolio with a non-negative
    payoff that the quotes let you buy for less than nothing (beyond ``tolerance`` per
    leg):

    * vertical, lower bound: buy ``C(K1)``, sell ``C(K2)`` for ``a1 - b2 < 0``;
    * vertical, upper bound: sell ``C(K1)``, buy ``C(K2)`` for more than ``DF (K2 - K1)``;
    * butterfly: ``w1 a1 - w2 b2 + w3 a3 < 0`` with ``w1 = K3 - K2``, ``w2 = K3 - K1``,
      ``w3 = K2 - K1`` (convexity of the call price in strike).

    Crossed quotes (ask below bid) count as violations. Butterflies that straddle the
    forward (mixing parity-synthesised and quoted calls, so sensitive to the forward's own
    error) are not counted. The chain is *bad* when violations exceed ``max_fraction`` of
    the strikes checked and number at least ``min_violations``.
    """
    parity = df * (forward - strikes)
    below = strikes < forward
    bid = np.where(below, put_bid + parity, call_bid)
    ask = np.where(below, put_ask + parity, call_ask)
    quoted = np.isfinite(bid) & np.isfinite(ask)
    crossed = int((quoted & (ask < bid)).sum())
    ok = quoted & (ask >= bid)
    k, b, a = strikes[ok], bid[ok], ask[ok]
    n = int(k.shape[0])
    if n < 3:
        return ArbitrageCheck(n, crossed, 0, crossed >= min_violations, None)
    dk = np.diff(k)
    lower = (a[:-1] - b[1:]) < -2 * tolerance
    upper = (b[:-1] - a[1:]) > df * dk + 2 * tolerance
    w1, w3 = dk[1:], dk[:-1]
    w2 = w1 + w3
    fly_cost = w1 * a[:-2] - w2 * b[1:-1] + w3 * a[2:]
    seam = (k[:-2] < forward) & (k[2:] >= forward)
    fly = (fly_cost < -tolerance * (w1 + w2 + w3)) & ~seam
    v, f = int(lower.sum() + upper.sum()) + crossed, int(fly.sum())
    worst = None
    if f:
        i = int(np.argmin(fly_cost / (w1 + w2 + w3)))
        worst = f"butterfly {k[i]:g}/{k[i + 1]:g}/{k[i + 2]:g} buys for {fly_cost[i] / w2[i]:.2f} per unit"
    elif v:
        i = int(np.argmax(np.where(lower, b[1:] - a[:-1], 0.0) + np.where(upper, b[:-1] - a[1:], 0.0)))
        worst = f"vertical {k[i]:g}/{k[i + 1]:g}: bid {b[i]:.2f}/{b[i + 1]:.2f}, ask {a[i]:.2f}/{a[i + 1]:.2f}"
    bad = (v + f) > max_fraction * n and (v + f) >= min_violations
    return ArbitrageCheck(n, v, f, bad, worst)


def dealer_gex(strike: Floats, is_call: npt.NDArray[np.bool_], oi: Floats, iv: Floats,
               forward: float, spot: float, t: float, rate: float, lot_size: int,
               spot_levels: Floats) -> tuple[Floats, Floats]:
    """Dealer gamma exposure, rupees per 1 % spot move, now and at each of ``spot_levels``.

    Convention: dealers are long the calls and short the puts the public holds, so call
    gamma counts positive and put gamma negative;
    ``GEX = sign * Gamma_S * OI * lot_size * S^2 * 0.01`` with
    ``Gamma_S = Gamma_F * (F / S)^2``. IVs are held per strike (sticky strike) and the
    forward moves with spot. Legs without an IV or without open interest contribute 0.

    Returns
    -------
    by_leg_now : (n_legs,) GEX of each leg at the current spot
    totals : (n_levels,) total GEX at each spot level
    """
    levels = np.asarray(spot_levels, dtype=float)
    units = np.nan_to_num(oi) * lot_size
    use = np.isfinite(iv) & (units != 0)
    by_leg = np.zeros(strike.shape)
    if not use.any():
        return by_leg, np.zeros(levels.shape)
    carry = forward / spot
    k, vol = strike[use], iv[use]
    weight = np.where(is_call[use], 1.0, -1.0) * units[use] * 0.01 * carry**2
    by_leg[use] = weight * gamma(forward, k, t, rate, vol) * spot**2
    scan = gamma(levels[:, None] * carry, k[None, :], t, rate, vol[None, :])
    return by_leg, (scan @ weight) * levels**2


def gamma_flip(levels: Floats, totals: Floats, spot: float) -> float:
    """The zero crossing of total GEX nearest to spot (linear interpolation); NaN if none."""
    s = np.sign(totals)
    exact = levels[s == 0]
    cross = np.nonzero(s[:-1] * s[1:] < 0)[0]
    if cross.size == 0:
        return float(exact[np.argmin(np.abs(exact - spot))]) if exact.size else float("nan")
    x0, x1, y0, y1 = levels[cross], levels[cross + 1], totals[cross], totals[cross + 1]
    roots = np.concatenate((x0 - y0 * (x1 - x0) / (y1 - y0), exact))
    return float(roots[np.argmin(np.abs(roots - spot))])


# --- the whole snapshot ---------------------------------------------------------------


def analyse_chain(snap: ChainSnapshot, *, t_by_expiry: Mapping[date, float], rate: float,
                  lot_size_by_expiry: Mapping[date, int],
                  cfg: AnalyticsConfig | None = None) -> ChainAnalytics:
    """Analyse every expiry of ``snap``.

    Parameters
    ----------
    snap
        The parsed snapshot.
    t_by_expiry
        Year fraction (ACT/365) from ``snap.asof`` to each expiry's close. Expiries missing
        here or with ``t <= 0`` are skipped with a reason.
    rate
        Continuously compounded annual rate used for discounting.
    lot_size_by_expiry
        Units per contract for each expiry (dated: lot sizes change by series).
    """
    cfg = cfg or AnalyticsConfig()
    n = snap.n_legs
    price = usable_prices(snap, cfg)
    t_leg = np.full(n, np.nan)
    f_leg = np.full(n, np.nan)
    skipped: dict[date, str] = {}
    forwards: dict[date, tuple[float, str]] = {}
    masks: dict[date, npt.NDArray[np.bool_]] = {}

    for expiry in snap.expiries:
        t = t_by_expiry.get(expiry)
        if t is None or not t > 0:
            skipped[expiry] = "expired or no year fraction" if t is not None else "no year fraction"
            continue
        mask = snap.for_expiry(expiry)
        df = np.exp(-rate * t)
        index = StrikeIndex.of(snap.strike[mask], snap.is_call[mask])
        mid, spread = two_sided_mids(snap.bid[mask], snap.ask[mask], cfg.max_relative_spread)
        call_mid, put_mid = index.split(mid)
        call_spread, put_spread = index.split(spread)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = 1.0 / np.maximum(call_spread + put_spread, cfg.tick)
        fwd = implied_forward(index.strikes, call_mid, put_mid, snap.spot, df, cfg.parity_strikes,
                              weight)
        method = "parity"
        if not np.isfinite(fwd):  # no two-sided pair: last trades, flagged as such
            call_px, put_px = index.split(price[mask])
            fwd = implied_forward(index.strikes, call_px, put_px, snap.spot, df,
                                  cfg.parity_strikes)
            method = "parity_last_trades"
        if not np.isfinite(fwd):
            fwd, method = snap.spot * np.exp(rate * t), "spot_carry"
        masks[expiry] = mask
        forwards[expiry] = (fwd, method)
        t_leg[mask] = t
        f_leg[mask] = fwd

    active = np.isfinite(t_leg)
    ivr = implied_vol(np.where(active, price, np.nan), np.where(active, f_leg, 1.0), snap.strike,
                      np.where(active, t_leg, 0.0), rate, snap.is_call, tick=cfg.tick)
    iv = ivr.iv
    sigma = np.where(np.isfinite(iv), iv, np.nan)
    with np.errstate(invalid="ignore"):
        gk = greeks(np.where(active, f_leg, 1.0), snap.strike, np.where(active, t_leg, 1.0), rate,
                    np.where(np.isfinite(sigma), sigma, 0.2), snap.is_call)
    valid = np.isfinite(sigma)
    legs = LegAnalytics(
        price=price, iv=iv, iv_status=ivr.status,
        delta=np.where(valid, gk.delta, np.nan), gamma=np.where(valid, gk.gamma, np.nan),
        vega=np.where(valid, gk.vega, np.nan), theta=np.where(valid, gk.theta, np.nan),
        t=t_leg, forward=f_leg,
    )

    results = []
    for expiry, mask in masks.items():
        fwd, method = forwards[expiry]
        t = float(t_by_expiry[expiry])
        results.append(_analyse_expiry(snap, legs, mask, expiry, t, fwd, method, rate,
                                       lot_size_by_expiry.get(expiry), cfg))
    return ChainAnalytics(legs, tuple(results), skipped)


def _analyse_expiry(snap: ChainSnapshot, legs: LegAnalytics, mask: npt.NDArray[np.bool_],
                    expiry: date, t: float, fwd: float, method: str, rate: float,
                    lot_size: int | None, cfg: AnalyticsConfig) -> ExpiryAnalytics:
    reasons: list[str] = []
    if method == "parity_last_trades":
        reasons.append("forward: no strike with two-sided call and put quotes; last trades used")
    elif method != "parity":
        reasons.append("forward: no strike with both a call and a put price; spot carried at rate")
    strike, is_call = snap.strike[mask], snap.is_call[mask]
    iv, oi = legs.iv[mask], snap.oi[mask]
    df = float(np.exp(-rate * t))
    index = StrikeIndex.of(strike, is_call)

    # smile from OTM legs only, weighted by vega per half-spread (price error in spreads)
    otm = np.where(is_call, strike >= fwd, strike < fwd)
    with np.errstate(invalid="ignore"):
        half_spread = np.where(np.isfinite(snap.ask[mask] - snap.bid[mask]),
                               0.5 * (snap.ask[mask] - snap.bid[mask]), 2 * cfg.tick)
    weights = np.where(otm, legs.vega[mask] / np.maximum(half_spread, cfg.tick), np.nan)
    smile = fit_smile(np.log(strike / fwd), np.where(otm, iv, np.nan), weights,
                      cfg.smile_degree, cfg.min_smile_points)
    atm_iv = float(smile.iv(np.zeros(1))[0]) if smile else float("nan")
    if smile is None:
        reasons.append(f"smile: fewer than {cfg.min_smile_points} OTM IVs, or fewer than 2 on "
                       "a side of the forward")

    call_oi, put_oi = index.split(oi)
    call_doi, put_doi = index.split(snap.oi_change[mask])
    call_vol, put_vol = index.split(snap.volume[mask])
    have_puts = np.isfinite(put_oi).any()
    pcr_oi = _ratio(np.nansum(put_oi), np.nansum(call_oi)) if have_puts else float("nan")
    pcr_vol = (_ratio(np.nansum(put_vol), np.nansum(call_vol)) if np.isfinite(put_vol).any()
               else float("nan"))
    if not np.isfinite(pcr_oi):
        reasons.append("pcr_oi: no put legs or no call open interest")
    if not np.isfinite(pcr_vol):
        reasons.append("pcr_volume: no put legs or no call volume")
    if np.nansum(call_oi) + np.nansum(put_oi) > 0:
        pain = max_pain(index.strikes, call_oi, put_oi)
    else:
        pain = float("nan")
        reasons.append("max_pain: no open interest")

    if lot_size is None:
        reasons.append("gex: no lot size for this expiry")
        gex_strike = np.full(index.strikes.shape, np.nan)
        gex_total = flip = float("nan")
    else:
        levels = snap.spot * np.linspace(1 - cfg.gex_grid_width, 1 + cfg.gex_grid_width,
                                         cfg.gex_grid_points)
        # legs without their own IV take the smile's (GEX needs every leg with open interest)
        gex_iv = iv if smile is None else np.where(np.isfinite(iv), iv,
                                                    smile.iv(np.log(strike / fwd)))
        units = np.nan_to_num(oi)
        covered = float(units[np.isfinite(gex_iv)].sum() / units.sum()) if units.sum() > 0 else 0.0
        if covered == 0.0:
            reasons.append("gex: no leg with both open interest and a volatility")
            gex_strike = np.full(index.strikes.shape, np.nan)
            gex_total = flip = float("nan")
        else:
            if covered < 0.999:
                reasons.append(f"gex: covers {covered:.1%} of open interest (legs without a vol)")
            by_leg, totals = dealer_gex(strike, is_call, oi, gex_iv, fwd, snap.spot, t, rate,
                                        lot_size, levels)
            g_call, g_put = index.split(by_leg)
            gex_strike = np.nan_to_num(g_call) + np.nan_to_num(g_put)
            gex_total = float(by_leg.sum())
            flip = gamma_flip(levels, totals, snap.spot)
            if not np.isfinite(flip):
                reasons.append(f"gamma_flip: total GEX keeps its sign within "
                               f"±{cfg.gex_grid_width:.0%}")

    density = None
    if smile is not None and np.isfinite(atm_iv) and atm_iv > 0:
        candidate = risk_neutral_density(smile, fwd, t, rate, atm_iv, cfg)
        mean_error = abs(candidate.mean / fwd - 1)
        if candidate.clipped_negative_mass > cfg.max_clipped_density:
            reasons.append(f"density: the smile implies {candidate.clipped_negative_mass:.1%} "
                           f"negative mass (> {cfg.max_clipped_density:.0%}): not arbitrage-free")
        elif mean_error > cfg.max_density_mean_error:
            reasons.append(f"density: mean {candidate.mean:.1f} is {mean_error:.2%} from the "
                           f"forward {fwd:.1f}")
        else:
            density = candidate
    else:
        reasons.append("density: no smile")

    call_bid, put_bid = index.split(snap.bid[mask])
    call_ask, put_ask = index.split(snap.ask[mask])
    arb = arbitrage_check(index.strikes, call_bid, call_ask, put_bid, put_ask, fwd, df,
                          cfg.arbitrage_tolerance_ticks * cfg.tick, cfg.max_arbitrage_fraction,
                          cfg.min_arbitrage_violations)
    return ExpiryAnalytics(
        expiry=expiry, t=t, forward=fwd, forward_method=method, atm_iv=atm_iv, smile=smile,
        pcr_oi=pcr_oi, pcr_volume=pcr_vol, max_pain=pain, strikes=index.strikes,
        call_oi=call_oi, put_oi=put_oi, call_oi_change=call_doi, put_oi_change=put_doi,
        gex_by_strike=gex_strike, gex_total=gex_total, gamma_flip=flip, density=density,
        arbitrage=arb, reasons=tuple(reasons),
    )


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")
