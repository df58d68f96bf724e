"""Read a replayed session back from the local cloud's database into a
:class:`~shared.report.model.SessionReport` (``make run``'s report).

Everything shown is what the functions stored: snapshots and analytics (chain_poll),
decisions (decide), verdicts and paper positions (risk_check), deliveries (notify), plus
the arrival times the local peers recorded. Paper P&L is marked with the castle's own
marking rules (:func:`shared.domain.risk.marks.mark_position`) at sampled snapshots, after
the verdict's costs. Latencies per hop come from database timestamps (``now()`` of each
function's transaction) and the peers' arrival times: the same wall clock.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import numpy as np

from shared.domain.calendar import IST
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
    TenantPnl,
)

SNAPSHOT_TIMES = (dtime(10, 0), dtime(12, 30), dtime(15, 0))  # smiles and GEX shown at
PNL_EVERY = timedelta(minutes=5)
MODEL_TYPES = ("vol_har_1d", "vol_har_5d", "vol_har_22d", "direction", "event_impact", "wing")


def _day_bounds(d: date) -> tuple[datetime, datetime]:
    start = datetime.combine(d, dtime(0, 0), IST)
    return start, start + timedelta(days=1)


def percentile_ms(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` in ms, linear interpolation; NaN when
    there is no value."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else math.nan


def hop(name: str, values_ms: Sequence[float]) -> HopLatency:
    return HopLatency(name, len(values_ms), percentile_ms(values_ms, 50),
                      percentile_ms(values_ms, 99))


def build_report(cloud: Any, *, symbol: str, session_date: date, source: str,
                 tenants: dict[str, uuid.UUID], labels: dict[str, str] | None = None,
                 deliveries: Sequence[Any] = (), poll_ms: Sequence[float] = (),
                 counters: dict[str, int] | None = None) -> SessionReport:
    """The report of ``session_date``'s ``symbol`` session as stored in ``cloud``."""
    from shared.rules import default_calendar, risk_free_rate

    labels = labels or {}
    db = cloud.app_db()
    lo, hi = _day_bounds(session_date)
    with db.system() as s:
        snaps = s.execute(
            "SELECT snapshot_id, asof, spot, created_at, published_at FROM chain_snapshots WHERE symbol = :s "
            "AND asof >= :lo AND asof < :hi AND published_at IS NOT NULL AND NOT bad_chain "
            "ORDER BY asof", s=symbol, lo=lo, hi=hi).dicts()
        smiles, gex = _smiles_and_gex(s, snaps, session_date)
        news = s.execute(
            "SELECT title, event_type, action, window_minutes, occurs_at FROM news_events "
            "WHERE occurs_at >= :lo AND occurs_at < :hi ORDER BY occurs_at", lo=lo, hi=hi).dicts()
        runs = s.execute(
            "SELECT summary FROM decide_market_runs WHERE symbol = :s AND asof >= :lo "
            "AND asof < :hi", s=symbol, lo=lo, hi=hi).rows
        switches = s.execute("SELECT switch, scope, reason FROM kill_switches WHERE tripped").rows
    snap_by_id = {r["snapshot_id"]: r for r in snaps}

    signals: list[SignalMark] = []
    approved: list[ApprovedSignal] = []
    firings: list[GateFiring] = []
    pnl: list[TenantPnl] = []
    to_decision, to_verdict = [], []
    verdict_recorded: dict[str, tuple[datetime, uuid.UUID]] = {}
    calendar = default_calendar()
    for name, tenant in tenants.items():
        label = labels.get(name, name)
        with db.tenant(tenant) as s:
            rows = s.execute(
                "SELECT d.snapshot_id, d.outcome, d.structure, d.proposal_id, d.published_at, "
                "d.explanation, d.proposal, v.verdict_id, v.approved, v.blocked_by, "
                "v.size_multiplier, v.net_ev, v.total_costs, v.dry_run, v.verdicts, "
                "v.recorded_at FROM decisions d LEFT JOIN risk_verdicts v "
                "ON v.proposal_id = d.proposal_id WHERE d.symbol = :s", s=symbol).dicts()
            positions = s.execute(
                "SELECT p.verdict_id, p.legs, p.lot_size, p.entry_premium, p.opened_at, "
                "p.closed_at, p.realized_pnl, v.total_costs FROM paper_positions p JOIN "
                "risk_verdicts v ON v.verdict_id = p.verdict_id WHERE p.symbol = :s",
                s=symbol).dicts()
            capital = s.execute("SELECT settings #>> '{risk,capital}', dry_run_until > now() "
                                "FROM tenants WHERE tenant_id = :t", t=tenant).rows[0]
            marks = _pnl_points(s, symbol, positions, snaps, calendar, risk_free_rate)
        blocked: dict[str, int] = defaultdict(int)
        reduced: dict[str, int] = defaultdict(int)
        by_verdict_position = {p["verdict_id"]: p for p in positions}
        for r in rows:
            snap = snap_by_id.get(r["snapshot_id"])
            if snap is None:
                continue
            if r["outcome"] != "proposed":
                continue
            if r["published_at"] is not None and snap["published_at"] is not None:
                to_decision.append((r["published_at"] - snap["published_at"]).total_seconds() * 1e3)
            if r["verdict_id"] is None:
                signals.append(SignalMark(snap["asof"], label, r["structure"], "pending"))
                continue
            if r["published_at"] is not None:
                to_verdict.append((r["recorded_at"] - r["published_at"]).total_seconds() * 1e3)
            verdict_recorded[str(r["verdict_id"])] = (r["recorded_at"], r["snapshot_id"])
            verdicts = r["verdicts"] or []
            if r["approved"]:
                signals.append(SignalMark(snap["asof"], label, r["structure"], "approved"))
                if r["size_multiplier"] < 1:
                    for w in verdicts:
                        if "reduce" in str(w.get("reason_code", "")):
                            reduced[w["wall"]] += 1
                position = by_verdict_position.get(r["verdict_id"])
                approved.append(_approved(label, symbol, snap, r, position))
            else:
                signals.append(SignalMark(snap["asof"], label, r["structure"], "blocked",
                                          r["blocked_by"]))
                blocked[r["blocked_by"]] += 1
        for wall in sorted(set(blocked) | set(reduced)):
            firings.append(GateFiring(label, wall, blocked.get(wall, 0), reduced.get(wall, 0)))
        pnl.append(TenantPnl(label, float(capital[0] or 0.0), bool(capital[1]), marks))

    to_delivery, end_to_end = [], []
    for d in deliveries:
        if d.channel != "webhook" or d.subject not in verdict_recorded:
            continue
        recorded, snapshot_id = verdict_recorded[d.subject]
        to_delivery.append((d.received_at - recorded.timestamp()) * 1e3)
        snap = snap_by_id.get(snapshot_id)
        if snap is not None:
            end_to_end.append((d.received_at - snap["created_at"].timestamp()) * 1e3)

    latencies = (hop("chain_poll: fired → snapshot stored and published", poll_ms),
                 hop("snapshot published → decision published (decide)", to_decision),
                 hop("decision published → verdict recorded (risk_check)", to_verdict),
                 hop("verdict recorded → webhook received (notify)", to_delivery),
                 hop("end to end: snapshot stored → notification received", end_to_end))

    served: dict[str, set[int]] = defaultdict(set)
    for (summary,) in runs:
        for model_type, f in ((summary or {}).get("forecasts") or {}).items():
            if isinstance(f, dict) and f.get("version") is not None:
                served[model_type].add(int(f["version"]))
    models = []
    for model_type in sorted(set(MODEL_TYPES) | set(served)):
        versions = sorted(served.get(model_type, ()))
        if versions:
            models.append(ModelUse(model_type, versions[-1],
                                   "served by decide" + (f" (also v{versions[:-1]})"
                                                         if len(versions) > 1 else "")))
        else:
            models.append(ModelUse(model_type, None, "none in production: its signal sat out"))

    notes = [f"News gate: {n['title']} ({n['event_type']}) at "
             f"{n['occurs_at'].astimezone(IST):%H:%M} IST → {n['action']}, "
             f"window {n['window_minutes']} min" for n in news]
    notes += [f"Kill switch tripped: {sw} ({scope}): {reason}" for sw, scope, reason in switches]
    notes.append("Both demo tenants were provisioned today, so both are in the 14-day "
                 "dry-run lock the database enforces: every approved signal is a paper trade.")
    return SessionReport(
        title=f"{symbol} session of {session_date.isoformat()}", symbol=symbol,
        session_date=session_date, source=source, generated_at=datetime.now(UTC),
        spot_path=tuple(SpotPoint(r["asof"], float(r["spot"])) for r in snaps),
        signals=tuple(sorted(signals, key=lambda m: m.at)), smiles=tuple(smiles),
        gex=tuple(gex), approved=tuple(sorted(approved, key=lambda a: a.at)),
        gate_firings=tuple(firings), pnl=tuple(pnl), latencies=latencies,
        models=tuple(models), counters=dict(counters or {}), notes=tuple(notes))


