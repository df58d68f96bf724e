"""What a replay runs: the session source, the demo tenants and the mode.

The demo tenants are the two of ``make run`` (one in the dry-run lock, paper; one not,
with looser limits and more capital); ``--tenants N`` adds seeded variants of them. A
tenant here is its settings, not a database row: its policy and appetite go to decide and
the castle exactly as :func:`shared.adapters.risk_state.policy_from_settings` and
:func:`shared.services.decide.appetite_from_settings` read them from ``tenants.settings``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from shared.domain.decide.sizing import RiskAppetite
from shared.domain.risk.inputs import TenantPolicy

__all__ = [
    "DEFAULT_DATE",
    "DEFAULT_SEED",
    "DEFAULT_SYMBOL",
    "EVENT_MOVE_WIDENING",
    "SLIPPAGE_MULTIPLIER",
    "DemoTenant",
    "ReplayConfig",
    "ReplayInputError",
    "demo_tenants",
]

DEFAULT_SYMBOL = "NIFTY"
DEFAULT_DATE = date(2026, 4, 8)
"""The default simulated session, the same as ``make run``'s: a Wednesday on which the RBI
MPC announced its April 2026 policy decision (10:00 IST, ``shared/data/event_calendar.csv``),
so the news gate has work. ``--days N`` plays N sessions from it."""
DEFAULT_SEED = 1234
SLIPPAGE_MULTIPLIER = 2.0
"""Conservative mode: every fill's slippage (the cost engine's estimate) times this."""
EVENT_MOVE_WIDENING = 1.5
"""Conservative mode: on a scheduled-event day the underlying's move is widened by this
factor when it hurts a position (see :mod:`shared.replay.book`)."""

_NAMESPACE = uuid.UUID("5d0c2c71-4f53-4a43-9d57-2f7c3b0e9a11")


class ReplayInputError(ValueError):
    """Bad input for a replay (unknown symbol, a holiday, nothing to play): exit code 2."""


@dataclass(frozen=True, slots=True)
class DemoTenant:
    """One in-process tenant.

    Attributes
    ----------
    tenant_id
        A UUIDv5 of the tenant's name (the same name, the same id: decisions replay).
    name
        Shown in the output.
    settings
        The ``tenants.settings`` document (``risk`` limits, ``decide.appetite``).
    plan
        Brokerage plan of the cost engine (``shared/data/brokerage_plans.csv``).
    dry_run
        Inside the 14-day paper-only lock (the castle's dry-run lock; orders forced to
        paper).
    trading_mode
        ``paper`` or ``live`` (a live order of a locked tenant is forced to paper).
    """

    tenant_id: uuid.UUID
    name: str
    settings: dict[str, Any] = field(compare=False)
    plan: str = "standard"
    dry_run: bool = True
    trading_mode: str = "paper"

    @property
    def policy(self) -> TenantPolicy:
        from shared.adapters.risk_state import policy_from_settings

        return policy_from_settings(self.settings)

    @property
    def appetite(self) -> RiskAppetite:
        from shared.services.decide import appetite_from_settings

        return appetite_from_settings(self.settings)

    @property
    def live_order(self) -> bool:
        return self.trading_mode == "live"


_BASE: tuple[tuple[str, dict[str, Any], bool, str], ...] = (
    # the paper desk: in the dry-run lock, 10 lakh, the castle's default limits
    ("paper-desk", {"risk": {"capital": 1_000_000}}, True, "paper"),
    # the live desk: past the lock, 50 lakh, looser limits and a bolder appetite
    ("live-desk", {"risk": {"capital": 5_000_000, "max_open_positions": 8,
                            "max_loss_per_trade_pct": 0.03, "daily_loss_limit_pct": 0.04,
                            "strategy_daily_loss_pct": 0.02},
                   "decide": {"appetite": {"target_annual_vol": 0.4,
                                           "confidence_power": 0.5}}}, False, "live"),
)


def demo_tenants(n: int = 2) -> tuple[DemoTenant, ...]:
    """``n`` demo tenants: the paper desk and the live desk, then variants of them with
    capital scaled by 2, 3, ... (deterministic)."""
    if n < 1:
        raise ReplayInputError(f"--tenants must be at least 1, got {n}")
    out = []
    for i in range(n):
        name, settings, dry_run, mode = _BASE[i % len(_BASE)]
        k = i // len(_BASE)
        if k:
            name = f"{name}-{k + 1}"
            risk = dict(settings["risk"])
            risk["capital"] = risk["capital"] * (k + 1)
            settings = {**settings, "risk": risk}
        out.append(DemoTenant(uuid.uuid5(_NAMESPACE, name), name, settings, "standard",
                              dry_run, mode))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """A replay's inputs.

    Attributes
    ----------
    symbol
        The index to replay (NIFTY, BANKNIFTY, ...).
    start
        First session date (simulator), or the only date to play (recorded payloads);
        None: the default date (simulator) or every date found (recorded payloads).
    days
        Number of sessions (simulator: consecutive trading days from ``start``; recorded
        payloads: at most this many dates, earliest first). None: one (simulator), all
        (recorded).
    source
        ``"simulator"`` or a directory of recorded payloads.
    seed
        The simulator's seed (ignored for recorded payloads).
    tenants
        The tenants that decide and trade.
    conservative
        Report the conservative P&L (doubled slippage, widened event moves) as the P&L.
    n_expiries
        Expiries the simulated chain lists.
    models
        ``"har"`` (the nightly log-HAR vol models fitted in process on the kit's NIFTY
        history, with a simulated warm-up history, as ``make run`` trains them: see
        :mod:`shared.replay.models`), ``"none"`` (decide serves no model, as an empty
        registry), or ``"auto"`` (the default: ``har`` when the kit's history is there,
        else ``none``).
    max_snapshots
        Play at most this many snapshots of each session (quick runs and tests); None:
        every one.
    """

    symbol: str = DEFAULT_SYMBOL
    start: date | None = None
    days: int | None = None
    source: str | Path = "simulator"
    seed: int = DEFAULT_SEED
    tenants: tuple[DemoTenant, ...] = field(default_factory=demo_tenants)
    conservative: bool = False
    n_expiries: int = 4
    models: str = "auto"
    max_snapshots: int | None = None

    @property
    def directory(self) -> Path | None:
        return None if self.source == "simulator" else Path(self.source)

    @property
    def source_label(self) -> str:
        if self.directory is None:
            return f"simulator:seed={self.seed}"
        return f"replay:{self.directory}"
