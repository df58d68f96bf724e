"""decide's market-wide state in memory, and its market stage over it. Pure.

:class:`shared.services.decide.DecideService` reads this state from Postgres for every
snapshot; here it lives in a :class:`MarketMemory` that the replay feeds with every
published snapshot, so a multi-day replay learns across its days as the product does:

* **learning**: the symbol's :class:`~shared.domain.decide.learning.SignalState`; each
  market run with a regime is kept (:class:`~shared.domain.decide.learning.PastRun`) and
  scored by :func:`~shared.domain.decide.learning.score_runs` against the first snapshot
  at least ``score_horizon`` (1 day) later, before that snapshot's decision
  (``unscored_runs`` + ``score_runs`` in ``DecideService.market``);
* **IV history**: per earlier session, the ATM IV of its last snapshot's nearest expiry
  at least ``min_days`` away (``load_iv_history``), at most 250 sessions;
* **spot bars**: daily OHLC of the published snapshots up to now, at most 300 sessions,
  and today's snapshot spots (``load_spot_history``);
* **models**: a ``ModelSource`` (default ``ModelSource.none()``: the forecasts sit out
  with their reasons, exactly as decide without a registry; see
  :mod:`shared.replay.models`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from shared.domain.analytics import ChainAnalytics, ExpiryAnalytics
from shared.domain.calendar import IST
from shared.domain.chain import ChainSnapshot
from shared.domain.decide.engine import DecisionEngine, MarketDecision
from shared.domain.decide.forecasts import SpotBars
from shared.domain.decide.learning import PastRun, SignalState, score_runs
from shared.domain.decide.structures import NoUsableExpiry, choose_expiry

__all__ = ["MarketMemory", "MarketStep"]

IV_SESSIONS = 250
BAR_SESSIONS = 300


@dataclass(frozen=True, slots=True)
class MarketStep:
    """One snapshot's market stage: the decision and the expiry decide traded (or None)."""

    decision: MarketDecision
    near: ExpiryAnalytics | None
    scored: int


class MarketMemory:
    """decide's market-wide state for one symbol (see the module docstring).

    Parameters
    ----------
    engine
        The decision engine (default configuration, as the service builds it).
    score_horizon
        How old a market run must be before it is scored (the service's default, 1 day).
    """

    def __init__(self, engine: DecisionEngine, *, score_horizon: timedelta = timedelta(days=1),
                 models: Any = None) -> None:
        from shared.services.decide import ModelSource

        self.engine = engine
        self.horizon = score_horizon
        self.models = models if models is not None else ModelSource.none()
        self.served: dict[str, int] = {}
        self.state = SignalState()
        self.pending: list[PastRun] = []
        self.bars: dict[date, list[float]] = {}  # day -> [open, high, low, close]
        self.iv_by_day: dict[date, float] = {}
        self.today: date | None = None
        self.intraday: list[float] = []

    def observe(self, chain: ChainSnapshot, analytics: ChainAnalytics) -> None:
        """Record a published snapshot (its spot in the bars, its near ATM IV)."""
        d = chain.asof.astimezone(IST).date()
        s = float(chain.spot)
        if d != self.today:
            self.today, self.intraday = d, []
        self.intraday.append(s)
        bar = self.bars.get(d)
        if bar is None:
            self.bars[d] = [s, s, s, s]
        else:
            bar[1], bar[2], bar[3] = max(bar[1], s), min(bar[2], s), s
        min_days = self.engine.config.min_days
        usable = [e for e in analytics.expiries
                  if math.isfinite(e.atm_iv) and e.t * 365 >= min_days]
        if usable:  # stored NaN is NULL: the day's last snapshot that has one counts
            self.iv_by_day[d] = float(min(usable, key=lambda e: e.t).atm_iv)

    def iv_history(self, today: date) -> list[float]:
        days = sorted(d for d in self.iv_by_day if d < today)[-IV_SESSIONS:]
        return [self.iv_by_day[d] for d in days]

    def spot_bars(self) -> SpotBars:
        days = sorted(self.bars)[-BAR_SESSIONS:]
        ohlc = np.array([self.bars[d] for d in days], dtype=np.float64).reshape(-1, 4)
        return SpotBars(dates=np.array(days, dtype="datetime64[D]"), open=ohlc[:, 0],
                        high=ohlc[:, 1], low=ohlc[:, 2], close=ohlc[:, 3])

    def step(self, chain: ChainSnapshot, analytics: ChainAnalytics, *, rate: float,
             lot_sizes: dict[date, int], snapshot_id: uuid.UUID) -> MarketStep:
        """Score the due runs, then run the market stage on ``chain`` (which must have been
        :meth:`observe`-d) as ``DecideService.market`` does."""
        from shared.services.decide import forecasts

        asof: datetime = chain.asof
        due = [r for r in self.pending if r.asof <= asof - self.horizon]
        if due:
            self.state, _ = score_runs(self.state, due, chain.spot, asof)
            self.pending = [r for r in self.pending if r.asof > asof - self.horizon]
        today = asof.astimezone(IST).date()
        bars = self.spot_bars()
        try:
            near: ExpiryAnalytics | None = choose_expiry(
                analytics, min_days=self.engine.config.min_days, chain=chain)
        except NoUsableExpiry:
            near = None
        fc = forecasts(self.models, bars.before(np.datetime64(today, "D")),
                       near.t if near is not None else None)
        decision = self.engine.market(
            chain, analytics, snapshot_id=snapshot_id, rate=rate, lot_sizes=lot_sizes,
            state=self.state, iv_history=self.iv_history(today),
            closes_intraday=list(self.intraday), closes_daily=[float(c) for c in bars.close],
            vol_forecast=fc.vol, p_up=fc.p_up, news=None, models=fc.models,
            reasons=fc.reasons)
        self.served.update(fc.models)
        if decision.regime is not None:
            self.pending.append(PastRun(
                asof=asof, spot=float(chain.spot),
                atm_iv=near.atm_iv if near is not None else None, regime=decision.regime.label,
                readings=tuple((r.name, r.axis.value, float(r.score), bool(r.available))
                               for r in decision.readings)))
        return MarketStep(decision, near, len(due))
