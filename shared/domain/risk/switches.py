"""The twelve kill switches, checked before the walls. One switch, one class.

A kill switch blocks a proposal when

* a **persisted** trip applies to it (an input: :class:`~shared.domain.risk.inputs.
  SwitchStates`, tripped automatically earlier or by an operator; reason code
  ``<name>_tripped``), or
* its **data** says it should trip now (reason code ``<name>``). Such a trip is also
  reported as a :class:`SwitchTrip` (unless the same trip is already persisted) so that the
  service persists it and publishes ``killswitch.tripped``.

Persisted trips stay until reset. An operator may reset any trip. A trip the data made
(actor ``auto``) is also reset by the data, as each switch's :class:`ResetPolicy` says:
``when_clear`` (the data no longer calls for it: a fresh snapshot, margin back under the
limit), ``next_session`` (a new IST trading day: the daily-loss limits), or ``operator``
(only a person: the capital floor, and every operator-only switch). Such a reset is
reported as a :class:`SwitchReset`; the service persists it and publishes
``killswitch.reset``. An operator's trip is never reset by data.

A persisted row applies when its tenant (if any) is the proposal's and its scope matches: ``global`` always; ``tenant`` the tenant id; ``strategy``
the strategy; ``symbol`` the underlying; ``source`` the market-data source / broker;
``exchange`` the exchange; ``model`` one of the models in use. A row without a
``scope_key`` applies to every instance of its scope, and a row with an unknown scope
applies to everything (fail closed). Symbols, sources and exchanges compare
case-insensitively.

======================  ========  =========================================  ============
switch                  scope     trips from data when                       data resets
======================  ========  =========================================  ============
``master``              global    never (operator only)                      never
``exchange``            exchange  never (operator only)                      never
``source``              source    never (operator only: broker/feed outage)  never
``symbol``              symbol    never (operator only: halt, circuit)       never
``stale_data``          symbol    market open and ``now - asof > 60 s``      when clear
``model_staleness``     model     ``now - last_trained > 2 x cadence``       when clear
                                  (or never trained, or flagged by retrain's
                                  health check: stale or drifted inputs)
``dry_run_lock``        tenant    a live order inside the 14-day paper lock  (not
                                  blocks (or is forced to paper); never      persisted)
                                  persisted here
``capital_floor``       tenant    ``equity < capital_floor_pct * capital``   never
``daily_loss``          tenant    ``-(realised + open MTM, today) >=``       next session
                                  ``daily_loss_limit_pct * capital``
``strategy``            strategy  the strategy's loss today >=               next session
                                  ``strategy_daily_loss_pct * capital``
``margin_utilisation``  tenant    ``used_margin / equity >``                 when clear
                                  ``max_margin_utilisation``
``correlation_cluster`` tenant    distinct underlyings linked by             when clear
                                  ``rho > 0.7`` hold more than
                                  ``max_cluster_exposure_pct * capital``
======================  ========  =========================================  ============

An operator can trip and reset every switch but the dry-run lock, which belongs to the
database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar
from uuid import UUID

from shared.contracts import KillSwitchResetV1, KillSwitchTrippedV1, WallVerdict
from shared.domain.calendar import IST
from shared.domain.risk.base import clean_numbers, money
from shared.domain.risk.context import RiskContext
from shared.domain.risk.inputs import Scope, TrippedSwitch, same_key

__all__ = [
    "FORCED_PAPER",
    "CapitalFloorSwitch",
    "CorrelationClusterSwitch",
    "DailyLossSwitch",
    "DryRunLock",
    "ExchangeSwitch",
    "KillSwitch",
    "MarginUtilisationSwitch",
    "MasterKill",
    "ModelStalenessSwitch",
    "Reading",
    "ResetPolicy",
    "SourceSwitch",
    "StaleDataSwitch",
    "StrategySwitch",
    "SwitchEvaluation",
    "SwitchReset",
    "SwitchTrip",
    "SymbolSwitch",
    "default_switches",
    "row_applies",
]

AUTO = "auto"
"""The actor of a trip or reset made by data (not by a person)."""

FORCED_PAPER = "dry_run_forced_paper"
"""Reason code of a passing dry-run verdict that turned a live order into a paper one."""


@dataclass(frozen=True, slots=True)
class SwitchTrip:
    """A trip the current data calls for: the service persists and publishes it."""

    switch: str
    scope: str
    scope_key: str | None
    reason: str
    tenant_id: UUID | None = None
    numbers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", MappingProxyType(clean_numbers(dict(self.numbers))))

    def to_event(self, at: datetime, actor: str = "auto") -> KillSwitchTrippedV1:
        """The ``killswitch.tripped`` message for this trip."""
        return KillSwitchTrippedV1(switch=self.switch, scope=self.scope,
                                   scope_key=self.scope_key, tenant_id=self.tenant_id,
                                   reason=self.reason, actor=actor, at=at)


@dataclass(frozen=True, slots=True)
class SwitchReset:
    """A persisted automatic trip the data no longer calls for: the service resets it."""

    switch: str
    scope: str
    scope_key: str | None
    reason: str
    tenant_id: UUID | None = None

    def to_event(self, at: datetime, actor: str = AUTO) -> KillSwitchResetV1:
        """The ``killswitch.reset`` message for this reset."""
        return KillSwitchResetV1(switch=self.switch, scope=self.scope,
                                 scope_key=self.scope_key, tenant_id=self.tenant_id,
                                 reason=self.reason, actor=actor, at=at)


class ResetPolicy(StrEnum):
    """When data resets a switch's automatic trip (see the module docstring)."""

    OPERATOR = "operator"
    WHEN_CLEAR = "when_clear"
    NEXT_SESSION = "next_session"


