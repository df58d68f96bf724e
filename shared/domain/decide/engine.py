"""The decide engine: the four layers wired together, pure.

Two stages, so that the expensive work runs once per snapshot and the per-tenant work is
small float math (the benchmark's per-tenant figure is :meth:`DecisionEngine.for_tenant`):

1. :meth:`DecisionEngine.market`, once per snapshot (tenant-independent):

   * **layer 1**: every signal reads the :class:`~shared.domain.decide.signals.MarketInputs`
     built from the snapshot's nearest usable expiry, the IV history, the closes and the
     models' forecasts;
   * **layer 2**: the regime (:func:`~shared.domain.decide.combine.classify_regime`), then
     the consensus per axis with the market-wide Bayesian weights and circuit breakers
     (:class:`SignalState`);
   * **layer 3, the tenant-independent part**: every structure the regime allows and the
     consensus does not contradict is built once, at one lot, on the live chain
     (:func:`~shared.domain.decide.structures.build_structure`), its win probability and
     expected gross edge taken from the expiry's implied density with its log-spread
     scaled by forecast / ATM IV (:mod:`shared.domain.decide.odds`; the lognormal odds when
     the expiry has no density), and priced as the risk castle prices it (:func:`~shared.domain.risk.position.position_math`: margin, worst
     loss, tail loss) plus its one-day one-standard-deviation P&L for vol targeting.

2. :meth:`DecisionEngine.for_tenant`, per active tenant: the tenant's Thompson bandit picks
   one of those candidates in the regime's context (layer 3), layer 4 sizes it against the
   tenant's capital, appetite and open paper book
   (:func:`~shared.domain.decide.sizing.size_position`), and the result is a proposal for
   risk_check or a recorded no-trade with its reason. Both carry the explanation.

No I/O, no clock (``now`` is the snapshot's time, passed in), and the only randomness is
the generator seeded from (tenant, snapshot) (:func:`tenant_seed`): a redelivered snapshot
decides the same.

Which arms a view allows
------------------------
* volatility arms: short vol (iron condor, short straddle, short strangle, butterfly) need
  a volatility score ``<= 0``; long vol (long straddle, long strangle) need ``> 0``. Their
  size is driven by the volatility axis' confidence.
* directional arms (credit vertical, debit vertical, naked single) need a non-zero
  direction score; the side follows its sign (bullish: put credit spread, call debit
  spread, short put; bearish: the mirror), and their size is driven by the direction
  axis' confidence.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from shared.contracts import DecisionProposedV1, OptionType, Side, Structure
from shared.domain.analytics import ChainAnalytics, ExpiryAnalytics
from shared.domain.black76 import black76_price
from shared.domain.chain import ChainSnapshot
from shared.domain.decide.bandit import ThompsonBandit
from shared.domain.decide.combine import Consensus, RegimeCall, classify_regime, combine
from shared.domain.decide.learning import SignalState
from shared.domain.decide.odds import density_odds
from shared.domain.decide.readings import Axis, SignalReading
from shared.domain.decide.signals import (
    MarketInputs,
    Signal,
    default_signals,
    market_inputs_from,
    read_all,
)
from shared.domain.decide.sizing import RiskAppetite, SizingDecision, size_position
from shared.domain.decide.structures import (
    ChosenStructure,
    NoUsableExpiry,
    NoUsableStrike,
    WingRule,
    build_structure,
    choose_expiry,
    to_proposal,
)
from shared.domain.risk.inputs import LegQuote, MarketView, Portfolio, TenantPolicy
from shared.domain.risk.position import position_math
from shared.domain.risk.walls import DEFAULT_REGIME_STRUCTURES

__all__ = [
    "DIRECTIONAL_ARMS",
    "LONG_VOL_ARMS",
    "SHORT_VOL_ARMS",
    "Candidate",
    "DecisionEngine",
    "EngineConfig",
    "MarketDecision",
    "NoTrade",
    "SignalState",
    "TenantDecision",
    "TenantInputs",
    "market_view_of",
    "tenant_seed",
]

SHORT_VOL_ARMS = frozenset({Structure.IRON_CONDOR, Structure.SHORT_STRADDLE,
                            Structure.SHORT_STRANGLE, Structure.BUTTERFLY})
LONG_VOL_ARMS = frozenset({Structure.LONG_STRADDLE, Structure.LONG_STRANGLE})
DIRECTIONAL_ARMS = frozenset({Structure.CREDIT_VERTICAL, Structure.DEBIT_VERTICAL,
                              Structure.NAKED_SINGLE})
TRADING_DAYS = 252


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The engine's constants.

    Attributes
    ----------
    short_distance_sd
        Distance of short (OTM) legs from the forward, ATM standard deviations. Default 1.0.
    min_days
        Nearest expiry with at least this many calendar days (ACT/365 ``t * 365``). 2.0.
    min_axis_confidence
        An axis whose consensus confidence is at or below this has no view: its arms are
        not offered. Default 0.02.
    bandit_draws
        Monte-Carlo draws of the bandit's arm probabilities (explanation). Default 512.
    top_signals
        How many contributions the explanation lists per axis, largest first. Default 4.
    wing_rule
        The documented fallback wing rule (no production wing model).
    """

    short_distance_sd: float = 1.0
    min_days: float = 2.0
    min_axis_confidence: float = 0.02
    bandit_draws: int = 512
    top_signals: int = 4
    wing_rule: WingRule = field(default_factory=WingRule)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class NoTrade:
    """No proposal, and why (``reason_code`` is stable, ``reason`` is for people)."""

    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """One structure built at **one lot** on the live chain, priced as the castle prices it.

    Attributes
    ----------
    chosen
        Strikes, payoff and odds at one lot (rupees for the whole one-lot position).
    axis
        The axis whose confidence sizes it.
    per_lot_max_loss, per_lot_margin, per_lot_premium_paid, per_lot_tail_loss
        The castle's ``trade_max_loss``, ``margin``, ``max(net_premium, 0)`` at the touch,
        and ``tail_loss`` of one lot, rupees.
    per_lot_daily_risk
        One-day one-standard-deviation P&L of one lot, rupees: the larger ``|dV|`` of
        repricing every leg at ``F (1 +- sigma_atm / sqrt(252))`` (vols and time held).
    """

    chosen: ChosenStructure
    axis: Axis
    per_lot_max_loss: float
    per_lot_margin: float
    per_lot_premium_paid: float
    per_lot_tail_loss: float
    per_lot_daily_risk: float


