"""A replay's results as frozen values: per tenant, per strategy, the JSON summary, and the
:class:`~shared.report.model.SessionReport` the HTML renderer draws.

Units: rupees after costs (the cost engine's; the conservative ledger when the replay ran
in conservative mode), per-trade Sharpe ratios (not annualised) of each trade's return on
the capital it tied up (the castle's margin plus premium paid at the approved size), PSR
against a zero Sharpe ratio, DSR among the strategies that traded (see
:mod:`shared.domain.backtest.sharpe`).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from shared.domain.backtest import strategy_sharpes
from shared.domain.calendar import IST
from shared.replay.runner import STAGES, ReplayState

__all__ = ["ReplayResult", "StrategyRow", "TenantRow", "summarise"]


@dataclass(frozen=True, slots=True)
class TenantRow:
    """One tenant's replay.

    Attributes
    ----------
    name, tenant_id, dry_run, capital
        The tenant (``dry_run``: in the paper-only lock).
    pnl
        Realised plus open P&L at the end, after costs (the replay's mode), rupees.
    pnl_normal, pnl_conservative
        Both ledgers, rupees.
    max_drawdown
        Largest fall of the P&L curve (mode's ledger) from its running peak (from 0),
        rupees, >= 0.
    trades, decisions, proposals, approved, blocked, rejected
        Counts over the replay.
    blocked_by, reduced_by, rejected_by, no_trade
        Counts by wall / kill switch (blocks, size reductions), by rejection code and by
        no-trade reason.
    trips
        Kill-switch trips the verdicts called for.
    """

    name: str
    tenant_id: str
    dry_run: bool
    capital: float
    pnl: float
    pnl_normal: float
    pnl_conservative: float
    max_drawdown: float
    trades: int
    decisions: int
    proposals: int
    approved: int
    blocked: int
    rejected: int
    blocked_by: dict[str, int]
    reduced_by: dict[str, int]
    rejected_by: dict[str, int]
    no_trade: dict[str, int]
    trips: int


@dataclass(frozen=True, slots=True)
class StrategyRow:
    """One strategy over every tenant (``sharpe``, ``psr``, ``dsr`` NaN with ``reason``)."""

    strategy: str
    trades: int
    pnl: float
    mean_return: float
    sharpe: float
    psr: float
    dsr: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Everything ``qs replay`` prints, as values (see :func:`summarise`)."""

    mode: str
    models: str
    source: str
    symbol: str
    sessions: tuple[dict[str, Any], ...]
    tenants: tuple[TenantRow, ...]
    strategies: tuple[StrategyRow, ...]
    skipped: tuple[tuple[str, str], ...]
    counters: dict[str, int]
    timings: dict[str, float]
    wall_s: float
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (NaN becomes None, with the reason beside it)."""
        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "mode": self.mode, "models": self.models, "source": self.source,
            "symbol": self.symbol,
            "sessions": list(self.sessions),
            "tenants": [{
                "name": t.name, "tenant_id": t.tenant_id, "dry_run": t.dry_run,
                "capital": t.capital, "pnl": round(t.pnl, 2),
                "pnl_normal": round(t.pnl_normal, 2),
                "pnl_conservative": round(t.pnl_conservative, 2),
                "max_drawdown": round(t.max_drawdown, 2), "trades": t.trades,
                "decisions": t.decisions, "proposals": t.proposals, "approved": t.approved,
                "blocked": t.blocked, "rejected": t.rejected, "blocked_by": t.blocked_by,
                "reduced_by": t.reduced_by, "rejected_by": t.rejected_by,
                "no_trade": t.no_trade, "trips": t.trips} for t in self.tenants],
            "strategies": [{
                "strategy": s.strategy, "trades": s.trades, "pnl": round(s.pnl, 2),
                "mean_return": num(s.mean_return), "sharpe": num(s.sharpe), "psr": num(s.psr),
                "dsr": num(s.dsr), **({"reason": s.reason} if s.reason else {})}
                for s in self.strategies],
            "skipped": [{"item": a, "reason": b} for a, b in self.skipped],
            "counters": self.counters,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "wall_s": round(self.wall_s, 3),
            "notes": list(self.notes),
        }


def _drawdown(values: list[float]) -> float:
    peak, worst = 0.0, 0.0
    for v in values:
        peak = max(peak, v)
        worst = max(worst, peak - v)
    return worst


def _notes(st: ReplayState) -> tuple[str, ...]:
    from shared.replay.config import EVENT_MOVE_WIDENING, SLIPPAGE_MULTIPLIER

    cons = st.config.conservative
    notes = [
        "P&L after the Indian cost engine's charges and slippage (entries at the proposals' "
        "mid reference prices, exits at the marks or intrinsic at expiry)"
        + (f"; conservative: slippage x{SLIPPAGE_MULTIPLIER:g} and, on scheduled-event days, "
           f"adverse index moves x{EVENT_MOVE_WIDENING:g}" if cons else ""),
    ]
    if st.config.models == "har":
        notes.append("decide serves log-HAR vol models fitted in process on the kit's NIFTY "
                     "daily history 2000-2019" + (", after a simulated warm-up of "
                     f"{len(st.memory.bars) - len(st.sessions)} sessions"
                     if st.config.directory is None else " (no warm-up for recorded payloads: "
                     "forecasts need 22 earlier sessions)"))
    else:
        notes.append("decide serves no model (ModelSource.none(), an empty registry): the "
                     "odds are the market's own implied density, so the expected edge is "
                     "about zero before costs; --models har serves the vol models")
    if st.event_days:
        notes.append("scheduled-event days: " + ", ".join(d.isoformat() for d in st.event_days))
    return tuple(notes)


def summarise(st: ReplayState) -> ReplayResult:
    """The frozen result of a finished replay."""
    cons = st.config.conservative
    trades = list(st.book.trades())
    tenants = []
    for tid, tr in st.tracks.items():
        mine = [t for t in trades if t.tenant_id == tid]
        last = tr.curve[-1] if tr.curve else (None, 0.0, 0.0)
        curve = [c[2] if cons else c[1] for c in tr.curve]
        tenants.append(TenantRow(
            name=tr.tenant.name, tenant_id=str(tid), dry_run=tr.tenant.dry_run,
            capital=tr.tenant.policy.capital, pnl=float(last[2] if cons else last[1]),
            pnl_normal=float(last[1]), pnl_conservative=float(last[2]),
            max_drawdown=_drawdown(curve), trades=len(mine), decisions=tr.decisions,
            proposals=tr.proposals, approved=tr.approved, blocked=tr.blocked,
            rejected=tr.rejected, blocked_by=dict(tr.blocked_by),
            reduced_by=dict(tr.reduced_by), rejected_by=dict(tr.rejected_by),
            no_trade=dict(tr.no_trade), trips=tr.trips))
    by_strategy: dict[str, list[Any]] = defaultdict(list)
    for t in trades:
        by_strategy[t.strategy].append(t)
    stats = strategy_sharpes({k: [t.ret(cons) for t in v] for k, v in by_strategy.items()})
    rows = []
    for s in stats:
        ts = by_strategy[s.strategy]
        reason = s.estimate.reason or s.psr.reason or s.dsr.reason
        rows.append(StrategyRow(
            strategy=s.strategy, trades=len(ts), pnl=math.fsum(t.net(cons) for t in ts),
            mean_return=s.estimate.mean, sharpe=s.estimate.sharpe, psr=s.psr.psr,
            dsr=s.dsr.dsr, reason=reason))
    counters = {k: int(v) for k, v in sorted(st.counters.items())}
    counters["trades"] = len(trades)
    return ReplayResult(
        mode="conservative" if cons else "normal", models=st.config.models,
        source=st.config.source_label,
        symbol=st.config.symbol.upper(), sessions=tuple(st.per_session),
        tenants=tuple(tenants), strategies=tuple(rows),
        skipped=tuple((s.item, s.reason) for s in st.skipped), counters=counters,
        timings={k: st.timings[k] for k in (*STAGES, "wait") if k in st.timings},
        wall_s=st.wall_s, notes=_notes(st))


# --------------------------------------------------------------------------- report


def session_report(st: ReplayState, result: ReplayResult, *, generated_at: datetime) -> Any:
    """The :class:`~shared.report.model.SessionReport` of a replay (every session's spot
    path; smiles and GEX profiles at the first session's open, middle and close)."""
    from shared.report.model import (
        ApprovedSignal,
        GateFiring,
        GexProfile,
        HopLatency,
        LegView,
        ModelUse,
        PnlPoint,
        SessionReport,
        SignalMark,
        SmileSnapshot,
        SpotPoint,
        StrategyStats,
        TenantPnl,
    )
    from shared.services.decide import DIRECTION_MODEL, VOL_MODELS, WING_MODEL

    cons = st.config.conservative
    smiles, gex = [], []
    for at, chain, an, near in st.smiles:
        for e in an.expiries:
            if near is not None and e.expiry != near:
                continue
            mask = chain.for_expiry(e.expiry)
            k, iv = chain.strike[mask], an.legs.iv[mask]
            call = chain.is_call[mask]
            otm = np.where(call, k >= e.forward, k < e.forward) & np.isfinite(iv)
            order = np.argsort(k[otm])
            smiles.append(SmileSnapshot(at=at, expiry=e.expiry, forward=float(e.forward),
                                        strikes=tuple(float(x) for x in k[otm][order]),
                                        ivs=tuple(float(x) for x in iv[otm][order])))
            break
        total: dict[float, float] = defaultdict(float)
        for e in an.expiries:
            for s, g in zip(np.asarray(e.strikes).tolist(), np.asarray(e.gex_by_strike).tolist(),
                            strict=True):
                if math.isfinite(g):
                    total[float(s)] += float(g)
        ks = sorted(total)
        gex.append(GexProfile(at=at, spot=float(chain.spot), strikes=tuple(ks),
                              gex=tuple(total[x] for x in ks)))
    approved = []
    for a in st.approvals:
        p, m = a["proposal"], a["m"]
        legs = tuple(LegView(side=leg.side.value.upper(), option_type=leg.option_type.value,
                             strike=float(leg.strike), expiry=leg.expiry, lots=n,
                             price=float(leg.price))
                     for leg, n in zip(p.legs, a["lots"], strict=True) if n)
        approved.append(ApprovedSignal(
            at=a["at"], tenant=a["tenant"], symbol=p.symbol, structure=p.structure.value,
            legs=legs, lot_size=p.lot_size, spot=float(a["spot"]),
            max_profit=math.inf if p.max_profit is None else float(p.max_profit) * m,
            max_loss=math.inf if p.max_loss is None else float(p.max_loss) * m,
            costs=float(a["costs"] or 0.0), net_ev=float(a["net_ev"] or 0.0),
            paper=bool(a["paper"]), reasons=a["reasons"]))
    firings = []
    for tr in st.tracks.values():
        walls = sorted(set(tr.blocked_by) | set(tr.reduced_by))
        firings += [GateFiring(tenant=tr.tenant.name, wall=w, blocked=tr.blocked_by.get(w, 0),
                               reduced=tr.reduced_by.get(w, 0)) for w in walls]
        firings += [GateFiring(tenant=tr.tenant.name, wall=f"rejected:{code}", blocked=n)
                    for code, n in sorted(tr.rejected_by.items())]
    pnl = tuple(TenantPnl(tenant=tr.tenant.name, capital=tr.tenant.policy.capital,
                          dry_run=tr.tenant.dry_run,
                          points=tuple(PnlPoint(at=c[0], pnl=float(c[2] if cons else c[1]))
                                       for c in tr.curve))
                for tr in st.tracks.values())
    latencies = []
    for hop, xs in st.samples.items():
        if xs:
            ms = np.asarray(xs) * 1e3
            latencies.append(HopLatency(hop=f"in process: {hop}", count=len(xs),
                                        p50_ms=float(statistics.median(ms)),
                                        p99_ms=float(np.percentile(ms, 99))))
    served = st.memory.served
    models = tuple(
        ModelUse(m, served[m], "log-HAR fitted in process on the kit's daily history")
        if m in served else ModelUse(m, None, "no production model in process: it sat out")
        for m in (*VOL_MODELS.values(), DIRECTION_MODEL, WING_MODEL))
    strategies = tuple(StrategyStats(s.strategy, s.trades, s.pnl, s.sharpe, s.psr, s.dsr)
                       for s in result.strategies)
    first = st.sessions[0]
    days = f"{first.day.isoformat()}" + (f" .. {st.sessions[-1].day.isoformat()}"
                                         if len(st.sessions) > 1 else "")
    notes = list(result.notes)
    notes += [f"skipped {a}: {b}" for a, b in result.skipped]
    return SessionReport(
        title=f"qs replay: {result.symbol} {days} ({result.mode})", symbol=result.symbol,
        session_date=first.day, source=result.source,
        generated_at=generated_at.astimezone(IST),
        spot_path=tuple(SpotPoint(at, s) for at, s in st.spot_path),
        signals=tuple(SignalMark(at=m["at"], tenant=m["tenant"], structure=m["structure"],
                                 outcome=m["outcome"], wall=m["wall"]) for m in st.marks),
        smiles=tuple(smiles), gex=tuple(gex), approved=tuple(approved),
        gate_firings=tuple(firings), pnl=pnl, latencies=tuple(latencies), models=models,
        strategies=strategies, counters=dict(result.counters), notes=tuple(notes))
