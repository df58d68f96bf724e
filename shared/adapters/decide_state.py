"""Postgres reads and writes of decide (migration 0008), and the stored chain it re-reads.

Market-wide (system sessions): the stored snapshot rebuilt as a
:class:`~shared.domain.chain.ChainSnapshot`, the IV history, the spot bars, the market
runs and the signal state. Per tenant (tenant sessions, row-level security): the bandit,
paper settlement at expiry, the bandit's credit from settled positions, and the decisions.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shared.adapters.db import Session
from shared.contracts import DecisionProposedV1, Leg, OptionType, Side
from shared.domain.calendar import ist_day_start
from shared.domain.chain import ChainSnapshot
from shared.domain.decide.bandit import ThompsonBandit
from shared.domain.decide.engine import TenantDecision
from shared.domain.decide.forecasts import SpotBars
from shared.domain.decide.learning import PastRun, SignalState
from shared.errors import PermanentError, TransientError

IST = ZoneInfo("Asia/Kolkata")

__all__ = [
    "SnapshotUnusable",
    "TenantView",
    "bandit_of",
    "credit_settled",
    "decision_for",
    "insert_decision",
    "insert_market_run",
    "jsonb_value",
    "load_chain",
    "load_iv_history",
    "load_signal_state",
    "load_spot_history",
    "mark_published",
    "market_run",
    "proposal_of",
    "save_bandit",
    "save_signal_state",
    "served_forecasts",
    "SnapshotPending",
    "settle_expired",
    "tenant_view",
    "unscored_runs",
]


class SnapshotUnusable(PermanentError):
    """The event names a snapshot that is not stored, not published, or a bad chain."""

    reason_code = "snapshot_unusable"


class SnapshotPending(TransientError):
    """The snapshot is stored and was published, but chain_poll has not yet recorded the
    publication (its outbox marks ``published_at`` just after the publish): retried."""

    reason_code = "snapshot_pending"


def jsonb_value(value: Any) -> Any:
    """A jsonb column's value as Python (text is parsed; the driver may return either)."""
    return json.loads(value) if isinstance(value, str) else value


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (jsonb has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_jsonb(value: Any) -> str:
    """JSON for a jsonb column: non-finite floats become null (jsonb has no NaN)."""
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: the slow, sanitising path
        return json.dumps(_finite(value), default=str, allow_nan=False)


# --------------------------------------------------------------------------- market


def load_chain(s: Session, snapshot_id: uuid.UUID) -> ChainSnapshot:
    """The stored snapshot as chain_poll analysed it (legs as stored: OI in contracts)."""
    rows = s.execute(
        "SELECT symbol, source, asof, spot, expiries, flags, bad_chain, published_at "
        "FROM chain_snapshots WHERE snapshot_id = :i", i=snapshot_id).dicts()
    if not rows:
        raise SnapshotUnusable(f"snapshot {snapshot_id} is not stored")
    head = rows[0]
    if head["bad_chain"]:
        raise SnapshotUnusable(f"snapshot {snapshot_id} is a bad chain (never published)")
    if head["published_at"] is None:
        raise SnapshotPending(f"snapshot {snapshot_id} is stored but its publication is not "
                              "recorded yet")
    legs = s.execute(
        "SELECT expiry, strike, option_type, last, bid, ask, volume, oi, oi_change, vendor_iv, "
        "missing FROM chain_legs WHERE snapshot_id = :i ORDER BY expiry, strike, option_type",
        i=snapshot_id).rows
    if not legs:
        raise SnapshotUnusable(f"snapshot {snapshot_id} has no legs")
    cols = list(zip(*legs, strict=True))

    def floats(j: int) -> np.ndarray:
        return np.array([math.nan if v is None else float(v) for v in cols[j]], dtype=np.float64)

    return ChainSnapshot(
        symbol=head["symbol"], asof=head["asof"], spot=float(head["spot"]),
        source=head["source"], expiries=tuple(sorted(head["expiries"])),
        expiry=np.array(cols[0], dtype="datetime64[D]"), strike=floats(1),
        is_call=np.array([t.strip() == OptionType.CE.value for t in cols[2]]),
        last=floats(3), bid=floats(4), ask=floats(5), volume=floats(6), oi=floats(7),
        oi_change=floats(8), vendor_iv=floats(9),
        missing=np.array(cols[10], dtype=np.uint16), flags=tuple(head["flags"] or ()))


def load_iv_history(s: Session, symbol: str, before: datetime, *, sessions: int = 250,
                    min_days: float = 2.0) -> list[float]:
    """The ATM IV of each earlier session's last published snapshot (its nearest expiry at
    least ``min_days`` away), oldest first, at most ``sessions``."""
    rows = s.execute(
        "SELECT atm_iv FROM (SELECT DISTINCT ON (d) d, atm_iv FROM ("
        " SELECT (c.asof AT TIME ZONE 'Asia/Kolkata')::date AS d, c.asof, a.t, a.atm_iv"
        " FROM chain_snapshots c JOIN chain_expiry_analytics a USING (snapshot_id)"
        " WHERE c.symbol = :s AND c.published_at IS NOT NULL AND NOT c.bad_chain"
        " AND c.asof < :b AND a.atm_iv IS NOT NULL AND a.t * 365 >= :m) x"
        " ORDER BY d DESC, asof DESC, t ASC) y ORDER BY d DESC LIMIT :n",
        s=symbol, b=ist_day_start(before), m=min_days, n=sessions).rows
    return [float(r[0]) for r in reversed(rows)]


def load_spot_history(s: Session, symbol: str, asof: datetime, *, sessions: int = 300
                      ) -> tuple[SpotBars, list[float]]:
    """Daily bars of the underlying from its published snapshots up to ``asof`` (see
    :mod:`shared.domain.decide.forecasts`) and today's snapshot spots (intraday closes)."""
    rows = s.execute(
        "SELECT d, o, h, l, c FROM (SELECT (asof AT TIME ZONE 'Asia/Kolkata')::date AS d,"
        " (array_agg(spot ORDER BY asof))[1] AS o, max(spot) AS h, min(spot) AS l,"
        " (array_agg(spot ORDER BY asof DESC))[1] AS c FROM chain_snapshots"
        " WHERE symbol = :s AND published_at IS NOT NULL AND NOT bad_chain AND asof <= :a"
        " GROUP BY 1 ORDER BY 1 DESC LIMIT :n) x ORDER BY d", s=symbol, a=asof, n=sessions).rows
    bars = SpotBars(dates=np.array([r[0] for r in rows], dtype="datetime64[D]"),
                    open=np.array([r[1] for r in rows], dtype=np.float64),
                    high=np.array([r[2] for r in rows], dtype=np.float64),
                    low=np.array([r[3] for r in rows], dtype=np.float64),
                    close=np.array([r[4] for r in rows], dtype=np.float64))
    intraday = s.execute(
        "SELECT spot FROM chain_snapshots WHERE symbol = :s AND published_at IS NOT NULL "
        "AND NOT bad_chain AND asof >= :d AND asof <= :a ORDER BY asof",
        s=symbol, d=ist_day_start(asof), a=asof).rows
    return bars, [float(r[0]) for r in intraday]


def served_forecasts(s: Session, model_type: str, version: int
                     ) -> dict[str, tuple[list[date], list[float]]]:
    """Per underlying, each IST session's last forecast of ``model_type`` v``version`` that
    decide served (``decide_market_runs.summary.forecasts``), oldest first."""
    rows = s.execute(
        "SELECT symbol, d, v FROM (SELECT DISTINCT ON (symbol, d) symbol, d, v FROM ("
        " SELECT symbol, asof, (asof AT TIME ZONE 'Asia/Kolkata')::date AS d,"
        " CAST(summary #>> ARRAY['forecasts', :m, 'value'] AS double precision) AS v"
        " FROM decide_market_runs WHERE summary #>> ARRAY['forecasts', :m, 'version'] = :v) x"
        " WHERE v IS NOT NULL ORDER BY symbol, d, asof DESC) y ORDER BY symbol, d",
        m=model_type, v=str(version)).rows
    out: dict[str, tuple[list[date], list[float]]] = {}
    for symbol, d, v in rows:
        days, values = out.setdefault(symbol, ([], []))
        days.append(d)
        values.append(float(v))
    return out


def market_run(s: Session, snapshot_id: uuid.UUID) -> dict[str, Any] | None:
    rows = s.execute("SELECT * FROM decide_market_runs WHERE snapshot_id = :i",
                     i=snapshot_id).dicts()
    return rows[0] if rows else None


def insert_market_run(s: Session, *, snapshot_id: uuid.UUID, event_id: str, symbol: str,
                      asof: datetime, spot: float, atm_iv: float | None, regime: str | None,
                      readings: list[dict[str, Any]], summary: dict[str, Any],
                      state_used: str) -> bool:
    """Insert the run; False if the snapshot already has one (a concurrent delivery). A
    run without a regime has nothing to score: it is stored as scored."""
    return bool(s.execute(
        "INSERT INTO decide_market_runs (snapshot_id, event_id, symbol, asof, spot, atm_iv, "
        "regime, readings, summary, state_used, scored_at) VALUES (:i, :e, :s, :a, :spot, "
        ":iv, :r, CAST(:rd AS jsonb), CAST(:sm AS jsonb), CAST(:st AS jsonb), "
        "CASE WHEN CAST(:r AS text) IS NULL THEN CAST(:a AS timestamptz) END) "
        "ON CONFLICT (snapshot_id) DO NOTHING RETURNING 1",
        i=snapshot_id, e=event_id, s=symbol, a=asof, spot=spot,
        iv=atm_iv if atm_iv is not None and math.isfinite(atm_iv) else None, r=regime,
        rd=to_jsonb(readings), sm=to_jsonb(summary),
        st=state_used).rows)


def load_signal_state(s: Session, symbol: str) -> SignalState:
    """The symbol's learning state, row-locked for this transaction (initial when none)."""
    rows = s.execute("SELECT state FROM decide_signal_state WHERE symbol = :s FOR UPDATE",
                     s=symbol).rows
    return SignalState.from_json(jsonb_value(rows[0][0]) if rows else None)


def save_signal_state(s: Session, symbol: str, state: SignalState, now: datetime) -> None:
    s.execute("INSERT INTO decide_signal_state (symbol, state, updated_at) VALUES "
              "(:s, CAST(:j AS jsonb), :t) ON CONFLICT (symbol) DO UPDATE SET "
              "state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
              s=symbol, j=state.to_json(), t=now)


def unscored_runs(s: Session, symbol: str, *, before: datetime, limit: int = 500
                  ) -> list[tuple[uuid.UUID, PastRun]]:
    """Runs of ``symbol`` taken before ``before`` whose readings are not scored yet."""
    rows = s.execute(
        "SELECT snapshot_id, asof, spot, atm_iv, regime, readings FROM decide_market_runs "
        "WHERE symbol = :s AND scored_at IS NULL AND asof <= :b AND regime IS NOT NULL "
        "ORDER BY asof LIMIT :n FOR UPDATE SKIP LOCKED", s=symbol, b=before, n=limit).rows
    out = []
    for sid, asof, spot, iv, regime, readings in rows:
        rd = tuple((str(r["name"]), str(r["axis"]), float(r["score"]), bool(r["available"]))
                   for r in jsonb_value(readings))
        out.append((sid, PastRun(asof=asof, spot=float(spot),
                                 atm_iv=None if iv is None else float(iv), regime=regime,
                                 readings=rd)))
    return out


def mark_scored(s: Session, snapshot_ids: Iterable[uuid.UUID], now: datetime) -> None:
    ids = [str(i) for i in snapshot_ids]
    if ids:
        s.execute("UPDATE decide_market_runs SET scored_at = :t "
                  "WHERE snapshot_id = ANY(CAST(:ids AS uuid[]))",
                  t=now, ids="{" + ",".join(ids) + "}")


def settlement_spot(s: Session, symbol: str, day: date) -> float | None:
    """The spot of the last published snapshot of ``symbol`` on or before ``day`` (IST):
    the settlement price of a paper position expiring that day."""
    end = ist_day_start(datetime(day.year, day.month, day.day, 12, tzinfo=IST)) + timedelta(days=1)
    rows = s.execute("SELECT spot FROM chain_snapshots WHERE symbol = :s AND published_at IS NOT "
                     "NULL AND NOT bad_chain AND asof < :e ORDER BY asof DESC LIMIT 1",
                     s=symbol, e=end).rows
    return float(rows[0][0]) if rows else None


# --------------------------------------------------------------------------- tenant


def bandit_of(doc: Any) -> ThompsonBandit:
    """The stored bandit (a fresh one when the tenant has none yet)."""
    if doc is None:
        return ThompsonBandit()
    return ThompsonBandit.from_json(doc if isinstance(doc, str) else json.dumps(doc))


def save_bandit(s: Session, bandit: ThompsonBandit, now: datetime) -> None:
    s.execute("INSERT INTO decide_tenant_state (tenant_id, bandit, updated_at) VALUES "
              "(:t, CAST(:b AS jsonb), :at) ON CONFLICT (tenant_id) DO UPDATE SET "
              "bandit = EXCLUDED.bandit, updated_at = EXCLUDED.updated_at",
              t=s.tenant_id, b=bandit.to_json().decode(), at=now)


@dataclass(frozen=True, slots=True)
class Settlement:
    position_id: uuid.UUID
    spot: float
    realized_pnl: float


def settle_expired(s: Session, now: datetime,
                   spot_on: Callable[[str, date], float | None]) -> list[Settlement]:
    """Close the tenant's open paper positions whose every leg has expired before today
    (IST) at their intrinsic value: ``P&L = sum(units * intrinsic(S)) + entry_premium``
    (entry premium received +, paid -), ``S`` the last published spot on the expiry day
    (``spot_on``). A position without a settlement spot stays open."""
    today = ist_day_start(now).date()
    rows = s.execute(
        "SELECT position_id, symbol, legs, lot_size, entry_premium FROM paper_positions "
        "WHERE status = 'open' AND nearest_expiry < :d FOR UPDATE", d=today).rows
    done = []
    for pid, symbol, legs, lot_size, premium in rows:
        held = [Leg.model_validate(leg) for leg in jsonb_value(legs)]
        last = max(leg.expiry for leg in held)
        if last >= today:
            continue
        spot = spot_on(symbol, last)
        if spot is None:
            continue
        value = 0.0
        for leg in held:
            k = float(leg.strike)
            intrinsic = max(spot - k, 0.0) if leg.option_type == OptionType.CE else max(k - spot, 0.0)
            units = leg.lots * lot_size * (1 if leg.side is Side.BUY else -1)
            value += units * intrinsic
        pnl = value + float(premium)
        s.execute("UPDATE paper_positions SET status = 'closed', closed_at = :t, "
                  "realized_pnl = :p WHERE position_id = :i", t=now, p=pnl, i=pid)
        s.audit(actor="decide", action="paper position settled at expiry", subject=str(pid),
                details={"settlement_spot": spot, "expiry": last.isoformat(),
                         "realized_pnl": pnl})
        done.append(Settlement(pid, spot, pnl))
    return done


def credit_settled(s: Session, bandit: ThompsonBandit, now: datetime) -> tuple[ThompsonBandit, int]:
    """Fold every closed paper position of decide's proposals not credited yet into the
    bandit: reward = realised P&L / capital tied up at entry (margin + premium paid), in
    the regime the proposal was made in; marks the decisions credited."""
    rows = s.execute(
        "SELECT d.decision_id, d.regime, d.structure, p.realized_pnl, p.margin, "
        "p.entry_premium FROM decisions d JOIN risk_verdicts v ON v.proposal_id = d.proposal_id "
        "JOIN paper_positions p ON p.verdict_id = v.verdict_id WHERE d.outcome = 'proposed' "
        "AND d.bandit_credited_at IS NULL AND p.status = 'closed' AND p.realized_pnl IS NOT NULL "
        "FOR UPDATE OF d").rows
    credited = []
    for decision_id, regime, structure, pnl, margin, premium in rows:
        if regime is None or structure is None or structure not in {a.value for a in bandit.arms}:
            continue
        at_risk = max(float(margin) + max(-float(premium), 0.0), 1.0)
        bandit = bandit.update(regime, structure, float(pnl) / at_risk)
        credited.append(str(decision_id))
    if credited:
        s.execute("UPDATE decisions SET bandit_credited_at = :t "
                  "WHERE decision_id = ANY(CAST(:ids AS uuid[]))",
                  t=now, ids="{" + ",".join(credited) + "}")
    return bandit, len(credited)


def decision_for(s: Session, snapshot_id: uuid.UUID) -> dict[str, Any] | None:
    rows = s.execute("SELECT * FROM decisions WHERE tenant_id = :t AND snapshot_id = :i",
                     t=s.tenant_id, i=snapshot_id).dicts()
    return rows[0] if rows else None


@dataclass(frozen=True, slots=True)
class TenantView:
    """What decide reads of one tenant for one snapshot, in one statement.

    Attributes
    ----------
    tenant
        The ``tenants`` row (:data:`shared.adapters.risk_state.TENANT_COLUMNS`).
    existing
        The tenant's decision on this snapshot, if any (``decision_id``, ``outcome``,
        ``published_at``, ``proposal``, ``explanation``).
    bandit
        The tenant's bandit (a fresh one when none is stored).
    expired
        An open paper position has expired (settlement is due).
    uncredited
        A settled position of decide's proposals is not credited to the bandit yet.
    has_book
        The tenant has any paper position, open or closed (else its book is empty and
        need not be read).
    """

    tenant: dict[str, Any] | None
    existing: dict[str, Any] | None
    bandit: ThompsonBandit
    expired: bool
    uncredited: bool
    has_book: bool = True


def tenant_view(s: Session, snapshot_id: uuid.UUID, today: date) -> TenantView:
    from shared.adapters.risk_state import TENANT_COLUMNS

    cols = ", ".join(f"t.{c}" for c in TENANT_COLUMNS.split(", "))
    rows = s.execute(
        f"SELECT {cols}, "
        "(SELECT row_to_json(x) FROM (SELECT decision_id, outcome, published_at, proposal, "
        " explanation FROM decisions WHERE snapshot_id = :i) x) AS existing, "
        "(SELECT bandit FROM decide_tenant_state) AS bandit, "
        "EXISTS (SELECT 1 FROM paper_positions WHERE status = 'open' "
        " AND nearest_expiry < :d) AS expired, "
        "EXISTS (SELECT 1 FROM decisions d JOIN risk_verdicts v ON v.proposal_id = d.proposal_id "
        " JOIN paper_positions p ON p.verdict_id = v.verdict_id WHERE d.outcome = 'proposed' "
        " AND d.bandit_credited_at IS NULL AND p.status = 'closed') AS uncredited, "
        "EXISTS (SELECT 1 FROM paper_positions) AS has_book "
        "FROM tenants t WHERE t.tenant_id = :t", i=snapshot_id, d=today, t=s.tenant_id).dicts()
    if not rows:
        return TenantView(None, None, ThompsonBandit(), False, False)
    row = rows[0]
    existing = jsonb_value(row.pop("existing"))
    return TenantView(tenant=row, existing=existing, bandit=bandit_of(jsonb_value(row.pop("bandit"))),
                      expired=bool(row.pop("expired")), uncredited=bool(row.pop("uncredited")),
                      has_book=bool(row.pop("has_book")))


def proposal_of(row: dict[str, Any]) -> DecisionProposedV1:
    """The ``decision.proposed`` message of a stored decision: the proposal as stored (its
    explanation is not stored twice) with the decision's explanation."""
    return DecisionProposedV1.model_validate(
        {**jsonb_value(row["proposal"]), "explanation": jsonb_value(row["explanation"])})


def insert_decision(s: Session, decision: TenantDecision, *, snapshot_id: uuid.UUID,
                    event_id: str, symbol: str, regime: str | None, now: datetime
                    ) -> uuid.UUID | None:
    """Write the decision and its audit row in one statement (None if the tenant already
    has a decision on this snapshot: nothing is written)."""
    p: DecisionProposedV1 | None = decision.proposal
    decision_id = uuid.uuid4()
    nt = decision.no_trade
    structure = decision.structure.value if decision.structure else None
    lots = decision.sizing.lots if decision.sizing else None
    details = {"decision_id": str(decision_id), "snapshot_id": str(snapshot_id),
               "structure": structure, "lots": lots,
               "reason_code": nt.reason_code if nt else None, "reason": nt.reason if nt else None}
    inserted = s.execute(
        "WITH d AS (INSERT INTO decisions (decision_id, tenant_id, snapshot_id, event_id, "
        "symbol, regime, outcome, structure, lots, proposal_id, proposal, reason_code, reason, "
        "explanation, decided_at) VALUES (:id, :t, :sid, :e, :sym, :r, :o, :st, :lots, :pid, "
        "CAST(:p AS jsonb), :rc, :rs, CAST(:x AS jsonb), :at) "
        "ON CONFLICT (tenant_id, snapshot_id) DO NOTHING RETURNING decision_id) "
        "INSERT INTO audit_log (tenant_id, actor, action, subject, event_id, details) "
        "SELECT :t, 'decide', :action, :subject, :e, CAST(:details AS jsonb) FROM d "
        "RETURNING audit_id",
        id=decision_id, t=s.tenant_id, sid=snapshot_id, e=event_id, sym=symbol, r=regime,
        o="proposed" if p is not None else "no_trade", st=structure, lots=lots,
        pid=p.proposal_id if p is not None else None,
        p=p.model_dump_json(exclude={"explanation"}) if p is not None else None,
        rc=nt.reason_code if nt else None, rs=nt.reason if nt else None,
        x=to_jsonb(decision.explanation), at=now,
        action="proposed" if p is not None else "no trade",
        subject=str(p.proposal_id) if p is not None else str(snapshot_id),
        details=to_jsonb(details)).rows
    return decision_id if inserted else None


def mark_published(s: Session, decision_ids: Iterable[uuid.UUID]) -> int:
    """Stamp ``published_at`` on these proposals, in one statement for every tenant
    (migration 0009's ``decisions_mark_published``); returns how many were stamped."""
    ids = [str(i) for i in decision_ids]
    if not ids:
        return 0
    return int(s.execute("SELECT decisions_mark_published(CAST(:ids AS uuid[]))",
                         ids="{" + ",".join(ids) + "}").scalar())
