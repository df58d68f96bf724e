"""Dated market rules shipped with the code, loaded once and cached.

The files live in ``shared/data`` (package data, read with :mod:`importlib.resources`) and
every row carries its source:

* ``lot_sizes.csv``        symbol, lot_size, effective_from, applies_to, source, notes
* ``expiry_rules.csv``     symbol, kind, weekday, valid_from, valid_to, source, notes
* ``special_sessions.csv`` date, open, close, kind, is_trading_day, pre_open_start,
  pre_open_end, break_start, break_end, source, notes (IST wall-clock times)
* ``holiday_overrides.csv`` date, is_holiday, reason, source: corrections to the
  pandas_market_calendars NSE holiday list
* ``market_hours.csv``     effective_from, effective_to, pre_open_start, pre_open_end, open,
  close, source, notes; its first row also starts the calendar's coverage

Each row is validated by a frozen pydantic model; a bad row raises :class:`RulesDataError`
naming the file and line. The NSE holiday list and the library's special sessions come
from ``pandas_market_calendars.get_calendar("NSE")``, imported lazily (importing this module
imports neither pandas nor pandas_market_calendars); the calendar's coverage ends on
31 December of the last year for which the library lists holidays.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Sequence
from datetime import date, time
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PositiveInt,
    StringConstraints,
    model_validator,
)

from shared.datafiles import DataRow, Rows, parse_csv, read_packaged
from shared.domain.calendar import (
    CalendarTables,
    ExpiryRule,
    LotSizeRule,
    MarketCalendar,
    MarketHours,
    SpecialSession,
    weekday_number,
)

NSE_CALENDAR = "NSE"

Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class RulesDataError(ValueError):
    """A packaged rules file is malformed (the message names the file and line)."""


# ---------------------------------------------------------------------------- row models





class LotSizeRow(DataRow):
    symbol: Symbol
    lot_size: PositiveInt
    effective_from: date
    applies_to: Literal[
        "expiry_on_or_after", "weekly_expiry_on_or_after", "monthly_expiry_on_or_after"
    ]
    source: Text
    notes: str | None = None

    def to_domain(self) -> LotSizeRule:
        return LotSizeRule(
            symbol=self.symbol,
            value=self.lot_size,
            effective_from=self.effective_from,
            applies_to=self.applies_to,
            source=self.source,
        )


class ExpiryRuleRow(DataRow):
    symbol: Symbol
    kind: Literal["weekly", "monthly"]
    weekday: Literal["MON", "TUE", "WED", "THU", "FRI", "NONE"]
    valid_from: date
    valid_to: date | None = None
    source: Text
    notes: str | None = None

    @model_validator(mode="after")
    def _span(self) -> ExpiryRuleRow:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    def to_domain(self) -> ExpiryRule:
        return ExpiryRule(
            symbol=self.symbol,
            kind=self.kind,
            weekday=None if self.weekday == "NONE" else weekday_number(self.weekday),
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            source=self.source,
        )


class SpecialSessionRow(DataRow):
    date: date
    open: time
    close: time
    kind: Literal["budget", "muhurat", "dr_drill", "special"]
    is_trading_day: bool
    pre_open_start: time | None = None
    pre_open_end: time | None = None
    break_start: time | None = None
    break_end: time | None = None
    source: Text
    notes: str | None = None

    @model_validator(mode="after")
    def _times(self) -> SpecialSessionRow:
        if not self.open < self.close:
            raise ValueError("open must be before close")
        if (self.break_start is None) != (self.break_end is None):
            raise ValueError("give both break_start and break_end, or neither")
        if (
            self.break_start is not None
            and self.break_end is not None
            and not (self.open < self.break_start < self.break_end < self.close)
        ):
            raise ValueError("the break must lie inside the session")
        if self.pre_open_start is not None and not self.pre_open_start < self.open:
            raise ValueError("pre_open_start must be before open")
        return self

    def to_domain(self) -> SpecialSession:
        breaks = ()
        if self.break_start is not None and self.break_end is not None:
            breaks = ((self.break_start, self.break_end),)
        return SpecialSession(
            date=self.date,
            open=self.open,
            close=self.close,
            kind=self.kind,
            is_trading_day=self.is_trading_day,
            source=self.source,
            pre_open_start=self.pre_open_start,
            pre_open_end=self.pre_open_end,
            breaks=breaks,
        )


class HolidayOverrideRow(DataRow):
    date: date
    is_holiday: bool
    reason: Text
    source: Text


class MarketHoursRow(DataRow):
    effective_from: date
    effective_to: date | None = None
    pre_open_start: time
    pre_open_end: time
    open: time
    close: time
    source: Text
    notes: str | None = None

    @model_validator(mode="after")
    def _times(self) -> MarketHoursRow:
        if not self.pre_open_start < self.pre_open_end <= self.open < self.close:
            raise ValueError("need pre_open_start < pre_open_end <= open < close")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self

    def to_domain(self) -> MarketHours:
        return MarketHours(
            effective_from=self.effective_from,
            effective_to=self.effective_to,
            pre_open_start=self.pre_open_start,
            pre_open_end=self.pre_open_end,
            open=self.open,
            close=self.close,
            source=self.source,
        )


# ---------------------------------------------------------------------------- parsing



def _check_lots(name: str, rows: Rows) -> None:
    seen: dict[tuple[str, date], int] = {}
    for line, r in rows:
        key = (r.symbol, r.effective_from)
        if key in seen:
            raise RulesDataError(
                f"{name} line {line}: {r.symbol} already has a row effective {r.effective_from} "
                f"(line {seen[key]})"
            )
        seen[key] = line


def _check_expiry_rules(name: str, rows: Rows) -> None:
    by_key: dict[tuple[str, str], list[tuple[int, ExpiryRuleRow]]] = {}
    for line, r in rows:
        by_key.setdefault((r.symbol, r.kind), []).append((line, r))
    for (symbol, kind), items in by_key.items():
        items.sort(key=lambda item: item[1].valid_from)
        for (line_a, a), (line_b, b) in zip(items, items[1:], strict=False):
            if a.valid_to is None or a.valid_to >= b.valid_from:
                raise RulesDataError(
                    f"{name} line {line_b}: {kind} rule for {symbol} from {b.valid_from} overlaps "
                    f"line {line_a}"
                )


def _check_unique_dates(name: str, rows: Rows) -> None:
    seen: dict[date, int] = {}
    for line, r in rows:
        if r.date in seen:
            raise RulesDataError(f"{name} line {line}: {r.date} already on line {seen[r.date]}")
        seen[r.date] = line


def _check_hours(name: str, rows: Rows) -> None:
    ordered = sorted(rows, key=lambda item: item[1].effective_from)
    for (line_a, a), (line_b, b) in zip(ordered, ordered[1:], strict=False):
        if a.effective_to is None or a.effective_to >= b.effective_from:
            raise RulesDataError(f"{name} line {line_b}: overlaps line {line_a}")
    if not rows:
        raise RulesDataError(f"{name}: no rows")


class RateRow(DataRow):
    """The policy repo rate from a date on: the risk-free rate used for discounting."""

    effective_from: date
    rate: float = Field(ge=0, le=0.25)
    source: str = Field(min_length=1)
    notes: str | None = None


def _check_rates(name: str, rows: Rows) -> None:
    if not rows:
        raise RulesDataError(f"{name}: no rows")
    dates = [r.effective_from for _, r in rows]
    if dates != sorted(set(dates)):
        raise RulesDataError(f"{name}: effective_from must be strictly increasing")


class EventRow(DataRow):
    """A scheduled market event (``events.csv``): the event-impact model's history."""

    event_date: date
    event_type: str = Field(min_length=1)
    reaction: Literal["same_day", "next_session"]
    title: str
    source: str = Field(min_length=1)

    def to_domain(self) -> Any:
        from shared.domain.models.event_impact import ScheduledEvent

        return ScheduledEvent(self.event_date, self.event_type, self.reaction, self.title)


