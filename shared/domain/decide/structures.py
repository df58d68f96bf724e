"""Layer 3 of decide: choose concrete strikes and an expiry for a structure, and its odds.

Pure: a parsed :class:`~shared.domain.chain.ChainSnapshot` and its
:class:`~shared.domain.analytics.ChainAnalytics` in, a :class:`ChosenStructure` out, and
:func:`to_proposal` turns it into the :class:`~shared.contracts.DecisionProposedV1` that
risk_check consumes. No I/O, no clock, no randomness.

Units and conventions
---------------------
* Strikes, prices, forwards and standard deviations of the index are index points, which
  are rupees per unit of the underlying. Position amounts (premium, max profit and loss,
  expected edge, payoff points) are rupees for the whole position:
  ``units = lots * lot_size``, signed (+ bought, - sold).
* Volatilities are annualised decimals; time ``t`` is ACT/365 years (the analytics').
* ``net_premium = sum(units * reference price)``: rupees paid (+) or received (-). The
  reference price of a leg is its **mid** ``(bid + ask) / 2`` rounded to 2 decimals
  (risk_check re-prices at the touch and charges costs itself; the legs, lots and lot size
  of the proposal are its cost inputs).
* Payoff at expiry ``P(S) = sum_i units_i * intrinsic_i(S) - net_premium`` (undiscounted,
  premium carry ignored), the convention of :mod:`shared.domain.risk.odds`.

Strike rules (recorded in :attr:`ChosenStructure.how`)
------------------------------------------------------
Only *listed, usable* legs are candidates: :func:`liquid` (two-sided, spread under a cap,
open interest over a floor when reported) and, when the analytics solved it, a finite IV
(risk_check refuses a leg it cannot price). With ``F`` the expiry's forward, ``sigma`` its
ATM IV and ``SD = sigma * F * sqrt(t)`` one standard deviation of the index to expiry:

* **ATM** (straddles, debit vertical's long leg, butterfly body): the usable strike
  nearest ``F`` (for straddles, usable as both CE and PE).
* **Shorts** (and strangle/naked legs): the usable strike nearest ``F +- k SD``
  (``k = short_distance_sd``) on the out-of-the-money side (calls at or above ``F``,
  puts at or below).
* **Wings**: the usable strike nearest ``short +- wing`` strictly beyond the short. When
  ``wing`` is None (no production wing model in the registry) the documented
  :class:`WingRule` applies per side: ``wing = clip(round(k_w * SD_side / step) * step,
  lo, hi)`` with ``SD_side = iv_smile(K_short) * F * sqrt(t)`` (the smoothed smile's IV at
  the short strike, so the skewed side gets the wider wing; ATM IV without a smile),
  ``step`` the median listed strike step, then snapped to a usable strike (the liquidity
  part: an illiquid target moves to the nearest usable strike beyond the short).

Structures (all of :class:`~shared.contracts.Structure` except ``CUSTOM``)
-------------------------------------------------------------------------
iron condor (sell OTM call and put at ``k SD``, buy wings), short/long straddle (ATM CE +
PE), short/long strangle (OTM CE + PE at ``k SD``), credit vertical (sell at ``k SD`` OTM,
buy the wing; puts by default), debit vertical (buy ATM, sell ``wing`` further OTM; calls
by default), butterfly (long call butterfly: buy ``K - d``, sell 2 at ``K``, buy ``K + d``
with ``K`` ATM and ``d`` the usable symmetric distance nearest the wing), naked single
(sell by default, ``k SD`` OTM; puts by default: a naked short call has unbounded loss and
risk_check requires a hedge for it).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, Structure
from shared.domain.analytics import ChainAnalytics, ExpiryAnalytics
from shared.domain.chain import ChainSnapshot
from shared.domain.risk.odds import expiry_odds

__all__ = [
    "DEFAULT_MAX_RELATIVE_SPREAD",
    "DEFAULT_MIN_DAYS",
    "DEFAULT_MIN_OI",
    "ChosenStructure",
    "LegChoice",
    "NoUsableExpiry",
    "NoUsableStrike",
    "PayoffProfile",
    "StructureSpec",
    "WingRule",
    "build_structure",
    "choose_expiry",
    "liquid",
    "payoff_profile",
    "to_proposal",
]

DEFAULT_MIN_DAYS = 2.0
"""Nearest expiry with at least this many ACT/365 days to its close (skips expiry-day gamma)."""
DEFAULT_MAX_RELATIVE_SPREAD = 0.25
"""A leg is liquid only if ``(ask - bid) / mid`` is below this (25 %)."""
DEFAULT_MIN_OI = 1.0
"""... and, where open interest is reported, at least this many contracts are open."""

_NAMESPACE = uuid.UUID("5f0c1d3e-8a7b-4c2d-9e61-0d3c5b7a9f11")


class NoUsableExpiry(ValueError):
    """No expiry has enough days left and usable analytics."""


class NoUsableStrike(ValueError):
    """No listed, usable strike satisfies a leg's rule."""


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class LegChoice:
    """One chosen leg: strike (index points), CE/PE, buy/sell, whole lots, mid (rupees/unit)."""

    strike: float
    option_type: OptionType
    side: Side
    lots: int
    price: float


