"""The scheduled-event calendar and the news gate's action for each event. Pure.

Scheduled events come from dated data with sources (``shared/data/event_calendar.csv``:
RBI MPC decisions, Union Budgets, FOMC statements, US CPI releases, each with its
announcement time and offset; an operator's extra calendar in the same format) and from
the NSE expiry calendar (the expiry close of each index's contracts).

Action and window
-----------------
The gate is active for ``|now - occurs_at| <= window`` (:class:`shared.domain.risk.inputs.NewsItem`).
With a production event-impact model (issue #5), the action is the model's for the event
type at the pre-event vol; the window is always the rule table's. Without a model, the
documented rule table decides:

================  ===========  ==========  ======  ===============================================
event type        action       window      impact  why
================  ===========  ==========  ======  ===============================================
``union_budget``  blackout     240 min     0.9     11:00 IST speech: the whole session moves
``rbi_policy``    reduce_50    90 min      0.8     10:00 IST decision: 08:30-11:30 IST
``fomc``          reduce_25    660 min     0.6     after the NSE close (IST night): to ~10:00 next session
``us_cpi``        reduce_25    900 min     0.5     18:00/19:00 IST: to ~09:00-10:00 next session
``expiry_day``    reduce_25    375 min     0.4     the expiry close 15:30 IST: the whole session
================  ===========  ==========  ======  ===============================================

Classified news (``news_action``): impact >= 0.8 reduces by 50 %, >= 0.6 by 25 %, for an
hour around its publication; below that the gate proceeds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

__all__ = ["EVENT_RULES", "CalendarEvent", "EventRule", "GateEvent", "expiry_events",
           "gate_events", "news_action", "parse_calendar"]

Action = Literal["proceed", "reduce_25", "reduce_50", "blackout"]


@dataclass(frozen=True, slots=True)
class EventRule:
    action: Action
    window_minutes: int
    impact: float


EVENT_RULES: dict[str, EventRule] = {
    "union_budget": EventRule("blackout", 240, 0.9),
    "rbi_policy": EventRule("reduce_50", 90, 0.8),
    "fomc": EventRule("reduce_25", 660, 0.6),
    "us_cpi": EventRule("reduce_25", 900, 0.5),
    "expiry_day": EventRule("reduce_25", 375, 0.4),
}
"""The documented rule table (module docstring); a type not in it is not gated."""


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One scheduled event: when (aware), what, which symbols (empty: market-wide), source."""

    occurs_at: datetime
    event_type: str
    title: str
    source: str
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.occurs_at.tzinfo is None or self.occurs_at.utcoffset() is None:
            raise ValueError(f"{self.title}: occurs_at must carry its UTC offset")

    @property
    def key(self) -> str:
        """A stable idempotency key."""
        return (f"scheduled:{self.event_type}:{self.occurs_at.isoformat()}:"
                f"{','.join(self.symbols)}")


@dataclass(frozen=True, slots=True)
class GateEvent:
    """A calendar event with the gate's action, window and impact, and why."""

    event: CalendarEvent
    action: Action
    window_minutes: int
    impact: float
    why: str


def parse_calendar(text: str, *, source_name: str = "calendar") -> tuple[CalendarEvent, ...]:
    """Rows ``occurs_at,event_type,title,source`` (header required; ISO times with their
    offset). A bad row raises ``ValueError`` naming the line."""
    reader = csv.DictReader(io.StringIO(text))
    need = {"occurs_at", "event_type", "title", "source"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise ValueError(f"{source_name}: the header must have {sorted(need)}")
    out = []
    for line, row in enumerate(reader, start=2):
        try:
            out.append(CalendarEvent(occurs_at=datetime.fromisoformat(row["occurs_at"].strip()),
                                     event_type=row["event_type"].strip(),
                                     title=row["title"].strip(), source=row["source"].strip()))
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{source_name} line {line}: {exc}") from None
    return tuple(out)


def expiry_events(expiries: Iterable[tuple[str, date, datetime]]) -> tuple[CalendarEvent, ...]:
    """Expiry days as events: ``(symbol, expiry date, expiry close)`` from the NSE calendar."""
    return tuple(CalendarEvent(occurs_at=close, event_type="expiry_day",
                               title=f"{symbol} expiry {day.isoformat()}",
                               source="NSE expiry calendar (shared/data/expiry_rules.csv)",
                               symbols=(symbol,))
                 for symbol, day, close in expiries)


def gate_events(events: Iterable[CalendarEvent], *, start: datetime, end: datetime,
                model_action: Callable[[str], Action | None] | None = None
                ) -> tuple[GateEvent, ...]:
    """The events occurring in ``[start, end]`` with their action: the event-impact model's
    when ``model_action`` knows the type, else the rule table's; types without a rule are
    left out."""
    out = []
    for e in events:
        rule = EVENT_RULES.get(e.event_type)
        if rule is None or not start <= e.occurs_at <= end:
            continue
        action = model_action(e.event_type) if model_action is not None else None
        why = (f"event-impact model: {action}" if action is not None else
               f"rule table: {e.event_type} -> {rule.action}")
        out.append(GateEvent(e, action or rule.action, rule.window_minutes, rule.impact,
                             f"{why}, window ±{rule.window_minutes} min"))
    return tuple(out)


def news_action(impact: float) -> tuple[Action, int]:
    """The gate's action and window (minutes) for a classified story (module docstring)."""
    if impact >= 0.8:
        return "reduce_50", 60
    if impact >= 0.6:
        return "reduce_25", 60
    return "proceed", 0
