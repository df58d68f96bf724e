"""Wing selection for short-premium condors: an XGBoost model of the *net* return of an iron
condor by wing distance, with labels replayed through the Indian cost engine.

Pure domain code: chains, settlements and the dated cost schedule are arguments; nothing
here reads a file, a clock or the environment. XGBoost is imported lazily by the functions
that train or load a booster. The market simulator lives in the adapters, so
:func:`simulate_sessions` takes it (and the payload parser) as arguments.

How the labels are made
-----------------------
One *session* is one entry snapshot of an option chain (simulated or recorded) plus what
happened afterwards. For each session, :func:`replay_condor_outcomes`:

1. **Market at entry.** Analyses the entry chain with
   :func:`~shared.domain.analytics.analyse_chain` for the session's expiry (ACT/365 year
   fraction ``t`` to the expiry close, rate ``r``): the parity-implied forward ``F``, the
   vega-weighted smile and the ATM IV ``sigma``. One standard deviation of the index to
   expiry is ``SD = sigma * F * sqrt(t)`` index points.
2. **Shorts.** Sells the call at the lowest listed strike ``>= F + k SD`` and the put at
   the highest listed strike ``<= F - k SD`` (``k = CondorConfig.short_sd``, 1 by default),
   the same pair for every wing candidate. A short leg without a bid ends the session
   (skipped, with the reason).
3. **Wings.** For every candidate distance ``w`` (50, 75, 100, 125, 150, 200 index points
   by default) buys the call at ``K_call + w`` and the put at ``K_put - w``. A candidate
   whose wing strike is not listed (75 and 125 on NIFTY's 50-point grid, say) or has no
   ask is skipped for that session, with the reason.
4. **Executable prices.** Every leg fills at the touch: sells at the bid, buys at the ask
   (rupees per unit). The net credit per unit is ``C = bid(K_call) + bid(K_put)
   - ask(K_call + w) - ask(K_put - w)``; ``C >= w`` (an arbitrage in the quotes) skips the
   candidate.
5. **Outcome.** Either *held to expiry*: the settlement ``S`` is the expiry-day closing
   index (recorded sessions: the published close; simulated: the mean of the last 30
   simulated minutes, 15:00-15:29, as NSE's closing price is an average of the last half
   hour), and every leg settles at its intrinsic value ``max(S - K, 0)`` (calls) or
   ``max(K - S, 0)`` (puts); or *closed at an exit snapshot* (the end of a simulated path,
   or a later recorded snapshot): shorts bought back at the ask, wings sold at the bid (a
   wing without a bid is abandoned at 0; a short without an ask skips the candidate).
6. **Gross P&L** per lot, rupees: ``(C - V) * q`` with ``V`` the structure's value at the
   outcome (the settlement payoff, or the exit cost per unit) and ``q = lots * lot size``
   units (one lot by default).
7. **Costs.** The whole round trip goes through the cost engine
   (:func:`~shared.domain.costs.round_trip`) with the dated charges of the entry day and
   of the exit (expiry) day and the brokerage plan (``standard``: Rs 20 per executed order
   plus GST): STT on the premium sold, exchange transaction charges, SEBI fee, IPFT, stamp
   duty on the buys, GST; at expiry an ITM *long* wing pays STT on its intrinsic value
   (exercise, the dated ``pct_intrinsic`` rate), an assigned short and OTM legs pay
   nothing. Crossing the spread is already paid through the touch prices; optional extra
   slippage (``entry_slippage_ticks`` per unit per entry fill) is added as a cost.
8. **Label.** ``net P&L = gross P&L - total cost`` and the capital at risk is the
   structure's maximum loss at expiry, ``M = (w - C) * q`` rupees (margin-like: both wings
   have width ``w``, at most one side can finish in the money). The label is the **net
   return** ``y = net P&L / M`` (a decimal: -1 is the whole capital lost before costs);
   ``gross P&L / M`` is kept alongside. Rows of one session share a *group*.

Simulated sessions (:func:`simulate_sessions`) run the seeded
:class:`~shared.adapters.providers.simulator.MarketSimulator` for the entry day, take the
chain of the entry minute (nearest expiry only) and, when the expiry is on a later session,
simulate each following session from the previous close times a seeded overnight gap
(``N(0, 0.4 %)``, as the simulator's own opening gap) up to the expiry day. The simulator
starts every session's volatility afresh around its long-run level, so a hold over a night
sees volatility revert overnight (the default samples entries on the expiry day and the
session before). The simulator's quoted IVs (ACT/365) carry the variance its path accrues
in trading time, so a 1-SD short is breached about as often as its price implies (the
realised variance to the close is 0.91-0.98 of the quoted IV's over 100 seeds). Recorded sessions need a published settlement: among the kit's chains only
NIFTY 2025-07-16 (15:30, expiry 2025-07-17, close 25111.45) has one *and* falls inside the
cost data (options from 2021-01-01); it adds one group.

Features (per entry snapshot and wing; :data:`FEATURE_NAMES`)
------------------------------------------------------------
``wing_points`` (index points), ``wing_sd`` (``w / SD``), ``short_sd`` (mean distance of
the two shorts from ``F`` in SDs, > ``k`` by the grid rounding), ``atm_iv`` (annualised
decimal), ``rr25`` and ``bf25`` (25-delta risk reversal ``IV_25c - IV_25p`` and butterfly
``(IV_25c + IV_25p) / 2 - IV_atm`` from the smile, forward deltas, annualised decimals),
``days_to_expiry`` (``365 t``), ``credit_to_width`` (``C / w``), ``wing_rel_spread`` and
``short_rel_spread`` (mean ``(ask - bid) / mid`` of the two wing / short legs; a missing
bid counts as 0, i.e. a relative spread of 2), ``wing_log_oi`` (``ln(1 + mean OI)`` of the
wing legs, contracts; NaN if not reported), ``move_sd`` (``ln(S / previous close)`` in
daily ATM SDs ``sigma / sqrt(252)``; NaN if the previous close is unknown) and a one-hot of
the regime (:data:`REGIMES`). The regime is the caller's label when given (the regime model
of a later issue), else a rule on what is known at entry: ``trending_up`` /
``trending_down`` when ``|move_sd| > 1``, otherwise ``low_vol`` / ``high_vol`` when the ATM
IV is below 0.85 / above 1.25 times the symbol's reference volatility (the simulator's
long-run levels: NIFTY 13 %, BANKNIFTY 16 %, FINNIFTY 15 %, MIDCPNIFTY 17 %), else
``range``.

Model and evaluation
--------------------
:class:`WingModel` fits an XGBoost regression (native ``xgboost.train`` on a ``DMatrix``,
``tree_method="hist"``, one thread, fixed seed: bit-reproducible) of the net return on the
features, with out-of-sample predictions from a **grouped** split (:func:`group_splits`:
contiguous blocks of whole sessions, k-fold or walk-forward; never a shuffled split, so no
session has rows in both a training and a test set). :meth:`WingFit.best_wing` picks the
candidate with the highest predicted net return. :func:`evaluate_wings` scores OOS
predictions: the within-session Spearman rank correlation between predicted and realised
net returns across candidates, and the realised net return of the model's choice against
always the 100-point wing, each fixed wing, and the in-hindsight best.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shared.domain.analytics import ExpiryAnalytics, analyse_chain
from shared.domain.calendar import MarketCalendar
from shared.domain.chain import ChainSnapshot
from shared.domain.costs import (
    CostError,
    CostSchedule,
    Leg,
    RoundTripCost,
    round_trip,
)
from shared.domain.models.cv import Split
from shared.domain.models.serial import read_payload

__all__ = [
    "BASELINE_WING",
    "DEFAULT_PARAMS",
    "DEFAULT_ROUNDS",
    "DEFAULT_WINDOWS",
    "DEFAULT_WINGS",
    "FEATURE_NAMES",
    "REFERENCE_VOLS",
    "REGIMES",
    "SERIAL_FORMAT",
    "Candidates",
    "CondorConfig",
    "CondorOutcome",
    "CondorQuote",
    "EntryMarket",
    "ReplaySession",
    "SessionSpec",
    "SimulatedMarket",
    "Skipped",
    "WingChoice",
    "WingDataset",
    "WingFeatures",
    "WingFit",
    "WingModel",
    "WingReport",
    "candidate_features",
    "evaluate_wings",
    "group_splits",
    "replay_condor_outcomes",
    "sample_session_specs",
    "simulate_sessions",
    "spearman",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

DEFAULT_WINGS: tuple[float, ...] = (50.0, 75.0, 100.0, 125.0, 150.0, 200.0)
"""Candidate wing distances beyond the shorts, index points."""

BASELINE_WING = 100.0
"""The fixed wing the model is compared with, index points."""

REGIMES: tuple[str, ...] = ("low_vol", "range", "high_vol", "trending_up", "trending_down")
"""Regime vocabulary (labels of :data:`~shared.domain.risk.walls.DEFAULT_REGIME_STRUCTURES`
that allow selling premium or describe a trend), one-hot encoded in this order."""

REFERENCE_VOLS: Mapping[str, float] = MappingProxyType({
    "NIFTY": 0.13, "BANKNIFTY": 0.16, "FINNIFTY": 0.15, "MIDCPNIFTY": 0.17})
"""Long-run ATM volatility per index (annualised), the simulator's calibrated levels."""

