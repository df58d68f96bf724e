"""Index-history CSVs: the real exports in ``../shared/fixtures/index_history`` when present,
and small inline texts for the niftyindices layout and every validation error."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import numpy as np
import pytest

from shared.errors import PermanentError
from shared.marketdata import (
    DailyBars,
    HistoryFormat,
    HistoryInvalid,
    IntradayBars,
    check_gaps,
    detect_format,
    parse_daily,
    parse_intraday,
    read_history,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
HISTORY = FIXTURES / "index_history"
YAHOO = "nifty50_daily_2000-2019_yahoo_VatsalSin.csv"
NSE = "nifty50_daily_2024-2025_nseformat_VolGuard.csv"
VIX = "indiavix_daily_2016-2023_nse_animesh-bajpai.csv"
KITE = "banknifty_1min_2023-04_to_06_kite_Dispersion.csv"
YFIN = "nifty50_1min_2025-09-04_to_10_yfinance_AUTO_TRADING_TRACKER.csv"
D = np.datetime64


def fixture_bytes(name: str) -> bytes:
    path = HISTORY / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/fixtures not checked out)")
    return path.read_bytes()


def day_row(bars: DailyBars, day: str) -> tuple[float, float, float, float, float]:
    (i,) = np.flatnonzero(bars.dates == D(day))
    return bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i]


def ist_time(ts: np.datetime64) -> time:
    return (ts + np.timedelta64(330, "m")).astype("datetime64[s]").astype(object).time()


def assert_ascending(values: np.ndarray) -> None:
    assert np.all(np.diff(values.astype("int64")) > 0)


# ---------------------------------------------------------------------------- real files


def test_yahoo_pandas_export():
    data = fixture_bytes(YAHOO)
    assert data.startswith(b",Date,Open,High,Low,Close,Volume\n")  # unnamed index column
    assert detect_format(data) is HistoryFormat.YAHOO_PANDAS
    bars = parse_daily(data, HistoryFormat.YAHOO_PANDAS, symbol="NIFTY")
    assert len(bars) == 4954
    assert (bars.symbol, bars.source) == ("NIFTY", HistoryFormat.YAHOO_PANDAS)
    assert bars.dates.dtype == np.dtype("datetime64[D]")
    assert (bars.dates[0], bars.dates[-1]) == (D("2000-01-03"), D("2019-12-02"))
    assert_ascending(bars.dates)
    assert day_row(bars, "2000-01-03") == (1482.15, 1592.9, 1482.15, 1592.2, 25358322.0)
    assert day_row(bars, "2019-12-02") == (12137.05, 12137.15, 12023.7, 12048.2, 720945335.0)
    # Holidays are simply absent: Republic Day 2000 (a Wednesday) is the only weekday gap.
    weekdays = np.array([d for d in np.arange(D("2000-01-03"), D("2000-02-01")) if np.is_busday(d)])
    assert check_gaps(bars, weekdays) == (date(2000, 1, 26),)


def test_nse_export_newest_first_with_bom():
    data = fixture_bytes(NSE)
    assert data.startswith(b"\xef\xbb\xbfDate ,Open ,")  # BOM and trailing spaces
    assert "Turnover (₹ Cr)" in data.decode("utf-8-sig").splitlines()[0]
    assert not data.endswith(b"\n")
    assert data.split(b"\n")[1].startswith(b"16-DEC-2025,")  # newest first
    assert detect_format(data) is HistoryFormat.NSE_EXPORT
    bars = parse_daily(data, "nse_export", symbol="NIFTY")
    # 250 data rows (251 lines, the last without a newline, so `wc -l` says 250).
    assert len(bars) == 250
    assert (bars.dates[0], bars.dates[-1]) == (D("2024-12-16"), D("2025-12-16"))
    assert_ascending(bars.dates)
    assert day_row(bars, "2025-06-13") == (24473.0, 24754.35, 24473.0, 24718.6, 318711364.0)
    assert day_row(bars, "2025-12-16") == (25951.5, 25980.75, 25834.35, 25860.1, 264351195.0)
    assert bars.close[0] == 24668.25  # the file's last line, without a newline


def test_vix_month_first_dates():
    data = fixture_bytes(VIX)
    assert data.startswith(b"Date,Open,High,Low,Close,PrevClose,Change,Pchange\n")
    assert detect_format(data) is HistoryFormat.VIX_MDY  # by its exact header only
    bars = parse_daily(data, HistoryFormat.VIX_MDY, symbol="INDIAVIX", allow_missing_ohl=True)
    assert len(bars) == 1794
    assert (bars.dates[0], bars.dates[-1]) == (D("2016-01-01"), D("2023-03-31"))
    assert_ascending(bars.dates)
    # "3/4/2016" is 4 March (between 3/3 and 3/8), not 3 April (a Sunday).
    o, h, lo, c, v = day_row(bars, "2016-03-04")
    assert (o, h, lo, c) == (18.04, 18.315, 17.2, 17.8825)
    assert np.isnan(v)
    assert not np.any(bars.dates == D("2016-04-03"))
    i = int(np.flatnonzero(bars.dates == D("2016-03-04"))[0])
    assert (bars.dates[i - 1], bars.dates[i + 1]) == (D("2016-03-03"), D("2016-03-08"))
    assert np.all(np.isnan(bars.volume))
    # NSE published two days with Open = High = Low = 0 and a real close.
    no_range = bars.dates[np.isnan(bars.open)]
    assert no_range.tolist() == [date(2021, 2, 12), date(2021, 3, 30)]
    assert np.all(np.isnan(bars.high[np.isnan(bars.open)]))
    assert day_row(bars, "2021-02-12")[3] == 23.045


def test_vix_zero_range_rows_are_rejected_unless_allowed():
    data = fixture_bytes(VIX)
    with pytest.raises(HistoryInvalid, match=r"line 1269: 2021-02-12: open 0\.0 is not a pos"):
        parse_daily(data, HistoryFormat.VIX_MDY, symbol="INDIAVIX")


def test_vix_file_is_not_guessed_without_its_exact_header():
    text = fixture_bytes(VIX).decode().replace("PrevClose,Change,Pchange", "Prev,Chg,Pct", 1)
    with pytest.raises(HistoryInvalid, match=r"line 2: date '1/1/2016' reads as D/M/YYYY or M/D"):
        detect_format(text)


def test_kite_one_minute_bars():
    data = fixture_bytes(KITE)
    assert data.startswith(b"Date,open,high,low,close,volume\n2023-04-03 09:15:00+05:30,")
    assert detect_format(data) is HistoryFormat.KITE_1MIN
    bars = parse_intraday(data, HistoryFormat.KITE_1MIN, symbol="BANKNIFTY")
    assert len(bars) == 15001
    assert bars.ts.dtype == np.dtype("datetime64[ns]")
    assert_ascending(bars.ts)
    assert bars.ts[0] == D("2023-04-03T03:45:00")  # 09:15 IST in UTC
    assert bars.session[0] == D("2023-04-03")
    assert (bars.open[0], bars.high[0], bars.low[0], bars.close[0]) == (
        40695.8,
        40702.2,
        40623.1,
        40645.7,
    )
    assert np.all(bars.volume == 0)
    # The stray closing bar: 2023-06-01 15:30 IST, flat, kept and counted.
    assert bars.ts[-1] == D("2023-06-01T10:00:00")
    assert ist_time(bars.ts[-1]) == time(15, 30)
    assert bars.session[-1] == D("2023-06-01")
    assert bars.open[-1] == bars.high[-1] == bars.low[-1] == bars.close[-1] == 43788.2
    counts = bars.bars_per_session()
    assert len(counts) == 40
    assert list(counts)[0] == date(2023, 4, 3) and list(counts)[-1] == date(2023, 6, 1)
    assert counts[date(2023, 6, 1)] == 376
    assert {n for d, n in counts.items() if d != date(2023, 6, 1)} == {375}


def test_yfinance_one_minute_bars_in_utc():
    data = fixture_bytes(YFIN)
    lines = data.decode().splitlines()
    assert lines[:3] == [
        "Price,Close,High,Low,Open,Volume",
        "Ticker,^NSEI,^NSEI,^NSEI,^NSEI,^NSEI",
        "Datetime,,,,,",
    ]
    assert detect_format(data) is HistoryFormat.YFINANCE_1MIN
    bars = parse_intraday(data, "yfinance_1min", symbol="NIFTY")
    assert len(bars) == 1874
    assert_ascending(bars.ts)
    # "2025-09-04 03:45:00+00:00" is the 09:15 IST open of session 2025-09-04.
    assert bars.ts[0] == D("2025-09-04T03:45:00")
    assert ist_time(bars.ts[0]) == time(9, 15)
    assert bars.session[0] == D("2025-09-04")
    # Columns by name, although Close comes first; float32 artefacts kept as written.
    assert bars.close[0] == 24876.599609375
    assert bars.open[0] == bars.high[0] == 24970.30078125
    assert bars.low[0] == 24867.05078125
    assert bars.ts[-1] == D("2025-09-10T09:59:00") and ist_time(bars.ts[-1]) == time(15, 29)
    assert bars.bars_per_session() == {
        date(2025, 9, 4): 375,
        date(2025, 9, 5): 374,
        date(2025, 9, 8): 375,
        date(2025, 9, 9): 375,
        date(2025, 9, 10): 375,
    }
    # The 374-bar session misses 15:19 IST (09:49 UTC).
    assert D("2025-09-05T09:48") in bars.ts and D("2025-09-05T09:50") in bars.ts
    assert D("2025-09-05T09:49") not in bars.ts


def test_read_history_detects_and_names_the_file():
    fixture_bytes(NSE)
    bars = read_history(HISTORY / NSE, symbol="NIFTY")
    assert isinstance(bars, DailyBars) and bars.source is HistoryFormat.NSE_EXPORT
    with pytest.raises(HistoryInvalid, match=rf"^{VIX}: vix_mdy INDIAVIX: line 1269: "):
        read_history(HISTORY / VIX, HistoryFormat.VIX_MDY, symbol="INDIAVIX")
    bars = read_history(HISTORY / KITE, symbol="BANKNIFTY")
    assert isinstance(bars, IntradayBars) and len(bars) == 15001


# ---------------------------------------------------------------------------- niftyindices

NIFTYINDICES = (
    '"Date","Open","High","Low","Close"\r\n'
    '"13 Jun 2025","24473.00","24754.35","24473.00","24718.60"\r\n'
    '"12 Jun 2025","25164.45","25196.20","24825.90","24888.20"\r\n'
    '"11 Jun 2025","25134.15","25222.40","25081.30","25141.40"'
)


def test_niftyindices_quoted_crlf_newest_first():
    assert detect_format(NIFTYINDICES) is HistoryFormat.NIFTYINDICES
    bars = parse_daily(NIFTYINDICES, HistoryFormat.NIFTYINDICES, symbol="NIFTY")
    assert bars.dates.tolist() == [date(2025, 6, 11), date(2025, 6, 12), date(2025, 6, 13)]
    assert bars.close.tolist() == [25141.40, 24888.20, 24718.60]
    assert day_row(bars, "2025-06-13")[:4] == (24473.0, 24754.35, 24473.0, 24718.6)
    assert np.all(np.isnan(bars.volume))
    assert bars.close.dtype == np.float64


def test_niftyindices_bytes_with_extra_columns():
    text = (
        '"Index Name","Date","Open","High","Low","Close"\r\n'
        '"NIFTY 50","13 JUN 2025","24473.00","24754.35","24473.00","24718.60"\r\n'
    )
    data = b"\xef\xbb\xbf" + text.encode()
    assert detect_format(data) is HistoryFormat.NIFTYINDICES
    bars = parse_daily(data, HistoryFormat.NIFTYINDICES, symbol="NIFTY")
    assert len(bars) == 1 and bars.dates[0] == D("2025-06-13") and bars.close[0] == 24718.6


def test_niftyindices_rejects_another_date_format():
    text = NIFTYINDICES.replace('"12 Jun 2025"', '"2025-06-12"')
    with pytest.raises(HistoryInvalid, match=r"line 3: unparsable date '2025-06-12' \(exp"):
        parse_daily(text, HistoryFormat.NIFTYINDICES, symbol="NIFTY")


# ---------------------------------------------------------------------------- validation

YAHOO_HEADER = ",Date,Open,High,Low,Close,Volume\n"


def yahoo(*rows: str) -> str:
    return YAHOO_HEADER + "".join(f"{i},{r}\n" for i, r in enumerate(rows))


GOOD = "2020-01-01,100,110,90,105,1000.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            yahoo(GOOD, "2020-01-02,100,110,90,105,1.0", "2020-01-02,100,110,90,105,1.0"),
            r"line 4: duplicate 2020-01-02 \(also on line 3\)",
        ),
        (
            yahoo("2020-01-03,100,110,90,105,1.0", "2020-01-03,100,110,90,105,1.0", GOOD),
            r"line 3: duplicate 2020-01-03 \(also on line 2\)",
        ),
        (
            yahoo(GOOD, "2020-01-03,100,110,90,105,1.0", "2020-01-02,100,110,90,105,1.0"),
            r"line 4: 2020-01-02 after 2020-01-03 \(line 3\) breaks the ascending order",
        ),
        (
            yahoo("2020-01-03,100,110,90,105,1.0", GOOD, "2020-01-02,100,110,90,105,1.0"),
            r"line 4: 2020-01-02 after 2020-01-01 \(line 3\) breaks the descending order",
        ),
        (
            yahoo(GOOD, "2020-01-02,100,110,90,nan,1.0"),
            r"line 3: 2020-01-02: close is empty or NaN",
        ),
        (yahoo(GOOD, "2020-01-02,,110,90,105,1.0"), r"line 3: 2020-01-02: open is empty or NaN"),
        (yahoo("2020-01-02,100,110,0,105,1.0"), r"line 2: 2020-01-02: low 0\.0 is not a positive"),
        (yahoo("2020-01-02,100,110,-5,105,1.0"), r"line 2: 2020-01-02: low -5\.0 is not a pos"),
        (yahoo("2020-01-02,100,inf,90,105,1.0"), r"line 2: 2020-01-02: high inf is not a pos"),
        (yahoo("2020-01-02,100,abc,90,105,1.0"), r"line 2: high 'abc' is not a number"),
        (yahoo("2020-01-02,100,90,110,100,1.0"), r"line 2: 2020-01-02: high 90\.0 < low 110\.0"),
        (
            yahoo(GOOD, "2020-01-02,100,110,90,111,1.0"),
            r"line 3: 2020-01-02: close 111\.0 outside \[low 90\.0, high 110\.0\]",
        ),
        (yahoo("2020-01-02,100,110,90,89.9,1.0"), r"line 2: 2020-01-02: close 89\.9 outside"),
        (yahoo("2020-01-02,120,110,90,100,1.0"), r"line 2: 2020-01-02: open 120\.0 outside"),
        (yahoo("2020-01-02,100,110,90,100,-1.0"), r"line 2: 2020-01-02: volume -1\.0 is negat"),
        (yahoo(GOOD, "2020-02-30,100,110,90,105,1.0"), r"line 3: unparsable date '2020-02-30'"),
        (yahoo("02/01/2020,100,110,90,105,1.0"), r"line 2: unparsable date '02/01/2020'"),
        (yahoo("20200102,100,110,90,105,1.0"), r"line 2: unparsable date '20200102'"),
        (yahoo("2020-01-02,100,110,90,105"), r"line 2: 6 fields, the header has 7"),
        (",Date,Open,High,Close,Volume\n0," + GOOD, r"line 1: missing column\(s\) low"),
        (YAHOO_HEADER, r"no data rows"),
        ("", r"empty file"),
    ],
)
def test_daily_validation_errors(text: str, message: str):
    with pytest.raises(HistoryInvalid, match=message) as err:
        parse_daily(text, HistoryFormat.YAHOO_PANDAS, symbol="NIFTY")
    assert isinstance(err.value, PermanentError)
    assert err.value.reason_code == "history_invalid"
    assert str(err.value).startswith("yahoo_pandas NIFTY")


def test_float32_tolerance_is_relative_and_tiny():
    ok = parse_daily(yahoo("2020-01-02,100,110,90,110.00001,1"), "yahoo_pandas", symbol="N")
    assert ok.close[0] == 110.00001  # 1e-7 relative above high: a float32 artefact, kept
    with pytest.raises(HistoryInvalid, match="close 110.001 outside"):
        parse_daily(yahoo("2020-01-02,100,110,90,110.001,1"), "yahoo_pandas", symbol="N")


@pytest.mark.parametrize(
    ("fmt", "cell", "expected"),
    [
        (HistoryFormat.NSE_EXPORT, "16-DEC-2025", date(2025, 12, 16)),
        (HistoryFormat.NSE_EXPORT, "6-Dec-2025", date(2025, 12, 6)),
        (HistoryFormat.NSE_EXPORT, "32-DEC-2025", None),
        (HistoryFormat.NSE_EXPORT, "16-DCE-2025", None),
        (HistoryFormat.NSE_EXPORT, "2025-12-16", None),
        (HistoryFormat.NIFTYINDICES, "13 Jun 2025", date(2025, 6, 13)),
        (HistoryFormat.NIFTYINDICES, "13-Jun-2025", None),
        (HistoryFormat.VIX_MDY, "3/4/2016", date(2016, 3, 4)),
        (HistoryFormat.VIX_MDY, "12/31/2020", date(2020, 12, 31)),
        (HistoryFormat.VIX_MDY, "31/12/2020", None),  # a day-first date is rejected
        (HistoryFormat.VIX_MDY, "2016-03-04", None),
    ],
)
def test_date_formats_are_explicit(fmt: HistoryFormat, cell: str, expected: date | None):
    text = f"Date,Open,High,Low,Close\n{cell},100,110,90,105\n"
    if expected is None:
        with pytest.raises(HistoryInvalid, match=rf"line 2: unparsable date '{cell}'"):
            parse_daily(text, fmt, symbol="X")
    else:
        assert parse_daily(text, fmt, symbol="X").dates.tolist() == [expected]


def test_day_first_vix_reads_differently_or_fails_under_vix_mdy():
    # The same day-first rows: 3 and 4 April 2016 become 4 March and 4 April, and the
    # 13th of April does not exist as a month-first date.
    rows = ["3/4/2016,18,19,17,18", "4/4/2016,18,19,17,18"]
    header = "Date,Open,High,Low,Close,PrevClose,Change,Pchange\n"
    text = "Date,Open,High,Low,Close\n" + "\n".join(rows)
    bars = parse_daily(text, "vix_mdy", symbol="INDIAVIX")
    assert bars.dates.tolist() == [date(2016, 3, 4), date(2016, 4, 4)]
    with pytest.raises(HistoryInvalid, match=r"line 4: unparsable date '13/4/2016' \(expected M/D"):
        parse_daily(text + "\n13/4/2016,18,19,17,18", "vix_mdy", symbol="INDIAVIX")
    with pytest.raises(HistoryInvalid, match="reads as D/M/YYYY or M/D/YYYY"):
        detect_format(text)
    exact = header + "\n".join(r + ",1,0,0" for r in rows)
    assert detect_format(exact) is HistoryFormat.VIX_MDY


def test_missing_ohl_allowance_is_narrow():
    text = "Date,Open,High,Low,Close\n1/4/2021,0,0,0,20\n1/5/2021,,,,21\n1/6/2021,20,22,19,21\n"
    bars = parse_daily(text, "vix_mdy", symbol="INDIAVIX", allow_missing_ohl=True)
    assert np.isnan(bars.open[:2]).all() and np.isnan(bars.low[:2]).all()
    assert bars.close.tolist() == [20.0, 21.0, 21.0] and bars.open[2] == 20.0
    partial = "Date,Open,High,Low,Close\n1/4/2021,0,0,19,20\n"
    with pytest.raises(HistoryInvalid, match=r"line 2: 2021-01-04: open 0\.0 is not a positive"):
        parse_daily(partial, "vix_mdy", symbol="INDIAVIX", allow_missing_ohl=True)
    no_close = "Date,Open,High,Low,Close\n1/4/2021,0,0,0,0\n"
    with pytest.raises(HistoryInvalid, match=r"line 2: 2021-01-04: close 0\.0 is not a positive"):
        parse_daily(no_close, "vix_mdy", symbol="INDIAVIX", allow_missing_ohl=True)


def test_nse_header_spaces_bom_and_missing_volume():
    text = "\ufeffDate ,Open ,High ,Low ,Close ,Prev. Close \n02-JAN-2024,14,15,13,14.5,14\n"
    bars = parse_daily(text, HistoryFormat.NSE_EXPORT, symbol="INDIAVIX")
    assert bars.close.tolist() == [14.5] and np.isnan(bars.volume[0])


# ---------------------------------------------------------------------------- intraday

KITE_HEADER = "Date,open,high,low,close,volume\n"


def test_intraday_newest_first_is_reversed_and_index_column_ignored():
    text = (
        ",Date,open,high,low,close,volume\n"
        "0,2023-04-03 09:16:00+05:30,2,3,1,2,0\n"
        "1,2023-04-03 09:15:00+05:30,1,2,1,1.5,0\n"
    )
    bars = parse_intraday(text, HistoryFormat.KITE_1MIN, symbol="INDIAVIX")
    assert list(bars.ts) == [D("2023-04-03T03:45"), D("2023-04-03T03:46")]
    assert bars.close.tolist() == [1.5, 2.0]


def test_session_is_the_ist_date_across_utc_midnight():
    text = KITE_HEADER + "2023-04-03 23:59:00-00:00,1,1,1,1,0\n2023-04-03T18:29:00Z,1,1,1,1,0\n"
    bars = parse_intraday(text, "kite_1min", symbol="X")
    # 18:29Z is 23:59 IST on the 3rd; 23:59Z is 05:29 IST on the 4th.
    assert bars.session.tolist() == [date(2023, 4, 3), date(2023, 4, 4)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (KITE_HEADER + "2023-04-03 09:15:00,1,1,1,1,0\n", r"line 2: timestamp '2023-04-03 09:15:0"),
        (KITE_HEADER + "03-04-2023 09:15,1,1,1,1,0\n", r"line 2: unparsable timestamp"),
        (
            KITE_HEADER + "2023-04-03 24:15:00+05:30,1,1,1,1,0\n",
            r"line 2: timestamp .* not a valid",
        ),
        (
            KITE_HEADER + "2023-04-03 09:15:00+05:30,1,1,1,1,0\n"
            "2023-04-03 03:45:00+00:00,1,1,1,1,0\n",
            r"line 3: duplicate 2023-04-03T03:45:00Z \(2023-04-03 09:15 IST\) \(also on line 2\)",
        ),
        (
            KITE_HEADER + "2023-04-03 09:15:00+05:30,1,1,1,1,0\n"
            "2023-04-03 09:17:00+05:30,1,1,1,1,0\n2023-04-03 09:16:00+05:30,1,1,1,1,0\n",
            r"line 4: 2023-04-03T03:46:00Z \(2023-04-03 09:16 IST\) after .* breaks the ascending",
        ),
        (KITE_HEADER + "2023-04-03 09:15:00+05:30,1,2,1,3,0\n", r"line 2: .*close 3\.0 outside"),
    ],
)
def test_intraday_validation_errors(text: str, message: str):
    with pytest.raises(HistoryInvalid, match=message):
        parse_intraday(text, HistoryFormat.KITE_1MIN, symbol="BANKNIFTY")


YF_HEADER = (
    "Price,Close,High,Low,Open,Volume\nTicker,^NSEI,^NSEI,^NSEI,^NSEI,^NSEI\nDatetime,,,,,\n"
)


def test_yfinance_header_rows_are_checked():
    row = (
        "2025-09-04 03:45:00+00:00,24876.599609375,24970.30078125,24867.05078125,24970.30078125,0\n"
    )
    bars = parse_intraday(YF_HEADER + row, "yfinance_1min", symbol="NIFTY")
    assert (bars.close[0], bars.open[0]) == (24876.599609375, 24970.30078125)
    two = YF_HEADER.replace("^NSEI,^NSEI\n", "^NSEBANK,^NSEI\n")
    with pytest.raises(HistoryInvalid, match=r"line 2: expected one ticker"):
        parse_intraday(two + row, "yfinance_1min", symbol="NIFTY")
    with pytest.raises(HistoryInvalid, match=r"expected 3 header rows"):
        parse_intraday(YF_HEADER.split("\n", 1)[0] + "\n", "yfinance_1min", symbol="NIFTY")
    with pytest.raises(HistoryInvalid, match=r"line 3: third header row"):
        parse_intraday(
            YF_HEADER.replace("Datetime,,,,,", "Datetime,x,,,,") + row,
            "yfinance_1min",
            symbol="NIFTY",
        )


# ---------------------------------------------------------------------------- API edges


def test_format_kind_and_name_are_checked():
    with pytest.raises(HistoryInvalid, match="kite_1min is an intraday format: use parse_intr"):
        parse_daily(KITE_HEADER, "kite_1min", symbol="X")
    with pytest.raises(HistoryInvalid, match="nse_export is a daily format: use parse_daily"):
        parse_intraday("Date\n", HistoryFormat.NSE_EXPORT, symbol="X")
    with pytest.raises(HistoryInvalid, match="unknown history format 'csv'"):
        parse_daily(yahoo(GOOD), "csv", symbol="X")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("Open,High\n1,2\n", "no Date column"),
        ("Date,Open,High,Low,Close\n", "no data row"),
        ("Date,Open,High,Low,Close\n2020.01.02,1,1,1,1\n", r"line 2: unrecognised date"),
        ("Date,Open,High,Low,Close\n03/04/2016,1,1,1,1\n", r"reads as D/M/YYYY or M/D/YYYY"),
    ],
)
def test_detect_format_refuses_to_guess(text: str, message: str):
    with pytest.raises(HistoryInvalid, match=message):
        detect_format(text)


def test_bytes_must_be_utf8():
    with pytest.raises(HistoryInvalid, match="not UTF-8"):
        parse_daily(b"Date,Open\n\xff", "yahoo_pandas", symbol="X")


def test_results_are_frozen_read_only_copies():
    opens = [100.0, 101.0]
    bars = DailyBars(
        symbol="NIFTY",
        source="yahoo_pandas",
        dates=[date(2020, 1, 1), date(2020, 1, 2)],
        open=opens,
        high=[110.0, 111.0],
        low=[90.0, 91.0],
        close=[105.0, 106.0],
        volume=[np.nan, np.nan],
    )
    assert bars.source is HistoryFormat.YAHOO_PANDAS and len(bars) == 2
    with pytest.raises(ValueError, match="read-only"):
        bars.close[0] = 1.0
    with pytest.raises(AttributeError):
        bars.symbol = "BANKNIFTY"  # type: ignore[misc]
    parsed = parse_daily(yahoo(GOOD), "yahoo_pandas", symbol="N")
    for name in ("dates", "open", "high", "low", "close", "volume"):
        assert not getattr(parsed, name).flags.writeable, name
    with pytest.raises(ValueError, match="strictly ascending"):
        DailyBars("N", "yahoo_pandas", [date(2020, 1, 2), date(2020, 1, 1)], *[[1.0, 1.0]] * 5)
    with pytest.raises(ValueError, match="differ in length"):
        DailyBars("N", "yahoo_pandas", [date(2020, 1, 1)], *[[1.0, 1.0]] * 5)
    intraday = IntradayBars(
        "N", "kite_1min", np.array(["2023-04-03T03:45"], dtype="datetime64[ns]"), *[[1.0]] * 5
    )
    assert not intraday.session.flags.writeable and not intraday.ts.flags.writeable
    assert intraday.session.tolist() == [date(2023, 4, 3)]


def test_check_gaps_reports_missing_sessions_including_the_ends():
    bars = parse_daily(
        yahoo(
            "2024-01-02,1,1,1,1,0",
            "2024-01-03,1,1,1,1,0",
            "2024-01-05,1,1,1,1,0",
        ),
        "yahoo_pandas",
        symbol="NIFTY",
    )
    expected = np.array(
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"],
        dtype="datetime64[D]",
    )
    assert check_gaps(bars, expected) == (date(2024, 1, 1), date(2024, 1, 4), date(2024, 1, 8))
    assert check_gaps(bars, [date(2024, 1, 5), date(2024, 1, 2)]) == ()


def test_read_history_reads_crlf_bytes(tmp_path: Path):
    path = tmp_path / "nifty_niftyindices.csv"
    path.write_bytes(NIFTYINDICES.encode())
    bars = read_history(path, symbol="NIFTY")
    assert isinstance(bars, DailyBars) and len(bars) == 3
    assert bars.source is HistoryFormat.NIFTYINDICES
    path.write_bytes(NIFTYINDICES.replace('"24888.20"', '"0"').encode())
    with pytest.raises(
        HistoryInvalid, match=r"^nifty_niftyindices\.csv: niftyindices NIFTY: line 3"
    ):
        read_history(path, "niftyindices", symbol="NIFTY")
