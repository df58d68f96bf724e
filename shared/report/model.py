"""What a session report shows, as plain immutable values.

Both producers fill the same :class:`SessionReport`: ``make run`` (``local.session``) reads it
back from the local cloud's database after the session, and ``qs replay``
(:mod:`shared.replay`) builds it in process. The renderer (:mod:`shared.report.html`) turns
it into one self-contained HTML page. Nothing here does I/O.

Conventions: times are timezone-aware (rendered in IST); money is in rupees; P&L is after
costs; implied volatilities are annualised decimals (0.14 = 14%); GEX is in rupees of
dealer gamma exposure per 1% move of the underlying, as ``shared.domain.analytics`` defines it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

__all__ = [
    "ApprovedSignal", "GateFiring", "GexProfile", "HopLatency", "LegView", "ModelUse",
    "PnlPoint", "SessionReport", "SignalMark", "SmileSnapshot", "SpotPoint", "StrategyStats",
    "TenantPnl",
]


@dataclass(frozen=True, slots=True)
class SpotPoint:
    at: datetime
    spot: float


@dataclass(frozen=True, slots=True)
class SignalMark:
    """A decision on the spot path: ``outcome`` is ``approved``, ``blocked`` or ``no_trade``;
    ``wall`` names the risk wall (or kill switch) that blocked it."""

    at: datetime
    tenant: str
    structure: str | None
    outcome: str
    wall: str | None = None


@dataclass(frozen=True, slots=True)
class SmileSnapshot:
    """One expiry's implied-volatility smile at one time."""

    at: datetime
    expiry: date
    forward: float
    strikes: tuple[float, ...]
    ivs: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class GexProfile:
    """Dealer gamma exposure by strike at one time (all expiries summed)."""

    at: datetime
    spot: float
    strikes: tuple[float, ...]
    gex: tuple[float, ...]
    flip: float | None = None


@dataclass(frozen=True, slots=True)
class LegView:
    side: str  # "BUY" | "SELL"
    option_type: str  # "CE" | "PE"
    strike: float
    expiry: date
    lots: int
    price: float  # premium per unit, rupees


@dataclass(frozen=True, slots=True)
class ApprovedSignal:
    """An approved signal with what a reader needs to judge it."""

    at: datetime
    tenant: str
    symbol: str
    structure: str
    legs: tuple[LegView, ...]
    lot_size: int
    spot: float
    max_profit: float
    max_loss: float
    costs: float  # round-trip Indian charges and slippage, rupees
    net_ev: float  # expected value after costs, rupees
    paper: bool  # placed under the dry-run lock
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GateFiring:
    """How often a wall or kill switch blocked (or reduced) a tenant's proposals."""

    tenant: str
    wall: str
    blocked: int
    reduced: int = 0


@dataclass(frozen=True, slots=True)
class PnlPoint:
    at: datetime
    pnl: float  # cumulative paper P&L after costs, rupees


@dataclass(frozen=True, slots=True)
class TenantPnl:
    tenant: str
    capital: float
    dry_run: bool
    points: tuple[PnlPoint, ...]


@dataclass(frozen=True, slots=True)
class HopLatency:
    """Latency of one hop (e.g. ``snapshot → decision``) over the session, milliseconds."""

    hop: str
    count: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class ModelUse:
    model_type: str
    version: int | None  # None: no production model, so the signal sat out
    note: str = ""


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """Per-strategy performance of a replay (``qs replay``): Sharpe is per-trade, not
    annualised; ``psr`` is the Probabilistic Sharpe Ratio against a zero benchmark and
    ``dsr`` the Deflated Sharpe Ratio given the number of strategies tried."""

    strategy: str
    trades: int
    pnl: float
    sharpe: float
    psr: float
    dsr: float


@dataclass(frozen=True, slots=True)
class SessionReport:
    """Everything the report page shows about one replayed session (or several days)."""

    title: str
    symbol: str
    session_date: date
    source: str  # "simulator:seed=1234", "replay:../shared/fixtures/...", ...
    generated_at: datetime
    spot_path: tuple[SpotPoint, ...]
    signals: tuple[SignalMark, ...] = ()
    smiles: tuple[SmileSnapshot, ...] = ()
    gex: tuple[GexProfile, ...] = ()
    approved: tuple[ApprovedSignal, ...] = ()
    gate_firings: tuple[GateFiring, ...] = ()
    pnl: tuple[TenantPnl, ...] = ()
    latencies: tuple[HopLatency, ...] = ()
    models: tuple[ModelUse, ...] = ()
    strategies: tuple[StrategyStats, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)  # snapshots, proposals, ...
    notes: tuple[str, ...] = ()