def _check_events(name: str, rows: Rows) -> None:
    if not rows:
        raise RulesDataError(f"{name}: no rows")
    dates = [r.event_date for _, r in rows]
    if dates != sorted(dates):
        raise RulesDataError(f"{name}: rows must be in date order")


_TABLES: dict[str, tuple[type[DataRow], Callable[[str, Rows], None]]] = {
    "events.csv": (EventRow, _check_events),
    "rates.csv": (RateRow, _check_rates),
    "lot_sizes.csv": (LotSizeRow, _check_lots),
    "expiry_rules.csv": (ExpiryRuleRow, _check_expiry_rules),
    "special_sessions.csv": (SpecialSessionRow, _check_unique_dates),
    "holiday_overrides.csv": (HolidayOverrideRow, _check_unique_dates),
    "market_hours.csv": (MarketHoursRow, _check_hours),
}


def parse_table(name: str, text: str) -> Rows:
    """Parse and validate the CSV text of the packaged file ``name``.

    Returns ``(line, row)`` pairs; raises :class:`RulesDataError` naming file and line.
    """
    model, check = _TABLES[name]
    result = parse_csv(name, text, model, RulesDataError)
    check(name, result)
    return result


def _read(name: str) -> str:
    return read_packaged(name)


@functools.cache
def load_table(name: str) -> Rows:
    """The validated rows of a packaged rules file (cached)."""
    return parse_table(name, _read(name))


def _rows(name: str) -> Sequence[Any]:
    return [row for _, row in load_table(name)]


@functools.cache
def scheduled_events() -> tuple[Any, ...]:
    """The dated, sourced event calendar as ``ScheduledEvent`` values."""
    return tuple(r.to_domain() for r in _rows("events.csv"))


@functools.cache
def lot_size_rules() -> tuple[LotSizeRule, ...]:
    return tuple(r.to_domain() for r in _rows("lot_sizes.csv"))


@functools.cache
def expiry_rules() -> tuple[ExpiryRule, ...]:
    return tuple(r.to_domain() for r in _rows("expiry_rules.csv"))