@dataclass(frozen=True, slots=True)
class MarketDecision:
    """The tenant-independent part of one snapshot's decision.

    Attributes
    ----------
    symbol, snapshot_id, asof, spot
        The snapshot.
    readings
        Layer 1, every signal (missing ones with their reason).
    regime
        The regime call (None when the market stage stopped before it).
    consensus
        Layer 2 per axis (None when the market stage stopped before it).
    candidates
        Layer 3 at one lot, by structure, in :class:`Structure` order.
    refused
        Structures not offered, and why (regime, view, or no usable strike).
    no_trade
        Set when no tenant can trade on this snapshot (no usable expiry, no view ...).
    explanation
        The market part of every proposal's explanation (JSON-serialisable).
    models
        Model type → production version the decision relied on.
    """

    symbol: str
    snapshot_id: uuid.UUID
    asof: datetime
    spot: float
    readings: tuple[SignalReading, ...]
    regime: RegimeCall | None
    consensus: Consensus | None
    candidates: Mapping[Structure, Candidate]
    refused: Mapping[str, str]
    no_trade: NoTrade | None
    explanation: Mapping[str, Any]
    models: Mapping[str, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", MappingProxyType(dict(self.candidates)))
        object.__setattr__(self, "refused", MappingProxyType(dict(self.refused)))
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))

    def confidence(self, axis: Axis) -> float:
        return 0.0 if self.consensus is None else self.consensus[axis].confidence

    def summary(self) -> dict[str, Any]:
        """A JSON summary for the market run's row."""
        return {
            "regime": None if self.regime is None else self.regime.label,
            "candidates": [s.value for s in self.candidates],
            "refused": dict(self.refused),
            "no_trade": None if self.no_trade is None else {
                "reason_code": self.no_trade.reason_code, "reason": self.no_trade.reason},
            "explanation": dict(self.explanation),
        }


