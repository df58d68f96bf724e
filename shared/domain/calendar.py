"""NSE trading calendar, index-option expiries and lot sizes, computed from dated data.

Pure domain code: every table is passed in (:class:`CalendarTables`; the packaged data is
loaded by :mod:`shared.rules`), every "now" is an argument, nothing here reads a clock, a
file or the environment, and nothing imports pandas.

Conventions
-----------
* Times are Asia/Kolkata (IST, UTC+05:30, no DST). Datetimes given to this module must be
  timezone-aware; they may be in any zone and are converted to IST.
* A *session* is a span in which the exchange accepts trades (normal market). A day may have
  a session without being a *trading day*: NSE lists Diwali Laxmi Pujan as a trading
  holiday and holds a one-hour Muhurat session on it; disaster-recovery drills on Saturdays
  are live but the exchange does not treat them as trading days for expiries. Expiries
  only fall on trading days.
* An expiry rule says on which weekday the contracts of one ``(symbol, kind)`` expire for
  contracts whose *scheduled* date lies in ``[valid_from, valid_to]``; weekly contracts
  expire on that weekday of every week except the week of the monthly expiry, monthly ones on
  the last such weekday of the month, and a scheduled date that is not a trading day moves
  to the previous trading day. Quarterly and half-yearly contracts are the monthly contracts
  of March/June/September/December, so they are not a separate kind here. A rule with no
  weekday records a known absence (e.g. BANKNIFTY weeklies after 2024-11-20); a date no
  rule covers is unknown and raises.
* Lot sizes belong to contracts and are keyed by expiry: a row applies to contracts expiring
  on or after ``effective_from`` (optionally only weekly or only monthly ones) until a later
  row takes over. When an exchange changed the lot of already-listed long-dated contracts
  mid-life, the row gives the lot the contract had at expiry (the change date is in the
  data's notes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from shared.errors import PermanentError

IST = ZoneInfo("Asia/Kolkata")
WEEKDAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_YEAR_SECONDS = 365 * 24 * 3600
# A scheduled expiry never moves back by more than this (longest NSE holiday run is 3-4 days).
_MAX_SHIFT_DAYS = 10

ExpiryKind = Literal["weekly", "monthly"]
LotApplies = Literal[
    "expiry_on_or_after", "weekly_expiry_on_or_after", "monthly_expiry_on_or_after"
]


# ---------------------------------------------------------------------------- errors


class CalendarDataError(PermanentError, ValueError):
    """The calendar has no data for what was asked (symbol, date or rule)."""

    reason_code = "calendar_data_missing"


class UnknownSymbol(CalendarDataError):
    """The symbol has no expiry rules or lot sizes."""

    reason_code = "calendar_unknown_symbol"


class OutsideCoverage(CalendarDataError):
    """The date is outside the span for which holidays and sessions are known."""

    reason_code = "calendar_outside_coverage"


class NoRuleForDate(CalendarDataError):
    """No expiry rule or lot-size row covers the symbol at that date."""

    reason_code = "calendar_no_rule"


class NotAnExpiry(CalendarDataError):
    """A date was used as an expiry but the calendar generates no expiry on it."""

    reason_code = "calendar_not_an_expiry"


# ---------------------------------------------------------------------------- input tables


@dataclass(frozen=True, slots=True)
class MarketHours:
    """Regular session hours over a span of dates (``effective_to`` None: open-ended)."""

    effective_from: date
    effective_to: date | None
    pre_open_start: time
    pre_open_end: time
    open: time
    close: time
    source: str

    def covers(self, d: date) -> bool:
        return self.effective_from <= d and (self.effective_to is None or d <= self.effective_to)


@dataclass(frozen=True, slots=True)
class SpecialSession:
    """A session that differs from the regular hours (weekend, Muhurat, drill, outage)."""

    date: date
    open: time
    close: time
    kind: str  # budget | muhurat | dr_drill | special
    is_trading_day: bool
    source: str
    pre_open_start: time | None = None
    pre_open_end: time | None = None
    breaks: tuple[tuple[time, time], ...] = ()


@dataclass(frozen=True, slots=True)
class ExpiryRule:
    symbol: str
    kind: ExpiryKind
    weekday: int | None  # 0 = Monday; None = no contracts of this kind in the span
    valid_from: date
    valid_to: date | None
    source: str

    def covers(self, d: date) -> bool:
        return self.valid_from <= d and (self.valid_to is None or d <= self.valid_to)


@dataclass(frozen=True, slots=True)
class LotSizeRule:
    symbol: str
    value: int
    effective_from: date
    applies_to: LotApplies
    source: str


@dataclass(frozen=True, slots=True)
class CalendarTables:
    """Everything :class:`MarketCalendar` knows. Dates outside the coverage raise."""

    coverage_start: date
    coverage_end: date
    hours: tuple[MarketHours, ...]
    holidays: frozenset[date]  # weekdays with no regular session
    special_sessions: tuple[SpecialSession, ...]
    expiry_rules: tuple[ExpiryRule, ...]
    lot_sizes: tuple[LotSizeRule, ...]


# ---------------------------------------------------------------------------- results


class Phase(StrEnum):
    CLOSED = "closed"
    PRE_OPEN = "pre_open"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Session:
    """One day's session, as aware IST datetimes."""

    date: date
    open: datetime
    close: datetime
    kind: str  # regular | budget | muhurat | dr_drill | special
    is_trading_day: bool
    source: str
    pre_open_start: datetime | None = None
    pre_open_end: datetime | None = None  # end of pre-open order entry (informational)
    breaks: tuple[tuple[datetime, datetime], ...] = ()

    def phase(self, now: datetime) -> Phase:
        """OPEN inside the normal market (outside breaks); PRE_OPEN from the pre-open start
        until the normal open (order entry, then matching and buffer); else CLOSED."""
        t = _aware(now).astimezone(IST)
        if self.open <= t < self.close:
            if any(b0 <= t < b1 for b0, b1 in self.breaks):
                return Phase.CLOSED
            return Phase.OPEN
        if self.pre_open_start is not None and self.pre_open_start <= t < self.open:
            return Phase.PRE_OPEN
        return Phase.CLOSED


