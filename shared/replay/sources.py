"""The sessions a replay plays: simulated days, or recorded payloads grouped by day.

* **Simulated** (:func:`simulated_sessions`): one :class:`~shared.adapters.providers.
  simulator.MarketSimulator` per trading day, played minute by minute: each snapshot is
  :meth:`~shared.adapters.providers.simulator.MarketSimulator.snapshot_at`, the snapshot
  the NSE parser makes of that minute's NSE-format payload (what chain_poll would fetch
  through the :class:`~shared.adapters.providers.simulator.SimulatorProvider` and parse),
  built from the simulator's arrays: the replay skips the wire format (the JSON round
  trip was most of the simulation time), and ``tests/unit/test_simulator_snapshot.py``
  tests that the two are identical, array by array, minute by minute. Day 1 uses the
  seed; a later day ``k`` a seed derived from ``(seed, k)`` and starts from the previous
  day's last spot times a seeded overnight gap (``N(0, 0.4 %)``, as
  :func:`shared.domain.models.wings.simulate_sessions` chains days), so a multi-day
  replay is one continuous path.
* **Recorded** (:func:`recorded_sessions`): every ``*.json`` file of a directory, read
  by :class:`~shared.adapters.providers.replay.ReplayProvider` and parsed by it (wire
  format detected per file). Each file is one snapshot; snapshots are grouped by their own
  symbol and IST date, each group one session in time order. A payload for another symbol
  than the one replayed, an equity chain (e.g. RELIANCE), an unparsable payload, a
  payload of another date than ``--date``, and a repeated snapshot time are skipped with
  the reason. Upstox payloads carry no time: with ``--date`` they are played on that
  session's clock (file order, one minute apart from the open, as ``make run`` plays them
  on its session clock); without it they are skipped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from shared.domain.calendar import IST, CalendarDataError, MarketCalendar
from shared.domain.chain import ChainSnapshot
from shared.replay.config import ReplayInputError

__all__ = ["SessionPlan", "Skipped", "recorded_sessions", "simulated_sessions"]

logger = logging.getLogger(__name__)

OVERNIGHT_GAP_SD = 0.004


@dataclass(frozen=True, slots=True)
class Skipped:
    """A payload (or session) left out of the replay, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class SessionPlan:
    """One session to play.

    Attributes
    ----------
    symbol, day
        The underlying and the IST session date.
    source
        ``simulator:seed=S`` or ``replay:<directory>``.
    size
        How many snapshots it will yield (for the progress bar).
    snapshots
        A function returning a fresh iterator over the parsed snapshots, in time order
        (simulated ones are simulated and parsed as they are pulled).
    jumps
        Simulated sessions: the minutes with a simulated jump (informational).
    minute
        Simulated sessions: the snapshot of minute ``i`` on its own (any order, the same
        result), so that a worker process can produce them ahead of the replay.
    """

    symbol: str
    day: date
    source: str
    size: int
    snapshots: Callable[[], Iterator[ChainSnapshot]]
    jumps: tuple[int, ...] = field(default=())
    minute: Callable[[int], ChainSnapshot] | None = None


def _check_symbol(symbol: str, calendar: MarketCalendar) -> str:
    sym = symbol.strip().upper()
    if sym not in calendar.symbols:
        raise ReplayInputError(f"unknown symbol {symbol!r}: qs replay plays the index "
                               f"options {', '.join(sorted(calendar.symbols))}")
    return sym


def _session_days(calendar: MarketCalendar, start: date, days: int) -> list[date]:
    try:
        if calendar.session(start) is None or not calendar.is_trading_day(start):
            raise ReplayInputError(f"{start.isoformat()} has no NSE session (a weekend or "
                                   f"holiday): pick a trading day")
        out = [start]
        while len(out) < days:
            out.append(calendar.next_trading_day(out[-1]))
    except CalendarDataError as exc:
        raise ReplayInputError(str(exc)) from None
    return out


