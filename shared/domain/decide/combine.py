"""Layer 2: combining signal readings into one view per axis.

Four pieces, all pure (no I/O, no clock: ``now`` is always passed in) and immutable
(every ``update``/``record`` returns a new object):

* :func:`classify_regime` - the regime label from the volatility level (IV percentile),
  the trend (a z-score) and realised-vs-implied volatility. The labels are exactly those of
  the risk castle's regime table (:data:`shared.domain.risk.walls.DEFAULT_REGIME_STRUCTURES`).
* :class:`SignalWeights` - per regime and per signal, a Beta posterior on "the signal was
  right"; the weight is the posterior mean, normalised over the signals being combined.
* :class:`CircuitBreaker` - per signal, closed / open / half-open: a degraded signal is
  zeroed, cooled down, re-tested at reduced weight and closed again (or re-opened).
* :func:`combine` - the weighted score per axis and a :class:`Consensus` recording every
  contribution, the agreement and the disagreement. Disagreement *cuts* the confidence; it
  is not averaged away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from shared.domain.decide.readings import Axis, SignalReading

__all__ = [
    "REGIME_LABELS",
    "AxisConsensus",
    "BreakerConfig",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "Consensus",
    "Contribution",
    "Exclusion",
    "RegimeCall",
    "RegimeThresholds",
    "SignalWeights",
    "classify_regime",
    "combine",
    "outcome_is_good",
]

REGIME_LABELS: tuple[str, ...] = ("range", "low_vol", "high_vol", "trending_up",
                                  "trending_down", "event", "crisis")
"""The regime labels :func:`classify_regime` can return; the same keys as the risk castle's
``DEFAULT_REGIME_STRUCTURES`` (a unit test keeps the two in step)."""


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


# --- regime ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegimeThresholds:
    """The cut-offs behind :func:`classify_regime`.

    Attributes
    ----------
    crisis_iv_percentile, crisis_rv_iv
        ``crisis`` when the IV percentile is at least the first **and** realised volatility
        runs at least ``crisis_rv_iv`` times implied (expensive options that still
        under-price the moves: a disorderly market).
    trend_z
        ``trending_up`` / ``trending_down`` when ``|trend_z|`` is at least this.
    high_iv_percentile, hot_rv_iv
        ``high_vol`` when the IV percentile is at least the first, or realised runs at
        least ``hot_rv_iv`` times implied.
    low_iv_percentile
        ``low_vol`` when the IV percentile is at most this (and realised is not hot).
    """

    crisis_iv_percentile: float = 0.95
    crisis_rv_iv: float = 1.25
    trend_z: float = 1.5
    high_iv_percentile: float = 0.80
    hot_rv_iv: float = 1.30
    low_iv_percentile: float = 0.20

    def __post_init__(self) -> None:
        for name in ("crisis_iv_percentile", "high_iv_percentile", "low_iv_percentile"):
            v = _finite(name, getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if not self.low_iv_percentile < self.high_iv_percentile <= self.crisis_iv_percentile:
            raise ValueError("need low_iv_percentile < high_iv_percentile <= "
                             "crisis_iv_percentile")
        for name in ("crisis_rv_iv", "trend_z", "hot_rv_iv"):
            if not _finite(name, getattr(self, name)) > 0.0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True, slots=True)
class RegimeCall:
    """A regime label and the numbers behind it.

    Attributes
    ----------
    label
        One of :data:`REGIME_LABELS`.
    iv, rv
        Implied and realised volatility (annualised, decimals).
    rv_iv
        ``rv / iv``: above 1 the market moves more than the options price.
    trend_z
        The trend statistic (e.g. a drift t-statistic); sign = direction.
    iv_percentile
        Where ``iv`` sits in its own history, in [0, 1].
    event_ahead
        Whether a known event was flagged by the caller.
    reason
        One human line naming the rule that fired.
    """

    label: str
    iv: float
    rv: float
    rv_iv: float
    trend_z: float
    iv_percentile: float
    event_ahead: bool
    reason: str

    @property
    def inputs(self) -> Mapping[str, float]:
        """The numbers of the call, for an explanation."""
        return MappingProxyType({"iv": self.iv, "rv": self.rv, "rv_iv": self.rv_iv,
                                 "trend_z": self.trend_z, "iv_percentile": self.iv_percentile,
                                 "event_ahead": float(self.event_ahead)})


def classify_regime(*, iv: float, rv: float, trend_z: float, iv_percentile: float,
                    event_ahead: bool = False,
                    thresholds: RegimeThresholds | None = None) -> RegimeCall:
    r"""Classify the market regime.

    With :math:`\rho = \mathrm{rv}/\mathrm{iv}`, :math:`p` the IV percentile, :math:`z`
    the trend statistic and thresholds ``t``, the first rule that holds wins:

    1. ``crisis``: :math:`p \ge t_{\text{crisis},p}` and :math:`\rho \ge t_{\text{crisis},\rho}`
    2. ``event``: ``event_ahead``
    3. ``trending_up`` / ``trending_down``: :math:`|z| \ge t_z` (by the sign of :math:`z`)
    4. ``high_vol``: :math:`p \ge t_{\text{high}}` or :math:`\rho \ge t_{\text{hot}}`
    5. ``low_vol``: :math:`p \le t_{\text{low}}`
    6. ``range``: otherwise.

    Parameters
    ----------
    iv
        Implied volatility, > 0.
    rv
        Realised volatility, >= 0.
    trend_z
        Trend statistic (finite).
    iv_percentile
        In [0, 1].
    event_ahead
        A known event (budget, policy, expiry-day result...) is ahead.
    thresholds
        Defaults to :class:`RegimeThresholds()`.

    Returns
    -------
    RegimeCall
    """
    t = RegimeThresholds() if thresholds is None else thresholds
    iv = _finite("iv", iv)
    rv = _finite("rv", rv)
    trend_z = _finite("trend_z", trend_z)
    p = _finite("iv_percentile", iv_percentile)
    if iv <= 0.0:
        raise ValueError(f"iv must be positive, got {iv!r}")
    if rv < 0.0:
        raise ValueError(f"rv must be non-negative, got {rv!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"iv_percentile must be in [0, 1], got {p!r}")
    rho = rv / iv
    desc = f"IV {iv:.1%} (pct {p:.2f}), RV/IV {rho:.2f}, trend z {trend_z:+.2f}"
    if p >= t.crisis_iv_percentile and rho >= t.crisis_rv_iv:
        label, why = "crisis", (f"IV pct {p:.2f} >= {t.crisis_iv_percentile:.2f} and RV/IV "
                                f"{rho:.2f} >= {t.crisis_rv_iv:.2f}")
    elif event_ahead:
        label, why = "event", "a known event is ahead"
    elif abs(trend_z) >= t.trend_z:
        label = "trending_up" if trend_z > 0 else "trending_down"
        why = f"|trend z| {abs(trend_z):.2f} >= {t.trend_z:.2f}"
    elif p >= t.high_iv_percentile or rho >= t.hot_rv_iv:
        label = "high_vol"
        why = (f"IV pct {p:.2f} >= {t.high_iv_percentile:.2f}" if p >= t.high_iv_percentile
               else f"RV/IV {rho:.2f} >= {t.hot_rv_iv:.2f}")
    elif p <= t.low_iv_percentile:
        label, why = "low_vol", f"IV pct {p:.2f} <= {t.low_iv_percentile:.2f}"
    else:
        label, why = "range", "no trend, volatility mid-range"
    return RegimeCall(label=label, iv=iv, rv=rv, rv_iv=rho, trend_z=trend_z,
                      iv_percentile=p, event_ahead=bool(event_ahead),
                      reason=f"{label}: {why} ({desc})")


# --- Bayesian weights --------------------------------------------------------------------


def outcome_is_good(score: float, realized_outcome: float) -> bool | None:
    """Whether a score was right about a realised outcome: the signs agree.

    ``None`` when either is zero (no view, or no move: no information).
    """
    score = _finite("score", score)
    realized_outcome = _finite("realized_outcome", realized_outcome)
    if score == 0.0 or realized_outcome == 0.0:
        return None
    return (score > 0.0) == (realized_outcome > 0.0)


@dataclass(frozen=True, slots=True)
class SignalWeights:
    r"""Per regime and per signal, a Beta posterior on "the signal was right".

    A reading with score :math:`x` followed by a realised outcome :math:`y` (in the axis's
    units: the signed move for ``direction``, realised minus implied volatility for
    ``volatility``) is *right* when :math:`\operatorname{sign} x = \operatorname{sign} y`.
    The evidence is weighted by the conviction :math:`|x|`:

    .. math::

        a \leftarrow a + |x|\,[\text{right}], \qquad
        b \leftarrow b + |x|\,[\text{wrong}],

    from the prior :math:`\mathrm{Beta}(a_0, b_0)` (default :math:`a_0 = b_0 = 2`: mean
    1/2, worth four observations). The raw weight is the posterior mean

    .. math:: \bar w_s = \frac{a_s}{a_s + b_s} \in (0, 1),

    and :meth:`weights` normalises :math:`w_s = \bar w_s / \sum_j \bar w_j` over the
    signals being combined. A new signal starts at :math:`\bar w = 1/2`: it counts, but a
    signal with a record of being right (:math:`\bar w \to 1`) outweighs it, and one with a
    record of being wrong fades towards 0 (the circuit breaker cuts it off earlier).

    Attributes
    ----------
    prior_a, prior_b
        The prior pseudo-counts (> 0).
    posteriors
        ``(regime, signal) -> (a, b)``; read-only.
    """

    prior_a: float = 2.0
    prior_b: float = 2.0
    posteriors: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("prior_a", "prior_b"):
            if not _finite(name, getattr(self, name)) > 0.0:
                raise ValueError(f"{name} must be positive")
        clean: dict[tuple[str, str], tuple[float, float]] = {}
        for (regime, signal), (a, b) in dict(self.posteriors).items():
            a, b = _finite("a", a), _finite("b", b)
            if a <= 0.0 or b <= 0.0:
                raise ValueError(f"{regime}/{signal}: Beta parameters must be positive")
            clean[(str(regime), str(signal))] = (a, b)
        object.__setattr__(self, "posteriors", MappingProxyType(clean))

    def posterior(self, signal: str, regime: str) -> tuple[float, float]:
        """``(a, b)`` for ``signal`` in ``regime`` (the prior when never updated)."""
        return self.posteriors.get((regime, signal), (self.prior_a, self.prior_b))

    def mean(self, signal: str, regime: str) -> float:
        """The un-normalised weight :math:`a / (a + b)`."""
        a, b = self.posterior(signal, regime)
        return a / (a + b)

    def signals(self, regime: str | None = None) -> tuple[str, ...]:
        """The signals with a posterior (in ``regime``, or in any), sorted."""
        return tuple(sorted({s for (r, s) in self.posteriors if regime is None or r == regime}))

    def update(self, signal: str, regime: str, score: float,
               realized_outcome: float) -> SignalWeights:
        """A new object with one realised outcome folded in (no information: unchanged)."""
        good = outcome_is_good(score, realized_outcome)
        if good is None:
            return self
        a, b = self.posterior(signal, regime)
        w = abs(float(score))
        new = dict(self.posteriors)
        new[(regime, signal)] = (a + w, b) if good else (a, b + w)
        return replace(self, posteriors=new)

    def weights(self, regime: str, signals: Iterable[str] | None = None) -> Mapping[str, float]:
        """Normalised posterior-mean weights (summing to 1) over ``signals``.

        ``signals`` defaults to every signal with a posterior in ``regime``; a signal never
        seen gets the prior mean before normalisation.
        """
        names = self.signals(regime) if signals is None else tuple(dict.fromkeys(signals))
        raw = {s: self.mean(s, regime) for s in names}
        total = sum(raw.values())
        return MappingProxyType({s: v / total for s, v in raw.items()} if total > 0 else {})


# --- circuit breaker ---------------------------------------------------------------------


class BreakerState(StrEnum):
    """``closed``: the signal counts; ``open``: zeroed; ``half_open``: on trial."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a breaker opens, how long it cools down and how the trial goes.

    Attributes
    ----------
    max_consecutive_bad
        Open after this many bad outcomes in a row.
    window, min_samples, min_hit_rate
        Open when, over the last ``window`` outcomes (at least ``min_samples`` of them),
        the hit rate (share good) falls below ``min_hit_rate``.
    cooldown
        Time spent open before going half-open.
    half_open_weight
        The weight multiplier while half-open (in (0, 1]).
    trial_successes
        Good outcomes needed in half-open to close; one bad outcome re-opens.
    """

    max_consecutive_bad: int = 5
    window: int = 20
    min_samples: int = 10
    min_hit_rate: float = 0.40
    cooldown: timedelta = timedelta(days=1)
    half_open_weight: float = 0.5
    trial_successes: int = 3

    def __post_init__(self) -> None:
        if self.max_consecutive_bad < 1 or self.trial_successes < 1:
            raise ValueError("max_consecutive_bad and trial_successes must be >= 1")
        if not 1 <= self.min_samples <= self.window:
            raise ValueError("need 1 <= min_samples <= window")
        if not 0.0 <= self.min_hit_rate <= 1.0:
            raise ValueError("min_hit_rate must be in [0, 1]")
        if self.cooldown < timedelta(0):
            raise ValueError("cooldown must be non-negative")
        if not 0.0 < self.half_open_weight <= 1.0:
            raise ValueError("half_open_weight must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change: when, from, to, and why."""

    at: datetime
    from_state: BreakerState
    to_state: BreakerState
    reason: str


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    r"""A per-signal circuit breaker (immutable: transitions return a new breaker).

    ``closed`` → ``open`` after ``max_consecutive_bad`` bad outcomes in a row, or when the
    rolling hit rate :math:`h = \#\text{good} / n` over the last ``window`` outcomes
    (:math:`n \ge` ``min_samples``) is below ``min_hit_rate``. ``open`` → ``half_open``
    once ``now - opened_at >= cooldown`` (checked by :meth:`at`, and by :meth:`record`
    before it records). ``half_open`` → ``closed`` after ``trial_successes`` good outcomes
    (the rolling record starts afresh), → ``open`` (a new cool-down) on the first bad one.

    The weight multiplier (:attr:`multiplier`) is 1 closed, 0 open and
    ``half_open_weight`` half-open. Outcomes recorded while open are ignored (the signal
    is serving its cool-down).

    Attributes
    ----------
    name
        The signal's name.
    config
        See :class:`BreakerConfig`.
    state
        See :class:`BreakerState`.
    recent
        The last ``window`` outcomes while closed (True = good), oldest first.
    consecutive_bad
        Bad outcomes in a row while closed.
    opened_at
        When the breaker last opened (``None`` if never, or closed since).
    trial_good
        Good outcomes in the current half-open trial.
    last_transition
        The latest state change with its reason (``None`` if none yet).
    """

    name: str
    config: BreakerConfig = field(default_factory=BreakerConfig)
    state: BreakerState = BreakerState.CLOSED
    recent: tuple[bool, ...] = ()
    consecutive_bad: int = 0
    opened_at: datetime | None = None
    trial_good: int = 0
    last_transition: BreakerTransition | None = None

    def __post_init__(self) -> None:
        if self.state is BreakerState.OPEN and self.opened_at is None:
            raise ValueError(f"{self.name}: an open breaker needs opened_at")
        if self.opened_at is not None:
            _aware("opened_at", self.opened_at)
        object.__setattr__(self, "recent", tuple(bool(x) for x in self.recent))

    @property
    def multiplier(self) -> float:
        """The weight multiplier of the current state (see the class docstring)."""
        if self.state is BreakerState.CLOSED:
            return 1.0
        if self.state is BreakerState.OPEN:
            return 0.0
        return self.config.half_open_weight

    @property
    def hit_rate(self) -> float | None:
        """Share of good outcomes in :attr:`recent` (``None`` when empty)."""
        return sum(self.recent) / len(self.recent) if self.recent else None

    def _to(self, state: BreakerState, now: datetime, reason: str,
            **changes: object) -> CircuitBreaker:
        t = BreakerTransition(at=now, from_state=self.state, to_state=state,
                              reason=f"{self.name}: {reason}")
        return replace(self, state=state, last_transition=t, **changes)  # type: ignore[arg-type]

    def _open(self, now: datetime, reason: str) -> CircuitBreaker:
        return self._to(BreakerState.OPEN, now, reason, opened_at=now, trial_good=0,
                        recent=(), consecutive_bad=0)

    def at(self, now: datetime) -> CircuitBreaker:
        """The breaker as of ``now``: an open one whose cool-down has elapsed goes half-open."""
        _aware("now", now)
        if self.state is not BreakerState.OPEN:
            return self
        assert self.opened_at is not None
        if now < self.opened_at:
            raise ValueError(f"{self.name}: now {now} is before opened_at {self.opened_at}")
        waited = now - self.opened_at
        if waited >= self.config.cooldown:
            return self._to(BreakerState.HALF_OPEN, now,
                            f"cool-down {self.config.cooldown} elapsed ({waited}): trial at "
                            f"weight x{self.config.half_open_weight:g}", trial_good=0)
        return self

    def record(self, good: bool, now: datetime) -> CircuitBreaker:
        """A new breaker with one outcome (``good``: the signal was right) recorded at ``now``."""
        b = self.at(now)
        c = b.config
        if b.state is BreakerState.OPEN:
            return b
        if b.state is BreakerState.HALF_OPEN:
            if not good:
                return b._open(now, "bad outcome during the half-open trial: re-opened")
            n = b.trial_good + 1
            if n >= c.trial_successes:
                return b._to(BreakerState.CLOSED, now,
                             f"trial passed ({n} good outcomes): closed", trial_good=0,
                             opened_at=None, recent=(), consecutive_bad=0)
            return replace(b, trial_good=n)
        recent = (*b.recent, bool(good))[-c.window:]
        run = 0 if good else b.consecutive_bad + 1
        if run >= c.max_consecutive_bad:
            return b._open(now, f"{run} consecutive bad outcomes "
                                f"(limit {c.max_consecutive_bad}): opened")
        if len(recent) >= c.min_samples:
            h = sum(recent) / len(recent)
            if h < c.min_hit_rate:
                return b._open(now, f"hit rate {h:.2f} over {len(recent)} outcomes < floor "
                                    f"{c.min_hit_rate:.2f}: opened")
        return replace(b, recent=recent, consecutive_bad=run)


