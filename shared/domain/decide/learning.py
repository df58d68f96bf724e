"""Layer 2's learning state, and how realised outcomes update it. Pure.

:class:`SignalState` holds, per underlying, the Bayesian signal weights
(:class:`~shared.domain.decide.combine.SignalWeights`) and one circuit breaker per signal
(:class:`~shared.domain.decide.combine.CircuitBreaker`). It is market-wide: a signal's
track record does not depend on who traded it.

Scoring a past reading
----------------------
A market run at time :math:`t_0` (spot :math:`S_0`, ATM IV :math:`\\sigma_0`, annualised)
is scored at a later snapshot :math:`t_1` (spot :math:`S_1`) once
:math:`t_1 - t_0 \\ge` the horizon. With :math:`r = \\ln(S_1/S_0)` and
:math:`\\tau = (t_1 - t_0)` in ACT/365 years (the analytics' convention for
:math:`\\sigma_0`), the realised outcome per axis is

* direction: :math:`y = r` (a bullish score was right when the index rose);
* volatility: :math:`y = |r| - \\sigma_0 \\sqrt{\\tau} \\sqrt{2/\\pi}`, the absolute move
  minus the absolute move the options priced (:math:`E|X| = s\\sqrt{2/\\pi}` for
  :math:`X \\sim N(0, s^2)`): positive when the market moved more than implied (a long-vol
  score was right).

Every available reading with a non-zero score then updates its weight
(:meth:`SignalWeights.update`) in the regime it was read in, and its breaker records
whether it was right (:meth:`CircuitBreaker.record`); no information (a zero outcome)
changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from shared.domain.decide.combine import (
    BreakerConfig,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    SignalWeights,
    outcome_is_good,
)

__all__ = ["PastRun", "ScoredRun", "SignalState", "realised_outcomes", "score_runs"]

_FORMAT = "quantsentinel.decide.signal_state/v1"
YEAR = timedelta(days=365)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _breaker_json(b: CircuitBreaker) -> dict[str, Any]:
    t = b.last_transition
    return {"state": b.state.value, "recent": list(b.recent), "consecutive_bad": b.consecutive_bad,
            "opened_at": None if b.opened_at is None else b.opened_at.isoformat(),
            "trial_good": b.trial_good,
            "last_transition": None if t is None else {
                "at": t.at.isoformat(), "from": t.from_state.value, "to": t.to_state.value,
                "reason": t.reason}}


def _breaker_of(name: str, d: Mapping[str, Any], config: BreakerConfig) -> CircuitBreaker:
    t = d.get("last_transition")
    return CircuitBreaker(
        name=name, config=config, state=BreakerState(d["state"]),
        recent=tuple(bool(x) for x in d.get("recent", ())),
        consecutive_bad=int(d.get("consecutive_bad", 0)), opened_at=_dt(d.get("opened_at")),
        trial_good=int(d.get("trial_good", 0)),
        last_transition=None if t is None else BreakerTransition(
            at=datetime.fromisoformat(t["at"]), from_state=BreakerState(t["from"]),
            to_state=BreakerState(t["to"]), reason=str(t["reason"])))


@dataclass(frozen=True, slots=True)
class SignalState:
    """The market-wide learning state of layer 2 for one underlying: the Bayesian weights
    and one circuit breaker per signal (absent: closed, never tested)."""

    weights: SignalWeights = field(default_factory=SignalWeights)
    breakers: Mapping[str, CircuitBreaker] = field(default_factory=dict)
    breaker_config: BreakerConfig = field(default_factory=BreakerConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "breakers", MappingProxyType(dict(self.breakers)))

    def breaker(self, name: str) -> CircuitBreaker:
        return self.breakers.get(name) or CircuitBreaker(name, config=self.breaker_config)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys); :meth:`from_json` reads it back. The breaker
        config is code, not state: it is not stored, and :meth:`from_json` applies the
        caller's."""
        w = self.weights
        doc = {"format": _FORMAT, "prior": [w.prior_a, w.prior_b],
               "weights": {f"{r}|{s}": list(ab) for (r, s), ab in w.posteriors.items()},
               "breakers": {n: _breaker_json(b) for n, b in self.breakers.items()}}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any] | None,
                  breaker_config: BreakerConfig | None = None) -> SignalState:
        """The state :meth:`to_json` wrote (None or empty: the initial state)."""
        config = breaker_config or BreakerConfig()
        if data is None or data == "" or data == {}:
            return cls(breaker_config=config)
        doc = json.loads(data) if isinstance(data, str | bytes) else dict(data)
        if doc.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} document")
        a, b = doc["prior"]
        posteriors = {}
        for key, (pa, pb) in doc["weights"].items():
            regime, _, signal = key.partition("|")
            posteriors[(regime, signal)] = (float(pa), float(pb))
        return cls(weights=SignalWeights(prior_a=float(a), prior_b=float(b),
                                         posteriors=posteriors),
                   breakers={n: _breaker_of(n, d, config) for n, d in doc["breakers"].items()},
                   breaker_config=config)


@dataclass(frozen=True, slots=True)
class PastRun:
    """What a stored market run needs to be scored: when, where, the regime it was read in,
    and its readings as ``(name, axis, score, available)``."""

    asof: datetime
    spot: float
    atm_iv: float | None
    regime: str
    readings: tuple[tuple[str, str, float, bool], ...]


@dataclass(frozen=True, slots=True)
class ScoredRun:
    """One run's realised outcomes and how many readings they updated."""

    direction: float
    volatility: float | None
    updated: int


def realised_outcomes(run: PastRun, spot: float, now: datetime) -> tuple[float, float | None]:
    """``(direction, volatility)`` outcomes of ``run`` at ``spot`` and ``now`` (see the
    module docstring); the volatility outcome is None without a usable ATM IV."""
    if not (run.spot > 0 and spot > 0):
        raise ValueError("spots must be positive")
    r = math.log(spot / run.spot)
    tau = (now - run.asof) / YEAR
    if run.atm_iv is None or not (math.isfinite(run.atm_iv) and run.atm_iv > 0) or tau <= 0:
        return r, None
    return r, abs(r) - run.atm_iv * math.sqrt(tau) * math.sqrt(2.0 / math.pi)


def score_runs(state: SignalState, runs: Iterable[PastRun], spot: float, now: datetime
               ) -> tuple[SignalState, tuple[ScoredRun, ...]]:
    """Fold the realised outcomes of ``runs`` (oldest first) into ``state``."""
    weights = state.weights
    breakers = dict(state.breakers)
    scored = []
    for run in sorted(runs, key=lambda r: r.asof):
        direction, vol = realised_outcomes(run, spot, now)
        outcome = {"direction": direction, "volatility": vol}
        n = 0
        for name, axis, score, available in run.readings:
            y = outcome.get(axis)
            if not available or y is None or score == 0.0:
                continue
            good = outcome_is_good(score, y)
            if good is None:
                continue
            weights = weights.update(name, run.regime, score, y)
            breaker = breakers.get(name) or CircuitBreaker(name, config=state.breaker_config)
            breakers[name] = breaker.record(good, now)
            n += 1
        scored.append(ScoredRun(direction, vol, n))
    return SignalState(weights, breakers, state.breaker_config), tuple(scored)
