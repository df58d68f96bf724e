"""The NSE calendar, expiries and lot sizes, against the packaged dated data and real payloads."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.calendar import (
    IST,
    CalendarDataError,
    Expiry,
    MarketCalendar,
    NoRuleForDate,
    NotAnExpiry,
    OutsideCoverage,
    Phase,
    UnknownSymbol,
)
from shared.errors import PermanentError
from shared.rules import (
    RulesDataError,
    calendar_tables,
    default_calendar,
    load_table,
    parse_table,
)

ROOT = Path(__file__).resolve().parents[2]
CHAIN_FIXTURES = ROOT.parent / "shared" / "fixtures" / "nse_option_chain"
D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return default_calendar()


def ist(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=IST)


def dates(
    cal: MarketCalendar, symbol: str, start: str, end: str, kind: str | None = None
) -> list[str]:
    return [
        e.date.isoformat()
        for e in cal.expiries(symbol, D(start), D(end))
        if kind is None or e.kind == kind
    ]


# ---------------------------------------------------------------------------- loading


def test_importing_rules_does_not_import_pandas():
    code = (
        "import sys, shared.rules, shared.domain.calendar; "
        "bad = [m for m in ('pandas', 'pandas_market_calendars') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_default_calendar_is_cached_and_covers_2019_to_2026(cal):
    assert default_calendar() is cal
    assert cal.coverage == (D("2019-01-01"), D("2026-12-31"))
    assert cal.symbols == {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"}


@pytest.mark.parametrize(
    "name",
    [
        "lot_sizes.csv",
        "expiry_rules.csv",
        "special_sessions.csv",
        "holiday_overrides.csv",
        "market_hours.csv",
    ],
)
def test_every_packaged_row_names_a_source(name):
    rows = load_table(name)
    assert rows
    for line, row in rows:
        assert "http" in row.source or "NSE" in row.source or "SEBI" in row.source, (name, line)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        (
            "lot_sizes.csv",
            "symbol,lot_size,effective_from,applies_to,source,notes\n"
            "NIFTY,75,2019-01-01,expiry_on_or_after,NSE,\n"
            "NIFTY,-5,2021-07-29,expiry_on_or_after,NSE,\n",
            r"lot_sizes\.csv line 3: lot_size",
        ),
        (
            "lot_sizes.csv",
            "symbol,lot_size,effective_from,applies_to,source,notes\nNIFTY,75,2019-01-01,expiry_on_or_after,,\n",
            r"lot_sizes\.csv line 2: source",
        ),
        (
            "expiry_rules.csv",
            "symbol,kind,weekday,valid_from,valid_to,source,notes\n"
            "NIFTY,weekly,THU,2019-01-01,2025-08-31,NSE,\n"
            "NIFTY,weekly,TUE,2025-08-01,,NSE,\n",
            r"expiry_rules\.csv line 3: weekly rule for NIFTY .* overlaps line 2",
        ),
        (
            "expiry_rules.csv",
            "symbol,kind,weekday,valid_from,valid_to,source,notes\nNIFTY,weekly,THURSDAY,2019-01-01,,NSE,\n",
            r"expiry_rules\.csv line 2: weekday",
        ),
        (
            "special_sessions.csv",
            "date,open,close,kind,is_trading_day,pre_open_start,pre_open_end,break_start,break_end,source,notes\n"
            "2026-02-01,15:30,09:15,budget,true,,,,,NSE,\n",
            r"special_sessions\.csv line 2: .*open must be before close",
        ),
        (
            "holiday_overrides.csv",
            "date,holiday,reason,source\n",
            r"holiday_overrides\.csv line 1: header",
        ),
        (
            "holiday_overrides.csv",
            "date,is_holiday,reason,source\n2026-01-15,true,poll,NSE,extra\n",
            r"holiday_overrides\.csv line 2: more fields",
        ),
    ],
)
def test_a_bad_row_fails_loudly_naming_file_and_line(name, text, match):
    with pytest.raises(RulesDataError, match=match):
        parse_table(name, text)


# ---------------------------------------------------------------------------- holidays


NSE_2026_HOLIDAYS = [
    "2026-01-15",
    "2026-01-26",
    "2026-03-03",
    "2026-03-26",
    "2026-03-31",
    "2026-04-03",
    "2026-04-14",
    "2026-05-01",
    "2026-05-28",
    "2026-06-26",
    "2026-09-14",
    "2026-10-02",
    "2026-10-20",
    "2026-11-10",
    "2026-11-24",
    "2026-12-25",
]  # domain-facts list plus Jan 15 (NSE circular 2026-01-12, Maharashtra municipal elections)


def weekday_closures(cal: MarketCalendar, year: int) -> list[str]:
    d, out = date(year, 1, 1), []
    while d.year == year:
        if d.weekday() < 5 and not cal.is_trading_day(d):
            out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def test_2026_weekday_closures_are_nses_published_list(cal):
    assert weekday_closures(cal, 2026) == NSE_2026_HOLIDAYS


def test_diwali_laxmi_pujan_is_a_holiday_with_a_muhurat_session(cal):
    # NSE lists Laxmi Pujan as a trading holiday; the library models it as a short trading day.
    assert "2024-11-01" in weekday_closures(cal, 2024)
    assert {"2025-10-21", "2025-10-22"} <= set(weekday_closures(cal, 2025))
    for day in ("2024-01-22", "2024-05-20", "2024-11-20", "2025-02-26", "2025-12-25"):
        assert not cal.is_trading_day(D(day)), day
    assert cal.session(D("2024-11-20")) is None


def test_overrides_only_touch_the_muhurat_days():
    import pandas as pd
    import pandas_market_calendars as mcal

    lib = {
        pd.Timestamp(x).date()
        for x in mcal.get_calendar("NSE").holidays().holidays
        if D("2019-01-01") <= pd.Timestamp(x).date() <= D("2026-12-31")
    }
    ours = calendar_tables().holidays
    assert {d.isoformat() for d in ours - lib} == {
        "2021-11-04",
        "2022-10-24",
        "2024-11-01",
        "2025-10-21",
    }
    assert lib - ours == set()


def test_previous_trading_day_skips_holidays_muhurat_and_drills(cal):
    assert cal.previous_trading_day(D("2026-03-03")) == D("2026-03-02")
    assert cal.previous_trading_day(D("2024-01-22")) == D("2024-01-20")  # Saturday full session
    assert cal.previous_trading_day(D("2024-05-20")) == D("2024-05-17")  # not the 05-18 DR drill
    assert cal.previous_trading_day(D("2025-10-23")) == D("2025-10-20")  # skips Muhurat 10-21
    assert cal.next_trading_day(D("2026-01-30")) == D("2026-02-01")  # Budget Sunday


# ---------------------------------------------------------------------------- sessions


def test_budget_sunday_2026_is_a_trading_day_at_standard_hours(cal):
    s = cal.session(D("2026-02-01"))
    assert s is not None and s.kind == "budget" and s.is_trading_day
    assert D("2026-02-01").weekday() == 6
    assert s.open == ist("2026-02-01T09:15") and s.pre_open_start == ist("2026-02-01T09:00")
    # The NSE circular of 2026-01-16 gives the normal close 15:30 (the brief's domain-facts
    # note said 15:00; the circular wins).
    assert s.close == ist("2026-02-01T15:30")
    assert cal.is_market_open(ist("2026-02-01T15:00"))
    assert not cal.is_market_open(ist("2026-02-01T15:30"))


def test_muhurat_sessions(cal):
    s = cal.session(D("2025-10-21"))
    assert s is not None and s.kind == "muhurat" and not s.is_trading_day
    assert (s.open.time(), s.close.time()) == (time(13, 45), time(14, 45))
    assert cal.phase(ist("2025-10-21T13:35")) is Phase.PRE_OPEN
    assert cal.is_market_open(ist("2025-10-21T14:00"))
    assert not cal.is_market_open(ist("2025-10-21T10:00"))
    sunday = cal.session(D("2023-11-12"))  # a weekend session the library cannot represent
    assert sunday is not None and sunday.kind == "muhurat"
    assert cal.is_market_open(ist("2023-11-12T18:30"))
    assert not cal.is_trading_day(D("2023-11-12"))


def test_weekday_muhurat_rows_agree_with_the_library():
    import pandas_market_calendars as mcal

    lib = mcal.get_calendar("NSE")
    rows = [
        r
        for _, r in load_table("special_sessions.csv")
        if r.kind == "muhurat" and r.date.weekday() < 5
    ]
    assert len(rows) == 4
    for r in rows:
        sched = lib.schedule(r.date, r.date, tz="Asia/Kolkata")
        assert sched.market_open.iloc[0].time() == r.open, r.date
        assert sched.market_close.iloc[0].time() == r.close, r.date


def test_dr_drill_break_and_the_2021_outage(cal):
    assert cal.is_market_open(ist("2024-03-02T09:30"))
    assert not cal.is_market_open(ist("2024-03-02T10:30"))
    assert cal.is_market_open(ist("2024-03-02T11:45"))
    assert not cal.is_trading_day(D("2024-03-02"))
    outage = cal.session(D("2021-02-24"))  # from the library: halted 11:40, reopened 15:45
    assert outage is not None and outage.close == ist("2021-02-24T17:00")
    assert not cal.is_market_open(ist("2021-02-24T12:00"))
    assert cal.is_market_open(ist("2021-02-24T16:00"))


@pytest.mark.parametrize(
    ("clock", "phase"),
    [
        ("08:59", Phase.CLOSED),
        ("09:00", Phase.PRE_OPEN),
        ("09:05", Phase.PRE_OPEN),
        ("09:10", Phase.PRE_OPEN),  # order matching / buffer, still not open
        ("09:15", Phase.OPEN),
        ("15:29", Phase.OPEN),
        ("15:30", Phase.CLOSED),
        ("18:00", Phase.CLOSED),
    ],
)
def test_market_phases_on_a_regular_day(cal, clock, phase):
    now = ist(f"2026-03-02T{clock}")
    assert cal.phase(now) is phase
    assert cal.is_market_open(now) is (phase is Phase.OPEN)


def test_phase_accepts_any_aware_zone_and_rejects_naive(cal):
    assert cal.phase(datetime(2026, 3, 2, 3, 45, tzinfo=UTC)) is Phase.OPEN  # 09:15 IST
    assert cal.phase(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)) is Phase.CLOSED  # 15:30 IST
    assert cal.phase(ist("2026-03-03T10:00")) is Phase.CLOSED  # Holi
    assert cal.phase(ist("2026-03-07T10:00")) is Phase.CLOSED  # Saturday
    with pytest.raises(ValueError, match="naive"):
        cal.phase(datetime(2026, 3, 2, 10, 0))


# ---------------------------------------------------------------------------- expiries


def test_march_2026_holidays_move_weekly_and_monthly_expiries(cal):
    got = {e.date: e for e in cal.expiries("NIFTY", D("2026-03-01"), D("2026-03-31"))}
    weekly, monthly = got[D("2026-03-02")], got[D("2026-03-30")]
    assert (weekly.kind, weekly.shifted_from, weekly.rule_weekday) == ("weekly", D("2026-03-03"), 1)
    assert (monthly.kind, monthly.shifted_from) == ("monthly", D("2026-03-31"))
    assert sorted(d.isoformat() for d in got) == [
        "2026-03-02",
        "2026-03-10",
        "2026-03-17",
        "2026-03-24",
        "2026-03-30",
    ]


def test_thursday_to_tuesday_switch(cal):
    got = cal.expiries("NIFTY", D("2025-08-18"), D("2025-09-30"))
    assert [(e.date.isoformat(), e.kind, e.rule_weekday) for e in got] == [
        ("2025-08-21", "weekly", 3),
        ("2025-08-28", "monthly", 3),
        ("2025-09-02", "weekly", 1),
        ("2025-09-09", "weekly", 1),
        ("2025-09-16", "weekly", 1),
        ("2025-09-23", "weekly", 1),
        ("2025-09-30", "monthly", 1),
    ]


def test_monthly_is_the_last_rule_weekday_of_every_month(cal):
    for symbol in sorted(cal.symbols):
        start = max(
            r.valid_from for r in cal.expiry_rules(symbol) if r.valid_from <= D("2023-08-17")
        )
        months: dict[tuple[int, int], list[Expiry]] = {}
        for e in cal.expiries(symbol, start, D("2026-12-31")):
            if e.kind == "monthly":
                months.setdefault((e.scheduled.year, e.scheduled.month), []).append(e)
        for (y, m), es in months.items():
            assert len(es) == 1, (symbol, y, m)
            e = es[0]
            assert e.scheduled.weekday() == e.rule_weekday
            assert (e.scheduled + timedelta(days=7)).month != m, (symbol, e)


def test_banknifty_weekly_history_and_monthly_only_from_2024_11_20(cal):
    # Thursday weeklies, then Wednesday from 2023-09-04 (monthly stayed on Thursday).
    assert dates(cal, "BANKNIFTY", "2023-08-21", "2023-10-01") == [
        "2023-08-24",
        "2023-08-31",
        "2023-09-06",
        "2023-09-13",
        "2023-09-20",
        "2023-09-28",
    ]
    # Monthly on the last Wednesday from March 2024; Dec 25 2024 holiday -> Dec 24.
    assert dates(cal, "BANKNIFTY", "2024-03-01", "2024-03-31", "monthly") == ["2024-03-27"]
    assert dates(cal, "BANKNIFTY", "2024-11-01", "2024-12-31") == [
        "2024-11-06",
        "2024-11-13",
        "2024-11-27",
        "2024-12-24",
    ]
    later = cal.expiries("BANKNIFTY", D("2024-11-20"), D("2026-12-31"))
    assert {e.kind for e in later} == {"monthly"}
    assert len(later) == 26
    assert dates(cal, "BANKNIFTY", "2025-01-01", "2025-01-31") == ["2025-01-30"]  # Thursday again
    assert dates(cal, "BANKNIFTY", "2025-09-01", "2025-09-30") == ["2025-09-30"]  # Tuesday


def test_midcpnifty_expiry_moved_to_the_saturday_session_but_not_to_the_drill(cal):
    jan = {e.date: e for e in cal.expiries("MIDCPNIFTY", D("2024-01-15"), D("2024-01-26"))}
    assert jan[D("2024-01-20")].shifted_from == D("2024-01-22")
    may = {e.date: e for e in cal.expiries("MIDCPNIFTY", D("2024-05-13"), D("2024-05-24"))}
    assert may[D("2024-05-17")].shifted_from == D("2024-05-20")


def test_muhurat_day_is_not_an_expiry_day(cal):
    assert dates(cal, "NIFTY", "2025-10-19", "2025-10-25") == ["2025-10-20"]
    assert dates(cal, "NIFTY", "2021-11-01", "2021-11-06") == ["2021-11-03"]


def test_missing_data_raises_a_clear_value_error(cal):
    with pytest.raises(UnknownSymbol, match="SENSEX"):
        cal.expiries("SENSEX", D("2025-01-01"), D("2025-02-01"))
    with pytest.raises(OutsideCoverage, match="2027-01-05"):
        cal.expiries("NIFTY", D("2026-12-01"), D("2027-01-05"))
    with pytest.raises(OutsideCoverage, match="2018-12-31"):
        cal.is_trading_day(D("2018-12-31"))
    with pytest.raises(NoRuleForDate, match="MIDCPNIFTY"):
        cal.expiries("MIDCPNIFTY", D("2023-01-01"), D("2023-12-31"))
    with pytest.raises(NoRuleForDate, match="NIFTY contracts expiring 2018-06-28"):
        cal.lot_size("NIFTY", D("2018-06-28"))
    for exc in (UnknownSymbol, OutsideCoverage, NoRuleForDate, NotAnExpiry):
        assert issubclass(exc, ValueError) and issubclass(exc, CalendarDataError)
        assert issubclass(exc, PermanentError)


# ---------------------------------------------------------------------------- lot sizes


LOTS = [
    ("NIFTY", "2019-08-29", 75),
    ("NIFTY", "2021-07-22", 75),  # July 2021 weekly kept the old lot
    ("NIFTY", "2021-07-29", 50),
    ("NIFTY", "2024-04-25", 50),
    ("NIFTY", "2024-05-02", 25),
    ("NIFTY", "2024-12-19", 25),
    ("NIFTY", "2024-12-26", 25),
    ("NIFTY", "2025-01-02", 75),  # first new weekly
    ("NIFTY", "2025-01-30", 25),  # January 2025 monthly was listed before 2024-11-20
    ("NIFTY", "2025-02-06", 75),
    ("NIFTY", "2025-02-27", 75),
    ("NIFTY", "2025-12-23", 75),
    ("NIFTY", "2025-12-30", 75),
    ("NIFTY", "2026-01-06", 65),
    ("NIFTY", "2026-01-27", 65),
    ("BANKNIFTY", "2019-01-31", 20),
    ("BANKNIFTY", "2020-07-23", 20),
    ("BANKNIFTY", "2020-07-30", 25),
    ("BANKNIFTY", "2023-07-20", 25),
    ("BANKNIFTY", "2023-07-27", 15),
    ("BANKNIFTY", "2025-01-30", 15),
    ("BANKNIFTY", "2025-02-27", 30),
    ("BANKNIFTY", "2025-06-26", 30),
    ("BANKNIFTY", "2025-07-31", 35),
    ("BANKNIFTY", "2025-12-30", 35),
    ("BANKNIFTY", "2026-01-27", 30),
    ("FINNIFTY", "2024-07-23", 40),
    ("FINNIFTY", "2024-07-30", 25),
    ("FINNIFTY", "2025-01-30", 25),
    ("FINNIFTY", "2025-02-27", 65),
    ("FINNIFTY", "2026-01-27", 60),
    ("MIDCPNIFTY", "2024-07-22", 75),
    ("MIDCPNIFTY", "2024-07-29", 50),
    ("MIDCPNIFTY", "2025-01-30", 50),
    ("MIDCPNIFTY", "2025-02-27", 120),
    ("MIDCPNIFTY", "2025-07-31", 140),
    ("MIDCPNIFTY", "2026-01-27", 120),
]


@pytest.mark.parametrize(("symbol", "expiry", "lot"), LOTS)
def test_lot_size_at_each_change(cal, symbol, expiry, lot):
    (e,) = [x for x in cal.expiries(symbol, D(expiry), D(expiry))]  # a real expiry of the calendar
    by_expiry = cal.lot_size(symbol, e)
    assert by_expiry.value == lot
    assert by_expiry.effective_from <= e.date and by_expiry.source
    assert cal.lot_size(symbol, D(expiry)) == by_expiry


def test_lot_size_for_a_bare_date(cal):
    assert cal.lot_size("nifty", D("2023-05-05")).value == 50  # no expiry, but no ambiguity
    with pytest.raises(NotAnExpiry, match="2025-01-29"):
        cal.lot_size("NIFTY", D("2025-01-29"))  # weekly 75 vs monthly 25 that week


# ---------------------------------------------------------------------------- year fraction


def test_year_fraction_on_and_around_expiry_day(cal):
    (e,) = cal.expiries("NIFTY", D("2026-03-02"), D("2026-03-02"))
    year = 365 * 24 * 3600
    assert cal.year_fraction(ist("2026-03-02T09:15"), e) == pytest.approx(6.25 * 3600 / year)
    assert cal.year_fraction(ist("2026-03-02T15:29"), e) == pytest.approx(60 / year)
    assert cal.year_fraction(ist("2026-03-02T15:30"), e) == 0.0
    assert cal.year_fraction(ist("2026-03-02T18:00"), e) == 0.0
    assert cal.year_fraction(ist("2026-03-01T15:30"), e.date) == pytest.approx(1 / 365)
    assert cal.year_fraction(datetime(2026, 3, 2, 3, 45, tzinfo=UTC), e) == pytest.approx(
        6.25 * 3600 / year
    )
    # Far expiries past the holiday coverage still have a time to expiry.
    assert cal.year_fraction(ist("2026-12-29T15:30"), D("2027-12-28")) == pytest.approx(364 / 365)


# ---------------------------------------------------------------------------- real payloads


def chain_payloads() -> list[Path]:
    if not CHAIN_FIXTURES.is_dir():
        return []
    return sorted(
        p for p in CHAIN_FIXTURES.glob("nse_oc_*.json") if not p.name.startswith("nse_oc_equity_")
    )


@pytest.mark.skipif(not CHAIN_FIXTURES.is_dir(), reason="../shared/fixtures is absent")
def test_the_named_payloads_are_present():
    names = {p.name for p in chain_payloads()}
    assert "nse_oc_NIFTY_2025-07-16_ethanelliott50.json" in names
    assert "nse_oc_NIFTY_2022-03-24_lakk1.json" in names


@pytest.mark.skipif(not CHAIN_FIXTURES.is_dir(), reason="../shared/fixtures is absent")
@pytest.mark.parametrize("path", chain_payloads(), ids=lambda p: p.name)
def test_payload_expiries_agree_with_the_calendar(cal, path):
    """How far expiries are treated: NSE lists contracts up to 5 years out, with dates fixed
    by the rules and holiday list known *when the snapshot was taken*. So:

    * up to the end of the snapshot's year, and before the next change of expiry rule, every
      listed expiry must be a generated expiry (exact date);
    * later ones within the calendar's coverage must fall in a month whose generated monthly
      expiry is within a week (later holiday lists and the 2025 Thursday->Tuesday switch
      re-dated them: 2023-06-29 -> 06-28, 2025-12-24 -> 12-30, 2026-03-26 -> 03-30);
    * beyond the coverage (2027+, no holiday list yet) they are ignored.
    """
    symbol = path.name.split("_")[2]
    records = json.loads(path.read_text())["records"]
    snapshot = datetime.strptime(records["timestamp"], "%d-%b-%Y %H:%M:%S").date()
    listed = sorted(datetime.strptime(s, "%d-%b-%Y").date() for s in records["expiryDates"])
    horizon = cal.coverage[1]
    generated = cal.expiries(symbol, snapshot, horizon)
    by_date = {e.date: e for e in generated}
    next_change = min(
        (r.valid_from for r in cal.expiry_rules(symbol) if r.valid_from > snapshot), default=horizon
    )
    exact_until = min(date(snapshot.year, 12, 31), next_change - timedelta(days=1))

    assert listed[0] == generated[0].date, "the nearest expiry must match"
    assert listed[:5] == [e.date for e in generated[:5]], "the near weeklies are consecutive"
    for d in listed:
        if d <= exact_until:
            assert d in by_date, f"{symbol} {d} listed on {snapshot} is not generated"
        elif d <= horizon:
            monthly = [
                e
                for e in generated
                if e.kind == "monthly" and (e.date.year, e.date.month) == (d.year, d.month)
            ]
            assert len(monthly) == 1 and abs((monthly[0].date - d).days) <= 7, (symbol, d)


# ---------------------------------------------------------------------------- properties


SYMBOL_STARTS = {
    "NIFTY": "2019-01-01",
    "BANKNIFTY": "2019-01-01",
    "FINNIFTY": "2021-10-18",
    "MIDCPNIFTY": "2023-08-17",
}


@st.composite
def symbol_windows(draw):
    symbol = draw(st.sampled_from(sorted(SYMBOL_STARTS)))
    first, last = D(SYMBOL_STARTS[symbol]), D("2026-12-31")
    start = draw(st.dates(min_value=first, max_value=last))
    end = draw(st.dates(min_value=start, max_value=min(last, start + timedelta(days=150))))
    return symbol, start, end


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(window=symbol_windows())
def test_every_expiry_is_a_trading_day_on_or_before_its_rule_weekday(cal, window):
    symbol, start, end = window
    got = cal.expiries(symbol, start, end)
    assert [e.date for e in got] == sorted({e.date for e in got})
    for e in got:
        assert start <= e.date <= end
        assert cal.is_trading_day(e.date)
        rule_day = (
            e.scheduled - timedelta(days=e.scheduled.weekday()) + timedelta(days=e.rule_weekday)
        )
        assert e.scheduled == rule_day
        assert e.date <= rule_day
        if e.shifted_from is None:
            assert e.date.weekday() == e.rule_weekday
        else:
            gap = e.date + timedelta(days=1)
            while gap <= e.shifted_from:  # every day it skipped was closed for trading
                assert not cal.is_trading_day(gap)
                gap += timedelta(days=1)
        assert cal.lot_size(symbol, e).value > 0
