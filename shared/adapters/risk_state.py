"""Loaders of the risk castle's inputs from PostgreSQL, inside a caller's session.

Each loader reads within the given :class:`~shared.adapters.db.Session` (for risk_check, the
tenant transaction that also writes the verdict), so policy, book and switches are read
under the tenant's row-level security, and the market data (shared tables) in the same
snapshot of the database.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from shared.adapters.db import Session
from shared.contracts import KillSwitchResetV1, KillSwitchTrippedV1, Leg, OptionType
from shared.domain.calendar import IST, CalendarDataError, MarketCalendar, ist_day_start
from shared.domain.registry import NIGHTLY_CADENCE
from shared.domain.risk import (
    LegQuote,
    MarketView,
    ModelFreshness,
    Portfolio,
    Position,
    SwitchStates,
    TenantPolicy,
    TrippedSwitch,
)
from shared.domain.risk.marks import mark_position
from shared.errors import PermanentError

__all__ = [
    "DEFAULT_CAPITAL",
    "NoMarketData",
    "TenantSettingsInvalid",
    "TenantState",
    "UnknownTenant",
    "load_market",
    "load_models",
    "load_portfolio",
    "load_switches",
    "load_tenant",
    "record_switch_change",
]

logger = logging.getLogger(__name__)

DEFAULT_CAPITAL = 1_000_000.0
"""Rupees: the capital of a tenant whose settings name none."""


class NoMarketData(PermanentError):
    reason_code = "no_market_data"


class UnknownTenant(PermanentError):
    reason_code = "unknown_tenant"


class TenantSettingsInvalid(PermanentError):
    reason_code = "bad_tenant_settings"


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def load_market(session: Session, symbol: str, calendar: MarketCalendar,
                rate_on: Callable[[date], float], *, before: datetime | None = None
                ) -> MarketView:
    """The :class:`MarketView` of the newest published snapshot of ``symbol`` (taken before
    ``before`` when given: the last mark of an earlier session).

    Legs come from ``chain_legs`` (bid, ask, Black-76 IV), the forward and year fraction of
    their expiry from ``chain_expiry_analytics`` (an expiry the analytics skipped has no
    row, so its legs are not quoted), the lot size from the dated calendar (an expiry it
    cannot place is not quoted either), the rate from the dated rate table.

    Raises
    ------
    NoMarketData
        No published snapshot of ``symbol`` exists.
    """
    snap = session.execute(
        "SELECT snapshot_id, asof, spot, source FROM chain_snapshots "
        "WHERE symbol = :s AND published_at IS NOT NULL AND NOT bad_chain "
        "AND (CAST(:b AS timestamptz) IS NULL OR asof < :b) "
        "ORDER BY asof DESC LIMIT 1", s=symbol, b=before).dicts()
    if not snap:
        raise NoMarketData(f"no published chain snapshot of {symbol!r}")
    row = snap[0]
    legs = session.execute(
        "SELECT l.expiry, l.strike, l.option_type, l.bid, l.ask, l.iv, a.forward, a.t "
        "FROM chain_legs l JOIN chain_expiry_analytics a "
        "ON a.snapshot_id = l.snapshot_id AND a.expiry = l.expiry "
        "WHERE l.snapshot_id = :i", i=row["snapshot_id"]).rows
    lots: dict[date, int | None] = {}
    quotes = []
    for expiry, strike, option_type, bid, ask, iv, forward, t in legs:
        if expiry not in lots:
            try:
                lots[expiry] = calendar.lot_size(symbol, expiry).value
            except CalendarDataError:
                lots[expiry] = None
        lot = lots[expiry]
        if lot is None:
            continue
        quotes.append(LegQuote(expiry=expiry, strike=float(strike),
                               option_type=OptionType(option_type.strip()), bid=_nan(bid),
                               ask=_nan(ask), iv=_nan(iv), forward=float(forward), t=float(t),
                               lot_size=lot))
    asof: datetime = row["asof"]
    return MarketView(symbol=symbol, asof=asof, spot=float(row["spot"]), quotes=tuple(quotes),
                      rate=rate_on(asof.astimezone(IST).date()), source=row["source"],
                      exchange="NSE", snapshot_id=row["snapshot_id"])


@dataclass(frozen=True, slots=True)
class TenantState:
    """The tenant row as risk_check needs it."""

    tenant_id: UUID
    policy: TenantPolicy
    plan: str
    trading_mode: str
    dry_run_until: datetime
    active: bool
    settings: dict[str, Any] = field(default_factory=dict, compare=False)

    def in_dry_run(self, now: datetime) -> bool:
        """Inside the 14-day paper-only lock."""
        return now < self.dry_run_until

    def paper_only(self, now: datetime) -> bool:
        """Orders are paper: inside the lock, or the tenant trades on paper."""
        return self.in_dry_run(now) or self.trading_mode != "live"


def policy_from_settings(settings: dict[str, Any]) -> TenantPolicy:
    """The :class:`TenantPolicy` from ``tenants.settings``: limits under ``risk`` (defaults
    when absent); capital from ``risk.capital``, else ``capital``, else
    :data:`DEFAULT_CAPITAL`."""
    risk = settings.get("risk") or {}
    if not isinstance(risk, dict):
        raise TenantSettingsInvalid("tenant settings: 'risk' must be an object")
    capital = risk.get("capital", settings.get("capital", DEFAULT_CAPITAL))
    try:
        return TenantPolicy.model_validate({**risk, "capital": capital})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TenantSettingsInvalid(
            f"tenant risk settings: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        ) from None


TENANT_COLUMNS = "tenant_id, settings, plan, trading_mode, dry_run_until, active"


def load_tenant(session: Session) -> TenantState:
    """The session's tenant (visible through row-level security only to itself)."""
    rows = session.execute(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = :t",
                           t=session.tenant_id).dicts()
    if not rows:
        raise UnknownTenant(f"tenant {session.tenant_id} is not provisioned")
    return tenant_from_row(rows[0])