# --- consensus ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A reading that contributed nothing, and why (``unavailable`` / ``breaker_open``)."""

    name: str
    axis: Axis
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Contribution:
    r"""One participating reading's part in its axis's score.

    Attributes
    ----------
    name, score, confidence
        From the reading.
    weight
        The normalised Bayesian weight :math:`w_s` in this regime (over the axis's
        participating signals).
    breaker_multiplier
        :math:`m_s`: 1 closed, ``half_open_weight`` half-open.
    share
        :math:`\pi_s = w_s m_s c_s / \sum_j w_j m_j c_j` (0 when the axis has no mass).
    contribution
        :math:`\pi_s x_s`; the contributions sum to the axis score.
    agrees
        True / False when the score's sign agrees / disagrees with the axis score; ``None``
        for a zero score or a zero axis score.
    """

    name: str
    score: float
    confidence: float
    weight: float
    breaker_multiplier: float
    share: float
    contribution: float
    agrees: bool | None


@dataclass(frozen=True, slots=True)
class AxisConsensus:
    """The combined view on one axis. See :func:`combine` for the formulas."""

    axis: Axis
    score: float
    confidence: float
    base_confidence: float
    agreement: float
    disagreement: float
    contributions: tuple[Contribution, ...]

    @property
    def participants(self) -> int:
        """How many readings took part."""
        return len(self.contributions)