@dataclass(frozen=True, slots=True)
class SwitchEvaluation:
    """One switch on one proposal: its verdict, the trips the data calls for that are not
    yet persisted, and the persisted automatic trips the data now resets."""

    verdict: WallVerdict
    trips: tuple[SwitchTrip, ...] = ()
    resets: tuple[SwitchReset, ...] = ()


@dataclass(frozen=True, slots=True)
class Reading:
    """What a switch's data says: trips to report, or a block that is not persisted (the
    dry-run lock), or a passing code and reason; ``numbers`` explain either way."""

    trips: tuple[SwitchTrip, ...] = ()
    block_code: str | None = None
    block_reason: str = ""
    code: str = ""
    reason: str = ""
    numbers: Mapping[str, float] = field(default_factory=dict)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def _same_row(a: TrippedSwitch | SwitchReset | SwitchTrip,
              b: TrippedSwitch | SwitchReset | SwitchTrip) -> bool:
    return (a.switch, a.scope, a.tenant_id) == (b.switch, b.scope, b.tenant_id) \
        and same_key(a.scope, a.scope_key, b.scope_key)


def row_applies(row: TrippedSwitch, ctx: RiskContext) -> bool:
    """Whether a persisted trip applies to the proposal (see the module docstring)."""
    if row.tenant_id is not None and row.tenant_id != ctx.tenant_id:
        return False
    key = row.scope_key
    scope = row.scope
    if scope == Scope.GLOBAL or key is None:
        return True
    if scope == Scope.TENANT:
        return key == str(ctx.tenant_id)
    if scope == Scope.STRATEGY:
        return key == ctx.strategy_key
    if scope == Scope.SYMBOL:
        return _same(key, ctx.proposal.symbol)
    if scope == Scope.SOURCE:
        return _same(key, ctx.market.source)
    if scope == Scope.EXCHANGE:
        return _same(key, ctx.market.exchange)
    if scope == Scope.MODEL:
        return any(key == m.model_type for m in ctx.models)
    return True  # unknown scope: fail closed