@functools.cache
def special_sessions() -> tuple[SpecialSession, ...]:
    return tuple(r.to_domain() for r in _rows("special_sessions.csv"))


@functools.cache
def holiday_overrides() -> dict[date, bool]:
    return {r.date: r.is_holiday for r in _rows("holiday_overrides.csv")}


@functools.cache
def market_hours() -> tuple[MarketHours, ...]:
    return tuple(
        sorted((r.to_domain() for r in _rows("market_hours.csv")), key=lambda h: h.effective_from)
    )


# ---------------------------------------------------------------------------- NSE calendar


def _library_calendar(
    start: date, hours: Sequence[MarketHours]
) -> tuple[date, frozenset[date], dict[date, SpecialSession]]:
    """Holidays and non-regular sessions from pandas_market_calendars (lazy import).

    Returns the coverage end (31 December of the library's last holiday year), the weekday
    holidays in coverage, and the days whose open/close differ from ``hours`` or that have an
    interruption (e.g. the 2021-02-24 outage, Diwali Muhurat sessions).
    """
    import pandas as pd
    import pandas_market_calendars as mcal

    cal = mcal.get_calendar(NSE_CALENDAR)
    listed = sorted(pd.Timestamp(x).date() for x in cal.holidays().holidays)
    if not listed:
        raise RulesDataError("pandas_market_calendars NSE lists no holidays")
    end = date(listed[-1].year, 12, 31)
    holidays = frozenset(d for d in listed if start <= d <= end and d.weekday() < 5)
    schedule = cal.schedule(start, end, tz="Asia/Kolkata", interruptions=True)
    starts = sorted(c for c in schedule.columns if str(c).startswith("interruption_start"))
    specials: dict[date, SpecialSession] = {}
    for day, row in zip(schedule.index, schedule.itertuples(index=False), strict=True):
        d = pd.Timestamp(day).date()
        regular = next((h for h in hours if h.covers(d)), None)
        opened = row.market_open.time()
        closed = row.market_close.time()
        record = row._asdict()
        breaks = tuple(
            (record[s].time(), record[s.replace("start", "end")].time())
            for s in starts
            if not pd.isna(record[s])
        )
        if regular is not None and (opened, closed) == (regular.open, regular.close) and not breaks:
            continue
        specials[d] = SpecialSession(
            date=d,
            open=opened,
            close=closed,
            kind="special",
            is_trading_day=True,
            source=f"pandas_market_calendars {NSE_CALENDAR}: special hours or interruption",
            pre_open_start=regular.pre_open_start if regular else None,
            pre_open_end=regular.pre_open_end if regular else None,
            breaks=breaks,
        )
    return end, holidays, specials


@functools.cache
def calendar_tables() -> CalendarTables:
    """The NSE holiday/session table merged with the packaged overrides, plus all rules."""
    hours = market_hours()
    start = hours[0].effective_from
    end, lib_holidays, lib_specials = _library_calendar(start, hours)
    overrides = holiday_overrides()
    holidays = {d for d in lib_holidays if overrides.get(d, True)}
    holidays |= {d for d, is_holiday in overrides.items() if is_holiday and start <= d <= end}
    sessions = dict(lib_specials)
    for d, s in list(sessions.items()):
        if d in holidays:  # the library keeps a session on a day NSE lists as a holiday
            sessions[d] = SpecialSession(
                date=s.date,
                open=s.open,
                close=s.close,
                kind=s.kind,
                is_trading_day=False,
                source=s.source,
                pre_open_start=s.pre_open_start,
                pre_open_end=s.pre_open_end,
                breaks=s.breaks,
            )
    for s in special_sessions():
        if start <= s.date <= end:
            sessions[s.date] = s
    lots, rules = lot_size_rules(), expiry_rules()
    lot_symbols, rule_symbols = {r.symbol for r in lots}, {r.symbol for r in rules}
    if lot_symbols != rule_symbols:
        raise RulesDataError(
            "lot_sizes.csv and expiry_rules.csv name different symbols: "
            f"{sorted(lot_symbols ^ rule_symbols)}"
        )
    return CalendarTables(
        coverage_start=start,
        coverage_end=end,
        hours=hours,
        holidays=frozenset(holidays),
        special_sessions=tuple(sorted(sessions.values(), key=lambda s: s.date)),
        expiry_rules=rules,
        lot_sizes=lots,
    )


@functools.cache
def default_calendar() -> MarketCalendar:
    """The cached :class:`MarketCalendar` built from the packaged data."""
    return MarketCalendar(calendar_tables())


@functools.cache
def _rate_table() -> tuple[tuple[date, ...], tuple[float, ...]]:
    rows = _rows("rates.csv")
    return tuple(r.effective_from for r in rows), tuple(r.rate for r in rows)


def risk_free_rate(on: date) -> float:
    """The annual risk-free rate in force on ``on`` (RBI policy repo rate, dated data)."""
    dates, rates = _rate_table()
    i = bisect.bisect_right(dates, on) - 1
    if i < 0:
        raise RulesDataError(f"rates.csv has no rate before {on} (first: {dates[0]})")
    return rates[i]