@dataclass(frozen=True, slots=True)
class Expiry:
    symbol: str
    date: date
    kind: ExpiryKind
    rule_weekday: int  # 0 = Monday
    shifted_from: date | None  # the scheduled date, when a holiday moved the expiry
    source: str

    @property
    def scheduled(self) -> date:
        return self.shifted_from or self.date


@dataclass(frozen=True, slots=True)
class LotSize:
    symbol: str
    value: int
    effective_from: date
    applies_to: LotApplies
    source: str


# ---------------------------------------------------------------------------- calendar


class MarketCalendar:
    """NSE sessions, expiries and lot sizes from :class:`CalendarTables`."""

    def __init__(self, tables: CalendarTables) -> None:
        if tables.coverage_end < tables.coverage_start:
            raise ValueError("coverage_end is before coverage_start")
        self._t = tables
        self._special: dict[date, SpecialSession] = {}
        for s in tables.special_sessions:
            if s.date in self._special:
                raise ValueError(f"two special sessions on {s.date}")
            self._special[s.date] = s
        rules: dict[tuple[str, str], list[ExpiryRule]] = defaultdict(list)
        for r in tables.expiry_rules:
            rules[(r.symbol, r.kind)].append(r)
        for key, rs in rules.items():
            rs.sort(key=lambda r: r.valid_from)
            for a, b in zip(rs, rs[1:], strict=False):
                if a.valid_to is None or a.valid_to >= b.valid_from:
                    raise ValueError(
                        f"overlapping {key[1]} expiry rules for {key[0]} at {b.valid_from}"
                    )
        self._rules = {k: tuple(v) for k, v in rules.items()}
        lots: dict[str, list[LotSizeRule]] = defaultdict(list)
        for lot in tables.lot_sizes:
            lots[lot.symbol].append(lot)
        for sym, ls in lots.items():
            ls.sort(key=lambda r: r.effective_from)
            if len({r.effective_from for r in ls}) != len(ls):
                raise ValueError(f"two lot-size rows for {sym} with the same effective_from")
        self._lots = {k: tuple(v) for k, v in lots.items()}
        self._symbols = frozenset(s for s, _ in self._rules) | frozenset(self._lots)

    # ------------------------------------------------------------------ coverage

    @property
    def coverage(self) -> tuple[date, date]:
        """First and last date for which holidays and sessions are known."""
        return self._t.coverage_start, self._t.coverage_end

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def expiry_rules(self, symbol: str) -> tuple[ExpiryRule, ...]:
        sym = self._symbol(symbol)
        return tuple(
            sorted(
                (r for (s, _), rs in self._rules.items() if s == sym for r in rs),
                key=lambda r: (r.kind, r.valid_from),
            )
        )

    def _check(self, d: date) -> date:
        d = _as_date(d)
        lo, hi = self.coverage
        if not lo <= d <= hi:
            raise OutsideCoverage(
                f"no NSE holiday/session data for {d.isoformat()}: "
                f"the calendar covers {lo.isoformat()}..{hi.isoformat()}"
            )
        return d

    def _symbol(self, symbol: str) -> str:
        sym = symbol.strip().upper()
        if sym not in self._symbols:
            raise UnknownSymbol(
                f"unknown symbol {symbol!r}: calendar data exists for "
                f"{', '.join(sorted(self._symbols))}"
            )
        return sym

    def _hours(self, d: date) -> MarketHours:
        for h in self._t.hours:
            if h.covers(d):
                return h
        raise OutsideCoverage(f"no market hours for {d.isoformat()}")

    # ------------------------------------------------------------------ sessions

    def session(self, d: date) -> Session | None:
        """The day's session (special sessions included), or None on a closed day."""
        d = self._check(d)
        sp = self._special.get(d)
        if sp is not None:
            return Session(
                date=d,
                open=_at(d, sp.open),
                close=_at(d, sp.close),
                kind=sp.kind,
                is_trading_day=sp.is_trading_day,
                source=sp.source,
                pre_open_start=_at(d, sp.pre_open_start) if sp.pre_open_start else None,
                pre_open_end=_at(d, sp.pre_open_end) if sp.pre_open_end else None,
                breaks=tuple((_at(d, a), _at(d, b)) for a, b in sp.breaks),
            )
        if d.weekday() >= 5 or d in self._t.holidays:
            return None
        h = self._hours(d)
        return Session(
            date=d,
            open=_at(d, h.open),
            close=_at(d, h.close),
            kind="regular",
            is_trading_day=True,
            source=h.source,
            pre_open_start=_at(d, h.pre_open_start),
            pre_open_end=_at(d, h.pre_open_end),
        )

    def is_trading_day(self, d: date) -> bool:
        s = self.session(d)
        return s is not None and s.is_trading_day

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before ``d``."""
        x = _as_date(d) - timedelta(days=1)
        while not self.is_trading_day(x):  # raises OutsideCoverage when it runs off the data
            x -= timedelta(days=1)
        return x

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after ``d``."""
        x = _as_date(d) + timedelta(days=1)
        while not self.is_trading_day(x):
            x += timedelta(days=1)
        return x

    def phase(self, now: datetime) -> Phase:
        """closed / pre_open / open at ``now`` (aware). Pre-open is not open for polling."""
        t = _aware(now).astimezone(IST)
        s = self.session(t.date())
        return Phase.CLOSED if s is None else s.phase(t)

    def is_market_open(self, now: datetime) -> bool:
        """True only inside a normal-market session (special sessions included)."""
        return self.phase(now) is Phase.OPEN

    # ------------------------------------------------------------------ expiries

    def expiries(self, symbol: str, start: date, end: date) -> list[Expiry]:
        """Weekly and monthly expiries of ``symbol`` falling in ``[start, end]``, sorted.

        When a weekly and a monthly contract would expire on the same day only the monthly
        one is returned (NSE lists no weekly in the monthly expiry week).
        """
        sym = self._symbol(symbol)
        start, end = self._check(start), self._check(end)
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        for kind in ("weekly", "monthly"):
            self._require_rules(sym, kind, start, end)
        horizon = min(end + timedelta(days=_MAX_SHIFT_DAYS), self.coverage[1])
        monthly = list(self._scheduled_monthly(sym, start - timedelta(days=7), horizon))
        monthly_weeks = {_monday(s) for s, _ in monthly}
        out: dict[date, Expiry] = {}
        for sched, rule in monthly:
            if sched >= start:
                e = self._expiry(sym, sched, rule)
                out[e.date] = e
        for sched, rule in self._scheduled_weekly(sym, start, horizon):
            if _monday(sched) in monthly_weeks:
                continue
            e = self._expiry(sym, sched, rule)
            out.setdefault(e.date, e)
        return sorted((e for e in out.values() if start <= e.date <= end), key=lambda e: e.date)

    def _require_rules(self, sym: str, kind: str, start: date, end: date) -> None:
        """Every day of [start, end] must be covered by a rule (possibly a 'none' rule)."""
        cursor = start
        for r in self._rules.get((sym, kind), ()):
            if r.valid_to is not None and r.valid_to < cursor:
                continue
            if r.valid_from > cursor:
                break
            if r.valid_to is None or r.valid_to >= end:
                return
            cursor = r.valid_to + timedelta(days=1)
        raise NoRuleForDate(
            f"no {kind} expiry rule for {sym} on {cursor.isoformat()} "
            f"(asked for {start.isoformat()}..{end.isoformat()})"
        )

    def _scheduled_monthly(self, sym: str, lo: date, hi: date) -> Iterable[tuple[date, ExpiryRule]]:
        rules = self._rules.get((sym, "monthly"), ())
        y, m = lo.year, lo.month
        while date(y, m, 1) <= hi:
            for r in rules:
                if r.weekday is None:
                    continue
                s = _last_weekday_of_month(y, m, r.weekday)
                if lo <= s <= hi and r.covers(s):
                    yield s, r
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    def _scheduled_weekly(self, sym: str, lo: date, hi: date) -> Iterable[tuple[date, ExpiryRule]]:
        rules = self._rules.get((sym, "weekly"), ())
        monday = _monday(lo)
        while monday <= hi:
            for r in rules:
                if r.weekday is None:
                    continue
                s = monday + timedelta(days=r.weekday)
                if lo <= s <= hi and r.covers(s):
                    yield s, r
            monday += timedelta(days=7)

    def _expiry(self, sym: str, sched: date, rule: ExpiryRule) -> Expiry:
        assert rule.weekday is not None
        actual = sched if self.is_trading_day(sched) else self.previous_trading_day(sched)
        if (sched - actual).days > _MAX_SHIFT_DAYS:
            raise CalendarDataError(f"{sym} expiry {sched} would move back to {actual}")
        return Expiry(
            symbol=sym,
            date=actual,
            kind=rule.kind,
            rule_weekday=rule.weekday,
            shifted_from=None if actual == sched else sched,
            source=rule.source,
        )

    # ------------------------------------------------------------------ lot sizes

    def lot_size(self, symbol: str, expiry: date | Expiry) -> LotSize:
        """The market lot of the ``symbol`` contract expiring on ``expiry``.

        Given a bare date where weekly and monthly contracts had different lots, the kind is
        taken from the generated expiries (and a date that is no expiry raises).
        """
        sym = self._symbol(symbol)
        if isinstance(expiry, Expiry):
            d, kind = expiry.date, expiry.kind
        else:
            d, kind = _as_date(expiry), None
        rows = self._lots.get(sym, ())
        applicable = [r for r in rows if r.effective_from <= d]
        if not applicable:
            first = rows[0].effective_from.isoformat() if rows else "nowhere"
            raise NoRuleForDate(
                f"no lot size for {sym} contracts expiring {d.isoformat()}: "
                f"the data starts at {first}"
            )

        def pick(k: str) -> LotSizeRule | None:
            wanted = ("expiry_on_or_after", f"{k}_expiry_on_or_after")
            found = [r for r in applicable if r.applies_to in wanted]
            return found[-1] if found else None  # rows are sorted by effective_from

        if kind is None:
            weekly, monthly = pick("weekly"), pick("monthly")
            if weekly is monthly:
                row = weekly
            else:
                kind = self._kind_of(sym, d)
                row = weekly if kind == "weekly" else monthly
        else:
            row = pick(kind)
        if row is None:
            raise NoRuleForDate(
                f"no {kind or 'applicable'} lot size for {sym} contracts expiring {d.isoformat()}"
            )
        return LotSize(
            symbol=sym,
            value=row.value,
            effective_from=row.effective_from,
            applies_to=row.applies_to,
            source=row.source,
        )

    def _kind_of(self, sym: str, d: date) -> ExpiryKind:
        for e in self.expiries(sym, d, d):
            return e.kind
        raise NotAnExpiry(
            f"{d.isoformat()} is not a {sym} expiry per the calendar, and weekly and monthly "
            f"{sym} contracts had different lots then: pass an Expiry"
        )

    # ------------------------------------------------------------------ time to expiry

    def expiry_close(self, expiry: date | Expiry) -> datetime:
        """The end of trading on the expiry day (15:30 IST on a regular day)."""
        d = expiry.date if isinstance(expiry, Expiry) else _as_date(expiry)
        sp = self._special.get(d)
        return _at(d, sp.close if sp is not None else self._hours(d).close)

    def year_fraction(self, now: datetime, expiry: date | Expiry) -> float:
        """ACT/365 years from ``now`` to the expiry-day close; fractional on the expiry day,
        0.0 from the close on. Uses the dated hours only, so far expiries beyond the holiday
        coverage still work."""
        seconds = (self.expiry_close(expiry) - _aware(now)).total_seconds()
        return max(0.0, seconds / _YEAR_SECONDS)


# ---------------------------------------------------------------------------- helpers


def ist_day_start(now: datetime) -> datetime:
    """Midnight IST of ``now``'s IST day (aware): where "today" begins for daily limits and
    where earlier sessions end."""
    return datetime.combine(_aware(now).astimezone(IST).date(), time.min, tzinfo=IST)


def weekday_number(name: str) -> int:
    return WEEKDAY_NAMES.index(name.upper())


def _as_date(d: date) -> date:
    if isinstance(d, datetime):
        raise TypeError(f"expected a date, got the datetime {d!r} (use .date() in IST)")
    if not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}")
    return d


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        raise TypeError(f"expected a datetime, got {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware datetime")
    return now


def _at(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=IST)


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    first_next = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last = first_next - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)