def tenant_from_row(row: dict[str, Any]) -> TenantState:
    """A :class:`TenantState` from a ``tenants`` row with :data:`TENANT_COLUMNS`."""
    settings = row["settings"]
    if isinstance(settings, str):
        settings = json.loads(settings)
    return TenantState(tenant_id=row["tenant_id"], policy=policy_from_settings(settings or {}),
                       plan=row["plan"], trading_mode=row["trading_mode"],
                       dry_run_until=row["dry_run_until"], active=row["active"],
                       settings=settings or {})


def load_portfolio(session: Session, policy: TenantPolicy, now: datetime,
                   market_of: Callable[[str], MarketView | None] | None = None,
                   previous_market_of: Callable[[str], MarketView | None] | None = None
                   ) -> Portfolio:
    """The tenant's paper book, marked to market.

    Open positions are marked against the newest published snapshot of their underlying
    (``market_of(symbol)``; see :func:`shared.domain.risk.marks.mark_position`): mids, the
    model price for a one-sided quote, intrinsic value for a settled leg. A position opened
    before today (IST) is also marked against the last snapshot before today's session
    (``previous_market_of``): the difference is the open P&L made *today*, which the
    daily-loss and strategy switches count. A position that cannot be marked at all counts
    with open P&L 0 and is logged. Equity = capital + every realised P&L + open MTM.
    Margin is the margin blocked at entry.
    """
    open_rows = session.execute(
        "SELECT position_id, symbol, margin, strategy, nearest_expiry, structure, legs, "
        "lot_size, entry_premium, opened_at FROM paper_positions WHERE status = 'open' "
        "ORDER BY opened_at").rows
    day_start = ist_day_start(now)
    today = day_start.date()
    positions = []
    for (pid, symbol, margin, strategy, expiry, structure, legs, lot_size, premium,
         opened_at) in open_rows:
        held = tuple(Leg.model_validate(leg)
                     for leg in (json.loads(legs) if isinstance(legs, str) else legs))
        book = (str(pid), held, lot_size, float(premium))
        raw = _mark(book, market_of(symbol) if market_of else None, today)
        pnl = raw if math.isfinite(raw) else 0.0
        pnl_today = None
        if math.isfinite(raw) and opened_at < day_start and previous_market_of is not None:
            before = previous_market_of(symbol)
            if before is not None:
                previous = _mark(book, before, before.asof.astimezone(IST).date())
                if math.isfinite(previous):
                    pnl_today = pnl - previous
        positions.append(Position(position_id=str(pid), symbol=symbol, margin=float(margin),
                                  mtm_pnl=pnl, strategy=strategy, expiry=expiry,
                                  structure=structure, mtm_pnl_today=pnl_today))
    closed = session.execute(
        "SELECT strategy, coalesce(sum(realized_pnl) FILTER (WHERE closed_at >= :d "
        "AND closed_at < :e), 0) AS today, coalesce(sum(realized_pnl), 0) AS total "
        "FROM paper_positions WHERE status = 'closed' GROUP BY strategy",
        d=day_start, e=day_start + timedelta(days=1)).rows
    by_strategy = {strategy: float(today_pnl) for strategy, today_pnl, _ in closed}
    realised_total = sum(float(total) for *_, total in closed)
    open_pnl = sum(p.mtm_pnl for p in positions)
    return Portfolio(positions=tuple(positions), realized_pnl_today=sum(by_strategy.values()),
                     realized_pnl_today_by_strategy=by_strategy,
                     equity=policy.capital + realised_total + open_pnl)


def _mark(book: tuple[str, tuple[Leg, ...], int, float], market: MarketView | None,
          on: date) -> float:
    """Open P&L of one position (id, legs, lot size, entry premium) at ``market``."""
    pid, legs, lot_size, premium = book
    m = mark_position(legs, lot_size=lot_size, entry_premium=premium, market=market, today=on)
    if not m.complete:
        logger.warning("paper position %s marked incompletely: %s", pid, m.reason)
    return m.pnl


