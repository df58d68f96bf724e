"""Event-impact model for the news gate (pure domain): how big is the move on an event day?

Scheduled events (Union Budgets, RBI policy statements, general-election results, FOMC
decisions) move NIFTY more than an ordinary session. The news gate needs, before the
event, the *expected absolute move* of the reaction session and an action: proceed,
reduce the position by 25 % or 50 %, or stay out (blackout). This module measures past
reactions (:func:`event_moves`), fits expected moves by event type and pre-event
volatility (:class:`EventImpactModel`), maps them to actions (:class:`EventImpactFit`),
and scores the model out of sample year by year (:func:`evaluate_by_year`).

No I/O, no clock, no environment: bars and events come in as arrays / objects, results
are frozen dataclasses whose arrays are read-only copies. The event calendar itself is
dated data (``shared/data/events.csv``, one source per row) read elsewhere; any object
with ``event_date``, ``event_type`` and ``reaction`` attributes (such as a row of that
file) can be passed as an event.

Units
-----
returns
    Daily close-to-close *log* returns, decimal: ``r_k = ln(C_k / C_{k-1})``.
``abs_return``, expected move
    ``|r_k|``, decimal (0.02 is a 2 % move), *not* annualised.
``pre_vol``, vol
    Annualised volatility, decimal (0.18 is 18 % a year):
    ``sqrt(252 * mean(r_j^2))`` over the ``window`` returns ``j = k-window .. k-1``.
    A daily volatility is ``vol / sqrt(252)``.
``gk_vol``
    Garman-Klass daily volatility of the reaction session, decimal, not annualised
    (``sqrt`` of :func:`shared.domain.models.vol.garman_klass_variance`).
move ratio
    ``|r_k| / (pre_vol / sqrt(252))``: the move in units of the pre-event daily vol,
    dimensionless. For Gaussian returns at the forecast vol its mean is
    ``sqrt(2 / pi) = 0.798``; fat tails and vol mean reversion move the observed
    non-event baseline away from that value.

Reaction session and point in time
----------------------------------
``reaction = "same_day"`` (announced during Indian market hours) maps an event to the
first bar dated on or after the event date; ``"next_session"`` (announced after the
close or on a closed day, e.g. an FOMC statement at 14:00 New York time, or election
results counted on a Saturday) maps it to the first bar dated strictly after it. The
pre-event vol of reaction session ``k`` uses closes ``k - window - 1 .. k - 1`` only:
nothing from the reaction session or later, so it is known before the event.

Model
-----
For reaction session ``k`` of an event of type ``t``::

    E|r_k| = mu_t * (v_k / v_ref) ** beta * v_k / sqrt(252)

``v_k`` is the pre-event vol, ``v_ref`` the median pre-event vol of the non-event
(control) sessions and ``beta`` the *vol elasticity of the move ratio*, fitted by OLS of
``log(move ratio)`` on ``log(v / v_ref)`` over the control sessions (negative when
volatility mean-reverts: after a calm month a session tends to move more than the
trailing vol says, after a turbulent one less). ``mu_t`` is the mean vol-adjusted move
ratio of type ``t``, shrunk toward the pooled mean of all event types by a normal-normal
random-effects model (Paule-Mandel between-type variance), so a type seen four times
(elections) is not trusted as much as one seen 160 times (FOMC). Modelling the *mean*
ratio (rather than an OLS of ``log|r|``) targets ``E|r|`` directly, needs no
retransformation (smearing) correction and tolerates zero returns.

The same model can be fitted on the session's Garman-Klass vol instead of ``|r|``
(``EventImpactModel(target="gk_vol")``): the intraday range, which an options book feels
even when the close is unchanged (NIFTY election days: small close-to-close moves in three
of four cases, but every one a wide session).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from shared.domain.models.vol import TRADING_DAYS, garman_klass_variance

__all__ = [
    "ACTIONS",
    "NON_EVENT",
    "POSITION_SCALE",
    "PRE_VOL_WINDOW",
    "Action",
    "ActionThresholds",
    "EventImpactFit",
    "EventImpactModel",
    "ErrorStats",
    "EventMoves",
    "OosReport",
    "Reaction",
    "ScheduledEvent",
    "Target",
    "TypeEstimate",
    "TypeOos",
    "UnmatchedEvent",
    "evaluate_by_year",
    "event_moves",
    "roc_auc",
]

Floats = npt.NDArray[np.float64]
Action = Literal["proceed", "reduce_25", "reduce_50", "blackout"]
Reaction = Literal["same_day", "next_session"]
Shrinkage = Literal["random_effects", "none"]
Scheme = Literal["leave_one_year_out", "walk_forward"]
Target = Literal["abs_return", "gk_vol"]

ACTIONS: tuple[Action, ...] = get_args(Action)  # least to most severe
POSITION_SCALE: Mapping[Action, float] = MappingProxyType(
    {"proceed": 1.0, "reduce_25": 0.75, "reduce_50": 0.5, "blackout": 0.0}
)
NON_EVENT = "none"  # the event type of an ordinary (control) session
PRE_VOL_WINDOW = 22  # sessions in the pre-event vol window (about one month)
_SQRT_DAYS = math.sqrt(TRADING_DAYS)
_MIN_CONTROL_FOR_ELASTICITY = 30  # fewest control sessions the vol elasticity is fitted on
_REACTIONS: tuple[str, ...] = get_args(Reaction)


def _frozen(a: npt.ArrayLike, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


def _frozen_str(values: Iterable[Any]) -> np.ndarray:
    items = [str(v) for v in values]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    out.flags.writeable = False
    return out


def _day(value: Any) -> np.datetime64:
    """``value`` (ISO string, date, datetime64) as a day, or ValueError."""
    if isinstance(value, _dt.datetime):
        value = value.date()
    try:
        day = np.datetime64(value, "D")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a date: {value!r}") from exc
    if np.isnat(day):
        raise ValueError(f"not a date: {value!r}")
    return day


# --------------------------------------------------------------------------------------
# Events and their reaction sessions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledEvent:
    """One scheduled market event.

    Attributes
    ----------
    event_date : numpy.datetime64[D]
        Calendar date of the announcement in its own time zone (an FOMC decision carries
        the US date). Accepts an ISO string or a ``datetime.date``.
    event_type : str
        Category, e.g. ``"union_budget"``, ``"rbi_policy"``, ``"election_result"``,
        ``"fomc"``. Must not be :data:`NON_EVENT`.
    reaction : {"same_day", "next_session"}
        Whether NIFTY can react in the session dated ``event_date`` (announced during
        Indian market hours) or only in the next one (after the close / closed day).
    title : str
        Free text, not used by the model.
    """

    event_date: np.datetime64
    event_type: str
    reaction: Reaction = "same_day"
    title: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_date", _day(self.event_date))
        kind = str(self.event_type).strip()
        if not kind or kind == NON_EVENT:
            raise ValueError(f"event_type must be a non-empty name other than {NON_EVENT!r}")
        object.__setattr__(self, "event_type", kind)
        if self.reaction not in _REACTIONS:
            raise ValueError(f"reaction must be one of {_REACTIONS}, got {self.reaction!r}")


def _as_event(e: Any) -> ScheduledEvent:
    if isinstance(e, ScheduledEvent):
        return e
    if isinstance(e, tuple | list):
        return ScheduledEvent(*e)
    return ScheduledEvent(
        e.event_date,
        e.event_type,
        getattr(e, "reaction", "same_day"),
        getattr(e, "title", "") or "",
    )


@dataclass(frozen=True)
class UnmatchedEvent:
    """An event with no usable reaction session in the bars, and why."""

    event: ScheduledEvent
    reason: str


@dataclass(frozen=True, eq=False)
class EventMoves:
    """Reaction-session moves of events, and a control sample of non-event sessions.

    Event arrays have one element per matched event, in input order; control arrays one
    per control session, oldest first. All arrays are read-only.

    Attributes
    ----------
    event_date : ndarray of datetime64[D]
        The events' announcement dates.
    event_type, reaction : ndarray of object (str)
        As given.
    session : ndarray of int64
        Index of the reaction session in the bars.
    session_date : ndarray of datetime64[D]
        Date of the reaction session.
    abs_return : ndarray of float64
        ``|ln(C_k / C_{k-1})|`` of the reaction session, decimal.
    gk_vol : ndarray of float64
        Garman-Klass daily vol of the reaction session, decimal (NaN where OHLC is
        missing or inconsistent).
    pre_vol : ndarray of float64
        Annualised close-to-close vol over the ``window`` sessions before the reaction
        session (point in time), decimal.
    move_ratio : ndarray of float64
        ``abs_return / (pre_vol / sqrt(252))``, dimensionless.
    control_session, control_date, control_abs_return, control_gk_vol, control_pre_vol,
    control_move_ratio : ndarray
        The same for every session with a full pre-vol window that is the reaction
        session of no event (in the input) at all.
    unmatched : tuple of UnmatchedEvent
        Events left out, with the reason (no bar after the event, too little history
        before the reaction session, or no session within ``max_gap_days``).
    window : int
        Returns in the pre-event vol window.
    """

    event_date: np.ndarray
    event_type: np.ndarray
    reaction: np.ndarray
    session: npt.NDArray[np.int64]
    session_date: np.ndarray
    abs_return: Floats
    gk_vol: Floats
    pre_vol: Floats
    move_ratio: Floats
    control_session: npt.NDArray[np.int64]
    control_date: np.ndarray
    control_abs_return: Floats
    control_gk_vol: Floats
    control_pre_vol: Floats
    control_move_ratio: Floats
    unmatched: tuple[UnmatchedEvent, ...]
    window: int

    def __len__(self) -> int:
        return int(self.session.size)

    @property
    def types(self) -> tuple[str, ...]:
        """The event types present, sorted."""
        return tuple(sorted({str(t) for t in self.event_type}))

    @property
    def event_year(self) -> npt.NDArray[np.int64]:
        """Calendar year of each reaction session."""
        return _years(self.session_date)

    @property
    def control_year(self) -> npt.NDArray[np.int64]:
        """Calendar year of each control session."""
        return _years(self.control_date)

    def target(self, target: Target = "abs_return") -> tuple[Floats, Floats]:
        """Event ``(value, ratio)`` for ``target`` (``"abs_return"`` or ``"gk_vol"``).

        ``value`` is decimal; ``ratio = value / (pre_vol / sqrt(252))``, dimensionless.
        """
        return _target_of(target, self.abs_return, self.gk_vol, self.pre_vol)

    def control_target(self, target: Target = "abs_return") -> tuple[Floats, Floats]:
        """Control-session ``(value, ratio)`` for ``target`` (see :meth:`target`)."""
        return _target_of(target, self.control_abs_return, self.control_gk_vol,
                          self.control_pre_vol)

    def select(self, events: npt.ArrayLike, control: npt.ArrayLike) -> EventMoves:
        """A copy keeping the events and control sessions where the boolean masks hold."""
        e = np.asarray(events, dtype=bool)
        c = np.asarray(control, dtype=bool)
        if e.shape != self.session.shape or c.shape != self.control_session.shape:
            raise ValueError("masks must match the event and control arrays")
        return EventMoves(
            event_date=_frozen(self.event_date[e], "datetime64[D]"),
            event_type=_frozen_str(self.event_type[e]),
            reaction=_frozen_str(self.reaction[e]),
            session=_frozen(self.session[e], np.int64),
            session_date=_frozen(self.session_date[e], "datetime64[D]"),
            abs_return=_frozen(self.abs_return[e]),
            gk_vol=_frozen(self.gk_vol[e]),
            pre_vol=_frozen(self.pre_vol[e]),
            move_ratio=_frozen(self.move_ratio[e]),
            control_session=_frozen(self.control_session[c], np.int64),
            control_date=_frozen(self.control_date[c], "datetime64[D]"),
            control_abs_return=_frozen(self.control_abs_return[c]),
            control_gk_vol=_frozen(self.control_gk_vol[c]),
            control_pre_vol=_frozen(self.control_pre_vol[c]),
            control_move_ratio=_frozen(self.control_move_ratio[c]),
            unmatched=self.unmatched,
            window=self.window,
        )


def _target_of(target: str, abs_return: Floats, gk_vol: Floats,
               pre_vol: Floats) -> tuple[Floats, Floats]:
    if target == "abs_return":
        value = abs_return
    elif target == "gk_vol":
        value = gk_vol
    else:
        raise ValueError(f"target must be one of {get_args(Target)}, got {target!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pre_vol > 0.0, value / (pre_vol / _SQRT_DAYS), np.nan)
    return value, ratio


def _years(days: np.ndarray) -> npt.NDArray[np.int64]:
    return (np.asarray(days, dtype="datetime64[Y]").astype(np.int64) + 1970).astype(np.int64)


def event_moves(
    dates: npt.ArrayLike,
    open: npt.ArrayLike,  # noqa: A002 - the bar field's name
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    events: Iterable[Any],
    *,
    window: int = PRE_VOL_WINDOW,
    max_gap_days: int = 7,
) -> EventMoves:
    """Reaction-session moves of ``events`` in daily bars, plus a non-event control sample.

    Parameters
    ----------
    dates : array_like of datetime64[D] (or ISO strings), shape (n,)
        Session dates, strictly ascending.
    open, high, low, close : array_like of float, shape (n,)
        Daily OHLC in index points. ``close`` must be finite and positive; open/high/low
        may be NaN (the Garman-Klass vol is then NaN).
    events : iterable
        :class:`ScheduledEvent`, ``(date, type, reaction[, title])`` tuples, or objects
        with ``event_date``, ``event_type`` and ``reaction`` attributes.
    window : int, default 22
        Close-to-close returns in the pre-event vol window (sessions).
    max_gap_days : int, default 7
        An event whose reaction session would be more than this many calendar days after
        the event date is left unmatched (a hole in the data, not a reaction).

    Returns
    -------
    EventMoves
        Matched events in input order, the control sample and the unmatched events.

    Raises
    ------
    ValueError
        On mismatched or non-ascending inputs, a non-positive close, or a bad event.

    Notes
    -----
    Reaction session ``k`` is ``searchsorted(dates, event_date, "left")`` for
    ``same_day`` and ``"right"`` for ``next_session``. Its pre-event vol reads returns
    ``k - window .. k - 1`` (closes ``k - window - 1 .. k - 1``) and needs
    ``k >= window + 1``. Several events may share a reaction session (an RBI statement
    and the morning after an FOMC decision); each keeps its own row. A session that is
    the reaction session of any input event is never a control session.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    d = np.asarray(dates, dtype="datetime64[D]")
    if d.ndim != 1:
        raise ValueError("dates must be 1-D")
    n = d.size
    if np.any(np.isnat(d)) or (n > 1 and not bool(np.all(d[1:] > d[:-1]))):
        raise ValueError("dates must be strictly ascending and not NaT")
    o, h, lo, c = (np.asarray(x, dtype=np.float64) for x in (open, high, low, close))
    if not (o.shape == h.shape == lo.shape == c.shape == d.shape):
        raise ValueError("dates, open, high, low and close must have the same length")
    if not bool(np.all(np.isfinite(c) & (c > 0.0))):
        raise ValueError("close must be finite and strictly positive")

    r = np.zeros(n)
    if n > 1:
        r[1:] = np.diff(np.log(c))
    r2 = r * r
    r2[0] = 0.0  # no return into the first bar; never inside a valid window
    csum = np.concatenate(([0.0], np.cumsum(r2)))  # csum[k] = sum of r2[0 .. k-1]
    k_all = np.arange(n)
    has_window = k_all >= window + 1
    pre_var = np.full(n, np.nan)
    kw = k_all[has_window]
    pre_var[kw] = (csum[kw] - csum[kw - window]) / window
    pre_vol = np.sqrt(TRADING_DAYS * np.fmax(pre_var, 0.0))  # NaN stays NaN
    abs_ret = np.abs(r)
    abs_ret[0] = np.nan
    gk = garman_klass_variance(o, h, lo, c)
    gk_vol = np.sqrt(np.where(gk >= 0.0, gk, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pre_vol > 0.0, abs_ret / (pre_vol / _SQRT_DAYS), np.nan)

    matched: list[tuple[ScheduledEvent, int]] = []
    unmatched: list[UnmatchedEvent] = []
    for raw in events:
        ev = _as_event(raw)
        side = "left" if ev.reaction == "same_day" else "right"
        k = int(np.searchsorted(d, ev.event_date, side=side))
        if k >= n:
            unmatched.append(UnmatchedEvent(ev, "no session on or after the event in the bars"))
        elif (d[k] - ev.event_date).astype(int) > max_gap_days:
            unmatched.append(UnmatchedEvent(ev, f"no session within {max_gap_days} days"))
        elif not has_window[k] or not (pre_vol[k] > 0.0):
            unmatched.append(
                UnmatchedEvent(ev, f"fewer than {window} returns before the reaction session")
            )
        else:
            matched.append((ev, k))

    sessions = np.array([k for _, k in matched], dtype=np.int64)
    is_event_session = np.zeros(n, dtype=bool)
    is_event_session[sessions] = True
    ctrl = np.flatnonzero(has_window & ~is_event_session & (pre_vol > 0.0))
    return EventMoves(
        event_date=_frozen([ev.event_date for ev, _ in matched], "datetime64[D]"),
        event_type=_frozen_str(ev.event_type for ev, _ in matched),
        reaction=_frozen_str(ev.reaction for ev, _ in matched),
        session=_frozen(sessions, np.int64),
        session_date=_frozen(d[sessions], "datetime64[D]"),
        abs_return=_frozen(abs_ret[sessions]),
        gk_vol=_frozen(gk_vol[sessions]),
        pre_vol=_frozen(pre_vol[sessions]),
        move_ratio=_frozen(ratio[sessions]),
        control_session=_frozen(ctrl, np.int64),
        control_date=_frozen(d[ctrl], "datetime64[D]"),
        control_abs_return=_frozen(abs_ret[ctrl]),
        control_gk_vol=_frozen(gk_vol[ctrl]),
        control_pre_vol=_frozen(pre_vol[ctrl]),
        control_move_ratio=_frozen(ratio[ctrl]),
        unmatched=tuple(unmatched),
        window=int(window),
    )


# --------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionThresholds:
    """Expected move ratio -> news-gate action.

    ``ratio < proceed_below`` -> ``proceed``; ``< reduce_25_below`` -> ``reduce_25``;
    ``< reduce_50_below`` -> ``reduce_50``; otherwise (and for a NaN ratio) ``blackout``.

    The defaults (1.25, 1.75, 2.5) read against a non-event baseline near 0.8: an event
    expected to move the index ~1.5x an ordinary day trims the position by a quarter,
    ~2.2x halves it, 3x or more stays out.
    """

    proceed_below: float = 1.25
    reduce_25_below: float = 1.75
    reduce_50_below: float = 2.5

    def __post_init__(self) -> None:
        cuts = (self.proceed_below, self.reduce_25_below, self.reduce_50_below)
        if not all(math.isfinite(x) and x > 0.0 for x in cuts) or not (
            cuts[0] < cuts[1] < cuts[2]
        ):
            raise ValueError(f"thresholds must be finite, positive and increasing, got {cuts}")

    def action(self, expected_ratio: float) -> Action:
        """The action for an expected move ratio (dimensionless)."""
        x = float(expected_ratio)
        if x < self.proceed_below:
            return "proceed"
        if x < self.reduce_25_below:
            return "reduce_25"
        if x < self.reduce_50_below:
            return "reduce_50"
        return "blackout"  # also NaN: unknown is treated as the worst case


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeEstimate:
    """Move-ratio estimate of one event type (or of the non-event baseline).

    Attributes
    ----------
    event_type : str
        The type, or :data:`NON_EVENT` for the baseline.
    n : int
        Observations (reaction sessions, or control sessions).
    mean_ratio : float
        Mean vol-adjusted move ratio (at the reference vol), dimensionless.
    se : float
        Its standard error, ``s / sqrt(n)`` (``s`` pooled across types when ``n`` is
        small). Serial dependence of ``|r|`` is ignored, so it is optimistic.
    ratio : float
        The estimate used for forecasts: ``mean_ratio`` shrunk toward the pooled event
        mean (equal to ``mean_ratio`` for the baseline and without shrinkage).
    ratio_se : float
        Standard error of ``ratio`` (treating ``tau2`` as known).
    shrink_weight : float
        Weight on the pooled mean, in [0, 1] (0 for the baseline).
    mean_value : float
        Mean of the target (``|r|`` or the Garman-Klass vol) over the sessions, decimal,
        not vol-adjusted.
    """

    event_type: str
    n: int
    mean_ratio: float
    se: float
    ratio: float
    ratio_se: float
    shrink_weight: float
    mean_value: float


@dataclass(frozen=True, eq=False)
class EventImpactFit:
    """A fitted event-impact model: expected moves and news-gate actions.

    Attributes
    ----------
    target : str
        ``"abs_return"`` (close-to-close ``|r|``) or ``"gk_vol"`` (intraday
        Garman-Klass vol): what "move" means in every number below.
    types : Mapping[str, TypeEstimate]
        Per event type, read-only.
    baseline : TypeEstimate
        The non-event (control) sessions; its ``mean_ratio`` is about 0.8 for Gaussian
        returns and ``target="abs_return"``.
    pooled_ratio : float
        Expected ratio for an event type not seen in the fit: the random-effects mean of
        the event types, never below the baseline (a conservative default).
    pooled_se : float
        Predictive standard error of a new type's ratio, ``sqrt(tau2 + var(mean))``.
    tau2 : float
        Between-type variance of the mean ratios (Paule-Mandel), dimensionless^2.
    vol_elasticity : float
        ``beta`` in ``ratio ~ (v / v_ref) ** beta`` (0 when not fitted).
    vol_elasticity_se : float
        OLS standard error of ``beta`` (NaN when not fitted).
    ref_vol : float
        ``v_ref``: median pre-event vol of the control sessions, annualised decimal.
    thresholds : ActionThresholds
        Ratio cut-offs of :meth:`action`.
    shrinkage : str
        ``"random_effects"`` or ``"none"``.
    """

    target: str
    types: Mapping[str, TypeEstimate]
    baseline: TypeEstimate
    pooled_ratio: float
    pooled_se: float
    tau2: float
    vol_elasticity: float
    vol_elasticity_se: float
    ref_vol: float
    thresholds: ActionThresholds
    shrinkage: str

    def ratio_for(self, event_type: str) -> float:
        """Vol-adjusted mean ratio of ``event_type`` at the reference vol.

        :data:`NON_EVENT` gives the baseline; a type not seen in the fit gives
        :attr:`pooled_ratio`.
        """
        if event_type == NON_EVENT:
            return self.baseline.ratio
        est = self.types.get(event_type)
        return self.pooled_ratio if est is None else est.ratio

    def expected_ratio(self, event_type: str, pre_vol: float) -> float:
        """Expected move ratio ``E[move] / (pre_vol / sqrt(252))``, dimensionless.

        Parameters
        ----------
        event_type : str
            Event type (:data:`NON_EVENT` for an ordinary session; unknown types get the
            pooled estimate).
        pre_vol : float
            Pre-event vol, annualised decimal (> 0).
        """
        v = _positive(pre_vol, "pre_vol")
        return self.ratio_for(event_type) * (v / self.ref_vol) ** self.vol_elasticity

    def expected_move(self, event_type: str, pre_vol: float) -> float:
        """Expected move of the reaction session, decimal, not annualised.

        With ``target="abs_return"`` this is the expected absolute daily log move
        ``E|r|`` (0.012 = 1.2 %); with ``"gk_vol"`` the expected Garman-Klass daily vol.
        ``expected_ratio(event_type, pre_vol) * pre_vol / sqrt(252)``, ``pre_vol``
        annualised decimal (0.18 for 18 %).
        """
        v = _positive(pre_vol, "pre_vol")
        return self.expected_ratio(event_type, v) * v / _SQRT_DAYS

    def action(self, event_type: str, pre_vol: float) -> Action:
        """News-gate action for ``event_type`` at pre-event vol ``pre_vol`` (annualised).

        The expected *ratio* (move relative to the current vol) decides, not the
        absolute move: vol-scaled position sizing already absorbs the level of vol, the
        gate only guards against the extra move the event adds on top of it.
        """
        return self.thresholds.action(self.expected_ratio(event_type, pre_vol))


def _positive(x: float, name: str) -> float:
    v = float(x)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be finite and positive, got {x!r}")
    return v


@dataclass(frozen=True)
class EventImpactModel:
    """Expected move by event type and pre-event vol, shrunk across types.

    Parameters
    ----------
    thresholds : ActionThresholds
        Cut-offs for :meth:`EventImpactFit.action`.
    target : {"abs_return", "gk_vol"}, default "abs_return"
        The move to model: close-to-close ``|r|`` (what a delta position gains or
        loses) or the session's Garman-Klass vol (intraday range: what a short-gamma
        position or a stop feels even when the close is unchanged).
    shrinkage : {"random_effects", "none"}, default "random_effects"
        ``"random_effects"``: each type's mean ratio ``m_t`` (standard error ``se_t``)
        is shrunk toward the random-effects mean ``mu`` with weight
        ``B_t = se_t^2 / (se_t^2 + tau^2)``; ``tau^2``, the between-type variance, is
        the Paule-Mandel estimate (preferred to DerSimonian-Laird when types are few
        and unequally sized; Veroniki et al. 2016, Res. Synth. Methods 7:55). ``tau^2
        = 0`` pools all types fully. ``"none"``: raw type means.
    fit_vol_elasticity : bool, default True
        Fit ``beta`` on the control sessions; ``False`` fixes ``beta = 0`` (expected
        move proportional to the pre-event vol).
    min_obs_own_variance : int, default 3
        Types with fewer observations use the pooled within-type variance for their
        standard error.
    """

    thresholds: ActionThresholds = field(default_factory=ActionThresholds)
    target: Target = "abs_return"
    shrinkage: Shrinkage = "random_effects"
    fit_vol_elasticity: bool = True
    min_obs_own_variance: int = 3

    def __post_init__(self) -> None:
        if self.target not in get_args(Target):
            raise ValueError(f"target must be one of {get_args(Target)}")
        if self.shrinkage not in get_args(Shrinkage):
            raise ValueError(f"shrinkage must be one of {get_args(Shrinkage)}")
        if self.min_obs_own_variance < 2:
            raise ValueError("min_obs_own_variance must be at least 2")

    def fit(self, moves: EventMoves) -> EventImpactFit:
        """Fit on the events and control sessions of ``moves``.

        Raises
        ------
        ValueError
            With fewer than two usable control sessions (no baseline).
        """
        val_c, m_c = moves.control_target(self.target)
        v_c = moves.control_pre_vol
        ok_c = np.isfinite(v_c) & (v_c > 0.0) & np.isfinite(m_c)
        v_c, m_c, val_c = v_c[ok_c], m_c[ok_c], val_c[ok_c]
        if v_c.size < 2:
            raise ValueError("need at least two usable control sessions to fit a baseline")
        ref_vol = float(np.median(v_c))
        beta, beta_se = 0.0, math.nan
        if self.fit_vol_elasticity:
            beta, beta_se = _vol_elasticity(v_c, m_c, ref_vol)

        adj_c = m_c * (v_c / ref_vol) ** (-beta)
        base_mean = float(np.mean(adj_c))
        base_se = float(np.std(adj_c, ddof=1) / math.sqrt(adj_c.size))
        baseline = TypeEstimate(NON_EVENT, int(adj_c.size), base_mean, base_se, base_mean,
                                base_se, 0.0, float(np.mean(val_c)))

        val_e, m_e = moves.target(self.target)
        v_e = moves.pre_vol
        ok_e = np.isfinite(v_e) & (v_e > 0.0) & np.isfinite(m_e)
        kinds = moves.event_type[ok_e]
        adj_e = m_e[ok_e] * (v_e[ok_e] / ref_vol) ** (-beta)
        val_e = val_e[ok_e]
        names = sorted({str(t) for t in kinds})
        groups = {t: kinds == t for t in names}
        n_t = np.array([int(groups[t].sum()) for t in names], dtype=np.int64)
        mean_t = np.array([float(np.mean(adj_e[groups[t]])) for t in names])
        var_t = np.array(
            [float(np.var(adj_e[groups[t]], ddof=1)) if groups[t].sum() > 1 else math.nan
             for t in names]
        )
        several = n_t >= 2
        if bool(several.any()):
            pooled_var = float(np.sum((n_t[several] - 1) * var_t[several])
                               / np.sum(n_t[several] - 1))
        else:
            pooled_var = float(np.var(adj_c, ddof=1))
        var_used = np.where(n_t >= self.min_obs_own_variance, var_t, pooled_var)
        se2 = np.maximum(var_used, 1e-12) / np.maximum(n_t, 1)

        tau2, mu, var_mu = _random_effects(mean_t, se2)
        if self.shrinkage == "random_effects" and len(names) > 1:
            weight = se2 / (se2 + tau2) if tau2 > 0.0 else np.ones(len(names))
            shrunk = (1.0 - weight) * mean_t + weight * mu
            shrunk_se = np.sqrt((1.0 - weight) * se2 + weight * weight * var_mu)
        else:
            weight = np.zeros(len(names))
            shrunk, shrunk_se = mean_t, np.sqrt(se2)

        estimates = {
            t: TypeEstimate(
                event_type=t,
                n=int(n_t[i]),
                mean_ratio=float(mean_t[i]),
                se=float(math.sqrt(se2[i])),
                ratio=float(shrunk[i]),
                ratio_se=float(shrunk_se[i]),
                shrink_weight=float(weight[i]),
                mean_value=float(np.mean(val_e[groups[t]])),
            )
            for i, t in enumerate(names)
        }
        pooled = max(mu, base_mean) if names else base_mean
        pooled_se = math.sqrt(tau2 + var_mu) if names else base_se
        return EventImpactFit(
            target=self.target,
            types=MappingProxyType(estimates),
            baseline=baseline,
            pooled_ratio=float(pooled),
            pooled_se=float(pooled_se),
            tau2=float(tau2),
            vol_elasticity=float(beta),
            vol_elasticity_se=float(beta_se),
            ref_vol=ref_vol,
            thresholds=self.thresholds,
            shrinkage=self.shrinkage,
        )


def _vol_elasticity(v: Floats, m: Floats, ref_vol: float) -> tuple[float, float]:
    """OLS slope (and its SE) of ``log m`` on ``log(v / ref_vol)``; (0, NaN) if not fittable."""
    keep = m > 0.0  # a zero move has no log; it carries no slope information
    if int(keep.sum()) < _MIN_CONTROL_FOR_ELASTICITY:
        return 0.0, math.nan
    x = np.log(v[keep] / ref_vol)
    y = np.log(m[keep])
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if not sxx > 0.0:
        return 0.0, math.nan
    beta = float(xc @ (y - y.mean()) / sxx)
    resid = y - y.mean() - beta * xc
    s2 = float(resid @ resid) / (y.size - 2)
    return beta, math.sqrt(s2 / sxx)


def _random_effects(means: Floats, se2: Floats) -> tuple[float, float, float]:
    """Paule-Mandel ``(tau2, mu, var(mu))`` of per-type means with sampling variances ``se2``.

    ``tau2`` solves ``sum w_i (m_i - mu(tau2))^2 = k - 1`` with ``w_i = 1 / (se2_i +
    tau2)`` (the generalised Q statistic equal to its expectation), 0 when even
    ``tau2 = 0`` gives ``Q <= k - 1``; found by bisection (Q decreases in ``tau2``).
    """
    k = means.size
    if k == 0:
        return 0.0, math.nan, math.nan

    def q_and_mu(tau2: float) -> tuple[float, float, float]:
        w = 1.0 / (se2 + tau2)
        mu = float(np.sum(w * means) / np.sum(w))
        return float(np.sum(w * (means - mu) ** 2)), mu, float(1.0 / np.sum(w))

    tau2 = 0.0
    if k >= 2 and q_and_mu(0.0)[0] > k - 1:
        lo, hi = 0.0, max(float(np.var(means)), float(np.max(se2)), 1e-12)
        while q_and_mu(hi)[0] > k - 1:
            hi *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if q_and_mu(mid)[0] > k - 1 else (lo, mid)
            if hi - lo <= 1e-12 * max(hi, 1e-12):
                break
        tau2 = 0.5 * (lo + hi)
    _, mu, var_mu = q_and_mu(tau2)
    return tau2, mu, var_mu


# --------------------------------------------------------------------------------------
# Out-of-sample evaluation
# --------------------------------------------------------------------------------------


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties = 1/2.

    Mann-Whitney with mid-ranks for ties. NaN when either class is empty; non-finite
    scores are not allowed.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be 1-D of the same length")
    if not bool(np.all(np.isfinite(s))):
        raise ValueError("scores must be finite")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    mid_rank = start + (counts + 1) / 2.0  # 1-based average rank of each distinct score
    rank_sum = float(mid_rank[inverse][y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


@dataclass(frozen=True)
class ErrorStats:
    """Forecast errors of the expected move over a set of sessions, decimal.

    ``bias`` is mean(realized - expected) (positive: moves were under-predicted); ``mae``
    the mean absolute error (minimised by the conditional *median*, so a correct mean
    forecast of a right-skewed ``|r|`` does not minimise it); ``rmse`` the root mean
    squared error (minimised by the conditional mean, which the model targets).
    """

    n: int
    bias: float
    mae: float
    rmse: float


def _errors(realized: Floats, expected: Floats) -> ErrorStats:
    if realized.size == 0:
        return ErrorStats(0, math.nan, math.nan, math.nan)
    e = realized - expected
    return ErrorStats(int(e.size), float(np.mean(e)), float(np.mean(np.abs(e))),
                      float(math.sqrt(np.mean(e * e))))


@dataclass(frozen=True)
class TypeOos:
    """Out-of-sample summary of one event type.

    ``mean_*_ratio`` are dimensionless move ratios; ``model`` and ``vol_only`` are the
    errors of the expected move (decimal) of the model and of the vol-only benchmark;
    ``auc_expected_vs_control`` is the AUC of the model's expected move separating this
    type's event rows from the control sessions, ``auc_realized_vs_control`` the same
    with the realized move ratio.
    """

    event_type: str
    n: int
    mean_realized_ratio: float
    mean_predicted_ratio: float
    model: ErrorStats
    vol_only: ErrorStats
    auc_expected_vs_control: float
    auc_realized_vs_control: float


@dataclass(frozen=True, eq=False)
class OosReport:
    """Year-by-year out-of-sample evaluation of :class:`EventImpactModel`.

    Each tested year's events and control sessions are predicted by a model fitted
    without that year (leave-one-year-out) or on earlier years only (walk-forward).
    "Vol only" is the same fit with every session treated as a non-event (baseline ratio
    and vol elasticity only): the benchmark the event types must beat.

    Attributes
    ----------
    scheme : str
        ``"leave_one_year_out"`` or ``"walk_forward"``.
    target : str
        The modelled move (``"abs_return"`` or ``"gk_vol"``).
    years : tuple of int
        Years predicted.
    n_event, n_control : int
        Out-of-sample event rows and control sessions (an event row per event, so a
        session shared by two events counts twice).
    auc_expected_event_vs_control : float
        AUC of the model's expected move separating event rows from control sessions:
        does the model rank event days above non-event days? It mostly reflects whether
        the out-of-sample type ratios exceed the baseline, diluted by pre-event vol.
    auc_realized_event_vs_control : float
        The same with the *realized* move ratio: how separable event days really were.
    auc_large_move_model, auc_large_move_vol_only : float
        AUC of the expected ratio (model / vol only) for sessions whose realized ratio
        is at least ``large_ratio`` (event rows and control sessions together).
    event_model, event_vol_only, control : ErrorStats
        Errors of the expected move on event rows (model, vol-only benchmark) and on
        control sessions (where both coincide), decimal.
    large_ratio : float
        Threshold of a "large move", in ratio units.
    by_type : Mapping[str, TypeOos]
        Per event type.
    """

    scheme: str
    target: str
    years: tuple[int, ...]
    n_event: int
    n_control: int
    auc_expected_event_vs_control: float
    auc_realized_event_vs_control: float
    auc_large_move_model: float
    auc_large_move_vol_only: float
    event_model: ErrorStats
    event_vol_only: ErrorStats
    control: ErrorStats
    large_ratio: float
    by_type: Mapping[str, TypeOos]


def evaluate_by_year(
    moves: EventMoves,
    model: EventImpactModel | None = None,
    *,
    scheme: Scheme = "leave_one_year_out",
    min_train_years: int = 5,
    large_ratio: float = 2.0,
) -> OosReport:
    """Out-of-sample evaluation of ``model`` by calendar year of the reaction session.

    Parameters
    ----------
    moves : EventMoves
        Events and control sessions (all years).
    model : EventImpactModel, optional
        Defaults to ``EventImpactModel()``.
    scheme : {"leave_one_year_out", "walk_forward"}
        Train on every other year, or on earlier years only.
    min_train_years : int, default 5
        Walk-forward only: years needed before the first prediction.
    large_ratio : float, default 2.0
        Realized move ratio that counts as a large move.

    Returns
    -------
    OosReport

    Raises
    ------
    ValueError
        On an unknown scheme, or when no year can be evaluated.

    Notes
    -----
    A pre-event vol window may reach into the previous year; that is information known
    before the event, not leakage. Leave-one-year-out also trains on later years, which
    measures a stable effect but flatters a drifting one; compare with
    ``scheme="walk_forward"``.
    """
    model = model or EventImpactModel()
    if scheme not in get_args(Scheme):
        raise ValueError(f"scheme must be one of {get_args(Scheme)}")
    val_e, _ = moves.target(model.target)
    val_c, _ = moves.control_target(model.target)
    ey, cy = moves.event_year, moves.control_year
    all_years = sorted(set(ey.tolist()) | set(cy.tolist()))
    rows: list[tuple[bool, str, float, float, float, float]] = []
    tested: list[int] = []
    for i, year in enumerate(all_years):
        if scheme == "leave_one_year_out":
            train_e, train_c = ey != year, cy != year
        else:
            if i < min_train_years:
                continue
            train_e, train_c = ey < year, cy < year
        test_e = (ey == year) & np.isfinite(val_e)
        test_c = (cy == year) & np.isfinite(val_c)
        if int(train_c.sum()) < 2 or not (test_e.any() or test_c.any()):
            continue
        fit = model.fit(moves.select(train_e, train_c))
        tested.append(int(year))
        for j in np.flatnonzero(test_e):
            v, kind = float(moves.pre_vol[j]), str(moves.event_type[j])
            rows.append((True, kind, v, float(val_e[j]), fit.expected_ratio(kind, v),
                         fit.expected_ratio(NON_EVENT, v)))
        for j in np.flatnonzero(test_c):
            v = float(moves.control_pre_vol[j])
            base = fit.expected_ratio(NON_EVENT, v)
            rows.append((False, NON_EVENT, v, float(val_c[j]), base, base))
    if not rows:
        raise ValueError("no year could be evaluated")

    is_event = np.array([r[0] for r in rows], dtype=bool)
    kind = np.array([r[1] for r in rows], dtype=object)
    daily_vol = np.array([r[2] for r in rows]) / _SQRT_DAYS
    realized = np.array([r[3] for r in rows])
    pred_ratio = np.array([r[4] for r in rows])
    vol_ratio = np.array([r[5] for r in rows])
    realized_ratio = realized / daily_vol
    pred_move, vol_move = pred_ratio * daily_vol, vol_ratio * daily_vol
    large = realized_ratio >= large_ratio

    by_type = {}
    for t in sorted({str(k) for k in kind[is_event]}):
        sel = is_event & (kind == t)
        pair = sel | ~is_event
        by_type[t] = TypeOos(t, int(sel.sum()), float(np.mean(realized_ratio[sel])),
                             float(np.mean(pred_ratio[sel])),
                             _errors(realized[sel], pred_move[sel]),
                             _errors(realized[sel], vol_move[sel]),
                             roc_auc(pred_move[pair], sel[pair]),
                             roc_auc(realized_ratio[pair], sel[pair]))
    return OosReport(
        scheme=scheme,
        target=model.target,
        years=tuple(tested),
        n_event=int(is_event.sum()),
        n_control=int((~is_event).sum()),
        auc_expected_event_vs_control=roc_auc(pred_move, is_event),
        auc_realized_event_vs_control=roc_auc(realized_ratio, is_event),
        auc_large_move_model=roc_auc(pred_ratio, large),
        auc_large_move_vol_only=roc_auc(vol_ratio, large),
        event_model=_errors(realized[is_event], pred_move[is_event]),
        event_vol_only=_errors(realized[is_event], vol_move[is_event]),
        control=_errors(realized[~is_event], pred_move[~is_event]),
        large_ratio=float(large_ratio),
        by_type=MappingProxyType(by_type),
    )