@dataclass(frozen=True, slots=True)
class StructureSpec:
    """What to build: structure, expiry and the strike-rule inputs.

    Attributes
    ----------
    structure
        Any :class:`Structure` but ``CUSTOM``.
    expiry
        The expiry (see :func:`choose_expiry`).
    lots
        Whole lots per leg (a butterfly's body sells ``2 * lots``), > 0.
    short_distance_sd
        Distance of short (OTM) legs from the forward, in ATM standard deviations.
    wing
        Wing width in index points from the wing model, or None for :class:`WingRule`.
    lot_size
        Units per lot of the expiry (the dated market lot).
    forecast_vol
        Annualised forecast volatility for the odds; None: the ATM IV.
    option_type, side
        Side of the chain for verticals and naked singles (None: PE for credit verticals
        and naked singles, CE for debit verticals) and a naked single's side.
    """

    structure: Structure
    expiry: date
    lots: int
    short_distance_sd: float
    wing: float | None
    lot_size: int
    forecast_vol: float | None = None
    option_type: OptionType | None = None
    side: Side = Side.SELL


@dataclass(frozen=True, slots=True)
class PayoffProfile:
    """The exact expiry payoff of a single-expiry position (rupees, whole position).

    ``max_profit`` / ``max_loss`` are None when unbounded (positive slope above the last
    strike / negative slope there); both are floored at 0. ``points`` are ``(S, P(S))``
    at 0, every strike, every breakeven and twice the highest strike.
    """

    max_profit: float | None
    max_loss: float | None
    slope_right: float
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class ChosenStructure:
    """A concrete structure with its payoff and odds (see the module docstring for units).

    Attributes
    ----------
    structure, expiry, legs, lot_size
        The trade. ``legs`` carry whole positive lots and mid reference prices.
    net_premium
        Rupees paid (+) or received (-) for the whole position at the mids.
    max_profit, max_loss
        Rupees, >= 0; None when unbounded.
    breakevens
        Index levels at expiry where the payoff changes sign, ascending.
    payoff_points
        ``(S, P&L)`` pairs at expiry, rupees, ascending in ``S``.
    win_probability
        ``P(P(S_T) > 0)`` under the lognormal around the forward at ``sigma``.
    expected_gross_edge
        ``E[P(S_T)]`` = expected payoff minus net premium, rupees, before costs.
    sigma, forward, t
        The odds' inputs: annualised vol, forward (points), ACT/365 years.
    how
        Which rule chose the expiry, strikes and wings, and why (JSON-serialisable).
    """

    structure: Structure
    expiry: date
    legs: tuple[LegChoice, ...]
    lot_size: int
    net_premium: float
    max_profit: float | None
    max_loss: float | None
    breakevens: tuple[float, ...]
    payoff_points: tuple[tuple[float, float], ...]
    win_probability: float
    expected_gross_edge: float
    sigma: float
    forward: float
    t: float
    how: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                              npt.NDArray[np.bool_]]:
        """``(units, strikes, is_call)`` of the legs, for payoff maths."""
        return _arrays(self.legs, self.lot_size)