def load_models(session: Session, model_types: tuple[str, ...]) -> tuple[ModelFreshness, ...]:
    """Freshness of the production models a proposal relies on: when each went live, and
    the flags retrain's health check stored on its pointer. The tenant's own model wins
    over the global one; a model with nothing in production reads as never trained."""
    if not model_types:
        return ()
    rows = session.execute(
        "SELECT p.model_type, p.tenant_id, v.promoted_at, p.flagged, p.health "
        "FROM model_pointers p JOIN model_versions v ON v.model_type = p.model_type "
        "AND v.tenant_key = p.tenant_key AND v.version = p.version "
        "WHERE p.model_type = ANY(CAST(:names AS text[])) "
        "ORDER BY p.model_type, p.tenant_id NULLS LAST", names=list(model_types)).rows
    found: dict[str, ModelFreshness] = {}
    for model_type, _tenant, promoted_at, flagged, health in rows:
        if model_type in found:
            continue
        health = json.loads(health) if isinstance(health, str) else (health or {})
        flags = tuple(health.get("reasons") or ("flagged",)) if flagged else ()
        found[model_type] = ModelFreshness(model_type, promoted_at, NIGHTLY_CADENCE, flags)
    return tuple(found.get(m, ModelFreshness(m, None, NIGHTLY_CADENCE))
                 for m in dict.fromkeys(model_types))


def load_switches(session: Session) -> SwitchStates:
    """Tripped kill switches visible to the session's tenant (its own and the global ones)."""
    rows = session.execute(
        "SELECT switch, scope, scope_key, reason, actor, changed_at, tenant_id "
        "FROM kill_switches WHERE tripped ORDER BY changed_at").rows
    return SwitchStates(tuple(
        TrippedSwitch(switch=switch, scope=scope, scope_key=key or None, reason=reason,
                      actor=actor, at=at, tenant_id=tenant)
        for switch, scope, key, reason, actor, at, tenant in rows))


def record_switch_change(session: Session, event: KillSwitchTrippedV1 | KillSwitchResetV1, *,
                         source_event: str | None = None, only_auto: bool = False) -> bool:
    """Apply one trip or reset to ``kill_switches`` and append it to ``kill_switch_events``.

    Returns False, writing nothing, when the switch is already in that state (tripped by
    someone else meanwhile, or not tripped). A person's trip takes over a row the data
    tripped (so the data's reset no longer applies to it). ``only_auto`` resets a row only
    while its actor is ``auto``: the data's reset never undoes an operator's trip.

    A global row (no tenant) changes through ``change_global_switch`` (migration 0005): a
    tenant's session may only make automatic changes to the data-driven global switches.
    """
    tripped = isinstance(event, KillSwitchTrippedV1)
    key = event.scope_key or ""
    reason = event.reason[:2000]
    if event.tenant_id is None:
        return bool(session.execute(
            "SELECT change_global_switch(:sw, :scope, :key, :tripped, :reason, :actor, :src, "
            ":at, :only_auto)", sw=event.switch, scope=event.scope, key=key, tripped=tripped,
            reason=reason, actor=event.actor, src=source_event, at=event.at,
            only_auto=only_auto).scalar())
    if tripped:
        changed = session.execute(
            "INSERT INTO kill_switches AS k (switch, scope, scope_key, tenant_id, tripped, "
            "reason, actor, changed_at) VALUES (:sw, :scope, :key, :tenant, true, :reason, "
            ":actor, :at) ON CONFLICT (switch, scope, scope_key, tenant_key) DO UPDATE SET "
            "tripped = true, reason = EXCLUDED.reason, actor = EXCLUDED.actor, "
            "changed_at = EXCLUDED.changed_at "
            "WHERE NOT k.tripped OR (k.actor = 'auto' AND EXCLUDED.actor <> 'auto') RETURNING 1",
            sw=event.switch, scope=event.scope, key=key, tenant=event.tenant_id, reason=reason,
            actor=event.actor, at=event.at).rows
    else:
        changed = session.execute(
            "UPDATE kill_switches SET tripped = false, reason = :reason, actor = :actor, "
            "changed_at = :at WHERE switch = :sw AND scope = :scope AND scope_key = :key "
            "AND tenant_id = :tenant AND tripped AND (NOT :only_auto OR actor = 'auto') "
            "RETURNING 1",
            sw=event.switch, scope=event.scope, key=key, tenant=event.tenant_id,
            reason=reason, actor=event.actor, at=event.at, only_auto=only_auto).rows
    if not changed:
        return False
    session.execute(
        "INSERT INTO kill_switch_events (switch, scope, scope_key, tenant_id, tripped, reason, "
        "actor, source_event, occurred_at) VALUES (:sw, :scope, :key, :tenant, :tripped, "
        ":reason, :actor, :src, :at)",
        sw=event.switch, scope=event.scope, key=key, tenant=event.tenant_id, tripped=tripped,
        reason=reason, actor=event.actor, src=source_event, at=event.at)
    return True
