"""The one input of every wall and kill switch: :class:`RiskContext`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from uuid import UUID

from shared.contracts import DecisionProposedV1
from shared.domain.risk.inputs import (
    MarketView,
    ModelFreshness,
    NewsState,
    Portfolio,
    SwitchStates,
    TenantPolicy,
)
from shared.domain.risk.position import PositionMath, ScanParameters, position_math

__all__ = ["RiskContext"]


@dataclass(frozen=True, eq=False)
class RiskContext:
    """Everything the castle decides on, for one proposal, at one instant.

    Attributes
    ----------
    now
        The decision time (aware). Nothing in the risk package reads a clock.
    tenant_id
        The tenant the service loaded policy and portfolio for (the authenticated caller);
        a proposal for another tenant is rejected (``tenant_mismatch``).
    proposal
        The sized trade proposal.
    market
        The latest snapshot of the proposal's underlying.
    policy
        The tenant's limits.
    regime
        The current regime label (from the regime model), e.g. ``range``.
    news
        Active and scheduled news for the news gate.
    portfolio
        The tenant's open book and today's P&L.
    switches
        Persisted, currently tripped kill switches.
    models
        Freshness of the models the proposal relies on (model-staleness switch).
    market_open
        Whether ``now`` is inside a normal-market session
        (``TradingCalendar.is_market_open(now)``); the stale-data switch only applies then.
    dry_run
        The tenant is inside its 14-day paper-only lock.
    live_order
        The order would be sent to a broker (False: paper).
    dry_run_until
        End of the lock, for the explanation (optional).
    strategy
        Strategy name for the per-strategy switch; default ``proposal.explanation
        ["strategy"]``, else the structure name.
    scan
        Parameters of the SPAN-like margin estimate.
    size_multiplier
        Size relative to the proposal, in (0, 1]; set by the castle after a reducing wall
        (the news gate). Walls scale every size-linear quantity by it.
    """

    now: datetime
    tenant_id: UUID
    proposal: DecisionProposedV1
    market: MarketView
    policy: TenantPolicy
    regime: str
    news: NewsState = field(default_factory=NewsState)
    portfolio: Portfolio = field(default_factory=Portfolio)
    switches: SwitchStates = field(default_factory=SwitchStates)
    models: tuple[ModelFreshness, ...] = ()
    market_open: bool = True
    dry_run: bool = False
    live_order: bool = False
    dry_run_until: datetime | None = None
    strategy: str | None = None
    scan: ScanParameters = field(default_factory=ScanParameters)
    size_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.now, datetime) or self.now.utcoffset() is None:
            raise ValueError(f"now must be a timezone-aware datetime, got {self.now!r}")
        if not (math.isfinite(self.size_multiplier) and 0 < self.size_multiplier <= 1):
            raise ValueError(f"size_multiplier must be in (0, 1], got {self.size_multiplier!r}")

    @cached_property
    def position(self) -> PositionMath:
        """The proposal priced against the market view at full size (computed once)."""
        return position_math(self.proposal, self.market, self.scan)

    @property
    def strategy_key(self) -> str:
        if self.strategy:
            return self.strategy
        named = self.proposal.explanation.get("strategy")
        return str(named) if named else self.proposal.structure.value

    @property
    def equity(self) -> float:
        """Current equity: the portfolio's, else the policy's capital."""
        e = self.portfolio.equity
        return self.policy.capital if e is None else e

    def resized(self, size_multiplier: float) -> RiskContext:
        """The same context at another size; the priced position is shared, not recomputed."""
        new = replace(self, size_multiplier=size_multiplier)
        if "position" in self.__dict__:
            new.__dict__["position"] = self.__dict__["position"]
        return new