@dataclass(frozen=True, slots=True)
class WingRule:
    """The fallback wing rule (no production wing model): ``clip(round(k * SD_side /
    step) * step, lo, hi)`` index points, snapped to a usable strike beyond the short.

    Defaults ``k = 0.5``, ``lo = 50``, ``hi = 200`` (NIFTY-scale index points).
    """

    k: float = 0.5
    lo: float = 50.0
    hi: float = 200.0

    def width(self, sd_side: float, step: float) -> float:
        raw = round(self.k * sd_side / step) * step if step > 0 else self.k * sd_side
        return float(min(max(raw, self.lo), self.hi))


# ---------------------------------------------------------------------------- selection


def liquid(chain: ChainSnapshot, *, max_relative_spread: float = DEFAULT_MAX_RELATIVE_SPREAD,
           min_oi: float = DEFAULT_MIN_OI) -> npt.NDArray[np.bool_]:
    """Mask of usable legs, shape ``(n_legs,)``.

    A leg is usable when bid and ask are both positive (NaN, the parsers' "no quote", is
    not), ``bid <= ask``, ``(ask - bid) / mid < max_relative_spread`` and, when its open
    interest is reported (finite), ``oi >= min_oi`` contracts. Defaults:
    :data:`DEFAULT_MAX_RELATIVE_SPREAD`, :data:`DEFAULT_MIN_OI`.
    """
    bid, ask = chain.bid, chain.ask
    with np.errstate(invalid="ignore", divide="ignore"):
        two_sided = (bid > 0) & (ask > 0) & (bid <= ask)
        mid = (bid + ask) / 2
        tight = np.where(two_sided, (ask - bid) / np.where(two_sided, mid, 1.0), np.inf) \
            < max_relative_spread
        oi_ok = ~np.isfinite(chain.oi) | (chain.oi >= min_oi)
    return np.asarray(two_sided & tight & oi_ok, dtype=bool)


def _usable_expiry(ea: ExpiryAnalytics) -> bool:
    return all(math.isfinite(v) and v > 0 for v in (ea.t, ea.forward, ea.atm_iv))


def choose_expiry(analytics: ChainAnalytics, *, min_days: float = DEFAULT_MIN_DAYS,
                  chain: ChainSnapshot | None = None, min_liquid_strikes: int = 4,
                  **liquidity: float) -> ExpiryAnalytics:
    """The nearest expiry with ``t * 365 >= min_days`` and usable analytics.

    Usable: finite positive ``t``, forward and ATM IV; and, when ``chain`` is given, at
    least ``min_liquid_strikes`` :func:`liquid` legs of each type (``liquidity`` is passed
    to :func:`liquid`).

    Raises
    ------
    NoUsableExpiry
    """
    ok = liquid(chain, **liquidity) if chain is not None else None
    tried: list[str] = []
    for ea in sorted(analytics.expiries, key=lambda e: e.expiry):
        days = ea.t * 365.0
        if not days >= min_days:
            tried.append(f"{ea.expiry}: {days:.2f} days < {min_days}")
            continue
        if not _usable_expiry(ea):
            tried.append(f"{ea.expiry}: forward/ATM IV unusable {ea.reasons[:1]}")
            continue
        if chain is not None and ok is not None:
            m = chain.for_expiry(ea.expiry) & ok
            n_c, n_p = int((m & chain.is_call).sum()), int((m & ~chain.is_call).sum())
            if min(n_c, n_p) < min_liquid_strikes:
                tried.append(f"{ea.expiry}: {n_c} liquid CE, {n_p} liquid PE")
                continue
        return ea
    raise NoUsableExpiry("no usable expiry: " + "; ".join(tried or ["no analysed expiry"]))


