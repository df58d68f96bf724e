"""Layer 1 of decide: the signals (issue #6).

Each signal is a small frozen dataclass with a ``name`` and an ``axis`` (class attributes),
its tuning constants as fields, and ``read(inputs) -> SignalReading``: a score in [-1, 1],
a confidence in [0, 1], the numbers it used and one human line. A signal whose inputs are
absent returns :meth:`SignalReading.missing` with the reason (a flagged neutral, never a
silent one). Everything is pure: no I/O and no clock (the snapshot time is
:attr:`MarketInputs.asof`).

Conventions
-----------
* Volatilities are annualised decimals (0.15 is 15 % a year); ``t_years`` is the ACT/365
  year fraction to the expiry, as in :mod:`shared.domain.analytics`.
* Daily statistics use log returns; ``clip(x) = min(1, max(-1, x))``.
* A number that is ``None`` or not finite is *absent*. Analytics report NaN with a reason;
  :attr:`MarketInputs.reasons` carries those reasons so a missing reading can repeat them.

The eight signals
-----------------
=====================  ============  =====================================================
signal                 axis          view
=====================  ============  =====================================================
``vol_forecast``       volatility    HAR/GARCH forecast vs ATM IV (+: options cheap)
``density_skew``       direction     risk-neutral skew and tail asymmetry (positioning)
``iv_mean_reversion``  volatility    IV percentile / z-score (high IV: short vol)
``oi_flow``            direction     PCR level and PCR of OI change (writer-led reading)
``gex_positioning``    volatility    spot vs the gamma flip, in horizon SDs
``trend``              direction     intraday, daily (20 d) and weekly (12 w) trend
``news_event``         volatility    proximity and severity of news / scheduled events
``direction_model``    direction     the LightGBM model's calibrated P(up)
=====================  ============  =====================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from shared.domain.decide.readings import Axis, SignalReading

if TYPE_CHECKING:
    from shared.domain.analytics import ExpiryAnalytics

__all__ = [
    "NEWS_SEVERITY",
    "DensitySkew",
    "DirectionModelSignal",
    "GexPositioning",
    "IvMeanReversion",
    "MarketInputs",
    "NewsEvent",
    "NewsInput",
    "OiFlow",
    "Signal",
    "Trend",
    "VolForecastSpread",
    "default_signals",
    "market_inputs_from",
    "read_all",
]

NEWS_SEVERITY: Mapping[str, float] = MappingProxyType(
    {"proceed": 0.0, "reduce_25": 1 / 3, "reduce_50": 2 / 3, "blackout": 1.0})
"""Severity in [0, 1] implied by a news item's gate action (used when impact is absent)."""


def _clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, x))