def _approved(label: str, symbol: str, snap: dict, r: dict, position: dict | None
              ) -> ApprovedSignal:
    proposal = r["proposal"] or {}
    legs_raw = (position or {}).get("legs") or proposal.get("legs") or []
    if isinstance(legs_raw, str):
        legs_raw = json.loads(legs_raw)
    legs = tuple(LegView(side=str(g["side"]).upper(), option_type=str(g["option_type"]),
                         strike=float(g["strike"]), expiry=date.fromisoformat(str(g["expiry"])),
                         lots=int(g["lots"]), price=float(g["price"])) for g in legs_raw)
    scale = float(r["size_multiplier"] or 1.0)
    lots_now = sum(g.lots for g in legs)
    lots_proposed = sum(int(g["lots"]) for g in proposal.get("legs") or []) or lots_now
    ratio = lots_now / lots_proposed if lots_proposed else scale
    explanation = r["explanation"] or {}
    reasons = tuple(str(x) for x in (explanation.get("reasons") or explanation.get("top_reasons")
                                      or ())[:4])
    max_profit = proposal.get("max_profit")
    max_loss = proposal.get("max_loss")
    return ApprovedSignal(
        at=snap["asof"], tenant=label, symbol=symbol, structure=r["structure"] or "?",
        legs=legs, lot_size=int((position or {}).get("lot_size") or proposal.get("lot_size") or 1),
        spot=float(snap["spot"]),
        max_profit=float(max_profit) * ratio if max_profit is not None else math.inf,
        max_loss=float(max_loss) * ratio if max_loss is not None else math.inf,
        costs=float(r["total_costs"] or 0.0), net_ev=float(r["net_ev"] or 0.0),
        paper=bool(r["dry_run"]), reasons=reasons)