@dataclass(frozen=True, slots=True)
class _Book:
    """Usable strikes and mids of one expiry, per type."""

    strikes: dict[bool, npt.NDArray[np.float64]]
    mids: dict[bool, dict[float, float]]
    step: float

    def nearest(self, call: bool, target: float, *, above: float | None = None,
                below: float | None = None, what: str = "") -> float:
        k = self.strikes[call]
        if above is not None:
            k = k[k > above]
        if below is not None:
            k = k[k < below]
        if k.size == 0:
            kind = "CE" if call else "PE"
            raise NoUsableStrike(f"no usable {kind} strike for {what or 'leg'} "
                                 f"(target {target:.2f}, above={above}, below={below})")
        return float(k[np.argmin(np.abs(k - target) + 1e-9 * k)])  # ties: the lower strike


def _book(chain: ChainSnapshot, analytics: ChainAnalytics | None, expiry: date,
          **liquidity: float) -> _Book:
    m = chain.for_expiry(expiry) & liquid(chain, **liquidity) & np.isfinite(chain.strike)
    if analytics is not None:
        m &= np.isfinite(analytics.legs.iv) & (analytics.legs.iv > 0)
    strikes, mids = {}, {}
    for call in (True, False):
        sel = m & (chain.is_call == call)
        k = chain.strike[sel]
        mid = (chain.bid[sel] + chain.ask[sel]) / 2
        order = np.argsort(k)
        strikes[call] = k[order]
        mids[call] = {float(a): float(b) for a, b in zip(k[order], mid[order], strict=True)}
    listed = np.unique(chain.strike[chain.for_expiry(expiry)])
    steps = np.diff(listed)
    step = float(np.median(steps)) if steps.size else 0.0
    return _Book(strikes, mids, step)


def _expiry_analytics(analytics: ChainAnalytics | ExpiryAnalytics,
                      expiry: date) -> tuple[ExpiryAnalytics, ChainAnalytics | None]:
    if isinstance(analytics, ExpiryAnalytics):
        if analytics.expiry != expiry:
            raise NoUsableExpiry(f"analytics are of {analytics.expiry}, not {expiry}")
        return analytics, None
    for ea in analytics.expiries:
        if ea.expiry == expiry:
            return ea, analytics
    raise NoUsableExpiry(f"expiry {expiry} was not analysed "
                         f"({analytics.skipped.get(expiry, 'not in the chain')})")