@dataclass(frozen=True, slots=True)
class TenantInputs:
    """What one tenant brings: limits, appetite, open paper book and bandit."""

    tenant_id: uuid.UUID
    policy: TenantPolicy
    appetite: RiskAppetite
    portfolio: Portfolio
    bandit: ThompsonBandit


@dataclass(frozen=True, slots=True)
class TenantDecision:
    """One tenant's outcome: a proposal, or a no-trade with its reason; and the explanation
    either way (``proposal.explanation`` is the same dict when there is a proposal)."""

    tenant_id: uuid.UUID
    proposal: DecisionProposedV1 | None
    no_trade: NoTrade | None
    explanation: Mapping[str, Any]
    structure: Structure | None = None
    sizing: SizingDecision | None = None

    @property
    def proposed(self) -> bool:
        return self.proposal is not None


# --------------------------------------------------------------------------- helpers


def tenant_seed(tenant_id: uuid.UUID, snapshot_id: uuid.UUID) -> int:
    """A 64-bit seed from (tenant, snapshot): the same snapshot decides the same."""
    digest = hashlib.blake2b(tenant_id.bytes + snapshot_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big")


def market_view_of(chain: ChainSnapshot, analytics: ChainAnalytics, *, rate: float,
                   lot_sizes: Mapping[date, int], snapshot_id: uuid.UUID | None = None
                   ) -> MarketView:
    """The risk castle's :class:`MarketView` of an analysed chain: every leg of an analysed
    expiry with a known lot size, with its bid, ask and solved IV (NaN when unsolved),
    and the expiry's forward and year fraction. The same quotes risk_check loads from the
    stored rows (:func:`shared.adapters.risk_state.load_market`)."""
    legs = analytics.legs
    expiries = chain.expiry.astype(object)
    quotes = []
    for i in np.flatnonzero(np.isfinite(legs.forward) & np.isfinite(legs.t)):
        ex: date = expiries[i]
        lot = lot_sizes.get(ex)
        if lot is None:
            continue
        quotes.append(LegQuote(
            expiry=ex, strike=float(chain.strike[i]),
            option_type=OptionType.CE if chain.is_call[i] else OptionType.PE,
            bid=float(chain.bid[i]), ask=float(chain.ask[i]), iv=float(legs.iv[i]),
            forward=float(legs.forward[i]), t=float(legs.t[i]), lot_size=int(lot)))
    return MarketView(symbol=chain.symbol, asof=chain.asof, spot=chain.spot,
                      quotes=tuple(quotes), rate=rate, source=chain.source,
                      snapshot_id=snapshot_id)


def _realised_vol(closes: Sequence[float] | None, window: int = 22) -> float | None:
    """Annualised sd (ddof 1) of the last ``window`` daily log returns; None if < 5."""
    if not closes:
        return None
    c = np.asarray(closes, dtype=np.float64)
    if not (np.all(np.isfinite(c)) and np.all(c > 0)):
        return None
    r = np.diff(np.log(c))[-window:]
    if r.size < 5:
        return None
    return float(np.std(r, ddof=1)) * math.sqrt(TRADING_DAYS)


def _percentile(iv: float, history: Sequence[float] | None, min_history: int = 20
                ) -> float | None:
    h = np.asarray(history or (), dtype=np.float64)
    h = h[np.isfinite(h)]
    if h.size < min_history:
        return None
    return (float(np.sum(h < iv)) + 0.5 * float(np.sum(h == iv))) / h.size


def _daily_risk(chosen: ChosenStructure, rate: float, legs_iv: np.ndarray) -> float:
    """One-day one-sd P&L of the one-lot structure (see :class:`Candidate`)."""
    units, strikes, is_call = chosen.arrays()
    f, t = chosen.forward, chosen.t
    atm = float(chosen.how.get("atm_iv", chosen.sigma))  # the market's vol, not our forecast
    move = atm / math.sqrt(TRADING_DAYS) if math.isfinite(atm) else 0.0
    fwd = np.array([[f], [f * (1.0 - move)], [f * (1.0 + move)]])
    v = black76_price(fwd, strikes[None, :], t, rate, legs_iv[None, :], is_call[None, :]) @ units
    return float(max(abs(v[1] - v[0]), abs(v[2] - v[0])))


def _scaled(chosen: ChosenStructure, lots: int) -> ChosenStructure:
    """``chosen`` (one lot) at ``lots`` lots: every leg and every rupee figure scales."""
    if lots == 1:
        return chosen

    def money(x: float | None) -> float | None:
        return None if x is None else x * lots

    return replace(
        chosen, legs=tuple(replace(leg, lots=leg.lots * lots) for leg in chosen.legs),
        net_premium=chosen.net_premium * lots, max_profit=money(chosen.max_profit),
        max_loss=money(chosen.max_loss),
        payoff_points=tuple((s, p * lots) for s, p in chosen.payoff_points),
        expected_gross_edge=chosen.expected_gross_edge * lots,
        how={**chosen.how, "legs": [f"{leg.side.value} {leg.lots * lots} "
                                    f"{leg.option_type.value} {leg.strike:g}"
                                    for leg in chosen.legs]})


def _reading_json(r: SignalReading) -> dict[str, Any]:
    return {"name": r.name, "axis": r.axis.value, "score": r.score,
            "confidence": r.confidence, "available": r.available, "reason": r.reason,
            "inputs": dict(r.inputs)}


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class DecisionEngine:
    """The four layers (see the module docstring)."""

    config: EngineConfig = field(default_factory=EngineConfig)
    signals: tuple[Signal, ...] = field(default_factory=default_signals)

    # ----------------------------------------------------------------------- market
    def market(self, chain: ChainSnapshot, analytics: ChainAnalytics, *,
               snapshot_id: uuid.UUID, rate: float, lot_sizes: Mapping[date, int],
               state: SignalState, iv_history: Sequence[float] | None = None,
               closes_intraday: Sequence[float] | None = None,
               closes_daily: Sequence[float] | None = None,
               vol_forecast: float | None = None, p_up: float | None = None,
               p_up_confidence: float | None = None, news: Any = None,
               wing: Callable[[Structure, ExpiryAnalytics], float | None] | None = None,
               wing_model: tuple[str, int] | None = None,
               models: Mapping[str, int] | None = None,
               reasons: Mapping[str, str] | None = None,
               event_ahead: bool = False) -> MarketDecision:
        """Layers 1, 2 and the tenant-independent part of 3 (see the module docstring).

        ``vol_forecast`` is annualised (the HAR forecast over the option's horizon);
        ``p_up`` the direction model's calibrated P(up); ``news`` None means news_ingest is
        absent (the news signal reads missing with that flag). ``wing`` returns the wing
        model's width for a structure, or None for the rule; ``wing_model`` (type, version)
        is added to the declared models when it set a wing. ``reasons`` says why an input
        is absent (e.g. ``{"vol_forecast": "no production vol_har_5d"}``).
        """
        cfg = self.config
        models = dict(models or {})
        base = {"snapshot": {"snapshot_id": str(snapshot_id), "asof": chain.asof.isoformat(),
                             "spot": chain.spot, "source": chain.source},
                "models": sorted(models), "model_versions": models}

        def stop(code: str, why: str, readings: tuple[SignalReading, ...] = (),
                 regime: RegimeCall | None = None, consensus: Consensus | None = None,
                 refused: Mapping[str, str] | None = None,
                 explanation: Mapping[str, Any] | None = None) -> MarketDecision:
            return MarketDecision(chain.symbol, snapshot_id, chain.asof, chain.spot, readings,
                                  regime, consensus, {}, refused or {}, NoTrade(code, why),
                                  MappingProxyType(dict(explanation or base)), models)

        try:
            ea = choose_expiry(analytics, min_days=cfg.min_days, chain=chain)
        except NoUsableExpiry as exc:
            return stop("no_usable_expiry", str(exc))
        inputs = market_inputs_from(
            ea, symbol=chain.symbol, asof=chain.asof, spot=chain.spot, iv_history=iv_history,
            vol_forecast=vol_forecast, closes_intraday=closes_intraday,
            closes_daily=closes_daily, news=news, p_up=p_up, p_up_confidence=p_up_confidence,
            reasons=dict(reasons or {}))
        readings = read_all(self.signals, inputs)
        regime, assumed = self._regime(ea, inputs, readings, event_ahead)
        consensus = combine(readings, state.weights, state.breakers, regime, now=chain.asof)
        expl: dict[str, Any] = {
            **base,
            "expiry": {"expiry": ea.expiry.isoformat(), "t_years": ea.t,
                       "forward": ea.forward, "atm_iv": ea.atm_iv},
            "regime": {"label": regime.label, "reason": regime.reason,
                       "inputs": dict(regime.inputs), "assumed": assumed},
            "consensus": {a.value: {"score": c.score, "confidence": c.confidence,
                                    "agreement": c.agreement, "disagreement": c.disagreement,
                                    "participants": c.participants}
                          for a, c in consensus.axes.items()},
            "signals": self._top(consensus, readings),
            "excluded": [{"name": x.name, "code": x.code, "reason": x.reason}
                         for x in consensus.excluded],
        }
        offered, refused = self._arms(regime.label, consensus)
        candidates: dict[Structure, Candidate] = {}
        view = market_view_of(chain, analytics, rate=rate, lot_sizes=lot_sizes,
                              snapshot_id=snapshot_id)
        lot_size = lot_sizes.get(ea.expiry)
        if lot_size is None:
            return stop("no_lot_size", f"no dated lot size for {chain.symbol} {ea.expiry}",
                        readings, regime, consensus, refused, expl)
        dir_score = consensus[Axis.DIRECTION].score
        for arm in sorted(offered, key=list(Structure).index):
            option_type, side = self._side(arm, dir_score)
            try:
                chosen = build_structure(
                    arm, chain, analytics, expiry=ea.expiry, lots=1,
                    short_distance_sd=cfg.short_distance_sd,
                    wing=wing(arm, ea) if wing is not None else None, lot_size=lot_size,
                    forecast_vol=vol_forecast if vol_forecast is not None
                    and math.isfinite(vol_forecast) and vol_forecast > 0 else None,
                    option_type=option_type, side=side, wing_rule=cfg.wing_rule)
            except (NoUsableStrike, NoUsableExpiry) as exc:
                refused[arm.value] = f"no usable strikes: {exc}"
                continue
            chosen = self._density_odds(chosen, ea, vol_forecast)
            candidates[arm] = self._price(chosen, arm, view, snapshot_id, chain)
        expl["structures"] = {"offered": [a.value for a in candidates], "refused": refused}
        if wing_model is not None and any(c.chosen.how.get("wing_source") == "wing_model"
                                          for c in candidates.values()):
            models[wing_model[0]] = wing_model[1]
            expl["models"], expl["model_versions"] = sorted(models), dict(models)
        if not candidates:
            return stop("no_structure", "no structure fits: " + "; ".join(
                f"{k}: {v}" for k, v in refused.items()), readings, regime, consensus,
                refused, expl)
        return MarketDecision(chain.symbol, snapshot_id, chain.asof, chain.spot, readings,
                              regime, consensus, candidates, refused, None,
                              MappingProxyType(expl), models)

    def _regime(self, ea: ExpiryAnalytics, inputs: MarketInputs,
                readings: tuple[SignalReading, ...], event_ahead: bool
                ) -> tuple[RegimeCall, dict[str, str]]:
        """The regime call; inputs that are not available are assumed neutral and listed."""
        assumed: dict[str, str] = {}
        iv = float(ea.atm_iv)
        rv = _realised_vol(inputs.closes_daily)
        if rv is None:
            rv = iv
            assumed["rv"] = "fewer than 6 daily closes: RV taken equal to IV (RV/IV 1)"
        pct = _percentile(iv, inputs.iv_history)
        if pct is None:
            pct = 0.5
            assumed["iv_percentile"] = "fewer than 20 past IVs: percentile 0.5"
        trend = next((r for r in readings if r.name == "trend"), None)
        zs = [v for k, v in (trend.inputs.items() if trend is not None else ())
              if k.startswith("z_")]
        if zs:
            trend_z = float(np.mean(zs))
        else:
            trend_z = 0.0
            assumed["trend_z"] = "no usable closes: trend z 0"
        return classify_regime(iv=iv, rv=rv, trend_z=trend_z, iv_percentile=pct,
                               event_ahead=event_ahead), assumed

    def _top(self, consensus: Consensus, readings: tuple[SignalReading, ...]
             ) -> list[dict[str, Any]]:
        """The largest contributions per axis, with the signal's inputs and reason."""
        by_name = {r.name: r for r in readings}
        out = []
        for axis, ac in consensus.axes.items():
            ranked = sorted(ac.contributions, key=lambda c: -abs(c.contribution))
            for c in ranked[: self.config.top_signals]:
                r = by_name[c.name]
                out.append({"name": c.name, "axis": axis.value, "score": c.score,
                            "confidence": c.confidence, "weight": c.weight,
                            "contribution": c.contribution, "agrees": c.agrees,
                            "reason": r.reason, "inputs": dict(r.inputs)})
        return out

    def _arms(self, regime: str, consensus: Consensus
              ) -> tuple[set[Structure], dict[str, str]]:
        allowed = DEFAULT_REGIME_STRUCTURES.get(regime, frozenset())
        refused: dict[str, str] = {}
        offered: set[Structure] = set()
        vol, dirn = consensus[Axis.VOLATILITY], consensus[Axis.DIRECTION]
        floor = self.config.min_axis_confidence
        for arm in Structure:
            if arm == Structure.CUSTOM:
                continue
            if arm not in allowed:
                refused[arm.value] = f"not allowed in the {regime} regime"
            elif arm in DIRECTIONAL_ARMS and (dirn.score == 0.0 or dirn.confidence <= floor):
                refused[arm.value] = (f"no directional view (score {dirn.score:+.2f}, "
                                      f"confidence {dirn.confidence:.2f})")
            elif arm in SHORT_VOL_ARMS and vol.score > 0.0:
                refused[arm.value] = f"volatility view is long ({vol.score:+.2f})"
            elif arm in LONG_VOL_ARMS and vol.score <= 0.0:
                refused[arm.value] = f"volatility view is not long ({vol.score:+.2f})"
            elif arm not in DIRECTIONAL_ARMS and vol.confidence <= floor:
                refused[arm.value] = (f"no volatility view (score {vol.score:+.2f}, "
                                      f"confidence {vol.confidence:.2f})")
            else:
                offered.add(arm)
        return offered, refused

    @staticmethod
    def _side(arm: Structure, direction: float) -> tuple[OptionType | None, Side]:
        if arm not in DIRECTIONAL_ARMS:
            return None, Side.SELL
        bull = direction > 0
        if arm == Structure.DEBIT_VERTICAL:
            return (OptionType.CE if bull else OptionType.PE), Side.SELL
        return (OptionType.PE if bull else OptionType.CE), Side.SELL

    @staticmethod
    def _density_odds(chosen: ChosenStructure, ea: ExpiryAnalytics,
                      vol_forecast: float | None) -> ChosenStructure:
        """Win probability and expected gross edge from the expiry's implied density with
        its log-spread scaled by forecast / ATM IV (:mod:`shared.domain.decide.odds`);
        without a density the lognormal odds of :func:`build_structure` stay."""
        d = ea.density
        usable = vol_forecast is not None and math.isfinite(vol_forecast) and vol_forecast > 0
        if d is None:
            return replace(chosen, how={**chosen.how, "odds_model": (
                f"lognormal at the {'forecast' if usable else 'ATM'} vol (no implied density)")})
        scale = float(vol_forecast) / ea.atm_iv if usable else 1.0  # type: ignore[arg-type]
        units, strikes, is_call = chosen.arrays()
        odds = density_odds(units, strikes, is_call, chosen.net_premium, d.grid, d.pdf,
                            forward=ea.forward, scale=scale)
        return replace(chosen, win_probability=odds.win_probability,
                       expected_gross_edge=odds.expected_payoff,
                       how={**chosen.how, "odds_model": (
                           "implied density, log-spread scaled by forecast / ATM IV" if usable
                           else "implied density (no forecast: the market's own)"),
                            "odds_scale": scale})

    @staticmethod
    def _price(chosen: ChosenStructure, arm: Structure, view: MarketView,
               snapshot_id: uuid.UUID, chain: ChainSnapshot) -> Candidate:
        one = to_proposal(chosen, tenant_id=uuid.UUID(int=0), snapshot_id=snapshot_id,
                          symbol=chain.symbol, regime="", now=chain.asof, explanation={})
        pm = position_math(one, view)
        daily = _daily_risk(chosen, view.rate, np.asarray(pm.iv, dtype=np.float64))
        return Candidate(chosen=chosen,
                         axis=Axis.DIRECTION if arm in DIRECTIONAL_ARMS else Axis.VOLATILITY,
                         per_lot_max_loss=pm.trade_max_loss, per_lot_margin=pm.margin,
                         per_lot_premium_paid=max(pm.net_premium, 0.0),
                         per_lot_tail_loss=pm.tail_loss, per_lot_daily_risk=daily)

    # ----------------------------------------------------------------------- tenant
    def for_tenant(self, market: MarketDecision, tenant: TenantInputs) -> TenantDecision:
        """Layers 3 (bandit) and 4 (sizing) for one tenant (see the module docstring)."""
        if market.no_trade is not None or market.regime is None:
            nt = market.no_trade or NoTrade("no_view", "the market stage found no view")
            return TenantDecision(tenant.tenant_id, None, nt,
                                  {**market.explanation, "no_trade": _nt(nt)})
        rng = np.random.default_rng(tenant_seed(tenant.tenant_id, market.snapshot_id))
        context = market.regime.label
        try:
            choice = tenant.bandit.sample(context, rng, market.candidates,
                                          n_mc=self.config.bandit_draws)
        except ValueError as exc:  # a stored bandit without any of the offered arms
            nt = NoTrade("no_arm", f"the tenant's bandit has none of the offered arms: {exc}")
            return TenantDecision(tenant.tenant_id, None, nt,
                                  {**market.explanation, "no_trade": _nt(nt)})
        # The bandit's ranking (its Thompson draws), best first: the first arm the tenant's
        # book can hold at least one lot of is traded; the others are recorded as passed.
        ranked = sorted(choice.draws, key=lambda a: -choice.draws[a])
        passed: dict[str, str] = {}
        for arm in ranked:
            cand = market.candidates[arm]
            confidence = market.confidence(cand.axis)
            sizing = size_position(
                per_lot_max_loss=cand.per_lot_max_loss, per_lot_margin=cand.per_lot_margin,
                per_lot_daily_risk=cand.per_lot_daily_risk, confidence=confidence,
                policy=tenant.policy, appetite=tenant.appetite, portfolio=tenant.portfolio,
                symbol=market.symbol, per_lot_premium_paid=cand.per_lot_premium_paid,
                per_lot_tail_loss=cand.per_lot_tail_loss, expiry=cand.chosen.expiry,
                lot_size=cand.chosen.lot_size)
            if sizing.trade:
                break
            passed[arm.value] = sizing.reason
        expl = {
            **market.explanation,
            "bandit": {"context": context, "arm": arm.value, "sampled": choice.arm.value,
                       "passed": passed,
                       "draws": {a.value: d for a, d in choice.draws.items()},
                       "probabilities": {a.value: p for a, p in choice.probabilities.items()},
                       "means": {a.value: m for a, m in choice.means.items()},
                       "counts": {a.value: n for a, n in choice.counts.items()}},
            "sizing": {"lots": sizing.lots, "binding": sizing.binding, "reason": sizing.reason,
                       "confidence": confidence, "axis": cand.axis.value,
                       "per_lot": {"max_loss": cand.per_lot_max_loss,
                                   "margin": cand.per_lot_margin,
                                   "premium_paid": cand.per_lot_premium_paid,
                                   "tail_loss": cand.per_lot_tail_loss,
                                   "daily_risk": cand.per_lot_daily_risk},
                       "constraints": {c.name: {"lots": c.lots, "detail": c.detail}
                                       for c in sizing.constraints}},
        }
        if not sizing.trade:
            nt = NoTrade("sized_to_zero", "no offered structure fits one lot: " + "; ".join(
                f"{a}: {why}" for a, why in passed.items()))
            return TenantDecision(tenant.tenant_id, None, nt, {**expl, "no_trade": _nt(nt)},
                                  arm, sizing)
        proposal = to_proposal(_scaled(cand.chosen, sizing.lots), tenant_id=tenant.tenant_id,
                               snapshot_id=market.snapshot_id, symbol=market.symbol,
                               regime=context, now=market.asof, explanation=expl)
        return TenantDecision(tenant.tenant_id, proposal, None, proposal.explanation,
                              arm, sizing)


def _nt(nt: NoTrade) -> dict[str, str]:
    return {"reason_code": nt.reason_code, "reason": nt.reason}