FEATURE_NAMES: tuple[str, ...] = (
    "wing_points", "wing_sd", "short_sd", "atm_iv", "rr25", "bf25", "days_to_expiry",
    "credit_to_width", "wing_rel_spread", "short_rel_spread", "wing_log_oi", "move_sd",
    *(f"regime_{r}" for r in REGIMES),
)
"""Feature columns of :class:`WingFeatures` (units in the module docstring)."""

SERIAL_FORMAT = "quantsentinel.wings/1"
"""Tag of the :meth:`WingFit.to_bytes` payload."""

DEFAULT_PARAMS: Mapping[str, Any] = MappingProxyType({
    "objective": "reg:squarederror",
    "eta": 0.05,
    "max_depth": 4,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 5.0,
    # reproducible: hist trees, one thread, one seed
    "tree_method": "hist",
    "nthread": 1,
    "seed": 1234,
    "verbosity": 0,
})
"""XGBoost parameters of :class:`WingModel` (its ``params`` override them; changing
``tree_method``, ``nthread`` or ``seed`` gives up bit-for-bit reproducibility)."""

DEFAULT_ROUNDS = 300
"""Boosting rounds of :class:`WingModel`."""

DEFAULT_WINDOWS: Mapping[str, tuple[date, date]] = MappingProxyType({
    # NIFTY weeklies throughout; MIDCPNIFTY weeklies (a 25-point grid, so every default
    # candidate is listed) from their Monday start to their discontinuation
    "NIFTY": (date(2023, 4, 3), date(2025, 11, 28)),
    "MIDCPNIFTY": (date(2023, 8, 21), date(2024, 11, 18)),
})
"""Entry-day windows of :func:`sample_session_specs` (inside the cost data's coverage)."""

_Z25 = 0.6744897501960817  # N^-1(0.75): |d1| of a 25-delta option
_TICK = 0.05
_SETTLEMENT_MINUTES = 30
_OVERNIGHT_GAP_SD = 0.004
_LOW_VOL_RATIO = 0.85
_HIGH_VOL_RATIO = 1.25
_TREND_SD = 1.0
_DEFAULT_REFERENCE_VOL = 0.15