class KillSwitch:
    """Base of the kill switches: subclasses set ``name`` and ``scope`` and override
    :meth:`read` when the switch can trip from data (the default is operator-only)."""

    name: ClassVar[str] = "switch"
    scope: ClassVar[Scope] = Scope.GLOBAL
    reset_policy: ClassVar[ResetPolicy] = ResetPolicy.OPERATOR

    def read(self, ctx: RiskContext) -> Reading:
        """What the current data says (default: nothing; an operator-only switch)."""
        return Reading(code=f"{self.name}_ok", reason="not tripped")

    def evaluate(self, ctx: RiskContext) -> SwitchEvaluation:
        """The verdict, the trips the data calls for that are not yet persisted, and the
        automatic trips the data resets (which then no longer block)."""
        rows = [r for r in ctx.switches.for_switch(self.name) if row_applies(r, ctx)]
        reading = self.read(ctx)
        resets = tuple(self._reset(r, reading, ctx) for r in rows)
        holding = [r for r, reset in zip(rows, resets, strict=True) if reset is None]
        cleared = tuple(r for r in resets if r is not None)
        new = tuple(t for t in reading.trips
                    if not ctx.switches.has(t.switch, t.scope, t.scope_key, t.tenant_id))
        nums = clean_numbers(dict(reading.numbers))
        if holding:
            r = holding[0]
            where = r.scope if r.scope_key is None else f"{r.scope}={r.scope_key}"
            when = f" at {r.at.isoformat(timespec='seconds')}" if r.at else ""
            verdict = WallVerdict(wall=self.name, blocked=True, reason_code=f"{self.name}_tripped",
                                  reason=f"{self.name} switch tripped ({where}) by {r.actor}"
                                         f"{when}: {r.reason}", numbers=nums)
        elif reading.trips:
            verdict = WallVerdict(wall=self.name, blocked=True, reason_code=self.name,
                                  reason=reading.trips[0].reason, numbers=nums)
        elif reading.block_code:
            verdict = WallVerdict(wall=self.name, blocked=True, reason_code=reading.block_code,
                                  reason=reading.block_reason, numbers=nums)
        else:
            verdict = WallVerdict(wall=self.name, blocked=False,
                                  reason_code=reading.code or f"{self.name}_ok",
                                  reason=reading.reason or "not tripped", numbers=nums)
        return SwitchEvaluation(verdict=verdict, trips=new, resets=cleared)

    def _reset(self, row: TrippedSwitch, reading: Reading, ctx: RiskContext
               ) -> SwitchReset | None:
        """The reset of a persisted row this switch's policy calls for now, or None. Data
        never resets an operator's trip, nor a row it would trip again at once."""
        if row.actor != AUTO or self.reset_policy is ResetPolicy.OPERATOR \
                or any(_same_row(row, t) for t in reading.trips):
            return None
        if self.reset_policy is ResetPolicy.WHEN_CLEAR:
            why = f"cleared: {reading.reason or 'the data no longer calls for it'}"
        else:  # NEXT_SESSION
            if row.at is None or row.at.astimezone(IST).date() >= ctx.now.astimezone(IST).date():
                return None
            why = (f"new session {ctx.now.astimezone(IST).date().isoformat()} "
                   f"(tripped {row.at.astimezone(IST).date().isoformat()})")
        return SwitchReset(self.name, row.scope, row.scope_key, why, row.tenant_id)

    def check(self, ctx: RiskContext) -> WallVerdict:
        return self.evaluate(ctx).verdict

    def detect(self, ctx: RiskContext) -> tuple[SwitchTrip, ...]:
        """Trips the data calls for, not yet persisted."""
        return self.evaluate(ctx).trips

    def _trip(self, key: str | None, reason: str, tenant_id: UUID | None = None,
              **numbers: float) -> SwitchTrip:
        return SwitchTrip(self.name, str(self.scope), key, reason, tenant_id, numbers)


# ---------------------------------------------------------------------------- operator only


class MasterKill(KillSwitch):
    """The master kill: one global row stops every proposal of every tenant."""

    name = "master"
    scope = Scope.GLOBAL


class ExchangeSwitch(KillSwitch):
    """Stops trading on an exchange (key: ``MarketView.exchange``, e.g. ``NSE``)."""

    name = "exchange"
    scope = Scope.EXCHANGE


class SourceSwitch(KillSwitch):
    """Stops proposals priced off a data source / broker (key: ``MarketView.source``)."""

    name = "source"
    scope = Scope.SOURCE


class SymbolSwitch(KillSwitch):
    """Stops one underlying (key: the symbol)."""

    name = "symbol"
    scope = Scope.SYMBOL