def _num(x: Any) -> float | None:
    """``x`` as a float, or None when absent (None, NaN or infinite)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _series(x: Any) -> tuple[float, ...] | None:
    if x is None:
        return None
    return tuple(float(v) for v in np.asarray(x, dtype=np.float64).ravel())


# --------------------------------------------------------------------------- news


@dataclass(frozen=True, slots=True)
class NewsInput:
    """One classified news item or scheduled event, as the news signal reads it.

    Attributes
    ----------
    occurs_at
        When it happens / happened (timezone-aware).
    window_minutes
        Minutes either side of ``occurs_at`` in which the item is fully *on*.
    action
        The gate action (``proceed``, ``reduce_25``, ``reduce_50``, ``blackout``).
    impact
        The classifier's impact in [0, 1]; None when the source has none (the risk
        :class:`~shared.domain.risk.inputs.NewsItem`): then only the action counts.
    symbols
        Underlyings it names; empty is market-wide.
    title
        For the explanation.
    """

    occurs_at: datetime
    window_minutes: int = 0
    action: str = "proceed"
    impact: float | None = None
    symbols: tuple[str, ...] = ()
    title: str = ""

    def __post_init__(self) -> None:
        if self.occurs_at.tzinfo is None or self.occurs_at.utcoffset() is None:
            raise ValueError("occurs_at must be timezone-aware")
        if self.action not in NEWS_SEVERITY:
            raise ValueError(f"unknown news action {self.action!r}; known: {tuple(NEWS_SEVERITY)}")
        if self.window_minutes < 0:
            raise ValueError("window_minutes must be >= 0")
        if self.impact is not None and not (0.0 <= float(self.impact) <= 1.0):
            raise ValueError(f"impact must be in [0, 1], got {self.impact!r}")
        object.__setattr__(self, "symbols", tuple(self.symbols))

    @classmethod
    def of(cls, item: Any) -> NewsInput:
        """From a risk ``NewsItem``, a ``NewsEventV1`` or anything with the same fields."""
        if isinstance(item, NewsInput):
            return item
        impact = getattr(item, "impact", None)
        return cls(occurs_at=item.occurs_at, window_minutes=int(item.window_minutes),
                   action=str(item.action), impact=None if impact is None else float(impact),
                   symbols=tuple(getattr(item, "symbols", ())),
                   title=str(getattr(item, "title", "")))

    @property
    def severity(self) -> float:
        """``max(impact, NEWS_SEVERITY[action])`` in [0, 1]."""
        return max(self.impact or 0.0, NEWS_SEVERITY[self.action])

    def concerns(self, symbol: str) -> bool:
        return not self.symbols or symbol in self.symbols


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """Everything the signals read at one snapshot. Every market field is optional: when a
    signal's inputs are absent (None or not finite) it reads *missing* with a reason.

    Attributes
    ----------
    symbol
        The underlying (e.g. ``"NIFTY"``).
    asof
        The snapshot time, timezone-aware (the signals' only clock).
    spot, forward
        Index points.
    atm_iv
        ATM implied vol of the nearest usable expiry, annualised decimal.
    t_years
        ACT/365 year fraction to that expiry (the option's horizon).
    iv_history
        Past ATM IVs (annualised, oldest first, e.g. the last 250 sessions), excluding now.
    vol_forecast
        HAR/GARCH forecast of realised vol over the option's horizon, **annualised**
        (``sqrt(252 * mean daily variance)``, see :func:`shared.domain.models.vol.annualised_vol`).
    rn_skew
        Standardised skewness of the risk-neutral density of ``S_T``.
    left_tail, right_tail
        Risk-neutral ``P(S_T <= F e^{-k s})`` and ``P(S_T >= F e^{k s})`` with
        ``s = atm_iv sqrt(t)`` and ``k = tail_k_sd``.
    tail_k_sd
        The ``k`` of the tails (standard deviations).
    pcr_oi
        Put/call ratio of open interest.
    pcr_change
        Put/call ratio of the day's OI *change* (``sum put dOI / sum call dOI``); only
        meaningful when both changes are positive.
    gex
        Net dealer GEX at spot, rupees per 1 % move (dealer-signed, as analytics).
    gamma_flip
        Spot level where total dealer GEX changes sign.
    closes_intraday
        Today's bar closes, oldest first.
    closes_daily
        Daily closes, oldest first, the last one today's (or the latest) close.
    news
        News items; **None means news_ingest is not present** (the news signal then reads
        missing with that flag), an empty tuple means it is present and quiet. Risk
        ``NewsItem``/``NewsState`` and ``NewsEventV1`` are accepted and converted.
    p_up, p_up_confidence
        The direction model's calibrated P(up) and its confidence in [0, 1].
    reasons
        Field name → why it is absent (e.g. from :attr:`ExpiryAnalytics.reasons`).
    """

    symbol: str
    asof: datetime
    spot: float | None = None
    forward: float | None = None
    atm_iv: float | None = None
    t_years: float | None = None
    iv_history: Sequence[float] | None = None
    vol_forecast: float | None = None
    rn_skew: float | None = None
    left_tail: float | None = None
    right_tail: float | None = None
    tail_k_sd: float = 2.0
    pcr_oi: float | None = None
    pcr_change: float | None = None
    gex: float | None = None
    gamma_flip: float | None = None
    closes_intraday: Sequence[float] | None = None
    closes_daily: Sequence[float] | None = None
    news: Any = None
    p_up: float | None = None
    p_up_confidence: float | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.asof.tzinfo is None or self.asof.utcoffset() is None:
            raise ValueError("asof must be timezone-aware")
        for name in ("iv_history", "closes_intraday", "closes_daily"):
            object.__setattr__(self, name, _series(getattr(self, name)))
        news = self.news
        if news is not None:
            items = getattr(news, "events", news)  # a NewsState
            object.__setattr__(self, "news", tuple(NewsInput.of(i) for i in items))
        object.__setattr__(self, "reasons", MappingProxyType(
            {str(k): str(v) for k, v in dict(self.reasons).items()}))

    def absent(self, *names: str) -> str | None:
        """``None`` if every named field is present, else the reason naming what is not."""
        gaps = []
        for n in names:
            if _num(getattr(self, n)) is None:
                why = self.reasons.get(n)
                gaps.append(f"{n} missing" + (f" ({why})" if why else ""))
        return "; ".join(gaps) or None


def _tails(expiry: ExpiryAnalytics, k: float) -> tuple[float, float] | tuple[None, None]:
    d = expiry.density
    if d is None or not (math.isfinite(expiry.atm_iv) and expiry.atm_iv > 0 and expiry.t > 0):
        return None, None
    s = expiry.atm_iv * math.sqrt(expiry.t)
    grid, pdf = np.asarray(d.grid), np.asarray(d.pdf)
    cdf = np.concatenate(([0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))))
    lo, hi = expiry.forward * math.exp(-k * s), expiry.forward * math.exp(k * s)
    left = float(np.interp(lo, grid, cdf))
    right = float(1.0 - np.interp(hi, grid, cdf))
    return _clip(left, 0.0, 1.0), _clip(right, 0.0, 1.0)


_REASON_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "smile": ("atm_iv",), "density": ("rn_skew", "left_tail", "right_tail"),
    "pcr_oi": ("pcr_oi",), "gex": ("gex", "gamma_flip"), "gamma_flip": ("gamma_flip",),
})


def market_inputs_from(expiry: ExpiryAnalytics, *, symbol: str, asof: datetime, spot: float,
                       tail_k_sd: float = 2.0, **extra: Any) -> MarketInputs:
    """:class:`MarketInputs` from one expiry's analytics plus the non-chain inputs.

    Fills ``forward``, ``atm_iv``, ``t_years``, ``rn_skew`` and the tails (from the density;
    see :class:`MarketInputs`), ``pcr_oi``, ``pcr_change`` (``sum put dOI / sum call dOI``
    when the call change is positive), ``gex`` and ``gamma_flip``; the analytics' NaN
    reasons become :attr:`MarketInputs.reasons`. ``extra`` supplies the rest (``iv_history``,
    ``vol_forecast``, closes, ``news``, ``p_up``...) and may override any field.
    """
    reasons: dict[str, str] = {}
    for line in expiry.reasons:
        head, _, why = line.partition(":")
        for f in _REASON_FIELDS.get(head.strip(), ()):
            reasons.setdefault(f, why.strip())
    left, right = _tails(expiry, tail_k_sd)
    call_d = float(np.nansum(expiry.call_oi_change))
    put_d = float(np.nansum(expiry.put_oi_change))
    pcr_change = put_d / call_d if call_d > 0 and put_d >= 0 else None
    if pcr_change is None:
        reasons.setdefault("pcr_change", "OI change not positive on both sides")
    base = MarketInputs(
        symbol=symbol, asof=asof, spot=spot, forward=expiry.forward, atm_iv=expiry.atm_iv,
        t_years=expiry.t, rn_skew=None if expiry.density is None else expiry.density.skew,
        left_tail=left, right_tail=right, tail_k_sd=tail_k_sd, pcr_oi=expiry.pcr_oi,
        pcr_change=pcr_change, gex=expiry.gex_total, gamma_flip=expiry.gamma_flip,
        reasons={**reasons, **dict(extra.pop("reasons", {}))})
    return replace(base, **extra) if extra else base


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Signal(Protocol):
    """What the engine needs of a signal."""

    name: ClassVar[str]
    axis: ClassVar[Axis]

    def read(self, inputs: MarketInputs) -> SignalReading: ...


# --------------------------------------------------------------------------- signals


@dataclass(frozen=True, slots=True)
class VolForecastSpread:
    """Forecast realised vol against implied vol.

    ``x = (forecast - IV) / IV``;  ``score = clip(gain * x)``: positive (long vol) when
    options are cheap against the forecast, negative (sell premium) when rich. With the
    default ``gain = 2.5`` a forecast 40 % above (below) IV is a full +1 (-1).
    ``confidence`` is constant (the forecast's own error is not yet propagated).

    Inputs: ``atm_iv``, ``vol_forecast`` (both annualised, > 0).
    """

    name: ClassVar[str] = "vol_forecast"
    axis: ClassVar[Axis] = Axis.VOLATILITY
    gain: float = 2.5
    confidence: float = 0.6

    def read(self, inputs: MarketInputs) -> SignalReading:
        gap = inputs.absent("atm_iv", "vol_forecast")
        if gap:
            return SignalReading.missing(self.name, self.axis, gap)
        iv, fc = float(inputs.atm_iv), float(inputs.vol_forecast)  # type: ignore[arg-type]
        if iv <= 0 or fc <= 0:
            return SignalReading.missing(self.name, self.axis,
                                         f"non-positive vol (IV {iv:g}, forecast {fc:g})")
        x = (fc - iv) / iv
        score = _clip(self.gain * x)
        verdict = "options cheap" if x > 0 else "options rich" if x < 0 else "fair"
        return SignalReading(self.name, self.axis, score, self.confidence,
                             {"atm_iv": iv, "vol_forecast": fc, "spread": x},
                             f"IV {iv:.1%} vs forecast {fc:.1%}: {verdict}")


@dataclass(frozen=True, slots=True)
class DensitySkew:
    """Directional positioning read off the implied distribution.

    Two terms, each in [-1, 1], averaged over those present:

    * skew: ``clip((rn_skew - skew_baseline) / skew_scale)``; index smiles are normally
      left-skewed (baseline -0.5), so a density *less* left-skewed than usual is bullish;
    * tails: ``(right_tail - left_tail) / (right_tail + left_tail)``: more mass priced in
      the up-tail than the down-tail is bullish.

    ``score = clip(mean(terms))``. This is the *informative* (not contrarian) reading: the
    options market's own asymmetry is taken as its directional positioning.
    ``confidence`` is ``confidence`` with both terms, ``single_confidence`` with one.
    """

    name: ClassVar[str] = "density_skew"
    axis: ClassVar[Axis] = Axis.DIRECTION
    skew_baseline: float = -0.5
    skew_scale: float = 1.0
    confidence: float = 0.4
    single_confidence: float = 0.25

    def read(self, inputs: MarketInputs) -> SignalReading:
        terms: list[float] = []
        used: dict[str, float] = {}
        skew = _num(inputs.rn_skew)
        if skew is not None:
            terms.append(_clip((skew - self.skew_baseline) / self.skew_scale))
            used |= {"rn_skew": skew, "skew_term": terms[-1]}
        left, right = _num(inputs.left_tail), _num(inputs.right_tail)
        if left is not None and right is not None and left >= 0 and right >= 0 and left + right > 0:
            terms.append((right - left) / (right + left))
            used |= {"left_tail": left, "right_tail": right, "tail_k_sd": inputs.tail_k_sd,
                     "tail_term": terms[-1]}
        if not terms:
            return SignalReading.missing(
                self.name, self.axis,
                inputs.absent("rn_skew", "left_tail", "right_tail") or "tails are both zero")
        score = _clip(sum(terms) / len(terms))
        conf = self.confidence if len(terms) == 2 else self.single_confidence
        lean = "bullish" if score > 0 else "bearish" if score < 0 else "neutral"
        return SignalReading(self.name, self.axis, score, conf, used,
                             f"implied distribution leans {lean} ({len(terms)} of 2 terms)")


@dataclass(frozen=True, slots=True)
class IvMeanReversion:
    """IV is mean-reverting: rich against its own history is a short-vol view.

    With ``n`` past IVs ``h``: percentile ``p = (#{h < iv} + #{h == iv} / 2) / n`` and
    ``z = (iv - mean(h)) / sd(h)`` (``ddof = 1``; 0 if ``sd`` is 0);
    ``score = -clip(0.5 (2p - 1) + 0.5 clip(z / z_scale))``.
    ``confidence = confidence * min(1, n / full_history)``. Needs ``min_history`` finite
    past IVs.
    """

    name: ClassVar[str] = "iv_mean_reversion"
    axis: ClassVar[Axis] = Axis.VOLATILITY
    z_scale: float = 2.0
    min_history: int = 20
    full_history: int = 250
    confidence: float = 0.5

    def read(self, inputs: MarketInputs) -> SignalReading:
        gap = inputs.absent("atm_iv")
        if gap:
            return SignalReading.missing(self.name, self.axis, gap)
        iv = float(inputs.atm_iv)  # type: ignore[arg-type]
        h = np.asarray(inputs.iv_history or (), dtype=np.float64)
        h = h[np.isfinite(h)]
        n = int(h.size)
        if n < self.min_history:
            why = inputs.reasons.get("iv_history", "")
            return SignalReading.missing(
                self.name, self.axis,
                f"iv_history has {n} values, needs {self.min_history}" + (f" ({why})" if why else ""))
        p = (float(np.sum(h < iv)) + 0.5 * float(np.sum(h == iv))) / n
        sd = float(np.std(h, ddof=1))
        z = (iv - float(np.mean(h))) / sd if sd > 0 else 0.0
        score = -_clip(0.5 * (2 * p - 1) + 0.5 * _clip(z / self.z_scale))
        conf = self.confidence * min(1.0, n / self.full_history)
        return SignalReading(self.name, self.axis, score, conf,
                             {"atm_iv": iv, "percentile": p, "z": z, "n": float(n)},
                             f"IV {iv:.1%} at the {p:.0%} percentile of {n} (z {z:+.2f})")


@dataclass(frozen=True, slots=True)
class OiFlow:
    """Open-interest flow: PCR level and the PCR of the day's OI change.

    Choice: **writer-led (trend-following on OI)**. In Indian index options the open
    interest is held short mostly by writers, so a high PCR means heavy put *writing*
    (support below) and reads bullish; low PCR means call writing (resistance), bearish.

    * level: ``clip((pcr_oi - neutral) / level_scale)`` (defaults 1.0 and 0.5: PCR 1.5 is +1);
    * change: ``clip((pcr_change - neutral) / change_scale)`` (scale 1.0), used only when
      ``pcr_change > 0`` (both sides adding OI; otherwise the ratio has no sign meaning).

    ``score = clip(w_level * level + (1 - w_level) * change)`` with both, else the term
    present. ``confidence`` with both terms, ``single_confidence`` with one.
    """

    name: ClassVar[str] = "oi_flow"
    axis: ClassVar[Axis] = Axis.DIRECTION
    neutral: float = 1.0
    level_scale: float = 0.5
    change_scale: float = 1.0
    w_level: float = 0.6
    confidence: float = 0.35
    single_confidence: float = 0.25

    def read(self, inputs: MarketInputs) -> SignalReading:
        pcr, chg = _num(inputs.pcr_oi), _num(inputs.pcr_change)
        if pcr is not None and pcr < 0:
            pcr = None
        if chg is not None and chg <= 0:
            chg = None
        used: dict[str, float] = {}
        level = change = None
        if pcr is not None:
            level = _clip((pcr - self.neutral) / self.level_scale)
            used |= {"pcr_oi": pcr, "level_term": level}
        if chg is not None:
            change = _clip((chg - self.neutral) / self.change_scale)
            used |= {"pcr_change": chg, "change_term": change}
        if level is None and change is None:
            return SignalReading.missing(
                self.name, self.axis,
                inputs.absent("pcr_oi", "pcr_change") or "pcr_oi negative and pcr_change not positive")
        if level is not None and change is not None:
            score = _clip(self.w_level * level + (1 - self.w_level) * change)
            conf = self.confidence
        else:
            score = level if level is not None else change  # type: ignore[assignment]
            conf = self.single_confidence
        lean = "put writing: support" if score > 0 else "call writing: resistance" if score < 0 \
            else "balanced"
        return SignalReading(self.name, self.axis, float(score), conf, used,
                             f"PCR {pcr if pcr is not None else float('nan'):.2f}: {lean}")


@dataclass(frozen=True, slots=True)
class GexPositioning:
    """Dealer gamma: above the gamma flip dealers are long gamma and damp moves (short
    vol); below it they are short gamma and amplify them (long vol).

    Distance in horizon standard deviations ``d = ln(spot / flip) / (atm_iv sqrt(t))``;
    ``score = clip(-d / distance_scale)`` (default 1 SD for a full score). When the sign
    of ``gex`` contradicts the side of the flip (several crossings), confidence drops to
    ``conflict_confidence``. Without a usable flip but with ``gex``:
    ``score = -fallback_score * sign(gex)`` at ``fallback_confidence``.
    """

    name: ClassVar[str] = "gex_positioning"
    axis: ClassVar[Axis] = Axis.VOLATILITY
    distance_scale: float = 1.0
    confidence: float = 0.45
    conflict_confidence: float = 0.15
    fallback_score: float = 0.25
    fallback_confidence: float = 0.15

    def read(self, inputs: MarketInputs) -> SignalReading:
        gex = _num(inputs.gex)
        gap = inputs.absent("spot", "gamma_flip", "atm_iv", "t_years")
        if gap is None:
            spot, flip = float(inputs.spot), float(inputs.gamma_flip)  # type: ignore[arg-type]
            sd = float(inputs.atm_iv) * math.sqrt(float(inputs.t_years))  # type: ignore[arg-type]
            if spot > 0 and flip > 0 and sd > 0:
                d = math.log(spot / flip) / sd
                score = _clip(-d / self.distance_scale)
                used = {"spot": spot, "gamma_flip": flip, "horizon_sd": sd, "distance_sd": d}
                conf, note = self.confidence, ""
                if gex is not None:
                    used["gex"] = gex
                    if gex * d < 0:
                        conf, note = self.conflict_confidence, "; GEX sign disagrees with the side"
                side = "above" if d > 0 else "below" if d < 0 else "at"
                return SignalReading(self.name, self.axis, score, conf, used,
                                     f"spot {abs(d):.2f} SD {side} the gamma flip {flip:g}{note}")
            gap = f"non-positive spot/flip/sd ({spot:g}/{flip:g}/{sd:g})"
        if gex is None:
            return SignalReading.missing(self.name, self.axis,
                                         gap + "; " + (inputs.absent("gex") or "gex missing"))
        score = -self.fallback_score * float(np.sign(gex))
        return SignalReading(self.name, self.axis, score, self.fallback_confidence, {"gex": gex},
                             f"net GEX {gex:+.3g} only ({gap})")


@dataclass(frozen=True, slots=True)
class Trend:
    """Multi-timeframe trend, each leg a volatility-normalised return.

    * intraday: ``r = ln(c_last / c_first)`` of today's bars, ``z = r / (sd_bar sqrt(m))``
      with ``m`` bar returns (``sd_bar`` floored at ``1e-12``, so an unbroken line is a
      full-strength leg); needs ``min_bars`` returns;
    * daily: ``r = ln(C_t / C_{t-daily_days})`` (20 sessions), ``z = r / (sigma sqrt(h))``;
    * weekly: the same over ``weekly_days`` (60 sessions, 12 weeks);

    with ``sigma`` the sd (``ddof = 1``) of the last ``vol_window`` daily log returns.
    Each leg ``s_k = clip(z_k / z_scale)``; ``score = mean(s_k)`` over legs present.
    ``agreement = |sum s_k| / sum |s_k|`` (1 when all agree, 0 if all are 0);
    ``confidence = confidence * (n / 3) * (0.5 + 0.5 agreement)``.
    """

    name: ClassVar[str] = "trend"
    axis: ClassVar[Axis] = Axis.DIRECTION
    daily_days: int = 20
    weekly_days: int = 60
    vol_window: int = 20
    min_vol_returns: int = 5
    min_bars: int = 5
    z_scale: float = 2.0
    confidence: float = 0.5

    def _intraday(self, closes: tuple[float, ...] | None) -> float | None:
        if not closes:
            return None
        c = np.asarray(closes)
        if not (np.all(np.isfinite(c)) and np.all(c > 0)) or c.size < self.min_bars + 1:
            return None
        rr = np.diff(np.log(c))
        r = float(np.log(c[-1] / c[0]))
        sd = max(float(np.std(rr, ddof=1)), 1e-12)
        return r / (sd * math.sqrt(rr.size))

    def read(self, inputs: MarketInputs) -> SignalReading:
        z: dict[str, float] = {}
        zi = self._intraday(inputs.closes_intraday)
        if zi is not None:
            z["intraday"] = zi
        used: dict[str, float] = {}
        if inputs.closes_daily:
            c = np.asarray(inputs.closes_daily)
            if np.all(np.isfinite(c)) and np.all(c > 0):
                rr = np.diff(np.log(c))[-self.vol_window:]
                if rr.size >= self.min_vol_returns:
                    sigma = float(np.std(rr, ddof=1))
                    used["sigma_daily"] = sigma
                    for leg, h in (("daily", self.daily_days), ("weekly", self.weekly_days)):
                        if c.size >= h + 1 and sigma > 0:
                            z[leg] = float(np.log(c[-1] / c[-1 - h])) / (sigma * math.sqrt(h))
        if not z:
            return SignalReading.missing(
                self.name, self.axis,
                "no usable closes (intraday needs "
                f"{self.min_bars + 1} bars, daily/weekly need {self.daily_days + 1}+ positive "
                "daily closes with a non-zero vol)")
        legs = {k: _clip(v / self.z_scale) for k, v in z.items()}
        total = sum(legs.values())
        size = sum(abs(v) for v in legs.values())
        agreement = abs(total) / size if size > 0 else 0.0
        score = _clip(total / len(legs))
        conf = self.confidence * (len(legs) / 3) * (0.5 + 0.5 * agreement)
        used |= {f"z_{k}": v for k, v in z.items()} | {"agreement": agreement}
        parts = ", ".join(f"{k} {v:+.2f}" for k, v in z.items())
        return SignalReading(self.name, self.axis, score, conf, used,
                             f"trend z: {parts} (agreement {agreement:.0%})")


@dataclass(frozen=True, slots=True)
class NewsEvent:
    """News and scheduled events near now raise the long-vol / caution view.

    For each item concerning the symbol, ``dt`` minutes from now to ``occurs_at``:
    proximity ``w = 1`` inside the item's window (``|dt| <= window``); for an upcoming item
    beyond it ``w = max(0, 1 - (dt - window) / lookahead_minutes)`` (default 3 days); for a
    past one ``w = max(0, 1 - (|dt| - window) / decay_minutes)`` (default 2 hours).
    ``score = max(severity * w)`` in [0, 1] (severity: :attr:`NewsInput.severity`).
    News present but quiet reads 0 (available). ``news is None`` reads *missing* with the
    flag ``"news_ingest not present"``.
    """

    name: ClassVar[str] = "news_event"
    axis: ClassVar[Axis] = Axis.VOLATILITY
    lookahead_minutes: float = 3 * 24 * 60
    decay_minutes: float = 120.0
    confidence: float = 0.5

    def proximity(self, item: NewsInput, asof: datetime) -> float:
        dt = (item.occurs_at - asof).total_seconds() / 60.0
        beyond = abs(dt) - item.window_minutes
        if beyond <= 0:
            return 1.0
        horizon = self.lookahead_minutes if dt > 0 else self.decay_minutes
        return max(0.0, 1.0 - beyond / horizon)

    def read(self, inputs: MarketInputs) -> SignalReading:
        if inputs.news is None:
            return SignalReading.missing(self.name, self.axis, "news_ingest not present")
        items: tuple[NewsInput, ...] = inputs.news
        relevant = [i for i in items if i.concerns(inputs.symbol)]
        best, top = 0.0, None
        for item in relevant:
            s = item.severity * self.proximity(item, inputs.asof)
            if s > best:
                best, top = s, item
        used = {"n_items": float(len(items)), "n_relevant": float(len(relevant))}
        if top is None:
            return SignalReading(self.name, self.axis, 0.0, self.confidence, used,
                                 "no news or events near")
        used |= {"severity": top.severity, "proximity": self.proximity(top, inputs.asof),
                 "minutes_to_event": (top.occurs_at - inputs.asof).total_seconds() / 60.0}
        return SignalReading(self.name, self.axis, _clip(best, 0.0, 1.0), self.confidence, used,
                             f"{top.title or 'event'} ({top.action}): caution {best:.2f}")


@dataclass(frozen=True, slots=True)
class DirectionModelSignal:
    """The LightGBM direction model: ``score = 2 (p_up - 0.5)`` at the model's confidence.

    ``p_up`` is the calibrated P(up) (:meth:`DirectionPredictor.predict_one`) and must be in
    [0, 1]; ``p_up_confidence`` is clipped to [0, 1], and when absent
    ``default_confidence`` is used (and said so).
    """

    name: ClassVar[str] = "direction_model"
    axis: ClassVar[Axis] = Axis.DIRECTION
    default_confidence: float = 0.25

    def read(self, inputs: MarketInputs) -> SignalReading:
        gap = inputs.absent("p_up")
        if gap:
            return SignalReading.missing(self.name, self.axis, gap)
        p = float(inputs.p_up)  # type: ignore[arg-type]
        if not 0.0 <= p <= 1.0:
            return SignalReading.missing(self.name, self.axis, f"p_up {p:g} outside [0, 1]")
        c = _num(inputs.p_up_confidence)
        note = ""
        if c is None:
            c, note = self.default_confidence, " (model confidence not supplied)"
        c = _clip(c, 0.0, 1.0)
        score = _clip(2.0 * (p - 0.5))
        return SignalReading(self.name, self.axis, score, c, {"p_up": p, "confidence": c},
                             f"model P(up) {p:.1%}{note}")


# --------------------------------------------------------------------------- engine


def default_signals() -> tuple[Signal, ...]:
    """The eight layer-1 signals with their default constants."""
    return (VolForecastSpread(), DensitySkew(), IvMeanReversion(), OiFlow(), GexPositioning(),
            Trend(), NewsEvent(), DirectionModelSignal())


def read_all(signals: Iterable[Signal], inputs: MarketInputs) -> tuple[SignalReading, ...]:
    """Every signal's reading, in order. A signal that raises (or returns something other
    than a :class:`SignalReading`) reads *missing* with the error as its reason; it never
    stops the others."""
    out: list[SignalReading] = []
    for s in signals:
        name = str(getattr(s, "name", type(s).__name__))
        axis = getattr(s, "axis", Axis.DIRECTION)
        axis = axis if isinstance(axis, Axis) else Axis.DIRECTION
        try:
            r = s.read(inputs)
            if not isinstance(r, SignalReading):
                raise TypeError(f"read returned {type(r).__name__}, not a SignalReading")
        except Exception as exc:  # isolation is the point: one failure never kills the rest
            r = SignalReading.missing(name, axis, f"error: {type(exc).__name__}: {exc}")
        out.append(r)
    return tuple(out)
