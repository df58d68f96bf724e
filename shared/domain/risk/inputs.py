"""Inputs of the risk castle: frozen values the service loads once and passes in.

Nothing here reads a clock, a file, the environment or a database. Every input is a frozen
dataclass (or a frozen pydantic model where it is loaded from JSON settings) that validates
itself on construction, so a wall never has to defend against a malformed input.

Units
-----
* Money is in rupees (``float``). Premiums are rupees per unit of the underlying, as in
  :mod:`shared.domain.black76`; quantities are *units* (lots times the lot size) unless a
  name says ``lots``.
* Fractions of capital (``*_pct``) are decimals: 0.02 is 2 %.
* Volatilities are annualised decimals, times to expiry are ACT/365 years.
* Datetimes are timezone-aware.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal
from uuid import UUID

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import KillSwitchTrippedV1, NewsEventV1, OptionType

__all__ = [
    "NEWS_ACTIONS",
    "CorrelationMatrix",
    "LegQuote",
    "MarketView",
    "ModelFreshness",
    "NewsAction",
    "NewsItem",
    "NewsState",
    "Portfolio",
    "Position",
    "QuoteKey",
    "Scope",
    "SwitchStates",
    "TenantPolicy",
    "TrippedSwitch",
]


def _aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


# --------------------------------------------------------------------------- market


QuoteKey = tuple[date, float, str]
"""``(expiry, strike, "CE" | "PE")``; the strike as a float (``Decimal`` strikes of a
:class:`~shared.contracts.Leg` are converted with ``float``)."""


@dataclass(frozen=True, slots=True)
class LegQuote:
    """The latest quote and analytics of one option contract.

    Attributes
    ----------
    expiry, strike, option_type
        The contract. ``strike`` in rupees.
    bid, ask
        Best bid and offer, rupees per unit; NaN when that side is missing (the feed's zero).
    iv
        Black-76 implied volatility, annualised decimal (NaN when the chain analytics could
        not solve it).
    forward
        Forward of the contract's expiry (put-call parity), rupees.
    t
        Time to expiry, ACT/365 years.
    lot_size
        The exchange's market lot of this contract, units.
    """

    expiry: date
    strike: float
    option_type: OptionType
    bid: float
    ask: float
    iv: float
    forward: float
    t: float
    lot_size: int

    @property
    def key(self) -> QuoteKey:
        return (self.expiry, float(self.strike), str(OptionType(self.option_type)))

    @property
    def is_call(self) -> bool:
        return OptionType(self.option_type) is OptionType.CE


@dataclass(frozen=True, slots=True)
class MarketView:
    """The latest analysed snapshot of one underlying, as the walls need it.

    Attributes
    ----------
    symbol
        Underlying, e.g. ``NIFTY``.
    asof
        When the snapshot was taken (aware); the stale-data switch compares it with ``now``.
    spot
        Underlying index level, rupees (> 0).
    quotes
        One :class:`LegQuote` per contract; looked up by ``(expiry, strike, CE/PE)``.
    rate
        Continuously compounded risk-free rate used for repricing, decimal (dated data).
    source
        The data source of the snapshot (``nse``, ``upstox``, ``simulator`` ...); the
        broker/source kill switch is keyed on it.
    exchange
        The exchange (``NSE``); the exchange kill switch is keyed on it.
    snapshot_id
        The stored snapshot, for the audit trail.
    """

    symbol: str
    asof: datetime
    spot: float
    quotes: tuple[LegQuote, ...]
    rate: float
    source: str = "unknown"
    exchange: str = "NSE"
    snapshot_id: UUID | None = None
    _index: Mapping[QuoteKey, LegQuote] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _aware("asof", self.asof)
        if not (self.spot > 0 and math.isfinite(self.spot)):
            raise ValueError(f"spot must be a positive finite price, got {self.spot!r}")
        _finite("rate", self.rate)
        index: dict[QuoteKey, LegQuote] = {}
        for q in self.quotes:
            if q.key in index:
                raise ValueError(f"duplicate quote for {q.key}")
            index[q.key] = q
        object.__setattr__(self, "quotes", tuple(self.quotes))
        object.__setattr__(self, "_index", MappingProxyType(index))

    def quote(self, expiry: date, strike: float, option_type: str) -> LegQuote | None:
        """The quote of one contract, or None when the snapshot does not list it."""
        return self._index.get((expiry, float(strike), str(option_type)))


# --------------------------------------------------------------------------- news


NewsAction = Literal["proceed", "reduce_25", "reduce_50", "blackout"]
NEWS_ACTIONS: tuple[NewsAction, ...] = ("proceed", "reduce_25", "reduce_50", "blackout")
"""News actions in increasing severity."""


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A classified news item or scheduled event (the fields of ``NewsEventV1`` the gate uses).

    The item is *active* for ``symbol`` at ``now`` when
    ``occurs_at - window <= now <= occurs_at + window`` and it names the symbol or names no
    symbol at all (market-wide). The symmetric window covers both a scheduled event (before
    and after the announcement) and news that has already happened.
    """

    event_id: str
    title: str
    occurs_at: datetime
    window_minutes: int
    action: NewsAction
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _aware("occurs_at", self.occurs_at)
        if self.action not in NEWS_ACTIONS:
            raise ValueError(f"unknown news action {self.action!r}; known: {NEWS_ACTIONS}")
        if self.window_minutes < 0:
            raise ValueError("window_minutes must be >= 0")

    @classmethod
    def from_event(cls, event: NewsEventV1) -> NewsItem:
        return cls(event_id=str(event.event_id), title=event.title, occurs_at=event.occurs_at,
                   window_minutes=event.window_minutes, action=event.action,
                   symbols=tuple(event.symbols))

    def active(self, now: datetime, symbol: str) -> bool:
        if self.symbols and symbol not in self.symbols:
            return False
        return abs(now - self.occurs_at) <= timedelta(minutes=self.window_minutes)


@dataclass(frozen=True, slots=True)
class NewsState:
    """The news and scheduled events the service read for the proposal's symbol."""

    events: tuple[NewsItem, ...] = ()

    def gate(self, now: datetime, symbol: str) -> tuple[NewsAction, NewsItem | None]:
        """The most severe active action and the item that sets it (ties: the earliest)."""
        worst: NewsAction = "proceed"
        culprit: NewsItem | None = None
        rank = 0
        for item in self.events:
            if item.action == "proceed" or not item.active(now, symbol):
                continue
            r = NEWS_ACTIONS.index(item.action)
            if r > rank:
                worst, culprit, rank = item.action, item, r
        return worst, culprit


# --------------------------------------------------------------------------- policy


class TenantPolicy(BaseModel):
    """Per-tenant risk limits; loaded from the tenant's settings JSON (``risk`` key).

    Every percentage is a fraction of ``capital``. The defaults are deliberately
    conservative for a small retail options book.

    Attributes
    ----------
    capital
        Trading capital the limits refer to, rupees (required).
    max_position_pct
        Capital one position may tie up (estimated margin plus premium paid). Default 0.25.
    max_open_positions
        Concurrent open positions, the new one included. Default 5.
    max_symbol_exposure_pct
        Capital tied up in one underlying, the new position included. Default 0.50.
    max_loss_per_trade_pct
        Worst loss of one trade (see :class:`~shared.domain.risk.position.PositionMath`
        ``trade_max_loss``). Default 0.02.
    max_loss_per_trade
        Optional absolute cap on the same worst loss, rupees. Default None (no cap).
    margin_buffer
        Headroom demanded over the estimated margin: the free capital must cover
        ``margin * (1 + margin_buffer)``. Default 0.30.
    max_margin_utilisation
        Share of equity that open margins may use, after the trade (margin wall) and right
        now (margin-utilisation kill switch). Default 0.80.
    daily_loss_limit_pct
        The tenant's loss today (realised plus open MTM) that trips the daily-loss switch.
        Default 0.03.
    strategy_daily_loss_pct
        The same for one strategy (per-strategy switch). Default 0.015.
    capital_floor_pct
        Equity below ``capital_floor_pct * capital`` trips the capital-floor switch.
        Default 0.80.
    max_correlated_exposure_pct
        Correlation-weighted exposure of the book including the new position
        (correlation wall). Default 0.60.
    max_expiry_concentration_pct
        Exposure on one underlying's single expiry, new position included. Default 0.40.
    max_cluster_exposure_pct
        Exposure held in a cluster of distinct, highly correlated underlyings that trips the
        correlation-cluster switch. Default 0.40.
    max_tail_loss_pct
        Loss of the whole (hedged) structure in the extreme scenarios (tail-hedge wall).
        Default 0.05.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    capital: float = Field(gt=0)
    max_position_pct: float = Field(0.25, gt=0, le=1)
    max_open_positions: int = Field(5, ge=1)
    max_symbol_exposure_pct: float = Field(0.50, gt=0, le=1)
    max_loss_per_trade_pct: float = Field(0.02, gt=0, le=1)
    max_loss_per_trade: float | None = Field(None, gt=0)
    margin_buffer: float = Field(0.30, ge=0)
    max_margin_utilisation: float = Field(0.80, gt=0, le=1)
    daily_loss_limit_pct: float = Field(0.03, gt=0, le=1)
    strategy_daily_loss_pct: float = Field(0.015, gt=0, le=1)
    capital_floor_pct: float = Field(0.80, ge=0, le=1)
    max_correlated_exposure_pct: float = Field(0.60, gt=0)
    max_expiry_concentration_pct: float = Field(0.40, gt=0, le=1)
    max_cluster_exposure_pct: float = Field(0.40, gt=0)
    max_tail_loss_pct: float = Field(0.05, gt=0, le=1)


# --------------------------------------------------------------------------- portfolio


@dataclass(frozen=True, eq=False)
class CorrelationMatrix:
    """Correlations of underlying returns, ``matrix[i, j]`` between ``symbols[i]`` and ``[j]``.

    Build it from a matrix, or from aligned return series with :meth:`from_returns`.
    """

    symbols: tuple[str, ...]
    matrix: npt.NDArray[np.float64]
    _pos: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        m = np.array(self.matrix, dtype=np.float64)
        k = len(self.symbols)
        if m.shape != (k, k):
            raise ValueError(f"correlation matrix shape {m.shape} != ({k}, {k})")
        if len(set(self.symbols)) != k:
            raise ValueError("duplicate symbols in the correlation matrix")
        if not np.isfinite(m).all():
            raise ValueError("correlation matrix has non-finite entries")
        if not np.allclose(m, m.T, atol=1e-9) or not np.allclose(np.diag(m), 1.0, atol=1e-9):
            raise ValueError("correlation matrix must be symmetric with a unit diagonal")
        if np.abs(m).max(initial=0.0) > 1.0 + 1e-9:
            raise ValueError("correlations must lie in [-1, 1]")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "_pos", MappingProxyType({s: i for i, s in enumerate(self.symbols)}))

    @classmethod
    def from_returns(cls, symbols: Iterable[str], returns: npt.ArrayLike,
                     min_observations: int = 20) -> CorrelationMatrix:
        """Pearson correlations of aligned return series, shape ``(observations, symbols)``."""
        syms = tuple(symbols)
        r = np.asarray(returns, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] != len(syms):
            raise ValueError(f"returns must have shape (observations, {len(syms)}), got {r.shape}")
        if r.shape[0] < min_observations:
            raise ValueError(f"{r.shape[0]} observations < {min_observations}")
        if not np.isfinite(r).all():
            raise ValueError("returns have non-finite values")
        if (r.std(axis=0) == 0).any():
            raise ValueError("a return series is constant: its correlation is undefined")
        m = np.corrcoef(r, rowvar=False).reshape(len(syms), len(syms))
        m = np.clip((m + m.T) / 2, -1.0, 1.0)
        np.fill_diagonal(m, 1.0)
        return cls(syms, m)

    def rho(self, a: str, b: str) -> float | None:
        """The correlation of two symbols: 1.0 for the same symbol, None when unknown."""
        if a == b:
            return 1.0
        i, j = self._pos.get(a), self._pos.get(b)
        if i is None or j is None:
            return None
        return float(self.matrix[i, j])


@dataclass(frozen=True, slots=True)
class Position:
    """One open (paper or live) position of the tenant.

    Attributes
    ----------
    margin
        Capital the position ties up: blocked margin plus premium paid, rupees (>= 0). This
        is its *exposure* for the policy, correlation and concentration limits.
    mtm_pnl
        Open (unrealised) P&L at the latest mark, rupees (since entry).
    mtm_pnl_today
        The part of it made today (IST): ``mtm_pnl`` minus the P&L at the last mark before
        today's session. None: all of ``mtm_pnl`` (opened today, or no earlier mark).
    expiry
        The position's nearest expiry (expiry concentration); None when unknown.
    """

    position_id: str
    symbol: str
    margin: float
    mtm_pnl: float = 0.0
    strategy: str = ""
    expiry: date | None = None
    structure: str = ""
    mtm_pnl_today: float | None = None

    def __post_init__(self) -> None:
        _finite("margin", self.margin)
        _finite("mtm_pnl", self.mtm_pnl)
        if self.mtm_pnl_today is not None:
            _finite("mtm_pnl_today", self.mtm_pnl_today)
        if self.margin < 0:
            raise ValueError(f"position {self.position_id}: margin must be >= 0")

    @property
    def pnl_today(self) -> float:
        """Open P&L made today, rupees."""
        return self.mtm_pnl if self.mtm_pnl_today is None else self.mtm_pnl_today


@dataclass(frozen=True, eq=False)
class Portfolio:
    """The tenant's open book and today's P&L.

    Attributes
    ----------
    positions
        Open positions.
    realized_pnl_today
        P&L realised today, rupees.
    realized_pnl_today_by_strategy
        The same per strategy name (per-strategy switch).
    equity
        Current account value (capital plus realised P&L plus open MTM), rupees. None: the
        policy's capital (the service should pass the real figure).
    correlation
        Correlations between underlyings; None: every pair of distinct symbols is treated
        as perfectly correlated (conservative).

    Derived on construction: ``used_margin``, ``mtm_pnl`` (open P&L since entry),
    ``mtm_pnl_today`` (the part made today), ``exposure_by_symbol``,
    ``exposure_by_symbol_expiry`` and ``mtm_today_by_strategy``.
    """

    positions: tuple[Position, ...] = ()
    realized_pnl_today: float = 0.0
    realized_pnl_today_by_strategy: Mapping[str, float] = field(default_factory=dict)
    equity: float | None = None
    correlation: CorrelationMatrix | None = None
    used_margin: float = field(init=False)
    mtm_pnl: float = field(init=False)
    exposure_by_symbol: Mapping[str, float] = field(init=False, repr=False)
    exposure_by_symbol_expiry: Mapping[tuple[str, date | None], float] = field(
        init=False, repr=False)
    mtm_pnl_today: float = field(init=False)
    mtm_today_by_strategy: Mapping[str, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _finite("realized_pnl_today", self.realized_pnl_today)
        if self.equity is not None:
            _finite("equity", self.equity)
        for k, v in self.realized_pnl_today_by_strategy.items():
            _finite(f"realized_pnl_today_by_strategy[{k}]", v)
        by_sym: dict[str, float] = defaultdict(float)
        by_exp: dict[tuple[str, date | None], float] = defaultdict(float)
        by_strat: dict[str, float] = defaultdict(float)
        for p in self.positions:
            by_sym[p.symbol] += p.margin
            by_exp[(p.symbol, p.expiry)] += p.margin
            by_strat[p.strategy] += p.pnl_today
        put = object.__setattr__
        put(self, "positions", tuple(self.positions))
        put(self, "realized_pnl_today_by_strategy",
            MappingProxyType(dict(self.realized_pnl_today_by_strategy)))
        put(self, "used_margin", float(sum(p.margin for p in self.positions)))
        put(self, "mtm_pnl", float(sum(p.mtm_pnl for p in self.positions)))
        put(self, "exposure_by_symbol", MappingProxyType(dict(by_sym)))
        put(self, "exposure_by_symbol_expiry", MappingProxyType(dict(by_exp)))
        put(self, "mtm_pnl_today", float(sum(p.pnl_today for p in self.positions)))
        put(self, "mtm_today_by_strategy", MappingProxyType(dict(by_strat)))

    def rho(self, a: str, b: str) -> float | None:
        """Correlation of two underlyings (1.0 for the same one, None when unknown)."""
        if a == b:
            return 1.0
        return None if self.correlation is None else self.correlation.rho(a, b)


# --------------------------------------------------------------------------- switches


class Scope(StrEnum):
    """What a kill-switch row applies to; ``scope_key`` names the instance."""

    GLOBAL = "global"  # everything (master kill); no key
    TENANT = "tenant"  # key: the tenant id
    STRATEGY = "strategy"  # key: the strategy name
    SYMBOL = "symbol"  # key: the underlying
    SOURCE = "source"  # key: the market-data source / broker
    EXCHANGE = "exchange"  # key: the exchange
    MODEL = "model"  # key: the model type


@dataclass(frozen=True, slots=True)
class TrippedSwitch:
    """A persisted, currently tripped kill switch (an input: the service reads them).

    A row with a ``tenant_id`` applies to that tenant only; without one, to every tenant.
    """

    switch: str
    scope: str
    scope_key: str | None = None
    reason: str = ""
    actor: str = "auto"
    at: datetime | None = None
    tenant_id: UUID | None = None

    @classmethod
    def from_event(cls, event: KillSwitchTrippedV1) -> TrippedSwitch:
        return cls(switch=event.switch, scope=event.scope, scope_key=event.scope_key,
                   reason=event.reason, actor=event.actor, at=event.at,
                   tenant_id=event.tenant_id)


@dataclass(frozen=True, eq=False)
class SwitchStates:
    """The set of tripped switches, indexed by switch name."""

    tripped: tuple[TrippedSwitch, ...] = ()
    _by_switch: Mapping[str, tuple[TrippedSwitch, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by: dict[str, list[TrippedSwitch]] = defaultdict(list)
        for row in self.tripped:
            by[row.switch].append(row)
        object.__setattr__(self, "tripped", tuple(self.tripped))
        object.__setattr__(self, "_by_switch", MappingProxyType({k: tuple(v) for k, v in by.items()}))

    def for_switch(self, name: str) -> tuple[TrippedSwitch, ...]:
        return self._by_switch.get(name, ())

    def has(self, switch: str, scope: str, scope_key: str | None, tenant_id: UUID | None) -> bool:
        """Whether exactly this trip is already persisted (so it need not be reported)."""
        return any(r.scope == scope and same_key(scope, r.scope_key, scope_key)
                   and (r.tenant_id is None or r.tenant_id == tenant_id)
                   for r in self.for_switch(switch))


_CASELESS_SCOPES = frozenset({"symbol", "source", "exchange"})


def same_key(scope: str, a: str | None, b: str | None) -> bool:
    """Whether two scope keys name the same instance: symbols, sources and exchanges compare
    case-insensitively (``NIFTY`` = ``nifty``), other keys exactly; None and ``""`` are the
    whole scope."""
    a, b = a or None, b or None
    if a is None or b is None:
        return a is b
    return a.casefold() == b.casefold() if scope in _CASELESS_SCOPES else a == b


@dataclass(frozen=True, slots=True)
class ModelFreshness:
    """When a model the decision relies on was last trained, how often it should be, and
    what retrain's health check flagged on it (stale, drifted inputs), if anything."""

    model_type: str
    last_trained_at: datetime | None
    cadence: timedelta
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.last_trained_at is not None:
            _aware("last_trained_at", self.last_trained_at)
        if self.cadence <= timedelta(0):
            raise ValueError(f"model {self.model_type}: cadence must be positive")