@dataclass(frozen=True, slots=True)
class Consensus:
    """The combined view per axis, what was left out, and the regime it was made in."""

    regime: str
    axes: Mapping[Axis, AxisConsensus]
    excluded: tuple[Exclusion, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", MappingProxyType(dict(self.axes)))

    def __getitem__(self, axis: Axis) -> AxisConsensus:
        return self.axes[axis]


def _axis(axis: Axis, rows: list[tuple[SignalReading, float]], weights: SignalWeights,
          regime: str) -> AxisConsensus:
    w = weights.weights(regime, [r.name for r, _ in rows]) if rows else {}
    mass = [w[r.name] * m * r.confidence for r, m in rows]
    total = sum(mass)
    score = sum(p * r.score for p, (r, _) in zip(mass, rows, strict=True)) / total \
        if total > 0 else 0.0
    score = min(1.0, max(-1.0, score))
    wsum = sum(w[r.name] * m for r, m in rows)
    base = total / wsum if wsum > 0 else 0.0
    conv = [p * abs(r.score) for p, (r, _) in zip(mass, rows, strict=True)]
    conv_total = sum(conv)
    agree = disagree = 0.0
    flags: list[bool | None] = []
    for q, (r, _) in zip(conv, rows, strict=True):
        if r.score == 0.0 or score == 0.0:
            flags.append(None)
            if r.score != 0.0:
                disagree += q
            continue
        ok = (r.score > 0.0) == (score > 0.0)
        flags.append(ok)
        if ok:
            agree += q
        else:
            disagree += q
    if conv_total > 0:
        agree, disagree = agree / conv_total, disagree / conv_total
    else:
        agree = disagree = 0.0
    confidence = min(1.0, base * max(0.0, agree - disagree))
    contribs = tuple(
        Contribution(name=r.name, score=r.score, confidence=r.confidence, weight=w[r.name],
                     breaker_multiplier=m, share=p / total if total > 0 else 0.0,
                     contribution=(p / total) * r.score if total > 0 else 0.0, agrees=f)
        for p, (r, m), f in zip(mass, rows, flags, strict=True))
    return AxisConsensus(axis=axis, score=score, confidence=confidence, base_confidence=base,
                         agreement=agree, disagreement=disagree, contributions=contribs)


def combine(readings: Iterable[SignalReading], weights: SignalWeights,
            breakers: Mapping[str, CircuitBreaker], regime: str | RegimeCall, *,
            now: datetime | None = None) -> Consensus:
    r"""Combine readings into one score and confidence per axis.

    For the readings on an axis that are available and whose breaker is not open, with
    score :math:`x_s`, confidence :math:`c_s`, normalised Bayesian weight :math:`w_s`
    (:meth:`SignalWeights.weights` in ``regime``) and breaker multiplier :math:`m_s`:

    .. math::

        S = \frac{\sum_s w_s m_s c_s x_s}{\sum_s w_s m_s c_s} \in [-1, 1], \qquad
        \bar c = \frac{\sum_s w_s m_s c_s}{\sum_s w_s m_s}.

    Agreement and disagreement are shares of *conviction* :math:`q_s = w_s m_s c_s |x_s|`
    (a zero score has no view and neither agrees nor disagrees):

    .. math::

        A = \frac{\sum_{\operatorname{sign} x_s = \operatorname{sign} S} q_s}{\sum_s q_s},
        \qquad
        D = \frac{\sum_{\operatorname{sign} x_s \ne \operatorname{sign} S,\ x_s \ne 0} q_s}
                 {\sum_s q_s},

    (when :math:`S = 0` every non-zero view counts as disagreement), and the output
    confidence is cut by disagreement rather than averaged:

    .. math:: C = \bar c \cdot \max(0,\ A - D).

    Two equally strong opposing views give :math:`C = 0`; a lone dissenter among three
    equal signals gives :math:`C = \bar c / 3`. An axis with no participants has
    :math:`S = C = 0`.

    Parameters
    ----------
    readings
        Layer-1 readings (unique names).
    weights
        The Bayesian weights.
    breakers
        Per signal name; a signal without one is treated as closed.
    regime
        The regime label (or a :class:`RegimeCall`).
    now
        If given, each breaker is first advanced to ``now`` (:meth:`CircuitBreaker.at`),
        so a cooled-down breaker takes part half-open.

    Returns
    -------
    Consensus
        Both axes are always present. Unavailable readings and readings whose breaker is
        open are listed in ``excluded``.
    """
    label = regime.label if isinstance(regime, RegimeCall) else str(regime)
    readings = list(readings)
    names = [r.name for r in readings]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate signal names in {sorted(names)}")
    excluded: list[Exclusion] = []
    per_axis: dict[Axis, list[tuple[SignalReading, float]]] = {a: [] for a in Axis}
    for r in readings:
        if not r.available:
            excluded.append(Exclusion(r.name, r.axis, "unavailable",
                                      r.reason or "inputs missing"))
            continue
        b = breakers.get(r.name)
        if b is not None and now is not None:
            b = b.at(now)
        m = 1.0 if b is None else b.multiplier
        if m == 0.0:
            why = b.last_transition.reason if b is not None and b.last_transition else ""
            excluded.append(Exclusion(r.name, r.axis, "breaker_open",
                                      f"circuit breaker open{': ' + why if why else ''}"))
            continue
        per_axis[r.axis].append((r, m))
    axes = {a: _axis(a, rows, weights, label) for a, rows in per_axis.items()}
    return Consensus(regime=label, axes=axes, excluded=tuple(excluded))