def _smiles_and_gex(s: Any, snaps: list[dict], session_date: date
                    ) -> tuple[list[SmileSnapshot], list[GexProfile]]:
    smiles: list[SmileSnapshot] = []
    gex: list[GexProfile] = []
    if not snaps:
        return smiles, gex
    chosen = []
    for t in SNAPSHOT_TIMES:
        target = datetime.combine(session_date, t, IST)
        best = min(snaps, key=lambda r: abs((r["asof"] - target).total_seconds()))
        if best not in chosen:
            chosen.append(best)
    for snap in chosen:
        analytics = s.execute(
            "SELECT expiry, t, forward, gamma_flip, details FROM chain_expiry_analytics "
            "WHERE snapshot_id = :i ORDER BY expiry", i=snap["snapshot_id"]).dicts()
        usable = [a for a in analytics if a["t"] > 1.0 / 365]
        if not usable:
            continue
        near = usable[0]
        legs = s.execute(
            "SELECT strike, option_type, iv FROM chain_legs WHERE snapshot_id = :i AND "
            "expiry = :e AND iv IS NOT NULL AND iv = iv ORDER BY strike",
            i=snap["snapshot_id"], e=near["expiry"]).rows
        forward = float(near["forward"])
        points = sorted((float(k), float(iv)) for k, kind, iv in legs
                        if abs(float(k) / forward - 1) <= 0.06
                        and ((kind.strip() == "PE") == (float(k) < forward)))
        if points:
            smiles.append(SmileSnapshot(snap["asof"], near["expiry"], forward,
                                        tuple(p[0] for p in points), tuple(p[1] for p in points)))
        by_strike: dict[float, float] = defaultdict(float)
        for a in usable:
            details = a["details"] or {}
            for k, g in zip(details.get("strikes") or (), details.get("gex_by_strike") or (),
                            strict=False):
                if g is not None and math.isfinite(g) and abs(k / snap["spot"] - 1) <= 0.05:
                    by_strike[float(k)] += float(g)
        if by_strike:
            strikes = tuple(sorted(by_strike))
            flip = near["gamma_flip"]
            gex.append(GexProfile(snap["asof"], float(snap["spot"]), strikes,
                                  tuple(by_strike[k] for k in strikes),
                                  float(flip) if flip is not None and math.isfinite(flip) else None))
    return smiles, gex


def _pnl_points(s: Any, symbol: str, positions: list[dict], snaps: list[dict], calendar: Any,
                rate_on: Any) -> tuple[PnlPoint, ...]:
    """Cumulative paper P&L after costs at snapshots every :data:`PNL_EVERY` (and the last)."""
    from shared.adapters.risk_state import load_market
    from shared.contracts import Leg
    from shared.domain.risk.marks import mark_position

    if not snaps:
        return ()
    sampled, last = [], None
    for r in snaps:
        if last is None or r["asof"] - last >= PNL_EVERY:
            sampled.append(r)
            last = r["asof"]
    if sampled[-1] is not snaps[-1]:
        sampled.append(snaps[-1])
    parsed = []
    for p in positions:
        legs_raw = json.loads(p["legs"]) if isinstance(p["legs"], str) else p["legs"]
        parsed.append((p, tuple(Leg.model_validate(g) for g in legs_raw)))
    points = []
    for snap in sampled:
        at = snap["asof"]
        total = 0.0
        live = [(p, legs) for p, legs in parsed if p["opened_at"] <= at]
        if live:
            market = load_market(s, symbol, calendar, rate_on,
                                 before=at + timedelta(microseconds=1))
            today = at.astimezone(IST).date()
            for p, legs in live:
                costs = float(p["total_costs"] or 0.0)
                if p["closed_at"] is not None and p["closed_at"] <= at:
                    total += float(p["realized_pnl"] or 0.0) - costs
                    continue
                mark = mark_position(legs, lot_size=int(p["lot_size"]),
                                     entry_premium=float(p["entry_premium"]), market=market,
                                     today=today)
                if math.isfinite(mark.pnl):
                    total += mark.pnl - costs
        points.append(PnlPoint(at, total))
    return tuple(points)