# ---------------------------------------------------------------------------- data driven


class StaleDataSwitch(KillSwitch):
    """Trips for the symbol when, in market hours, the snapshot is older than ``max_age``
    (default 60 s): ``now - market.asof > max_age``. Outside market hours it never trips."""

    name = "stale_data"
    scope = Scope.SYMBOL
    reset_policy = ResetPolicy.WHEN_CLEAR

    def __init__(self, max_age: timedelta = timedelta(seconds=60)) -> None:
        self.max_age = max_age

    def read(self, ctx: RiskContext) -> Reading:
        age = (ctx.now - ctx.market.asof).total_seconds()
        limit = self.max_age.total_seconds()
        nums = {"age_s": age, "max_age_s": limit, "market_open": float(ctx.market_open)}
        if not ctx.market_open:
            return Reading(code="stale_data_market_closed",
                           reason=f"market closed: snapshot age {age:.0f}s not checked",
                           numbers=nums)
        if age > limit:
            symbol = ctx.market.symbol
            return Reading(trips=(self._trip(symbol, f"snapshot_age {age:.0f}s > {limit:.0f}s "
                                             f"in market hours ({symbol} as of "
                                             f"{ctx.market.asof.isoformat(timespec='seconds')})",
                                             **nums),), numbers=nums)
        return Reading(code="stale_data_ok", reason=f"snapshot_age {age:.0f}s <= {limit:.0f}s",
                       numbers=nums)


class ModelStalenessSwitch(KillSwitch):
    """Trips per model when ``now - last_trained_at > multiple * cadence`` (default 2x), when
    the model was never trained, or when retrain's health check flagged it (stale, or its
    inputs drifted beyond the history's own calibrated windows)."""

    name = "model_staleness"
    scope = Scope.MODEL
    reset_policy = ResetPolicy.WHEN_CLEAR

    def __init__(self, multiple: float = 2.0) -> None:
        self.multiple = multiple

    def read(self, ctx: RiskContext) -> Reading:
        trips = []
        worst = 0.0
        for m in ctx.models:
            limit_h = self.multiple * m.cadence.total_seconds() / 3600
            if m.flags:
                trips.append(self._trip(m.model_type, f"model {m.model_type} flagged by its "
                                        f"health check: {'; '.join(m.flags)}", limit_h=limit_h))
                continue
            if m.last_trained_at is None:
                trips.append(self._trip(m.model_type, f"model {m.model_type} was never trained",
                                        limit_h=limit_h))
                continue
            age_h = (ctx.now - m.last_trained_at).total_seconds() / 3600
            worst = max(worst, age_h / limit_h)
            if age_h > limit_h:
                trips.append(self._trip(
                    m.model_type, f"model_age {m.model_type} {age_h:.1f}h > {self.multiple:g} x "
                    f"cadence = {limit_h:.1f}h", age_h=age_h, limit_h=limit_h))
        nums = {"models": float(len(ctx.models)), "worst_age_over_limit": worst}
        if trips:
            return Reading(trips=tuple(trips), numbers=nums)
        return Reading(code="model_staleness_ok",
                       reason=f"{len(ctx.models)} model(s) within {self.multiple:g} x cadence",
                       numbers=nums)


class DryRunLock(KillSwitch):
    """A tenant inside its paper-only lock (14 days from sign-up, enforced by the database)
    may not send a live order. Blocks it (``dry_run_lock``), or with ``force_paper=True``
    passes it as a paper order (reason code :data:`FORCED_PAPER`; the castle's verdict then
    says ``live=False``). The lock itself is persisted by the database (``tenants.
    dry_run_until``), so this switch reports no trips, and the operators' API refuses to
    write rows for it."""

    name = "dry_run_lock"
    scope = Scope.TENANT

    def __init__(self, force_paper: bool = False) -> None:
        self.force_paper = force_paper

    def read(self, ctx: RiskContext) -> Reading:
        nums = {"dry_run": float(ctx.dry_run), "live_order": float(ctx.live_order)}
        if not (ctx.dry_run and ctx.live_order):
            kind = "paper order" if not ctx.live_order else "live order, tenant not locked"
            return Reading(code="dry_run_ok", reason=kind, numbers=nums)
        until = f" until {ctx.dry_run_until.isoformat(timespec='minutes')}" \
            if ctx.dry_run_until else ""
        if self.force_paper:
            return Reading(code=FORCED_PAPER,
                           reason=f"live order forced to paper: tenant is paper-only{until}",
                           numbers=nums)
        return Reading(block_code="dry_run_lock",
                       block_reason=f"live order from a tenant in the dry-run lock "
                                    f"(paper-only{until})", numbers=nums)


