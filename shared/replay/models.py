"""Optional models for a replay (``qs replay --models har``) and the history they need.

Without a model (``--models none``: ``ModelSource.none()``, a deployment whose registry is
empty) the vol forecast sits out, decide's odds are the market's own implied density, the
expected edge before costs is about zero and the cost wall blocks every proposal, so
nothing trades.

``--models har`` (the default when the kit's history is there, as ``make run`` trains
them) serves the nightly retrain's vol models in process: log-HAR on
Garman-Klass daily variance (:class:`shared.domain.models.vol.HarModel`, ``log=True``),
fitted on the whole of the kit's real NIFTY daily history
(``../shared/fixtures/index_history/nifty50_daily_2000-2019_yahoo_VatsalSin.csv``, 4,954
sessions) for the 1-, 5- and 22-day horizons: the artifact
:class:`~shared.domain.models.trainers.HarVolTrainer` would promote (its walk-forward
validation is not rerun). The forecast needs 22 completed sessions of bars, so a simulated
replay is **warmed up**: :data:`WARMUP_SESSIONS` earlier sessions are simulated (seeded
from the replay's seed, chained day to day) and give decide its daily bars (OHLC of the
minute path) and IV history (the model ATM IV of the last minute's nearest expiry at least
two days away), with their levels scaled so the last warm-up close is the first replayed
session's previous close. Recorded payloads get no warm-up (one snapshot a day has no
history before it), so their forecasts still sit out.
"""

from __future__ import annotations

import functools
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from shared.domain.calendar import MarketCalendar
from shared.replay.config import ReplayInputError

__all__ = ["HISTORY_FILE", "WARMUP_SESSIONS", "har_models", "simulated_warmup"]

HISTORY_FILE = (Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
                / "index_history" / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv")
WARMUP_SESSIONS = 25
"""Warm-up sessions before a simulated replay with models (HAR needs 22 completed ones)."""


@functools.lru_cache(maxsize=4)
def har_models(history: Path = HISTORY_FILE) -> Any:
    """A :class:`shared.services.decide.ModelSource` serving log-HAR fits (horizons 1, 5,
    22 days; version 0) on the daily history in ``history`` (fitted once per process, as
    a warm decide instance keeps its models)."""
    from shared.domain.models.vol import HarModel, floor_variance, garman_klass_variance
    from shared.marketdata.history import DailyBars, read_history
    from shared.services.decide import VOL_MODELS, ModelSource

    if not history.is_file():
        raise ReplayInputError(f"--models har needs the kit's daily NIFTY history at {history}")
    bars = read_history(history, symbol="NIFTY")
    assert isinstance(bars, DailyBars)
    rv = np.nan_to_num(floor_variance(garman_klass_variance(bars.open, bars.high, bars.low,
                                                            bars.close)), nan=1e-10)
    fits = {name: HarModel(log=True).fit(rv, h) for h, name in VOL_MODELS.items()}
    return ModelSource(lambda model_type: (0, fits[model_type]) if model_type in fits
                       else None)


def simulated_warmup(symbol: str, first_day: date, *, seed: int, calendar: MarketCalendar,
                     sessions: int = WARMUP_SESSIONS, min_days: float = 2.0
                     ) -> tuple[dict[date, list[float]], dict[date, float]]:
    """Daily ``[open, high, low, close]`` and ATM IVs of ``sessions`` simulated sessions
    before ``first_day`` (see the module docstring)."""
    from shared.adapters.providers.simulator import MarketSimulator

    days: list[date] = []
    d = first_day
    for _ in range(sessions):
        d = calendar.previous_trading_day(d)
        days.append(d)
    days.reverse()
    target = MarketSimulator(symbol, first_day, seed=seed, calendar=calendar,
                             n_expiries=1).prev_close
    bars: dict[date, list[float]] = {}
    ivs: dict[date, float] = {}
    spot0: float | None = None
    for k, day in enumerate(days):
        sub = int(np.random.SeedSequence([seed, 7919, k]).generate_state(1)[0] % (2**31 - 1))
        sim = MarketSimulator(symbol, day, seed=sub, calendar=calendar, spot0=spot0,
                              n_expiries=4)
        p = np.round(sim.spot_path(), 2)
        bars[day] = [float(p[0]), float(p.max()), float(p.min()), float(p[-1])]
        last = sim.minutes() - 1
        t, iv = sim.year_fractions(last), sim.atm_iv(last)
        ok = [j for j in range(len(t)) if t[j] * 365 >= min_days]
        if ok:
            ivs[day] = float(iv[ok[0]])
        spot0 = float(p[-1]) * math.exp(0.004 * float(np.random.default_rng(
            np.random.SeedSequence([seed, 7919, k, 1])).standard_normal()))
    scale = target / bars[days[-1]][3]
    return {d: [x * scale for x in b] for d, b in bars.items()}, ivs