def simulated_sessions(symbol: str, start: date, days: int, *, seed: int,
                       calendar: MarketCalendar, n_expiries: int = 4) -> list[SessionPlan]:
    """``days`` consecutive simulated sessions of ``symbol`` from ``start`` (see the
    module docstring). Raises :class:`ReplayInputError` for an unknown symbol, a day
    without a session, or a date outside the calendar."""
    from shared.adapters.providers.simulator import MarketSimulator

    sym = _check_symbol(symbol, calendar)
    if days < 1:
        raise ReplayInputError(f"--days must be at least 1, got {days}")
    if seed < 0:
        raise ReplayInputError(f"--seed must be a non-negative integer, got {seed}")
    label = f"simulator:seed={seed}"
    plans = []
    spot0: float | None = None
    for k, day in enumerate(_session_days(calendar, start, days)):
        day_seed = seed if k == 0 else int(
            np.random.SeedSequence([seed, k]).generate_state(1)[0] % (2**31 - 1))
        try:
            sim = MarketSimulator(sym, day, seed=day_seed, calendar=calendar, spot0=spot0,
                                  n_expiries=n_expiries)
        except (ValueError, CalendarDataError) as exc:
            raise ReplayInputError(f"cannot simulate {sym} on {day.isoformat()}: {exc}") from None
        gap = OVERNIGHT_GAP_SD * float(np.random.default_rng(
            np.random.SeedSequence([seed, k, 1])).standard_normal())
        spot0 = float(sim.spot_path()[-1]) * math.exp(gap)

        def minute(i: int, sim: MarketSimulator = sim) -> ChainSnapshot:
            # = SimulatorProvider(sim).parse(SimulatorProvider(sim).fetch(sim.symbol,
            # sim.time_at(i))), without the JSON (see the module docstring)
            return sim.snapshot_at(i)

        def play(sim: MarketSimulator = sim,
                 minute: Callable[[int], ChainSnapshot] = minute) -> Iterator[ChainSnapshot]:
            return (minute(i) for i in range(sim.minutes()))

        plans.append(SessionPlan(sym, day, label, sim.minutes(), play,
                                 tuple(i for i, _ in sim.jumps()), minute))
    return plans


def recorded_sessions(directory: Path, symbol: str, *, calendar: MarketCalendar,
                      day: date | None = None, days: int | None = None
                      ) -> tuple[list[SessionPlan], list[Skipped]]:
    """The sessions in ``directory`` (see the module docstring) and what was skipped.

    Raises
    ------
    ReplayInputError
        The directory does not exist, holds no ``*.json`` file, or nothing in it can be
        played (every skip is listed in the message).
    """
    from shared.adapters.providers import PayloadRejected
    from shared.adapters.providers.replay import ReplayProvider

    sym = _check_symbol(symbol, calendar)
    if day is not None:
        _session_days(calendar, day, 1)
    try:
        provider = ReplayProvider(directory)
    except FileNotFoundError as exc:
        raise ReplayInputError(str(exc)) from None
    label = f"replay:{directory}"
    skipped: list[Skipped] = []
    clock: datetime | None = None
    if day is not None:
        session = calendar.session(day)
        assert session is not None
        clock = session.open
    found: dict[tuple[str, date], dict[datetime, ChainSnapshot]] = {}
    placeholder = datetime(2000, 1, 1, tzinfo=IST)
    for path in provider.files:
        name = path.name
        try:
            raw = provider.fetch(sym, placeholder)  # detects the wire format
        except PayloadRejected as exc:
            skipped.append(Skipped(name, f"payload rejected ({exc.reason_code}): {exc.reason}"))
            continue
        if raw.source == "upstox":
            if clock is None:
                skipped.append(Skipped(name, "an Upstox payload carries no time: give --date "
                                             "to play it on that session's clock"))
                continue
            raw = replace(raw, fetched_at=clock)
            clock += timedelta(minutes=1)
        try:
            snap = provider.parse(raw)
        except PayloadRejected as exc:
            skipped.append(Skipped(name, f"payload rejected ({exc.reason_code}): {exc.reason}"))
            continue
        if snap.symbol != sym:
            if snap.symbol not in calendar.symbols:
                why = (f"an equity (or unknown) option chain of {snap.symbol}: qs replay "
                       f"plays index option chains ({', '.join(sorted(calendar.symbols))})")
            else:
                why = f"a {snap.symbol} payload: replaying {sym} (use --symbol {snap.symbol})"
            skipped.append(Skipped(name, why))
            continue
        d = snap.asof.astimezone(IST).date()
        if day is not None and d != day:
            skipped.append(Skipped(name, f"a payload of {d.isoformat()}: replaying "
                                         f"{day.isoformat()}"))
            continue
        group = found.setdefault((snap.symbol, d), {})
        if snap.asof in group:
            skipped.append(Skipped(name, f"repeats the snapshot time {snap.asof.isoformat()} "
                                         "(stale, as chain_poll records it)"))
            continue
        group[snap.asof] = snap
    keys = sorted(found, key=lambda k: k[1])
    if days is not None:
        for key in keys[days:]:
            skipped.append(Skipped(f"{key[0]} {key[1].isoformat()}",
                                   f"beyond --days {days}"))
        keys = keys[:days]
    if not keys:
        detail = "; ".join(f"{s.item}: {s.reason}" for s in skipped) or "no payloads"
        raise ReplayInputError(f"nothing to replay in {directory} for {sym}: {detail}")
    plans = []
    for key in keys:
        snaps = tuple(found[key][t] for t in sorted(found[key]))
        plans.append(SessionPlan(key[0], key[1], label, len(snaps),
                                 lambda snaps=snaps: iter(snaps)))
    return plans, skipped