class CapitalFloorSwitch(KillSwitch):
    """Trips for the tenant when ``equity < capital_floor_pct * capital`` (default 0.80)."""

    name = "capital_floor"
    scope = Scope.TENANT

    def read(self, ctx: RiskContext) -> Reading:
        pol = ctx.policy
        floor = pol.capital_floor_pct * pol.capital
        equity = ctx.equity
        nums = {"equity": equity, "capital_floor": floor}
        if equity < floor:
            return Reading(trips=(self._trip(
                str(ctx.tenant_id), f"equity {money(equity)} < capital_floor {money(floor)} "
                f"({pol.capital_floor_pct:.2f} of capital {money(pol.capital)})",
                ctx.tenant_id, **nums),), numbers=nums)
        return Reading(code="capital_floor_ok",
                       reason=f"equity {money(equity)} >= capital_floor {money(floor)}",
                       numbers=nums)


class DailyLossSwitch(KillSwitch):
    """Trips for the tenant when today's loss, realised today plus the open MTM made today
    (a position carried overnight counts from its last mark before today's session),
    reaches ``daily_loss_limit_pct * capital`` (default 3 %)."""

    name = "daily_loss"
    scope = Scope.TENANT
    reset_policy = ResetPolicy.NEXT_SESSION

    def read(self, ctx: RiskContext) -> Reading:
        pol, book = ctx.policy, ctx.portfolio
        pnl = book.realized_pnl_today + book.mtm_pnl_today
        limit = pol.daily_loss_limit_pct * pol.capital
        nums = {"pnl_today": pnl, "daily_loss_limit": limit}
        if -pnl >= limit:
            return Reading(trips=(self._trip(
                str(ctx.tenant_id), f"daily_loss {money(-pnl)} >= {money(limit)} "
                f"({pol.daily_loss_limit_pct:.2f} of capital; realised "
                f"{money(book.realized_pnl_today)}, open MTM today {money(book.mtm_pnl_today)})",
                ctx.tenant_id, **nums),), numbers=nums)
        return Reading(code="daily_loss_ok",
                       reason=f"pnl_today {money(pnl)}; daily_loss limit {money(limit)}",
                       numbers=nums)


class StrategySwitch(KillSwitch):
    """Trips for the tenant's strategy when its loss today (realised plus open MTM of its
    positions) reaches ``strategy_daily_loss_pct * capital`` (default 1.5 %)."""

    name = "strategy"
    scope = Scope.STRATEGY
    reset_policy = ResetPolicy.NEXT_SESSION

    def read(self, ctx: RiskContext) -> Reading:
        pol, book = ctx.policy, ctx.portfolio
        key = ctx.strategy_key
        pnl = book.realized_pnl_today_by_strategy.get(key, 0.0) + \
            book.mtm_today_by_strategy.get(key, 0.0)
        limit = pol.strategy_daily_loss_pct * pol.capital
        nums = {"strategy_pnl_today": pnl, "strategy_loss_limit": limit}
        if -pnl >= limit:
            return Reading(trips=(self._trip(
                key, f"strategy_loss {key} {money(-pnl)} >= {money(limit)} "
                f"({pol.strategy_daily_loss_pct:.3f} of capital)", ctx.tenant_id, **nums),),
                numbers=nums)
        return Reading(code="strategy_ok",
                       reason=f"strategy {key} pnl_today {money(pnl)}; limit {money(limit)}",
                       numbers=nums)


