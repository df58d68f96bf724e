"""The in-process session runner: chain_poll → decide → risk_check → paper book, per
snapshot, with everything held in memory (no database, no emulators, no Pub/Sub).

Per published snapshot (in time order, one session after another):

1. **chain_poll**: the snapshot (simulated and parsed, or recorded) is skipped when its
   time repeats the last one (stale) and analysed as chain_poll analyses it
   (:func:`shared.services.chain_poll.analyse_snapshot`); a bad chain (no-arbitrage
   checks failed) is not published, so nothing below sees it.
2. **decide, market stage** (:class:`~shared.replay.market.MarketMemory`): learning state,
   IV history and spot bars from the earlier snapshots, then
   :meth:`~shared.domain.decide.engine.DecisionEngine.market`. The castle's
   :class:`~shared.domain.risk.inputs.MarketView` of the snapshot
   (:func:`~shared.domain.decide.engine.market_view_of`) is built over the contracts the
   candidates and the open paper positions hold (every quote the castle and the marks look
   up, plus a forward per expiry), not over the whole chain (:func:`view_of`).
3. **paper book**: every open position is marked; one that reaches its target or stop is
   closed (:mod:`shared.replay.book`) and its reward credited to the tenant's bandit.
4. **decide, tenant stage**, per tenant: its book as a
   :class:`~shared.domain.risk.inputs.Portfolio`, then
   :meth:`~shared.domain.decide.engine.DecisionEngine.for_tenant` with the tenant's
   bandit (kept in memory across days).
5. **risk_check**, per proposal: the castle (:meth:`RiskCastle.default` with the Indian
   cost engine for the tenant's plan, ``force_paper=True``) on a
   :class:`~shared.domain.risk.context.RiskContext` with ``now`` the snapshot's time, the
   news gate's scheduled events of the day (the calendar news_ingest stores: RBI, budget,
   FOMC, US CPI and the expiry days), the tenant's tripped kill switches (trips and resets
   the verdicts call for are applied in memory), ``market_open`` from the calendar and the
   tenant's dry-run lock. A proposal the castle refuses as invalid (or cannot cost: the
   charge data start in 2021) is recorded as rejected. An approved one is opened in the
   paper book at the approved size.

At a session's end the book settles what expires that day (intrinsic against the day's
last spot) and carries the rest overnight when the next session is the next trading day
of the same symbol; otherwise it closes them at their last marks. At the end of the
replay every open position is closed at its last mark.

Everything is deterministic: snapshot ids are UUIDv5 of (symbol, time, source), so
decide's per-(tenant, snapshot) random draws repeat, and the simulator is seeded. Step 1
(simulate, parse, analyse) is pure per minute, so on a machine with two cores or more a
forked worker process does it ahead of the replay while steps 2-5 run; the results are
the same either way (``workers=0`` does everything in line).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from shared.contracts import OptionType
from shared.domain.analytics import ChainAnalytics, LegAnalytics
from shared.domain.calendar import IST, MarketCalendar
from shared.domain.chain import ChainSnapshot
from shared.domain.decide.bandit import ThompsonBandit
from shared.domain.decide.engine import DecisionEngine, TenantInputs, market_view_of
from shared.domain.risk import RiskCastle, RiskContext
from shared.domain.risk.castle import sized_lots
from shared.domain.risk.inputs import MarketView, NewsItem, NewsState, SwitchStates, TrippedSwitch
from shared.domain.risk.inputs import same_key as _same_key
from shared.errors import PermanentError
from shared.replay.book import BookPosition, PaperBook
from shared.replay.config import DEFAULT_DATE, DemoTenant, ReplayConfig, ReplayInputError
from shared.replay.market import MarketMemory
from shared.replay.sources import SessionPlan, Skipped, recorded_sessions, simulated_sessions

__all__ = ["STAGES", "ReplayState", "run_replay"]

logger = logging.getLogger(__name__)

STAGES = ("simulate", "analyse", "decide", "risk", "book")
"""Where the time goes (CPU seconds of the thread doing it, so a busy machine does not
inflate them): producing and parsing the payloads (or loading the recorded ones, and the
models' fit and warm-up), chain_poll's analysis, decide (both stages and the market
view), the castle, the paper book (marks, exits, fills and their costs). With a worker
process, ``simulate`` and ``analyse`` are the worker's and ``wait`` is the wall time the
replay waited for it."""

_clock = time.thread_time

_NAMESPACE = uuid.UUID("0b7f35c6-4c7c-4a55-8d8e-3a5f0c6f2e10")
DRY_RUN_DAYS = 14
SMILE_TIMES = 3


def _slice(obj: Any, mask: np.ndarray, n: int, **extra: Any) -> Any:
    """``obj`` (a dataclass of per-leg arrays) with every ``(n,)`` array masked."""
    parts = {f.name: getattr(obj, f.name)[mask] for f in fields(obj)
             if isinstance(getattr(obj, f.name), np.ndarray) and getattr(obj, f.name).shape == (n,)}
    return replace(obj, **parts, **extra)


Contract = tuple[date, float, bool]
"""``(expiry, strike, is_call)``."""


def view_of(chain: ChainSnapshot, analytics: ChainAnalytics, contracts: set[Contract], *,
            rate: float, lot_sizes: dict[date, int], snapshot_id: uuid.UUID) -> MarketView:
    """:func:`market_view_of` over the legs of ``contracts`` only, plus one more leg with a
    forward of each of their expiries (what a mark falls back to for an unquoted leg).

    The castle looks up the proposal's legs and the marks the positions' legs, so the
    verdicts and marks are those of the full view, at a fraction of its cost.
    """
    n = chain.n_legs
    mask = np.zeros(n, dtype=bool)
    day = chain.expiry
    expiries = {e for e, _, _ in contracts}
    for e in expiries:
        mine = day == np.datetime64(e, "D")
        for _, k, c in (x for x in contracts if x[0] == e):
            mask |= mine & (chain.strike == k) & (chain.is_call == c)
        first = np.flatnonzero(mine & np.isfinite(analytics.legs.forward) & ~mask)
        if first.size:
            mask[first[0]] = True
    keep = tuple(e for e in chain.expiries if e in expiries)
    sub_chain: ChainSnapshot = _slice(chain, mask, n, expiries=keep)
    legs: LegAnalytics = _slice(analytics.legs, mask, n)
    sub = replace(analytics, legs=legs,
                  expiries=tuple(e for e in analytics.expiries if e.expiry in expiries))
    return market_view_of(sub_chain, sub, rate=rate, lot_sizes=lot_sizes,
                          snapshot_id=snapshot_id)


def scheduled_news(symbol: str, day: date, calendar: MarketCalendar) -> tuple[NewsState, bool]:
    """The news gate's scheduled events around ``day`` (what news_ingest stores from the
    packaged event calendar and the NSE expiry calendar, with the rule table's actions),
    and whether any of them is active for ``symbol`` during the day's session."""
    from shared.domain.news.calendar import expiry_events, gate_events
    from shared.services.news_ingest import calendar_events

    session = calendar.session(day)
    if session is None:
        return NewsState(), False
    start, end = session.open - timedelta(days=1), session.close + timedelta(days=1)
    events = list(calendar_events(None))
    for sym in sorted({"NIFTY", "BANKNIFTY", symbol}):
        try:
            found = calendar.expiries(sym, start.date(), end.date())
        except Exception:  # noqa: BLE001 - outside the calendar's data: no expiry events
            continue
        events += expiry_events((sym, e.date, calendar.expiry_close(e)) for e in found)
    items = tuple(NewsItem(event_id=g.event.key, title=g.event.title,
                           occurs_at=g.event.occurs_at, window_minutes=g.window_minutes,
                           action=g.action, symbols=tuple(g.event.symbols))
                  for g in gate_events(events, start=start, end=end))
    event_day = any(
        (not it.symbols or symbol in it.symbols)
        and it.occurs_at - timedelta(minutes=it.window_minutes) < session.close
        and it.occurs_at + timedelta(minutes=it.window_minutes) >= session.open
        for it in items)
    return NewsState(items), event_day


@dataclass
class TenantTrack:
    """What the replay records of one tenant (mutable while running)."""

    tenant: DemoTenant
    bandit: ThompsonBandit = field(default_factory=ThompsonBandit)
    switches: list[TrippedSwitch] = field(default_factory=list)
    decisions: int = 0
    proposals: int = 0
    approved: int = 0
    blocked: int = 0
    rejected: int = 0
    no_trade: Counter[str] = field(default_factory=Counter)
    blocked_by: Counter[str] = field(default_factory=Counter)
    reduced_by: Counter[str] = field(default_factory=Counter)
    rejected_by: Counter[str] = field(default_factory=Counter)
    curve: list[tuple[datetime, float, float]] = field(default_factory=list)
    trips: int = 0


@dataclass
class ReplayState:
    """Everything a replay produced (mutable while running; :mod:`shared.replay.result`
    turns it into the frozen :class:`~shared.replay.result.ReplayResult`)."""

    config: ReplayConfig
    sessions: list[SessionPlan]
    skipped: list[Skipped]
    tracks: dict[uuid.UUID, TenantTrack]
    book: PaperBook
    memory: MarketMemory
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counters: Counter[str] = field(default_factory=Counter)
    spot_path: list[tuple[datetime, float]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    smiles: list[tuple[datetime, ChainSnapshot, ChainAnalytics, date | None]] = \
        field(default_factory=list)
    event_days: list[date] = field(default_factory=list)
    per_session: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0


def _plans(config: ReplayConfig, calendar: MarketCalendar) -> tuple[list[SessionPlan],
                                                                     list[Skipped]]:
    if config.directory is None:
        return simulated_sessions(config.symbol, config.start or DEFAULT_DATE,
                                  config.days or 1, seed=config.seed, calendar=calendar,
                                  n_expiries=config.n_expiries), []
    return recorded_sessions(config.directory, config.symbol, calendar=calendar,
                             day=config.start, days=config.days)


def run_replay(config: ReplayConfig, *, calendar: MarketCalendar | None = None,
               progress: Callable[[int, int], None] | None = None,
               workers: int | None = None) -> ReplayState:
    """Replay ``config``'s sessions in process (see the module docstring).

    Parameters
    ----------
    config
        What to replay.
    calendar
        The market calendar (default: the packaged one).
    progress
        Called as ``progress(done, total)`` after every snapshot (total = snapshots
        planned).
    workers
        Processes that simulate, parse and analyse simulated minutes ahead of the replay
        (forked; pure work, so the results are the same): 0 does it in line; None: one
        when the machine has two cores or more and ``fork`` is available.

    Raises
    ------
    ReplayInputError
        Bad input: unknown symbol, a day without a session, nothing to play.
    """
    from shared.costs import default_cost_schedule
    from shared.domain.risk.engine_costs import EngineCostModel
    from shared.rules import default_calendar, risk_free_rate
    from shared.services.chain_poll import analyse_snapshot

    t_start = time.perf_counter()
    calendar = calendar or default_calendar()
    workers = _workers(workers)
    t0 = _clock()
    plans, skipped = _plans(config, calendar)
    if config.max_snapshots is not None:
        plans = [replace(p, size=min(p.size, config.max_snapshots)) for p in plans]
    load_s = _clock() - t0
    schedule = default_cost_schedule()
    plans_known = set(schedule.plan_names)
    castles: dict[str, RiskCastle] = {}

    def castle_for(plan: str) -> RiskCastle:
        if plan not in castles:
            castles[plan] = RiskCastle.default(EngineCostModel(
                schedule, plan=plan if plan in plans_known else "standard"), force_paper=True)
        return castles[plan]

    engine = DecisionEngine()
    book = PaperBook(schedule)
    tracks = {}
    for t in config.tenants:
        tracks[t.tenant_id] = TenantTrack(t)
        book.add_tenant(t.tenant_id, t.policy.capital, t.plan)
    memory = MarketMemory(engine)
    if config.models not in ("auto", "har", "none"):
        raise ReplayInputError(f"--models must be 'auto', 'har' or 'none', not "
                               f"{config.models!r}")
    if config.models == "auto":
        from shared.replay.models import HISTORY_FILE

        config = replace(config, models="har" if HISTORY_FILE.is_file() else "none")
    if config.models == "har":
        from shared.replay.models import har_models, simulated_warmup

        t0 = _clock()
        memory.models = har_models()
        if config.directory is None:
            bars, ivs = simulated_warmup(plans[0].symbol, plans[0].day, seed=config.seed,
                                         calendar=calendar)
            memory.bars.update(bars)
            memory.iv_by_day.update(ivs)
        load_s += _clock() - t0
    st = ReplayState(config, plans, skipped, tracks, book, memory)
    st.timings["simulate"] += load_s
    first = calendar.session(plans[0].day)
    lock_until = (first.open if first else datetime.combine(plans[0].day, datetime.min.time(),
                                                            IST)) + timedelta(days=DRY_RUN_DAYS)
    policies = {t.tenant_id: t.policy for t in config.tenants}
    appetites = {t.tenant_id: t.appetite for t in config.tenants}
    global_switches: list[TrippedSwitch] = []
    total = sum(p.size for p in plans)
    done_n = 0
    last_asof: dict[str, datetime] = {}

    def tick() -> None:
        nonlocal done_n
        done_n += 1
        if progress is not None:
            progress(done_n, total)

    def timed(stage: str, t_from: float) -> float:
        now = _clock()
        st.timings[stage] += now - t_from
        return now

    for si, plan in enumerate(plans):
        news, event_day = scheduled_news(plan.symbol, plan.day, calendar)
        book.event_day = event_day
        if event_day:
            st.event_days.append(plan.day)
        sess = {"symbol": plan.symbol, "date": plan.day.isoformat(), "source": plan.source,
                "planned": plan.size, "published": 0, "stale": 0, "bad_chain": 0,
                "event_day": event_day, "jumps": len(plan.jumps)}
        st.per_session.append(sess)
        last_view: MarketView | None = None
        last_spot: float | None = None
        last_now: datetime | None = None
        smile_at = {0, max(plan.size // 2, 0), max(plan.size - 1, 0)} if si == 0 else set()
        index = -1
        for chain, done in _stream(plan, calendar, workers, st):
            index += 1
            sym, now = chain.symbol, chain.asof
            if sym in last_asof and now <= last_asof[sym]:
                sess["stale"] += 1
                st.counters["stale"] += 1
                tick()
                continue
            last_asof[sym] = now
            if done is None:
                t = _clock()
                done = analyse_snapshot(chain, calendar, risk_free_rate)
                t1 = timed("analyse", t)
                st.samples["snapshot → analysed"].append(t1 - t)
            chain, an = done.snapshot, done.analytics
            if an.bad:
                sess["bad_chain"] += 1
                st.counters["bad_chain"] += 1
                tick()
                continue
            sess["published"] += 1
            st.counters["snapshots"] += 1
            st.spot_path.append((now, float(chain.spot)))
            snapshot_id = uuid.uuid5(_NAMESPACE, f"{sym}|{now.isoformat()}|{chain.source}")

            t = _clock()
            st.memory.observe(chain, an)
            step = st.memory.step(chain, an, rate=done.rate, lot_sizes=done.lot_sizes,
                                  snapshot_id=snapshot_id)
            market = step.decision
            if index in smile_at:
                st.smiles.append((now, chain, an, step.near.expiry if step.near else None))
            needed = book.open_contracts() | {
                (c.chosen.expiry, float(leg.strike), leg.option_type == OptionType.CE)
                for c in market.candidates.values() for leg in c.chosen.legs}
            view = view_of(chain, an, needed, rate=done.rate, lot_sizes=done.lot_sizes,
                           snapshot_id=snapshot_id) if needed else None
            t1 = timed("decide", t)
            st.samples["analysed → market decision"].append(t1 - t)
            if view is not None:
                last_view = view
            last_spot, last_now = float(chain.spot), now

            # the book: marks, then targets and stops
            t = _clock()
            if view is not None and book.has_open():
                for pos, why in book.mark(view, now):
                    _close(st, pos, now=now, reason=why, market=view)
            t = timed("book", t)

            market_open = calendar.is_market_open(now)
            for tid, track in tracks.items():
                tenant = track.tenant
                t = _clock()
                portfolio = book.portfolio(tid, now)
                decision = engine.for_tenant(market, TenantInputs(
                    tenant_id=tid, policy=policies[tid], appetite=appetites[tid],
                    portfolio=portfolio, bandit=track.bandit))
                t = timed("decide", t)
                track.decisions += 1
                proposal = decision.proposal
                if proposal is None:
                    nt = decision.no_trade
                    track.no_trade[nt.reason_code if nt else "no_trade"] += 1
                    continue
                track.proposals += 1
                st.counters["proposals"] += 1
                assert view is not None  # a proposal is one of the candidates
                switches = SwitchStates(tuple(global_switches) + tuple(track.switches))
                ctx = RiskContext(
                    now=now, tenant_id=tid, proposal=proposal, market=view,
                    policy=policies[tid], regime=proposal.regime, news=news,
                    portfolio=portfolio, switches=switches, models=(),
                    market_open=market_open, dry_run=tenant.dry_run,
                    live_order=tenant.live_order,
                    dry_run_until=lock_until if tenant.dry_run else None)
                try:
                    verdict = castle_for(tenant.plan).evaluate(ctx)
                except PermanentError as exc:  # invalid, or no cost data for the date
                    t1 = timed("risk", t)
                    st.samples["decision → verdict"].append(t1 - t)
                    track.rejected += 1
                    track.rejected_by[exc.reason_code] += 1
                    st.counters["rejected"] += 1
                    st.marks.append({"at": now, "tenant": tenant.name,
                                     "structure": proposal.structure.value,
                                     "outcome": "blocked", "wall": f"rejected:{exc.reason_code}"})
                    continue
                _apply_switches(verdict, now, tid, track, global_switches)
                for v in verdict.verdicts:
                    if not v.blocked and v.numbers.get("size_multiplier", 1.0) < 1.0:
                        track.reduced_by[v.wall] += 1
                t1 = timed("risk", t)
                st.samples["decision → verdict"].append(t1 - t)
                if not verdict.approved:
                    track.blocked += 1
                    track.blocked_by[verdict.blocked_by or "?"] += 1
                    st.counters["blocked"] += 1
                    st.marks.append({"at": now, "tenant": tenant.name,
                                     "structure": proposal.structure.value,
                                     "outcome": "blocked", "wall": verdict.blocked_by})
                    continue
                track.approved += 1
                st.counters["approved"] += 1
                t = _clock()
                _open(st, tenant, proposal, verdict, ctx, view, now)
                t1 = timed("book", t)
                st.samples["verdict → paper position"].append(t1 - t)

            t = _clock()
            for tid, track in tracks.items():
                r_n, r_c = book.realised(tid)
                o_n, o_c = book.open_pnl(tid, view, now)
                track.curve.append((now, r_n + o_n, r_c + o_c))
            timed("book", t)
            tick()

        # the session's end: settle what expires today, carry or close the rest
        t = _clock()
        if last_spot is not None and last_now is not None:
            book.end_of_day({plan.symbol: last_spot})
            for led in list(book.ledgers.values()):
                for pos in list(led.open):
                    if pos.symbol == plan.symbol and pos.last_expiry <= plan.day:
                        _close(st, pos, now=last_now, reason="expiry",
                               settlement_spot=last_spot)
            nxt = plans[si + 1] if si + 1 < len(plans) else None
            carry = nxt is not None and nxt.symbol == plan.symbol and \
                nxt.day == calendar.next_trading_day(plan.day)
            if not carry:
                reason = "replay_end" if nxt is None else "session_end"
                for led in list(book.ledgers.values()):
                    for pos in list(led.open):
                        if pos.symbol == plan.symbol:
                            _close(st, pos, now=last_now, reason=reason, market=last_view)
            if not carry or nxt is None:
                for tid, track in tracks.items():  # the curve's last point: all closed
                    r_n, r_c = book.realised(tid)
                    o_n, o_c = book.open_pnl(tid, last_view, last_now)
                    track.curve.append((last_now, r_n + o_n, r_c + o_c))
        timed("book", t)
        logger.info("replayed %s %s: %s", plan.symbol, plan.day, sess)
    st.wall_s = time.perf_counter() - t_start
    return st


def _workers(requested: int | None) -> int:
    import multiprocessing
    import os

    if requested is not None:
        return max(int(requested), 0)
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return 1 if (os.cpu_count() or 1) >= 2 else 0


_WORK: dict[str, Any] = {}
"""What a forked worker reads: the session plan and the calendar (set before the fork)."""


def _produce(i: int) -> tuple[Any, float, float]:
    """In a worker: minute ``i`` simulated, parsed and analysed (chain_poll's analysis)."""
    from shared.rules import risk_free_rate
    from shared.services.chain_poll import analyse_snapshot

    plan: SessionPlan = _WORK["plan"]
    t0 = _clock()
    assert plan.minute is not None
    chain = plan.minute(i)
    t1 = _clock()
    done = analyse_snapshot(chain, _WORK["calendar"], risk_free_rate)
    return done, t1 - t0, _clock() - t1


def _stream(plan: SessionPlan, calendar: MarketCalendar, workers: int, st: ReplayState
            ) -> Any:
    """``(snapshot, analysed or None)`` in time order: in line (the caller analyses), or
    from ``workers`` forked processes that simulate and analyse ahead."""
    if workers < 1 or plan.minute is None or plan.size < 8:
        it = itertools.islice(plan.snapshots(), plan.size)
        while True:
            t = _clock()
            try:
                chain = next(it)
            except StopIteration:
                st.timings["simulate"] += _clock() - t
                return
            st.timings["simulate"] += _clock() - t
            yield chain, None
        return
    import multiprocessing

    _WORK.update(plan=plan, calendar=calendar)
    ctx = multiprocessing.get_context("fork")
    try:
        with ctx.Pool(workers) as pool:
            results = pool.imap(_produce, range(plan.size), chunksize=4)
            while True:
                t = time.perf_counter()
                try:
                    done, t_sim, t_an = next(results)
                except StopIteration:
                    break
                st.timings["wait"] = st.timings.get("wait", 0.0) + time.perf_counter() - t
                st.timings["simulate"] += t_sim
                st.timings["analyse"] += t_an
                st.samples["snapshot → analysed"].append(t_an)
                yield done.snapshot, done
    finally:
        _WORK.clear()


def _close(st: ReplayState, pos: BookPosition, *, now: datetime, reason: str,
           market: MarketView | None = None, settlement_spot: float | None = None) -> None:
    trade = st.book.close(pos, now=now, reason=reason, market=market,
                          settlement_spot=settlement_spot)
    track = st.tracks[pos.tenant_id]
    arms = {a.value for a in track.bandit.arms}
    if trade.regime and trade.structure in arms:
        track.bandit = track.bandit.update(trade.regime, trade.structure, trade.bandit_reward)
    st.counters[f"closed_{reason}"] += 1


def _apply_switches(verdict: Any, now: datetime, tenant_id: uuid.UUID, track: TenantTrack,
                    global_rows: list[TrippedSwitch]) -> None:
    """Persist the verdict's trips and resets in memory (as ``record_switch_change``)."""
    for trip in verdict.trips:
        row = TrippedSwitch(switch=trip.switch, scope=trip.scope, scope_key=trip.scope_key,
                            reason=trip.reason, actor="auto", at=now, tenant_id=trip.tenant_id)
        (global_rows if trip.tenant_id is None else track.switches).append(row)
        track.trips += 1
    for reset in verdict.resets:
        rows = global_rows if reset.tenant_id is None else track.switches
        rows[:] = [r for r in rows if not (
            r.switch == reset.switch and r.scope == reset.scope and r.actor == "auto"
            and _same_key(r.scope, r.scope_key, reset.scope_key))]


def _open(st: ReplayState, tenant: DemoTenant, proposal: Any, verdict: Any, ctx: RiskContext,
          view: MarketView, now: datetime) -> None:
    """The approved proposal into the paper book (as risk_check records it), with notify's
    card for its target and stop."""
    from shared.domain.notify.render import render_signal

    m = verdict.size_multiplier
    signal = verdict.to_signal(verdict_id=uuid.uuid5(_NAMESPACE, str(proposal.proposal_id)),
                               proposal=proposal, decided_at=now)
    card = render_signal(signal, proposal, tenant_name=tenant.name, image=False).data
    position = ctx.position
    pos = st.book.open(proposal, lots=sized_lots(proposal, m), market=view, now=now,
                       margin=position.capital_required * m,
                       entry_premium_touch=-position.net_premium * m,
                       strategy=ctx.strategy_key, card=card)
    if pos is None:
        return
    st.marks.append({"at": now, "tenant": tenant.name, "structure": proposal.structure.value,
                     "outcome": "approved", "wall": None})
    st.approvals.append({"at": now, "tenant": tenant.name, "proposal": proposal,
                         "lots": sized_lots(proposal, m), "m": m, "spot": view.spot,
                         "costs": verdict.total_costs, "net_ev": verdict.net_ev,
                         "paper": signal.dry_run,
                         "reasons": tuple(str(r.get("reason") or r.get("name"))
                                          for r in card.get("reasons") or ()),
                         "target": card.get("target"), "stop": card.get("stop")})