def _frozen(a: npt.ArrayLike, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _key(strike: float) -> int:
    """A strike as an integer number of paise (exact lookups of computed strikes)."""
    return int(round(float(strike) * 100))


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class CondorConfig:
    """How the condors are built and costed.

    Attributes
    ----------
    wings : tuple of float
        Candidate wing distances beyond the shorts, index points.
    short_sd : float
        Short strikes at ``F +- short_sd * SD`` (rounded outwards to the listed grid).
    lots : int
        Lots per leg; labels are per this many lots (1: per lot).
    plan : str
        Brokerage plan of the cost schedule.
    entry_slippage_ticks : float
        Extra slippage beyond the touch per unit per entry fill, in 0.05-rupee ticks.
    reference_vols : Mapping[str, float]
        Long-run ATM volatility per symbol (annualised) for the regime rule.
    """

    wings: tuple[float, ...] = DEFAULT_WINGS
    short_sd: float = 1.0
    lots: int = 1
    plan: str = "standard"
    entry_slippage_ticks: float = 0.0
    reference_vols: Mapping[str, float] = field(default_factory=lambda: REFERENCE_VOLS)

    def __post_init__(self) -> None:
        if not self.wings or any(not (math.isfinite(w) and w > 0) for w in self.wings):
            raise ValueError(f"wings must be positive distances, got {self.wings!r}")
        if len(set(self.wings)) != len(self.wings):
            raise ValueError(f"wings must be distinct, got {self.wings!r}")
        if not (math.isfinite(self.short_sd) and self.short_sd > 0):
            raise ValueError(f"short_sd must be positive, got {self.short_sd!r}")
        if isinstance(self.lots, bool) or not isinstance(self.lots, int) or self.lots < 1:
            raise ValueError(f"lots must be a positive integer, got {self.lots!r}")
        if not (math.isfinite(self.entry_slippage_ticks) and self.entry_slippage_ticks >= 0):
            raise ValueError("entry_slippage_ticks must be >= 0")


@dataclass(frozen=True, slots=True)
class ReplaySession:
    """One entry snapshot and its outcome (exactly one of ``settlement`` and ``exit``).

    Attributes
    ----------
    session_id : str
        Unique name of the session (its rows form one group).
    source : str
        ``"simulated"`` or ``"recorded"``.
    entry : ChainSnapshot
        The chain at entry.
    expiry : datetime.date
        The expiry traded (must be in ``entry.expiries``).
    t_years : float
        ACT/365 year fraction from ``entry.asof`` to the expiry close.
    lot_size : int
        Units per contract of that expiry.
    settlement : float, optional
        Expiry settlement price of the index, points (hold to expiry).
    exit : ChainSnapshot, optional
        A later snapshot to close at (executable quotes) instead of holding to expiry.
    previous_close : float, optional
        The index's previous close, points (for ``move_sd`` and the trend regime).
    regime : str, optional
        The regime label (one of :data:`REGIMES`); derived by the rule when None.
    rate : float
        Continuously compounded rate for the analytics.
    """

    session_id: str
    source: str
    entry: ChainSnapshot
    expiry: date
    t_years: float
    lot_size: int
    settlement: float | None = None
    exit: ChainSnapshot | None = None
    previous_close: float | None = None
    regime: str | None = None
    rate: float = 0.065

    def __post_init__(self) -> None:
        if (self.settlement is None) == (self.exit is None):
            raise ValueError(f"{self.session_id}: give a settlement or an exit snapshot")
        if self.settlement is not None and not (math.isfinite(self.settlement)
                                                and self.settlement > 0):
            raise ValueError(f"{self.session_id}: settlement must be a positive price")
        if not (math.isfinite(self.t_years) and self.t_years > 0):
            raise ValueError(f"{self.session_id}: t_years must be positive")
        if self.lot_size < 1:
            raise ValueError(f"{self.session_id}: lot_size must be positive")
        if self.regime is not None and self.regime not in REGIMES:
            raise ValueError(f"{self.session_id}: regime {self.regime!r} is not one of "
                             f"{', '.join(REGIMES)}")
        if self.exit is not None and self.exit.asof <= self.entry.asof:
            raise ValueError(f"{self.session_id}: the exit snapshot is not after the entry")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A session (``wing`` None) or one wing candidate that produced no row, and why."""

    session_id: str
    wing: float | None
    reason: str


# --------------------------------------------------------------------------- entry


@dataclass(frozen=True, slots=True)
class EntryMarket:
    """What the entry chain says, shared by a session's candidates.

    Attributes
    ----------
    forward : float
        Parity-implied forward of the expiry, points.
    atm_iv : float
        ATM implied volatility, annualised decimal.
    t_years : float
        ACT/365 years to the expiry close.
    sd_points : float
        ``atm_iv * forward * sqrt(t_years)``, index points.
    rr25, bf25 : float
        25-delta risk reversal and butterfly, annualised decimals.
    move_sd : float
        Move since the previous close in daily ATM SDs (NaN if unknown).
    regime : str
        The regime label used.
    short_call, short_put : float
        The short strikes, points.
    short_call_bid, short_put_bid : float
        Their bids, rupees per unit.
    short_rel_spread : float
        Mean relative spread of the two shorts.
    """

    forward: float
    atm_iv: float
    t_years: float
    sd_points: float
    rr25: float
    bf25: float
    move_sd: float
    regime: str
    short_call: float
    short_put: float
    short_call_bid: float
    short_put_bid: float
    short_rel_spread: float


@dataclass(frozen=True, slots=True)
class CondorQuote:
    """One candidate condor at entry, executable prices (rupees per unit).

    ``credit = short_call_bid + short_put_bid - long_call_ask - long_put_ask`` and the
    maximum loss at expiry per unit is ``wing - credit``.
    """

    wing: float
    short_call: float
    short_put: float
    long_call: float
    long_put: float
    short_call_bid: float
    short_put_bid: float
    long_call_ask: float
    long_put_ask: float
    wing_rel_spread: float
    wing_mean_oi: float

    @property
    def credit(self) -> float:
        return (self.short_call_bid + self.short_put_bid
                - self.long_call_ask - self.long_put_ask)

    @property
    def wing_premium(self) -> float:
        """Premium paid for the two wings, rupees per unit."""
        return self.long_call_ask + self.long_put_ask

    @property
    def max_loss_per_unit(self) -> float:
        return self.wing - self.credit


@dataclass(frozen=True, eq=False)
class WingFeatures:
    """A feature table: one row per (entry snapshot, wing candidate).

    Attributes
    ----------
    names : tuple of str
        Column names (:data:`FEATURE_NAMES` for tables built here).
    values : numpy.ndarray of float64, shape (n, p)
        Read-only; NaN is missing.
    distance : numpy.ndarray of float64, shape (n,)
        Wing distance of each row, index points.
    groups : numpy.ndarray of int64, shape (n,)
        Session index of each row (rows of one entry snapshot share it).
    """

    names: tuple[str, ...]
    values: Floats
    distance: Floats
    groups: Ints

    def __post_init__(self) -> None:
        values = _frozen(self.values)
        if values.ndim != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"values of shape {values.shape} do not fit {len(self.names)} "
                             f"feature names")
        distance = _frozen(self.distance)
        groups = _frozen(self.groups, np.int64)
        if distance.shape != (values.shape[0],) or groups.shape != (values.shape[0],):
            raise ValueError("distance and groups need one entry per row")
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "distance", distance)
        object.__setattr__(self, "groups", groups)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> Floats:
        return self.values[:, self.names.index(name)]

    def take(self, rows: npt.ArrayLike) -> WingFeatures:
        idx = np.asarray(rows)
        return WingFeatures(self.names, self.values[idx], self.distance[idx], self.groups[idx])

    def group(self, g: int) -> WingFeatures:
        """The rows of session ``g``."""
        return self.take(np.flatnonzero(self.groups == g))


@dataclass(frozen=True, eq=False)
class Candidates:
    """The condor candidates of one entry snapshot and their features.

    ``features`` and ``quotes`` are aligned; ``skipped`` lists candidates (or the whole
    snapshot) that could not be built. ``market`` is None when the snapshot was skipped.
    """

    market: EntryMarket | None
    quotes: tuple[CondorQuote, ...]
    features: WingFeatures
    skipped: tuple[Skipped, ...]


def _empty_features() -> WingFeatures:
    return WingFeatures(FEATURE_NAMES, np.empty((0, len(FEATURE_NAMES))), np.empty(0),
                        np.empty(0, dtype=np.int64))


def _rel_spread(bid: float, ask: float) -> float:
    b = bid if math.isfinite(bid) and bid > 0 else 0.0
    if not (math.isfinite(ask) and ask > 0):
        return float("nan")
    return (ask - b) / (0.5 * (ask + b))


def _delta25_ivs(exp: ExpiryAnalytics) -> tuple[float, float]:
    """IVs at the 25-delta call and put (forward deltas), from the smile."""
    assert exp.smile is not None
    sigma_atm, t = exp.atm_iv, exp.t
    out = []
    for sign in (1.0, -1.0):  # call: x = +z s sqrt(t) + s^2 t / 2; put: -z ...
        s = sigma_atm
        for _ in range(6):
            x = sign * _Z25 * s * math.sqrt(t) + 0.5 * s * s * t
            s = float(exp.smile.iv(np.array([x]))[0])
        out.append(s)
    return out[0], out[1]


def _regime(atm_iv: float, move_sd: float, symbol: str, config: CondorConfig) -> str:
    if math.isfinite(move_sd) and abs(move_sd) > _TREND_SD:
        return "trending_up" if move_sd > 0 else "trending_down"
    ref = config.reference_vols.get(symbol.upper(), _DEFAULT_REFERENCE_VOL)
    ratio = atm_iv / ref
    if ratio < _LOW_VOL_RATIO:
        return "low_vol"
    if ratio > _HIGH_VOL_RATIO:
        return "high_vol"
    return "range"


@dataclass(frozen=True, slots=True)
class _Book:
    """One expiry's listed legs, keyed by (strike in paise, is_call)."""

    index: Mapping[tuple[int, bool], int]
    strike: Floats
    is_call: npt.NDArray[np.bool_]
    bid: Floats
    ask: Floats
    oi: Floats

    @classmethod
    def of(cls, snap: ChainSnapshot, expiry: date) -> _Book:
        mask = snap.for_expiry(expiry)
        strike, is_call = snap.strike[mask], snap.is_call[mask]
        index = {(_key(k), bool(c)): i for i, (k, c) in enumerate(
            zip(strike.tolist(), is_call.tolist(), strict=True))}
        return cls(index, strike, is_call, snap.bid[mask], snap.ask[mask], snap.oi[mask])

    def find(self, strike: float, call: bool) -> int | None:
        return self.index.get((_key(strike), call))

    def bid_of(self, i: int) -> float:
        b = float(self.bid[i])
        return b if math.isfinite(b) and b > 0 else float("nan")

    def ask_of(self, i: int) -> float:
        a = float(self.ask[i])
        return a if math.isfinite(a) and a > 0 else float("nan")


def candidate_features(snapshot: ChainSnapshot, *, expiry: date, t_years: float,
                       lot_size: int, config: CondorConfig | None = None,
                       regime: str | None = None, previous_close: float | None = None,
                       rate: float = 0.065, session_id: str = "", group: int = 0
                       ) -> Candidates:
    """Build every candidate condor of one snapshot at executable prices, with features.

    The same function serves training (via :func:`replay_condor_outcomes`) and live use
    (``WingFit.best_wing(candidate_features(...).features)``).

    Parameters
    ----------
    snapshot
        The option chain at entry.
    expiry
        The expiry to trade.
    t_years
        ACT/365 year fraction from ``snapshot.asof`` to the expiry close.
    lot_size
        Units per contract of the expiry.
    config
        Strikes, wings and costs (:class:`CondorConfig`).
    regime
        A regime label of :data:`REGIMES`, or None for the rule (module docstring).
    previous_close
        The index's previous close, points (optional).
    rate
        Continuously compounded rate for the analytics.
    session_id, group
        Labels of the rows (for :class:`Skipped` and :attr:`WingFeatures.groups`).
    """
    cfg = config or CondorConfig()
    if regime is not None and regime not in REGIMES:
        raise ValueError(f"regime {regime!r} is not one of {', '.join(REGIMES)}")

    def skip(reason: str) -> Candidates:
        return Candidates(None, (), _empty_features(), (Skipped(session_id, None, reason),))

    if expiry not in snapshot.expiries:
        return skip(f"expiry {expiry.isoformat()} is not in the snapshot")
    analytics = analyse_chain(snapshot, t_by_expiry={expiry: t_years}, rate=rate,
                              lot_size_by_expiry={expiry: lot_size})
    found = [e for e in analytics.expiries if e.expiry == expiry]
    if not found or found[0].smile is None or not (math.isfinite(found[0].atm_iv)
                                                   and found[0].atm_iv > 0):
        why = "; ".join(found[0].reasons) if found else analytics.skipped.get(expiry, "")
        return skip(f"no smile for {expiry.isoformat()}: {why}")
    exp = found[0]
    fwd, sigma = exp.forward, exp.atm_iv
    sd = sigma * fwd * math.sqrt(t_years)
    iv_c, iv_p = _delta25_ivs(exp)
    rr25, bf25 = iv_c - iv_p, 0.5 * (iv_c + iv_p) - sigma
    move_sd = float("nan")
    if previous_close is not None and previous_close > 0:
        move_sd = math.log(snapshot.spot / previous_close) / (sigma / math.sqrt(252.0))
    label = regime or _regime(sigma, move_sd, snapshot.symbol, cfg)

    book = _Book.of(snapshot, expiry)
    calls = np.sort(book.strike[book.is_call])
    puts = np.sort(book.strike[~book.is_call])
    above = calls[calls >= fwd + cfg.short_sd * sd]
    below = puts[puts <= fwd - cfg.short_sd * sd]
    if above.size == 0 or below.size == 0:
        return skip(f"no listed strike {cfg.short_sd:g} SD ({sd:.1f} points) from the forward")
    k_call, k_put = float(above[0]), float(below[-1])
    i_call, i_put = book.find(k_call, True), book.find(k_put, False)
    assert i_call is not None and i_put is not None
    bid_call, bid_put = book.bid_of(i_call), book.bid_of(i_put)
    if not (math.isfinite(bid_call) and math.isfinite(bid_put)):
        return skip(f"a short leg has no bid (call {k_call:g}: {bid_call}, "
                    f"put {k_put:g}: {bid_put})")
    short_spread = 0.5 * (_rel_spread(bid_call, book.ask_of(i_call))
                          + _rel_spread(bid_put, book.ask_of(i_put)))
    market = EntryMarket(forward=fwd, atm_iv=sigma, t_years=t_years, sd_points=sd, rr25=rr25,
                         bf25=bf25, move_sd=move_sd, regime=label, short_call=k_call,
                         short_put=k_put, short_call_bid=bid_call, short_put_bid=bid_put,
                         short_rel_spread=short_spread)
    short_sd = 0.5 * ((k_call - fwd) + (fwd - k_put)) / sd

    quotes: list[CondorQuote] = []
    rows: list[list[float]] = []
    skipped: list[Skipped] = []
    onehot = [1.0 if label == r else 0.0 for r in REGIMES]
    for w in cfg.wings:
        j_call, j_put = book.find(k_call + w, True), book.find(k_put - w, False)
        if j_call is None or j_put is None:
            missing = [f"{k:g} {kind}" for k, kind, j in ((k_call + w, "CE", j_call),
                                                          (k_put - w, "PE", j_put)) if j is None]
            skipped.append(Skipped(session_id, w, f"wing not listed: {', '.join(missing)}"))
            continue
        ask_call, ask_put = book.ask_of(j_call), book.ask_of(j_put)
        if not (math.isfinite(ask_call) and math.isfinite(ask_put)):
            skipped.append(Skipped(session_id, w, "a wing leg has no ask"))
            continue
        oi = np.array([book.oi[j_call], book.oi[j_put]], dtype=float)
        q = CondorQuote(
            wing=float(w), short_call=k_call, short_put=k_put, long_call=k_call + w,
            long_put=k_put - w, short_call_bid=bid_call, short_put_bid=bid_put,
            long_call_ask=ask_call, long_put_ask=ask_put,
            wing_rel_spread=0.5 * (_rel_spread(book.bid_of(j_call), ask_call)
                                   + _rel_spread(book.bid_of(j_put), ask_put)),
            wing_mean_oi=float(oi.mean()) if np.isfinite(oi).all() else float("nan"))
        if q.credit >= w:
            skipped.append(Skipped(session_id, w, f"credit {q.credit:.2f} >= width {w:g}: "
                                                  "the quotes are an arbitrage"))
            continue
        quotes.append(q)
        rows.append([
            float(w), w / sd, short_sd, sigma, rr25, bf25, 365.0 * t_years,
            q.credit / w, q.wing_rel_spread, short_spread,
            math.log1p(q.wing_mean_oi) if math.isfinite(q.wing_mean_oi) else float("nan"),
            move_sd, *onehot])
    if not quotes:
        return Candidates(market, (), _empty_features(), tuple(skipped))
    values = np.array(rows, dtype=float)
    features = WingFeatures(FEATURE_NAMES, values, values[:, 0],
                            np.full(len(rows), group, dtype=np.int64))
    return Candidates(market, tuple(quotes), features, tuple(skipped))


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class CondorOutcome:
    """One labelled row: a condor from entry to its outcome, per ``qty`` units.

    Attributes
    ----------
    session_id, source, symbol : str
        Where the row comes from.
    group : int
        Session index (rows of one entry snapshot share it).
    entry_time : datetime.datetime
        The entry snapshot's time (aware, IST).
    expiry : datetime.date
        The expiry traded.
    quote : CondorQuote
        Strikes and executable entry prices (rupees per unit).
    qty : int
        Units per leg (lots times lot size).
    exit_mode : str
        ``"expiry"`` (settled at intrinsic) or ``"exit_snapshot"`` (closed by trades).
    settlement : float
        Settlement index level, points (NaN for an exit snapshot).
    exit_value : float
        Value of the structure at the outcome, rupees per unit (what the shorts' owner
        pays net: settlement payoff, or the exit cost).
    gross_pnl, costs, net_pnl : float
        Rupees for ``qty`` units; ``net_pnl = gross_pnl - costs``.
    max_loss : float
        ``(wing - credit) * qty`` rupees: the capital at risk.
    gross_return, net_return : float
        ``gross_pnl / max_loss`` and ``net_pnl / max_loss`` (decimals): the label is
        ``net_return``.
    cost_detail : RoundTripCost
        The cost engine's breakdown (entry and exit/expiry fills, leg by leg).
    """

    session_id: str
    source: str
    symbol: str
    group: int
    entry_time: datetime
    expiry: date
    quote: CondorQuote
    qty: int
    exit_mode: str
    settlement: float
    exit_value: float
    gross_pnl: float
    costs: float
    net_pnl: float
    max_loss: float
    gross_return: float
    net_return: float
    cost_detail: RoundTripCost

    @property
    def wing(self) -> float:
        return self.quote.wing


@dataclass(frozen=True, eq=False)
class WingDataset:
    """Labelled rows of :func:`replay_condor_outcomes` (features and outcomes aligned).

    ``sessions`` names the groups (``sessions[g]`` is the session id of group ``g``).
    """

    features: WingFeatures
    outcomes: tuple[CondorOutcome, ...]
    skipped: tuple[Skipped, ...]
    sessions: tuple[str, ...]

    @property
    def y(self) -> Floats:
        """The labels: net return per row (decimal)."""
        return _frozen([o.net_return for o in self.outcomes])

    @property
    def gross(self) -> Floats:
        return _frozen([o.gross_return for o in self.outcomes])

    @property
    def n_rows(self) -> int:
        return len(self.outcomes)

    @property
    def n_sessions(self) -> int:
        return len(self.sessions)


def _intrinsic(settlement: float, strike: float, call: bool) -> float:
    return max(settlement - strike, 0.0) if call else max(strike - settlement, 0.0)


def _outcome(session: ReplaySession, q: CondorQuote, group: int, schedule: CostSchedule,
             cfg: CondorConfig) -> CondorOutcome | str:
    qty = cfg.lots * session.lot_size
    slip = cfg.entry_slippage_ticks * _TICK * qty or None
    legs_spec = ((q.short_call, True, "short", q.short_call_bid),
                 (q.short_put, False, "short", q.short_put_bid),
                 (q.long_call, True, "long", q.long_call_ask),
                 (q.long_put, False, "long", q.long_put_ask))
    legs: list[Leg] = []
    value = 0.0  # per unit, what the short structure costs to unwind at the outcome
    if session.settlement is not None:
        s = float(session.settlement)
        for k, call, pos, px in legs_spec:
            intr = round(_intrinsic(s, k, call), 6)
            value += intr if pos == "short" else -intr
            legs.append(Leg(instrument="option", position=pos, qty=qty, entry_price=px,
                            settlement_intrinsic=intr, entry_slippage=slip,
                            label=f"{k:g}{'CE' if call else 'PE'}"))
        mode, exit_date, settle = "expiry", session.expiry, s
    else:
        assert session.exit is not None
        book = _Book.of(session.exit, session.expiry)
        for k, call, pos, px in legs_spec:
            i = book.find(k, call)
            tag = f"{k:g}{'CE' if call else 'PE'}"
            if pos == "short":
                ask = book.ask_of(i) if i is not None else float("nan")
                if not math.isfinite(ask):
                    return f"short {tag} has no ask at the exit"
                value += ask
                legs.append(Leg(instrument="option", position=pos, qty=qty, entry_price=px,
                                exit_price=ask, entry_slippage=slip, label=tag))
            else:
                bid = book.bid_of(i) if i is not None else float("nan")
                if math.isfinite(bid):
                    value -= bid
                    legs.append(Leg(instrument="option", position=pos, qty=qty,
                                    entry_price=px, exit_price=bid, entry_slippage=slip,
                                    label=tag))
                else:  # nobody bids: abandoned, worth 0 and no charge
                    legs.append(Leg(instrument="option", position=pos, qty=qty,
                                    entry_price=px, settlement_intrinsic=0,
                                    entry_slippage=slip, label=tag))
        mode, exit_date, settle = "exit_snapshot", session.exit.asof.date(), float("nan")
    try:
        rt = round_trip(schedule, legs, entry_date=session.entry.asof.date(),
                        exit_date=exit_date, plan=cfg.plan)
    except CostError as exc:
        return f"cost engine: {exc}"
    gross = (q.credit - value) * qty
    costs = float(rt.total)
    net = gross - costs
    max_loss = q.max_loss_per_unit * qty
    return CondorOutcome(
        session_id=session.session_id, source=session.source, symbol=session.entry.symbol,
        group=group, entry_time=session.entry.asof, expiry=session.expiry, quote=q, qty=qty,
        exit_mode=mode, settlement=settle, exit_value=value, gross_pnl=gross, costs=costs,
        net_pnl=net, max_loss=max_loss, gross_return=gross / max_loss,
        net_return=net / max_loss, cost_detail=rt)


def replay_condor_outcomes(sessions: Iterable[ReplaySession], *, schedule: CostSchedule,
                           config: CondorConfig | None = None) -> WingDataset:
    """Label every wing candidate of every session with its net return (module docstring).

    Parameters
    ----------
    sessions
        Entry snapshots with their outcomes (:class:`ReplaySession`), in the order that
        defines the groups (time order for recorded data: the walk-forward split uses it).
    schedule
        The dated cost schedule (``shared.costs.default_cost_schedule()``).
    config
        How the condors are built and costed.

    Returns
    -------
    WingDataset
        Features and outcomes aligned row by row; a session with no row is only in
        ``skipped`` and takes no group number.
    """
    cfg = config or CondorConfig()
    feats: list[WingFeatures] = []
    outcomes: list[CondorOutcome] = []
    skipped: list[Skipped] = []
    names: list[str] = []
    seen: set[str] = set()
    for session in sessions:
        if session.session_id in seen:
            raise ValueError(f"duplicate session id {session.session_id!r}")
        seen.add(session.session_id)
        group = len(names)
        cand = candidate_features(
            session.entry, expiry=session.expiry, t_years=session.t_years,
            lot_size=session.lot_size, config=cfg, regime=session.regime,
            previous_close=session.previous_close, rate=session.rate,
            session_id=session.session_id, group=group)
        skipped.extend(cand.skipped)
        keep: list[int] = []
        for i, q in enumerate(cand.quotes):
            out = _outcome(session, q, group, schedule, cfg)
            if isinstance(out, str):
                skipped.append(Skipped(session.session_id, q.wing, out))
                if out.startswith("cost engine"):
                    break  # the dates are outside the cost data: no candidate can be costed
                continue
            keep.append(i)
            outcomes.append(out)
        if keep:
            names.append(session.session_id)
            feats.append(cand.features.take(keep))
        elif cand.quotes:
            skipped.append(Skipped(session.session_id, None, "no candidate could be labelled"))
    if feats:
        features = WingFeatures(FEATURE_NAMES, np.vstack([f.values for f in feats]),
                                np.concatenate([f.distance for f in feats]),
                                np.concatenate([f.groups for f in feats]))
    else:
        features = _empty_features()
    return WingDataset(features, tuple(outcomes), tuple(skipped), tuple(names))


# --------------------------------------------------------------------------- simulation


class SimulatedMarket(Protocol):
    """What :func:`simulate_sessions` needs of a simulated session
    (:class:`~shared.adapters.providers.simulator.MarketSimulator` provides it)."""

    symbol: str
    session_date: date
    rate: float
    prev_close: float
    expiries: tuple[date, ...]
    lot_sizes: dict[date, int]

    def minutes(self) -> int: ...
    def spot_path(self) -> Floats: ...
    def year_fractions(self, i: int) -> Floats: ...
    def payload_at(self, i: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """A simulated entry: symbol, entry day, seed and minute of the session (0 = 09:15)."""

    symbol: str
    day: date
    seed: int
    entry_minute: int

    @property
    def session_id(self) -> str:
        return f"sim:{self.symbol}:{self.day.isoformat()}:{self.seed}:{self.entry_minute}"


def _sessions_until(calendar: MarketCalendar, day: date, expiry: date) -> int:
    n, d = 0, day
    while d < expiry:
        d = calendar.next_trading_day(d)
        n += 1
    return n


def sample_session_specs(rng: np.random.Generator, n: int, *, calendar: MarketCalendar,
                         windows: Mapping[str, tuple[date, date]] = DEFAULT_WINDOWS,
                         max_sessions_ahead: int = 1,
                         entry_minutes: tuple[int, int] = (15, 330)) -> tuple[SessionSpec, ...]:
    """``n`` seeded entries: a symbol (uniform over ``windows``), a trading day in its
    window whose nearest expiry is at most ``max_sessions_ahead`` sessions away, a seed and
    an entry minute in ``entry_minutes`` (on an expiry day at most 14:29, so an hour runs
    before the settlement window)."""
    if n < 0 or max_sessions_ahead < 0:
        raise ValueError("n and max_sessions_ahead must be non-negative")
    symbols = sorted(windows)
    specs: list[SessionSpec] = []
    attempts = 0
    while len(specs) < n:
        attempts += 1
        if attempts > 200 * max(n, 1):
            raise ValueError("could not find entry days: widen the windows")
        sym = symbols[int(rng.integers(len(symbols)))]
        lo, hi = windows[sym]
        day = lo + timedelta(days=int(rng.integers((hi - lo).days + 1)))
        seed = int(rng.integers(0, 2**31 - 1))
        minute = int(rng.integers(entry_minutes[0], entry_minutes[1] + 1))
        if not calendar.is_trading_day(day):
            continue
        listed = calendar.expiries(sym, day, day + timedelta(days=21))
        if not listed:
            continue
        ahead = _sessions_until(calendar, day, listed[0].date)
        if ahead > max_sessions_ahead:
            continue
        if ahead == 0:
            minute = min(minute, 314)
        specs.append(SessionSpec(sym, day, seed, minute))
    return tuple(specs)


def simulate_sessions(specs: Iterable[SessionSpec], *, calendar: MarketCalendar,
                      simulator: Callable[..., SimulatedMarket],
                      parse: Callable[[bytes], ChainSnapshot],
                      overnight_gap_sd: float = _OVERNIGHT_GAP_SD) -> tuple[ReplaySession, ...]:
    """Simulate each entry and its path to expiry (module docstring).

    Parameters
    ----------
    specs
        Entries (:func:`sample_session_specs`).
    calendar
        The market calendar (sessions, expiries, lot sizes).
    simulator
        ``MarketSimulator`` or a callable with its signature
        ``(symbol, day, *, seed, calendar, spot0=None, n_expiries=...)``.
    parse
        NSE payload bytes to :class:`ChainSnapshot` (``shared.adapters.providers.parse_payload``).
    overnight_gap_sd
        Log-sd of the gap between a session's close and the next open.

    Returns
    -------
    tuple of ReplaySession
        Held to expiry; settlement is the mean of the expiry day's last 30 simulated minutes.
    """
    out: list[ReplaySession] = []
    for spec in specs:
        sim = simulator(spec.symbol, spec.day, seed=spec.seed, calendar=calendar, n_expiries=1)
        i = min(spec.entry_minute, sim.minutes() - 1)
        snap = parse(sim.payload_at(i))
        expiry = sim.expiries[0]
        t = float(sim.year_fractions(i)[0])
        path = np.asarray(sim.spot_path())
        day, k = spec.day, 0
        while day < expiry:
            k += 1
            day = calendar.next_trading_day(day)
            state = np.random.SeedSequence([spec.seed, spec.day.toordinal(), k]).generate_state(2)
            gap = overnight_gap_sd * np.random.default_rng(state).standard_normal()
            nxt = simulator(spec.symbol, day, seed=int(state[0] % (2**31 - 1)),
                            calendar=calendar, spot0=float(path[-1] * math.exp(gap)),
                            n_expiries=1)
            path = np.asarray(nxt.spot_path())
        settlement = float(np.mean(path[-_SETTLEMENT_MINUTES:]))
        out.append(ReplaySession(
            session_id=spec.session_id, source="simulated", entry=snap, expiry=expiry,
            t_years=t, lot_size=int(sim.lot_sizes[expiry]), settlement=settlement,
            previous_close=float(sim.prev_close), rate=float(sim.rate)))
    return tuple(out)


# --------------------------------------------------------------------------- splits


def group_splits(groups: npt.ArrayLike, n_splits: int = 5, *,
                 walk_forward: bool = False) -> tuple[Split, ...]:
    """Splits that keep every group (session) whole.

    The distinct groups, in order of first appearance (time order when the sessions are),
    are cut into ``n_splits`` contiguous blocks. k-fold (default): each block is tested
    once, trained on the others. ``walk_forward=True``: block ``b`` (from the second) is
    tested on a model trained on blocks ``< b`` only. Nothing is shuffled.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError("groups must be a non-empty 1-D array")
    _, first = np.unique(g, return_index=True)
    order = g[np.sort(first)]
    if order.size < 2:
        raise ValueError("need at least two groups to split")
    k = min(int(n_splits), int(order.size))
    if k < 2:
        raise ValueError("n_splits must be at least 2")
    blocks = np.array_split(order, k)
    in_block = [np.isin(g, b) for b in blocks]
    splits = []
    for b in range(k):
        if walk_forward:
            if b == 0:
                continue
            train = np.flatnonzero(np.logical_or.reduce(in_block[:b]))
        else:
            train = np.flatnonzero(~in_block[b])
        splits.append(Split(train=train, test=np.flatnonzero(in_block[b])))
    return tuple(splits)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class WingChoice:
    """The model's wing for one snapshot.

    Attributes
    ----------
    distance : float
        The chosen wing, index points.
    predicted_return : float
        Its predicted net return (decimal of the capital at risk).
    all_predictions : tuple of (float, float)
        ``(distance, predicted net return)`` of every candidate, by distance.
    """

    distance: float
    predicted_return: float
    all_predictions: tuple[tuple[float, float], ...]

    def as_dict(self) -> dict[float, float]:
        return dict(self.all_predictions)


def _matrix(X: WingFeatures | npt.ArrayLike, names: Sequence[str] | None
            ) -> tuple[Floats, tuple[str, ...]]:
    if isinstance(X, WingFeatures):
        if names is not None and tuple(names) != X.names:
            raise ValueError("feature_names differ from the table's names")
        return np.asarray(X.values, dtype=float), X.names
    values = np.asarray(X, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {values.shape}")
    cols = tuple(names) if names is not None else tuple(f"f{i}" for i in range(values.shape[1]))
    if len(cols) != values.shape[1]:
        raise ValueError(f"{len(cols)} feature names for {values.shape[1]} columns")
    return values, cols


def _train(values: Floats, y: Floats, names: tuple[str, ...], params: Mapping[str, Any],
           rounds: int) -> Any:
    import xgboost

    dm = xgboost.DMatrix(values, label=y, feature_names=list(names), nthread=1)
    return xgboost.train(dict(params), dm, num_boost_round=rounds)


def _predict(booster: Any, values: Floats, names: tuple[str, ...]) -> Floats:
    import xgboost

    dm = xgboost.DMatrix(values, feature_names=list(names), nthread=1)
    return np.asarray(booster.predict(dm), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class WingFit:
    """A trained wing model.

    Attributes
    ----------
    booster : xgboost.Booster
        Trained on every row.
    feature_names : tuple of str
        Column order the booster expects.
    params : Mapping
        The XGBoost parameters used.
    num_boost_round : int
    n_train, n_groups : int
        Rows and sessions trained on.
    oos_prediction : numpy.ndarray of float64, optional
        Out-of-sample prediction of every training row from the grouped split (NaN for
        rows never tested: the first block of a walk-forward); None after :meth:`from_bytes`.
    fold : numpy.ndarray of int64, optional
        The split that tested each row (-1: never tested).
    """

    booster: Any
    feature_names: tuple[str, ...]
    params: Mapping[str, Any]
    num_boost_round: int
    n_train: int
    n_groups: int
    oos_prediction: Floats | None = None
    fold: Ints | None = None

    def predict(self, X: WingFeatures | npt.ArrayLike) -> Floats:
        """Predicted net return of each row (decimal of the capital at risk)."""
        values, names = _matrix(X, self.feature_names if not isinstance(X, WingFeatures)
                                else None)
        if names != self.feature_names:
            raise ValueError("the features' names differ from the model's")
        return _predict(self.booster, values, names)

    def best_wing(self, features: WingFeatures | npt.ArrayLike, *,
                  distance: npt.ArrayLike | None = None) -> WingChoice:
        """The candidate with the highest predicted net return (ties: the narrower wing).

        ``features`` are the candidates of *one* entry snapshot (e.g.
        ``candidate_features(...).features``); a plain matrix needs ``distance``.
        """
        if isinstance(features, WingFeatures):
            if np.unique(features.groups).size > 1:
                raise ValueError("best_wing takes the candidates of one snapshot")
            dist = features.distance
        else:
            if distance is None:
                raise ValueError("a plain feature matrix needs distance=")
            dist = np.asarray(distance, dtype=float)
        if dist.size == 0:
            raise ValueError("no candidate to choose from")
        if np.unique(dist).size != dist.size:
            raise ValueError("candidate distances must be distinct")
        pred = self.predict(features)
        if pred.shape != dist.shape:
            raise ValueError("one distance per feature row is needed")
        order = np.argsort(dist, kind="stable")
        dist, pred = dist[order], pred[order]
        best = int(np.argmax(pred))
        return WingChoice(distance=float(dist[best]), predicted_return=float(pred[best]),
                          all_predictions=tuple(zip(dist.tolist(), pred.tolist(), strict=True)))

    def to_bytes(self) -> bytes:
        """UTF-8 JSON: the booster (``save_raw("json")``) and the metadata."""
        payload = {
            "format": SERIAL_FORMAT,
            "feature_names": list(self.feature_names),
            "params": dict(self.params),
            "num_boost_round": self.num_boost_round,
            "n_train": self.n_train,
            "n_groups": self.n_groups,
            "booster": bytes(self.booster.save_raw("json")).decode("utf-8"),
        }
        return json.dumps(payload, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> WingFit:
        """The inverse of :meth:`to_bytes` (predictions identical to the saved model's)."""
        import xgboost

        payload = read_payload(data, SERIAL_FORMAT, "wing model")
        booster = xgboost.Booster()
        booster.load_model(bytearray(payload["booster"].encode("utf-8")))
        names = tuple(payload["feature_names"])
        if booster.feature_names is not None and tuple(booster.feature_names) != names:
            raise ValueError("feature names of the payload and of its booster differ")
        return cls(booster=booster, feature_names=names,
                   params=MappingProxyType(dict(payload["params"])),
                   num_boost_round=int(payload["num_boost_round"]),
                   n_train=int(payload["n_train"]), n_groups=int(payload["n_groups"]))


@dataclass(frozen=True)
class WingModel:
    """XGBoost regression of the net return on the wing features (module docstring).

    Attributes
    ----------
    params : Mapping
        Merged over :data:`DEFAULT_PARAMS`.
    num_boost_round : int
    n_splits : int
        Blocks of sessions of the out-of-sample split.
    walk_forward : bool
        Walk-forward (train on earlier sessions only) instead of grouped k-fold.
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    num_boost_round: int = DEFAULT_ROUNDS
    n_splits: int = 5
    walk_forward: bool = False

    def merged_params(self) -> dict[str, Any]:
        return {**DEFAULT_PARAMS, **dict(self.params)}

    def fit(self, X: WingFeatures | npt.ArrayLike, y: npt.ArrayLike,
            groups: npt.ArrayLike | None = None, *,
            feature_names: Sequence[str] | None = None) -> WingFit:
        """Out-of-sample predictions by whole sessions, then the model on every row.

        Parameters
        ----------
        X
            A :class:`WingFeatures` or an ``(n, p)`` matrix (with ``feature_names``).
        y
            Net returns, decimals, shape ``(n,)``, finite.
        groups
            Session of each row (default: ``X.groups``); rows of a group are never split.
        """
        values, names = _matrix(X, feature_names)
        target = np.asarray(y, dtype=float)
        if target.shape != (values.shape[0],):
            raise ValueError(f"y has shape {target.shape}, expected ({values.shape[0]},)")
        if not np.isfinite(target).all():
            raise ValueError("y must be finite")
        if groups is None:
            if not isinstance(X, WingFeatures):
                raise ValueError("a plain matrix needs groups")
            groups = X.groups
        g = np.asarray(groups)
        if g.shape != target.shape:
            raise ValueError("groups need one entry per row")
        params = self.merged_params()
        oos = np.full(target.shape, np.nan)
        fold = np.full(target.shape, -1, dtype=np.int64)
        for f, split in enumerate(group_splits(g, self.n_splits,
                                               walk_forward=self.walk_forward)):
            booster = _train(values[split.train], target[split.train], names, params,
                             self.num_boost_round)
            oos[split.test] = _predict(booster, values[split.test], names)
            fold[split.test] = f
        booster = _train(values, target, names, params, self.num_boost_round)
        oos.setflags(write=False)
        fold.setflags(write=False)
        return WingFit(booster=booster, feature_names=names,
                       params=MappingProxyType(params), num_boost_round=self.num_boost_round,
                       n_train=int(target.size), n_groups=int(np.unique(g).size),
                       oos_prediction=oos, fold=fold)


# --------------------------------------------------------------------------- evaluation


def _ranks(a: Floats) -> Floats:
    """Ranks 1..n with ties averaged."""
    order = np.argsort(a, kind="stable")
    ranks = np.empty(a.size)
    sorted_a = a[order]
    i = 0
    while i < a.size:
        j = i
        while j + 1 < a.size and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman rank correlation (ties averaged); NaN when either side is constant."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("spearman needs two 1-D arrays of one length")
    if x.size < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / den) if den > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class WingReport:
    """Out-of-sample scores of wing choices (returns are net, decimals of capital at risk).

    Attributes
    ----------
    n_rows, n_sessions : int
        Rows and sessions with an OOS prediction.
    n_rank_sessions : int
        Sessions with at least 3 candidates and non-constant predictions and outcomes.
    rank_corr_mean, rank_corr_median, rank_corr_positive : float
        Within-session Spearman correlation of predicted and realised net return across
        the candidates: mean, median, share of sessions above 0.
    n_compared : int
        Sessions offering the baseline wing (the comparison below is on these).
    model_mean, baseline_mean, widest_mean, hindsight_mean : float
        Mean realised net return of the model's choice, of the baseline wing, of the
        widest listed candidate and of the best candidate in hindsight.
    model_minus_baseline, model_minus_baseline_se : float
        Mean paired difference and its standard error across sessions.
    baseline : float
        The baseline wing, index points.
    fixed : tuple of (float, float, int)
        ``(wing, mean realised net return, sessions)`` of always choosing that wing,
        over the sessions offering it.
    choices : tuple of (float, int)
        How often the model chose each wing (compared sessions).
    """

    n_rows: int
    n_sessions: int
    n_rank_sessions: int
    rank_corr_mean: float
    rank_corr_median: float
    rank_corr_positive: float
    n_compared: int
    model_mean: float
    baseline_mean: float
    widest_mean: float
    hindsight_mean: float
    model_minus_baseline: float
    model_minus_baseline_se: float
    baseline: float
    fixed: tuple[tuple[float, float, int], ...]
    choices: tuple[tuple[float, int], ...]


def evaluate_wings(realised: npt.ArrayLike, predicted: npt.ArrayLike, distance: npt.ArrayLike,
                   groups: npt.ArrayLike, *, baseline: float = BASELINE_WING) -> WingReport:
    """Score out-of-sample predictions session by session (see :class:`WingReport`).

    Rows whose prediction is NaN (never tested) are left out.
    """
    y = np.asarray(realised, dtype=float)
    p = np.asarray(predicted, dtype=float)
    d = np.asarray(distance, dtype=float)
    g = np.asarray(groups)
    if not (y.shape == p.shape == d.shape == g.shape) or y.ndim != 1:
        raise ValueError("realised, predicted, distance and groups need one shape (n,)")
    ok = np.isfinite(p) & np.isfinite(y)
    y, p, d, g = y[ok], p[ok], d[ok], g[ok]
    corrs: list[float] = []
    model, base, widest, best = [], [], [], []
    chosen: dict[float, int] = {}
    by_wing: dict[float, list[float]] = {}
    sessions = np.unique(g)
    for s in sessions:
        m = g == s
        ys, ps, ds = y[m], p[m], d[m]
        for w, v in zip(ds.tolist(), ys.tolist(), strict=True):
            by_wing.setdefault(w, []).append(v)
        if ys.size >= 3:
            c = spearman(ps, ys)
            if math.isfinite(c):
                corrs.append(c)
        at = np.flatnonzero(ds == baseline)
        if at.size == 0:
            continue
        order = np.argsort(ds, kind="stable")  # ties of the prediction: the narrower wing
        pick = order[int(np.argmax(ps[order]))]
        model.append(float(ys[pick]))
        base.append(float(ys[at[0]]))
        widest.append(float(ys[int(np.argmax(ds))]))
        best.append(float(ys.max()))
        chosen[float(ds[pick])] = chosen.get(float(ds[pick]), 0) + 1
    c = np.array(corrs)
    diff = np.array(model) - np.array(base)

    def mean(a: Sequence[float] | Floats) -> float:
        return float(np.mean(a)) if len(a) else float("nan")

    se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else float("nan")
    return WingReport(
        n_rows=int(y.size), n_sessions=int(sessions.size), n_rank_sessions=int(c.size),
        rank_corr_mean=mean(c), rank_corr_median=float(np.median(c)) if c.size else math.nan,
        rank_corr_positive=mean(c > 0) if c.size else math.nan, n_compared=len(model),
        model_mean=mean(model), baseline_mean=mean(base), widest_mean=mean(widest),
        hindsight_mean=mean(best),
        model_minus_baseline=mean(diff), model_minus_baseline_se=se, baseline=float(baseline),
        fixed=tuple((w, mean(v), len(v)) for w, v in sorted(by_wing.items())),
        choices=tuple(sorted(chosen.items())))