class MarginUtilisationSwitch(KillSwitch):
    """Trips for the tenant when ``used_margin / equity > max_margin_utilisation``
    (default 0.80; any used margin with non-positive equity trips)."""

    name = "margin_utilisation"
    scope = Scope.TENANT
    reset_policy = ResetPolicy.WHEN_CLEAR

    def read(self, ctx: RiskContext) -> Reading:
        used, equity = ctx.portfolio.used_margin, ctx.equity
        limit = ctx.policy.max_margin_utilisation
        util = used / equity if equity > 0 else (float("inf") if used > 0 else 0.0)
        nums = {"utilisation": util, "max_utilisation": limit, "used_margin": used}
        if util > limit:
            return Reading(trips=(self._trip(
                str(ctx.tenant_id), f"margin_utilisation {util:.2f} > {limit:.2f} (used "
                f"{money(used)} of equity {money(equity)})", ctx.tenant_id, **nums),),
                numbers=nums)
        return Reading(code="margin_utilisation_ok",
                       reason=f"margin_utilisation {util:.2f} <= {limit:.2f}", numbers=nums)


class CorrelationClusterSwitch(KillSwitch):
    """Trips for the tenant when the open book holds a *cluster* of correlated underlyings
    with too much capital in it.

    Distinct underlyings with open exposure are linked when their correlation exceeds
    ``threshold`` (default 0.7; an unknown correlation counts as 1). A cluster is a
    connected group of at least two underlyings; the switch trips when a cluster's
    exposure exceeds ``max_cluster_exposure_pct * capital`` (default 0.40). One underlying
    alone is the per-underlying limit's business, not a cluster.
    """

    name = "correlation_cluster"
    scope = Scope.TENANT
    reset_policy = ResetPolicy.WHEN_CLEAR

    def __init__(self, threshold: float = 0.7) -> None:
        self.threshold = threshold

    def read(self, ctx: RiskContext) -> Reading:
        book, pol = ctx.portfolio, ctx.policy
        exposure = {s: e for s, e in book.exposure_by_symbol.items() if e > 0}
        symbols = sorted(exposure)
        parent = {s: s for s in symbols}

        def root(s: str) -> str:
            while parent[s] != s:
                parent[s] = parent[parent[s]]
                s = parent[s]
            return s

        top_rho = 0.0
        for i, a in enumerate(symbols):
            for b in symbols[i + 1:]:
                rho = book.rho(a, b)
                rho = 1.0 if rho is None else rho
                if rho > self.threshold:
                    top_rho = max(top_rho, rho)
                    parent[root(a)] = root(b)
        clusters: dict[str, list[str]] = {}
        for s in symbols:
            clusters.setdefault(root(s), []).append(s)
        limit = pol.max_cluster_exposure_pct * pol.capital
        biggest, members = 0.0, []
        for group in clusters.values():
            if len(group) >= 2:
                e = sum(exposure[s] for s in group)
                if e > biggest:
                    biggest, members = e, group
        nums = {"cluster_exposure": biggest, "cluster_limit": limit,
                "threshold": self.threshold, "max_rho": top_rho}
        if members and biggest > limit:
            return Reading(trips=(self._trip(
                str(ctx.tenant_id), f"correlation cluster {'+'.join(members)} (rho > "
                f"{self.threshold:.2f}) holds {money(biggest)} > {money(limit)}",
                ctx.tenant_id, **nums),), numbers=nums)
        what = f"cluster {'+'.join(members)} {money(biggest)}" if members else "no cluster"
        return Reading(code="correlation_cluster_ok",
                       reason=f"{what} (rho > {self.threshold:.2f}); limit {money(limit)}",
                       numbers=nums)


def default_switches(*, force_paper: bool = False) -> tuple[KillSwitch, ...]:
    """The twelve switches in castle order: global and infrastructure first, then data
    quality, the tenant's lock, then the tenant's money."""
    return (MasterKill(), ExchangeSwitch(), SourceSwitch(), SymbolSwitch(), StaleDataSwitch(),
            ModelStalenessSwitch(), DryRunLock(force_paper=force_paper), CapitalFloorSwitch(),
            DailyLossSwitch(), StrategySwitch(), MarginUtilisationSwitch(),
            CorrelationClusterSwitch())