def build_structure(structure: Structure, chain: ChainSnapshot,
                    analytics: ChainAnalytics | ExpiryAnalytics, *, expiry: date, lots: int,
                    short_distance_sd: float, wing: float | None, lot_size: int,
                    forecast_vol: float | None = None, option_type: OptionType | None = None,
                    side: Side = Side.SELL, wing_rule: WingRule | None = None,
                    **liquidity: float) -> ChosenStructure:
    """Pick strikes of ``structure`` on ``expiry`` and compute payoff and odds.

    Parameters
    ----------
    structure
        Any :class:`Structure` except ``CUSTOM``.
    chain, analytics
        The snapshot and its analytics (:class:`ChainAnalytics`; an
        :class:`ExpiryAnalytics` works too, without the per-leg IV filter).
    expiry
        The expiry to trade (see :func:`choose_expiry`).
    lots
        Whole lots per leg (> 0); a butterfly's body sells ``2 * lots``.
    short_distance_sd
        Distance of short/OTM legs from the forward, in ATM standard deviations (>= 0).
    wing
        Wing width, index points (> 0), from the registry's production wing model; None
        applies ``wing_rule`` (:class:`WingRule` by default). ``how["wing_source"]`` says which.
    lot_size
        Units per lot (> 0).
    forecast_vol
        Annualised vol for the odds; None uses the ATM IV.
    option_type, side
        Chain side of verticals/naked singles (default PE, debit vertical CE) and a naked
        single's side (default SELL).
    liquidity
        Passed to :func:`liquid` (``max_relative_spread``, ``min_oi``).

    Raises
    ------
    ValueError
        Bad arguments (``CUSTOM``, non-positive lots, lot size or wing, bad vol).
    NoUsableExpiry, NoUsableStrike
        The expiry is not analysed/usable, or a leg's rule finds no usable strike.
    """
    if structure == Structure.CUSTOM or structure not in set(Structure):
        raise ValueError(f"cannot build structure {structure!r}")
    for name, v in (("lots", lots), ("lot_size", lot_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if wing is not None and not (math.isfinite(wing) and wing > 0):
        raise ValueError(f"wing must be positive index points or None, got {wing!r}")
    if not (math.isfinite(short_distance_sd) and short_distance_sd >= 0):
        raise ValueError(f"short_distance_sd must be >= 0, got {short_distance_sd!r}")
    if forecast_vol is not None and not (math.isfinite(forecast_vol) and forecast_vol > 0):
        raise ValueError(f"forecast_vol must be a positive annualised vol, got {forecast_vol!r}")
    ea, ca = _expiry_analytics(analytics, expiry)
    if not _usable_expiry(ea):
        raise NoUsableExpiry(f"expiry {expiry}: forward/ATM IV unusable {ea.reasons}")
    book = _book(chain, ca, expiry, **liquidity)
    fwd, t, iv = ea.forward, ea.t, ea.atm_iv
    sd = iv * fwd * math.sqrt(t)
    rule = wing_rule or WingRule()
    how: dict[str, Any] = {
        "expiry": str(expiry), "forward": fwd, "t_years": t, "atm_iv": iv, "sd_points": sd,
        "short_distance_sd": short_distance_sd, "strike_rule":
            "nearest listed liquid strike (two-sided, tight, OI) with a solved IV to the target",
        "wing_source": "wing_model" if wing is not None else "rule",
        "wing_rule": None if wing is not None else
            f"clip(round({rule.k} * SD_side / step) * step, {rule.lo}, {rule.hi}) "
            "snapped to a liquid strike; SD_side from the smile IV at the short",
        "wings": {},
        "vol_source": "forecast" if forecast_vol is not None else "atm_iv",
    }

    def wing_for(call: bool, short: float) -> float:
        if wing is not None:
            return float(wing)
        x = math.log(short / fwd)
        side_iv = float(ea.smile.iv(np.array([x]))[0]) if ea.smile is not None else iv
        w = rule.width(side_iv * fwd * math.sqrt(t), book.step)
        how["wings"][("CE" if call else "PE") + "_sd_side"] = side_iv * fwd * math.sqrt(t)
        return w

    def otm(call: bool, what: str) -> float:
        target = fwd + short_distance_sd * sd if call else fwd - short_distance_sd * sd
        return book.nearest(call, target, above=fwd if call else None,
                            below=None if call else fwd, what=what)

    def wing_leg(call: bool, short: float) -> float:
        w = wing_for(call, short)
        k = book.nearest(call, short + w if call else short - w,
                         above=short if call else None, below=None if call else short,
                         what="wing")
        how["wings"]["CE" if call else "PE"] = {"target_points": w, "chosen_points":
                                                abs(k - short)}
        return k

    def atm(calls: tuple[bool, ...]) -> float:
        common = book.strikes[calls[0]]
        for c in calls[1:]:
            common = np.intersect1d(common, book.strikes[c])
        if common.size == 0:
            raise NoUsableStrike("no strike usable as both CE and PE for an ATM leg")
        return float(common[np.argmin(np.abs(common - fwd) + 1e-9 * common)])

    CE, PE = OptionType.CE, OptionType.PE
    B, S = Side.BUY, Side.SELL
    spec: list[tuple[float, OptionType, Side, int]]
    if structure == Structure.IRON_CONDOR:
        kc, kp = otm(True, "short call"), otm(False, "short put")
        spec = [(kc, CE, S, lots), (wing_leg(True, kc), CE, B, lots),
                (kp, PE, S, lots), (wing_leg(False, kp), PE, B, lots)]
    elif structure in (Structure.SHORT_STRADDLE, Structure.LONG_STRADDLE):
        k = atm((True, False))
        s = S if structure == Structure.SHORT_STRADDLE else B
        spec = [(k, CE, s, lots), (k, PE, s, lots)]
    elif structure in (Structure.SHORT_STRANGLE, Structure.LONG_STRANGLE):
        s = S if structure == Structure.SHORT_STRANGLE else B
        spec = [(otm(True, "strangle call"), CE, s, lots),
                (otm(False, "strangle put"), PE, s, lots)]
    elif structure == Structure.CREDIT_VERTICAL:
        kind = option_type or PE
        call = kind == CE
        ks = otm(call, "credit vertical short")
        spec = [(ks, kind, S, lots), (wing_leg(call, ks), kind, B, lots)]
    elif structure == Structure.DEBIT_VERTICAL:
        kind = option_type or CE
        call = kind == CE
        kb = atm((call,))
        spec = [(kb, kind, B, lots), (wing_leg(call, kb), kind, S, lots)]
    elif structure == Structure.BUTTERFLY:
        kind = option_type or CE
        call = kind == CE
        body = atm((call,))
        w = wing_for(call, body)
        ks = book.strikes[call]
        dists = np.array([d for d in ks[ks > body] - body if float(body - d) in book.mids[call]])
        if dists.size == 0:
            raise NoUsableStrike(f"no usable symmetric butterfly wings around {body}")
        d = float(dists[np.argmin(np.abs(dists - w) + 1e-9 * dists)])
        how["wings"]["butterfly"] = {"target_points": w, "chosen_points": d}
        spec = [(body - d, kind, B, lots), (body, kind, S, 2 * lots), (body + d, kind, B, lots)]
    elif structure == Structure.NAKED_SINGLE:
        kind = option_type or PE
        spec = [(otm(kind == CE, "naked single"), kind, side, lots)]
        how["hedge_note"] = "naked single: risk_check decides whether a hedge is required"
    else:  # pragma: no cover - guarded above
        raise ValueError(f"cannot build structure {structure!r}")

    legs = tuple(LegChoice(strike=k, option_type=o, side=s, lots=n,
                           price=round(book.mids[o == CE][k], 2)) for k, o, s, n in spec)
    return _finish(structure, expiry, legs, lot_size, ea, forecast_vol, how)


def _arrays(legs: tuple[LegChoice, ...], lot_size: int) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    u = np.array([(1 if leg.side == Side.BUY else -1) * leg.lots * lot_size for leg in legs],
                 dtype=np.float64)
    k = np.array([leg.strike for leg in legs], dtype=np.float64)
    c = np.array([leg.option_type == OptionType.CE for leg in legs], dtype=bool)
    return u, k, c


def _payoff(x: npt.NDArray[np.float64], u: npt.NDArray[np.float64],
            k: npt.NDArray[np.float64], c: npt.NDArray[np.bool_],
            net_premium: float) -> npt.NDArray[np.float64]:
    diff = x[:, None] - k[None, :]
    intrinsic = np.where(c[None, :], np.maximum(diff, 0.0), np.maximum(-diff, 0.0))
    return np.asarray(intrinsic @ u - net_premium, dtype=np.float64)


def payoff_profile(units: npt.ArrayLike, strikes: npt.ArrayLike, is_call: npt.ArrayLike,
                   net_premium: float, *,
                   breakevens: tuple[float, ...] = ()) -> PayoffProfile:
    """Exact max profit / max loss of the piecewise-linear expiry payoff (rupees).

    The payoff is linear between the sorted strikes, so its extremes on ``[0, inf)`` are
    at ``S = 0`` or a strike, unless the slope above the highest strike (the net call
    units) is non-zero: positive makes the profit unbounded (None), negative the loss.
    """
    u = np.asarray(units, dtype=np.float64)
    k = np.asarray(strikes, dtype=np.float64)
    c = np.asarray(is_call, dtype=bool)
    x = np.concatenate(([0.0], np.unique(k)))
    v = _payoff(x, u, k, c, float(net_premium))
    slope = float(u[c].sum())
    max_profit = None if slope > 0 else max(float(v.max()), 0.0)
    max_loss = None if slope < 0 else max(-float(v.min()), 0.0)
    xs = np.unique(np.concatenate((x, np.asarray(breakevens, dtype=np.float64),
                                   [2.0 * float(k.max())])))
    pts = tuple((float(a), float(b)) for a, b in
                zip(xs, _payoff(xs, u, k, c, float(net_premium)), strict=True))
    return PayoffProfile(max_profit, max_loss, slope, pts)


def _finish(structure: Structure, expiry: date, legs: tuple[LegChoice, ...], lot_size: int,
            ea: ExpiryAnalytics, forecast_vol: float | None,
            how: dict[str, Any]) -> ChosenStructure:
    u, k, c = _arrays(legs, lot_size)
    prices = np.array([leg.price for leg in legs])
    net_premium = math.fsum((u * prices).tolist())
    sigma = forecast_vol if forecast_vol is not None else ea.atm_iv
    odds = expiry_odds(u, k, c, net_premium, forward=ea.forward, t=ea.t, sigma=sigma)
    prof = payoff_profile(u, k, c, net_premium, breakevens=odds.breakevens)
    how["legs"] = [f"{leg.side.value} {leg.lots} {leg.option_type.value} {leg.strike:g}"
                   for leg in legs]
    return ChosenStructure(
        structure=structure, expiry=expiry, legs=legs, lot_size=lot_size,
        net_premium=net_premium, max_profit=prof.max_profit, max_loss=prof.max_loss,
        breakevens=odds.breakevens, payoff_points=prof.points,
        win_probability=odds.win_probability, expected_gross_edge=odds.expected_payoff,
        sigma=sigma, forward=ea.forward, t=ea.t, how=how)


# ---------------------------------------------------------------------------- proposal


def to_proposal(chosen: ChosenStructure, *, tenant_id: uuid.UUID, snapshot_id: uuid.UUID,
                symbol: str, regime: str, now: datetime, explanation: dict[str, Any],
                proposal_id: uuid.UUID | None = None) -> DecisionProposedV1:
    """The risk_check proposal of ``chosen``.

    ``proposal_id`` defaults to a UUIDv5 of tenant, snapshot, structure, legs and ``now``
    (a replay proposes the same id). ``explanation`` is copied and given a ``structure``
    key with ``chosen.how`` plus the breakevens, net premium and odds' volatility.
    """
    legs = tuple(Leg(expiry=chosen.expiry, strike=Decimal(repr(leg.strike)),
                     option_type=leg.option_type, side=leg.side, lots=leg.lots,
                     price=Decimal(f"{leg.price:.2f}")) for leg in chosen.legs)
    if proposal_id is None:
        key = "|".join([str(tenant_id), str(snapshot_id), chosen.structure.value,
                        now.isoformat(), *chosen.how.get("legs", [])])
        proposal_id = uuid.uuid5(_NAMESPACE, key)
    expl = dict(explanation)
    expl["structure"] = {**chosen.how, "net_premium": chosen.net_premium,
                         "breakevens": list(chosen.breakevens), "odds_sigma": chosen.sigma}
    return DecisionProposedV1(
        proposal_id=proposal_id, tenant_id=tenant_id, snapshot_id=snapshot_id, symbol=symbol,
        structure=chosen.structure, legs=legs, lot_size=chosen.lot_size,
        max_profit=chosen.max_profit, max_loss=chosen.max_loss,
        expected_gross_edge=chosen.expected_gross_edge,
        win_probability=chosen.win_probability, regime=regime, explanation=expl,
        proposed_at=now)
