"""Index OHLC histories from the CSV exports we actually meet, parsed explicitly and validated.

Every source writes "a CSV of daily bars" differently, and the differences are the kind that
a generic reader gets silently wrong: a BOM and trailing spaces in header names, newest-first
rows, an unnamed pandas index column, three header rows, ``M/D/YYYY`` dates that read just as
well as ``D/M/YYYY``, UTC timestamps for an IST market. Each :class:`HistoryFormat` names one
of them, and its parser knows exactly which layout and date format to expect; nothing here
infers a date format from the data. :func:`detect_format` only recognises layouts that are
unambiguous and refuses to choose between day-first and month-first dates.

The parsing functions are pure: they take the file's ``str`` or ``bytes`` and read no file,
clock or environment (only :func:`read_history` reads a file), and they import no pandas.
Any problem with the data raises :class:`HistoryInvalid` naming the format, the symbol, the
file line (1-based, header lines included, as an editor shows it) and the offending value;
a file is accepted whole or not at all.

Conventions
-----------
* Prices are index points as the source wrote them, as float64. Float32 artefacts
  (yfinance's ``24876.599609375``) are kept, not rounded; the consistency checks allow a
  relative tolerance of :data:`PRICE_TOLERANCE` for them.
* Volume is the source's number (shares traded for NSE exports); NaN when the format has no
  volume. Kite and yfinance report 0 for an index: that is kept as 0, and is meaningless.
* Daily bars are keyed by the IST trading date (``datetime64[D]``), as every source writes it.
* Intraday bars are keyed by the bar's start time in UTC (``datetime64[ns]``; numpy datetimes
  carry no zone, these are UTC by convention). ``session`` is the IST (UTC+05:30, no DST)
  calendar date of each bar, i.e. the trading date it belongs to. Timestamps in the file
  must carry a UTC offset: a naive time is never guessed to be IST or UTC.
* Output is always in ascending time order. Input may be oldest-first or newest-first (NSE
  and niftyindices exports), but must be one or the other throughout.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from os import PathLike
from pathlib import Path

import numpy as np

from shared.errors import PermanentError

PRICE_TOLERANCE = 1e-6
"""Relative slack allowed in ``low <= open, close <= high`` and ``low <= high`` (float32 data)."""

IST_OFFSET = np.timedelta64(5 * 3600 + 30 * 60, "s")
"""Asia/Kolkata is UTC+05:30 all year (no daylight saving)."""

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_IST_OFFSET_NS = int(IST_OFFSET / np.timedelta64(1, "ns"))
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
VIX_MDY_HEADER = "Date,Open,High,Low,Close,PrevClose,Change,Pchange"
"""The exact header by which :func:`detect_format` recognises the ``M/D/YYYY`` VIX file."""


class HistoryInvalid(PermanentError, ValueError):
    """An index-history file cannot be read as the given format, or its rows are inconsistent."""

    reason_code = "history_invalid"


class HistoryFormat(StrEnum):
    """The CSV layouts :func:`parse_daily` and :func:`parse_intraday` read.

    Daily formats (:func:`parse_daily`):

    ``YAHOO_PANDAS``
        Yahoo data written by pandas: ``,Date,Open,High,Low,Close[,Adj Close],Volume`` with a
        leading unnamed index column (optional), ISO dates ``2000-01-03``, volume as a float
        (``25358322.0``), holidays simply absent. ``Adj Close`` is ignored.
    ``NSE_EXPORT``
        nseindia.com historical-data download: UTF-8 BOM, header names with trailing spaces
        (``"Date "``), dates ``16-DEC-2025`` (month case-insensitive), newest first (VIX
        exports are oldest first), volume from ``Shares Traded`` when present; other columns
        (``Turnover (₹ Cr)``, ``Prev. Close``...) are ignored.
    ``NIFTYINDICES``
        niftyindices.com download: every field double-quoted (numbers too), dates
        ``13 Jun 2025``, CRLF, newest first, no volume (``Shares Traded`` is used if present).
    ``VIX_MDY``
        India VIX with US-style ``M/D/YYYY`` dates (``3/4/2016`` is 4 March) and extra
        ``PrevClose,Change,Pchange`` columns (ignored); no volume. Must be asked for by name
        or recognised by its exact header :data:`VIX_MDY_HEADER`.

    Intraday formats (:func:`parse_intraday`):

    ``KITE_1MIN``
        Zerodha Kite candles: ``[,]Date,open,high,low,close,volume`` (an unnamed pandas index
        column is allowed), tz-aware ``2023-04-03 09:15:00+05:30``.
    ``YFINANCE_1MIN``
        yfinance download written by pandas: three header rows (``Price,Close,High,Low,Open,
        Volume`` / ``Ticker,^NSEI,...`` / ``Datetime,,,,,``), columns located by name (Close
        comes first), UTC timestamps ``2025-09-04 03:45:00+00:00``, float32 prices.
    """

    YAHOO_PANDAS = "yahoo_pandas"
    NSE_EXPORT = "nse_export"
    NIFTYINDICES = "niftyindices"
    VIX_MDY = "vix_mdy"
    KITE_1MIN = "kite_1min"
    YFINANCE_1MIN = "yfinance_1min"

    @property
    def is_intraday(self) -> bool:
        return self in (HistoryFormat.KITE_1MIN, HistoryFormat.YFINANCE_1MIN)


# ---------------------------------------------------------------------------- results


def _frozen_array(values: object, dtype: str, name: str, owner: str) -> np.ndarray:
    arr = np.array(values, dtype=dtype, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"{owner}.{name} must be 1-D, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _check_lengths(owner: str, arrays: dict[str, np.ndarray]) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{owner}: arrays differ in length {lengths}")


@dataclass(frozen=True, eq=False)
class DailyBars:
    """Daily OHLCV bars of one index, oldest first.

    Attributes
    ----------
    symbol : str
        The index, as the caller named it (the files do not say reliably).
    source : HistoryFormat
        The layout the bars were read from.
    dates : numpy.ndarray of datetime64[D]
        IST trading dates, strictly ascending.
    open, high, low, close : numpy.ndarray of float64
        Index points. ``close`` is always finite and positive; ``open``/``high``/``low`` are
        NaN only for rows accepted with ``allow_missing_ohl`` (no range published that day).
    volume : numpy.ndarray of float64
        As the source reports it; NaN when the format has no volume.

    All arrays are read-only copies.
    """

    symbol: str
    source: HistoryFormat
    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        owner = "DailyBars"
        object.__setattr__(self, "source", HistoryFormat(self.source))
        arrays = {"dates": _frozen_array(self.dates, "datetime64[D]", "dates", owner)}
        for name in ("open", "high", "low", "close", "volume"):
            arrays[name] = _frozen_array(getattr(self, name), "float64", name, owner)
        _check_lengths(owner, arrays)
        if np.any(np.isnat(arrays["dates"])) or np.any(np.diff(arrays["dates"]).astype(int) <= 0):
            raise ValueError(f"{owner}: dates must be strictly ascending and not NaT")
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.dates)


@dataclass(frozen=True, eq=False)
class IntradayBars:
    """Intraday OHLCV bars of one index, oldest first.

    Attributes
    ----------
    symbol : str
        The index, as the caller named it.
    source : HistoryFormat
        The layout the bars were read from.
    ts : numpy.ndarray of datetime64[ns]
        Start of each bar in **UTC** (numpy datetimes are zone-less; UTC by convention),
        strictly ascending.
    open, high, low, close, volume : numpy.ndarray of float64
        Index points; volume as the source reports it (0 for an index on Kite and yfinance).
    session : numpy.ndarray of datetime64[D]
        Derived, not passed: the IST (UTC+05:30) calendar date of each bar, i.e. its
        trading date. ``ts`` 2025-09-04T03:45 (09:15 IST) belongs to session 2025-09-04.

    All arrays are read-only copies.
    """

    symbol: str
    source: HistoryFormat
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    session: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        owner = "IntradayBars"
        object.__setattr__(self, "source", HistoryFormat(self.source))
        ts = _frozen_array(self.ts, "datetime64[ns]", "ts", owner)
        arrays = {"ts": ts}
        for name in ("open", "high", "low", "close", "volume"):
            arrays[name] = _frozen_array(getattr(self, name), "float64", name, owner)
        _check_lengths(owner, arrays)
        ns = ts.view("int64")
        if np.any(np.isnat(ts)) or np.any(np.diff(ns) <= 0):
            raise ValueError(f"{owner}: ts must be strictly ascending and not NaT")
        session = ((ns + _IST_OFFSET_NS) // _DAY_NS).astype("datetime64[D]")
        session.setflags(write=False)
        arrays["session"] = session
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.ts)

    def bars_per_session(self) -> dict[date, int]:
        """Number of bars in each IST session, in session order.

        A full NSE cash session has 375 one-minute bars (09:15-15:29 IST); a source may add a
        15:30 closing bar (376) or miss a minute (374). Judging the counts is the caller's job.
        """
        sessions, counts = np.unique(self.session, return_counts=True)
        return dict(zip(sessions.astype(object).tolist(), counts.tolist(), strict=True))


# ---------------------------------------------------------------------------- public API


def detect_format(text: str | bytes) -> HistoryFormat:
    """Recognise the layout of an index-history CSV, refusing to guess.

    Parameters
    ----------
    text : str or bytes
        The file's content (bytes are decoded as UTF-8; a BOM is ignored).

    Returns
    -------
    HistoryFormat
        Decided from the header and the shape of the first data row's date: ``Price`` /
        ``Ticker`` header rows -> yfinance; the exact :data:`VIX_MDY_HEADER` -> VIX M/D;
        ``2000-01-03`` -> Yahoo/pandas; ``2023-04-03 09:15:00+05:30`` -> Kite;
        ``16-DEC-2025`` -> NSE export; ``13 Jun 2025`` -> niftyindices.

    Raises
    ------
    HistoryInvalid
        Unrecognised layout, or slash dates (``3/4/2016``) under any other header: they read
        equally as D/M/YYYY and M/D/YYYY, so the caller must name the format.
    """
    s = _decode(text)
    first_line = s.split("\n", 1)[0].rstrip("\r")
    if first_line == VIX_MDY_HEADER:
        return HistoryFormat.VIX_MDY
    rows = _rows(s, limit=4)
    if not rows:
        raise HistoryInvalid("detect_format: no header row (empty file)")
    header = [c.strip() for c in rows[0][1]]
    if (
        header[:1] == ["Price"]
        and len(rows) > 1
        and [c.strip() for c in rows[1][1][:1]] == ["Ticker"]
    ):
        return HistoryFormat.YFINANCE_1MIN
    names = [h.lower() for h in header]
    idx = next((i for i, n in enumerate(names) if n in ("date", "datetime")), None)
    if idx is None:
        raise HistoryInvalid(f"detect_format: no Date column in header {','.join(header)!r}")
    if len(rows) < 2:
        raise HistoryInvalid("detect_format: no data row to recognise the date format by")
    line, cells = rows[1]
    cell = cells[idx].strip() if idx < len(cells) else ""
    for fmt, pattern in _DETECT:
        if pattern.fullmatch(cell):
            return fmt
    if _SLASH_DATE.fullmatch(cell):
        raise HistoryInvalid(
            f"detect_format: line {line}: date {cell!r} reads as D/M/YYYY or M/D/YYYY; "
            f"name the format (e.g. {HistoryFormat.VIX_MDY.value!r} for month-first)"
        )
    raise HistoryInvalid(f"detect_format: line {line}: unrecognised date {cell!r}")


def parse_daily(
    text: str | bytes,
    fmt: HistoryFormat | str,
    *,
    symbol: str,
    allow_missing_ohl: bool = False,
) -> DailyBars:
    """Parse a daily index history in the layout ``fmt``.

    Parameters
    ----------
    text : str or bytes
        The file's content (bytes decoded as UTF-8; a BOM is ignored; LF or CRLF).
    fmt : HistoryFormat or str
        A daily format (``yahoo_pandas``, ``nse_export``, ``niftyindices``, ``vix_mdy``).
    symbol : str
        The index the file holds (e.g. ``"NIFTY"``, ``"INDIAVIX"``); recorded, not checked.
    allow_missing_ohl : bool, default False
        NSE publishes some index days with ``Open = High = Low = 0`` and a real close (India
        VIX 2021-02-12 and 2021-03-30). By default such a row is rejected as a non-positive
        price. When True, a row whose open, high and low are *all* zero or empty and whose
        close is valid is kept with NaN open/high/low; any other bad price still raises.

    Returns
    -------
    DailyBars
        Ascending by date (newest-first input is reversed).

    Raises
    ------
    HistoryInvalid
        On a missing column, a row with the wrong number of fields, an unparsable date, an
        empty / non-numeric / non-finite / non-positive price, ``high < low``, an open or
        close outside ``[low, high]`` (beyond :data:`PRICE_TOLERANCE`), a negative volume,
        a duplicate date, rows neither all ascending nor all descending, or no data rows.
        The message names the line and the value.
    """
    fmt = _format(fmt)
    if fmt.is_intraday:
        raise HistoryInvalid(f"{fmt.value} is an intraday format: use parse_intraday")
    ctx = f"{fmt.value} {symbol}"
    parse_date, expected = _DAILY_DATES[fmt]
    table = _table(_decode(text), fmt, ctx)
    days: list[int] = []
    lines: list[int] = []
    prices: list[tuple[float, float, float, float, float]] = []
    for line, cells in table.rows:
        raw = cells[table.cols["date"]].strip()
        day = parse_date(raw)
        if day is None:
            raise _error(ctx, line, f"unparsable date {raw!r} (expected {expected})")
        days.append(day.toordinal() - _EPOCH_ORDINAL)
        lines.append(line)
        prices.append(_bar(cells, table.cols, ctx, line, day.isoformat(), allow_missing_ohl))
    order = _ascending(np.array(days, dtype="int64"), lines, ctx, _show_day)
    values = np.array(prices, dtype="float64").reshape(-1, 5)[order]
    return DailyBars(
        symbol=symbol,
        source=fmt,
        dates=np.array(days, dtype="int64")[order].astype("datetime64[D]"),
        open=values[:, 0],
        high=values[:, 1],
        low=values[:, 2],
        close=values[:, 3],
        volume=values[:, 4],
    )


def parse_intraday(text: str | bytes, fmt: HistoryFormat | str, *, symbol: str) -> IntradayBars:
    """Parse an intraday (1-minute) index history in the layout ``fmt``.

    Parameters
    ----------
    text : str or bytes
        The file's content (bytes decoded as UTF-8; a BOM is ignored).
    fmt : HistoryFormat or str
        An intraday format (``kite_1min``, ``yfinance_1min``).
    symbol : str
        The index the file holds; recorded, not checked against the file's ticker.

    Returns
    -------
    IntradayBars
        Ascending by time, ``ts`` in UTC, ``session`` the IST trading date of each bar.

    Raises
    ------
    HistoryInvalid
        As :func:`parse_daily` (no missing-OHL allowance), and for a timestamp without a UTC
        offset, or a yfinance file whose second header row names more than one ticker.
    """
    fmt = _format(fmt)
    if not fmt.is_intraday:
        raise HistoryInvalid(f"{fmt.value} is a daily format: use parse_daily")
    ctx = f"{fmt.value} {symbol}"
    table = _table(_decode(text), fmt, ctx)
    stamps: list[int] = []
    lines: list[int] = []
    prices: list[tuple[float, float, float, float, float]] = []
    for line, cells in table.rows:
        raw = cells[table.cols["date"]].strip()
        stamps.append(_timestamp_ns(raw, ctx, line))
        lines.append(line)
        prices.append(_bar(cells, table.cols, ctx, line, raw, False))
    order = _ascending(np.array(stamps, dtype="int64"), lines, ctx, _show_ns)
    values = np.array(prices, dtype="float64").reshape(-1, 5)[order]
    return IntradayBars(
        symbol=symbol,
        source=fmt,
        ts=np.array(stamps, dtype="int64")[order].view("datetime64[ns]"),
        open=values[:, 0],
        high=values[:, 1],
        low=values[:, 2],
        close=values[:, 3],
        volume=values[:, 4],
    )


def read_history(
    path: str | PathLike[str],
    fmt: HistoryFormat | str | None = None,
    *,
    symbol: str,
    allow_missing_ohl: bool = False,
) -> DailyBars | IntradayBars:
    """Read and parse the history file at ``path`` (the only function here that does I/O).

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    fmt : HistoryFormat or str, optional
        Its layout; :func:`detect_format` decides when omitted (and refuses slash dates).
    symbol : str
        The index the file holds.
    allow_missing_ohl : bool, default False
        Passed to :func:`parse_daily`; must stay False for an intraday format.

    Returns
    -------
    DailyBars or IntradayBars
        According to the format.

    Raises
    ------
    HistoryInvalid
        As the parser, with the file name prefixed to the message.
    """
    p = Path(path)
    data = p.read_bytes()
    try:
        chosen = detect_format(data) if fmt is None else _format(fmt)
        if chosen.is_intraday:
            if allow_missing_ohl:
                raise HistoryInvalid("allow_missing_ohl applies to daily formats only")
            return parse_intraday(data, chosen, symbol=symbol)
        return parse_daily(data, chosen, symbol=symbol, allow_missing_ohl=allow_missing_ohl)
    except HistoryInvalid as exc:
        raise HistoryInvalid(f"{p.name}: {exc}") from exc


def check_gaps(bars: DailyBars, expected_sessions: np.ndarray | Sequence[date]) -> tuple[date, ...]:
    """The expected sessions for which ``bars`` has no row.

    Parameters
    ----------
    bars : DailyBars
        The history to check.
    expected_sessions : array-like of datetime64[D] or datetime.date
        The trading dates the caller expects (e.g. from the NSE calendar). Every one of them
        is checked, including those before the first or after the last bar, so a truncated
        file shows up; pass only the span of interest to look for holes alone.

    Returns
    -------
    tuple of datetime.date
        Missing sessions, ascending; empty when none is missing. Bars on dates that are not
        expected sessions are not reported (the caller can compare the other way round).
    """
    expected = np.unique(np.asarray(expected_sessions, dtype="datetime64[D]"))
    if np.any(np.isnat(expected)):
        raise ValueError("check_gaps: expected_sessions contains NaT")
    missing = np.setdiff1d(expected, bars.dates, assume_unique=True)
    return tuple(missing.astype(object).tolist())


# ---------------------------------------------------------------------------- internals


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DASH_MON_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_SPACE_MON_DATE = re.compile(r"(\d{1,2}) ([A-Za-z]{3}) (\d{4})")
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_AWARE_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:(Z)|([+-])(\d{2}):(\d{2}))"
)
_NAIVE_TS = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")

_DETECT = (
    (HistoryFormat.YAHOO_PANDAS, _ISO_DATE),
    (HistoryFormat.KITE_1MIN, _AWARE_TS),
    (HistoryFormat.NSE_EXPORT, _DASH_MON_DATE),
    (HistoryFormat.NIFTYINDICES, _SPACE_MON_DATE),
)


def _make_date(year: str, month: int | None, day: str) -> date | None:
    if month is None:
        return None
    try:
        return date(int(year), month, int(day))
    except ValueError:
        return None


def _iso_date(s: str) -> date | None:
    m = _ISO_DATE.fullmatch(s)
    return _make_date(m[1], int(m[2]), m[3]) if m else None


def _dash_mon_date(s: str) -> date | None:
    m = _DASH_MON_DATE.fullmatch(s)
    return _make_date(m[3], _MONTHS.get(m[2].lower()), m[1]) if m else None


def _space_mon_date(s: str) -> date | None:
    m = _SPACE_MON_DATE.fullmatch(s)
    return _make_date(m[3], _MONTHS.get(m[2].lower()), m[1]) if m else None


def _mdy_date(s: str) -> date | None:
    m = _SLASH_DATE.fullmatch(s)
    return _make_date(m[3], int(m[1]), m[2]) if m else None


_DAILY_DATES: dict[HistoryFormat, tuple[Callable[[str], date | None], str]] = {
    HistoryFormat.YAHOO_PANDAS: (_iso_date, "YYYY-MM-DD, e.g. 2000-01-03"),
    HistoryFormat.NSE_EXPORT: (_dash_mon_date, "DD-MON-YYYY, e.g. 16-DEC-2025"),
    HistoryFormat.NIFTYINDICES: (_space_mon_date, "D Mon YYYY, e.g. 13 Jun 2025"),
    HistoryFormat.VIX_MDY: (
        _mdy_date,
        "M/D/YYYY month first, e.g. 3/31/2023; a day-first file is not vix_mdy",
    ),
}

# Column name (stripped, lower-case) -> field. The first column of a yfinance file is the
# timestamp whatever it is called ("Price", the name of pandas' column level).
_ALIASES = {
    "date": "date",
    "datetime": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "shares traded": "volume",
}
_REQUIRED = ("date", "open", "high", "low", "close")


@dataclass(frozen=True)
class _Table:
    cols: dict[str, int]
    rows: list[tuple[int, list[str]]]


def _format(fmt: HistoryFormat | str) -> HistoryFormat:
    try:
        return HistoryFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in HistoryFormat)
        raise HistoryInvalid(f"unknown history format {fmt!r} (known: {known})") from None


def _decode(text: str | bytes) -> str:
    if isinstance(text, bytes | bytearray):
        try:
            return bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HistoryInvalid(f"not UTF-8 text: {exc}") from None
    return text.removeprefix("\ufeff")


def _rows(s: str, limit: int | None = None) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records as ``(line number of the record's last line, cells)``."""
    reader = csv.reader(io.StringIO(s, newline=""))
    out: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                out.append((reader.line_num, cells))
                if limit is not None and len(out) >= limit:
                    break
    except csv.Error as exc:
        raise HistoryInvalid(f"line {reader.line_num}: CSV error: {exc}") from None
    return out


def _table(s: str, fmt: HistoryFormat, ctx: str) -> _Table:
    rows = _rows(s)
    if not rows:
        raise HistoryInvalid(f"{ctx}: empty file (no header)")
    header_line, header = rows[0]
    cols: dict[str, int] = {}
    if fmt is HistoryFormat.YFINANCE_1MIN:
        n_header = 3
        if len(rows) < 3:
            raise _error(ctx, header_line, "expected 3 header rows (Price, Ticker, Datetime)")
        if header[0].strip() != "Price":
            raise _error(ctx, header_line, f"first header row starts {header[0]!r}, not 'Price'")
        ticker_line, tickers = rows[1]
        if tickers[0].strip() != "Ticker":
            raise _error(ctx, ticker_line, f"second header row starts {tickers[0]!r}, not 'Ticker'")
        distinct = {t.strip() for t in tickers[1:]}
        if len(distinct) != 1:
            raise _error(ctx, ticker_line, f"expected one ticker, found {sorted(distinct)}")
        index_line, index_row = rows[2]
        if index_row[0].strip() not in ("Datetime", "Date") or any(
            c.strip() for c in index_row[1:]
        ):
            raise _error(
                ctx, index_line, f"third header row {','.join(index_row)!r} is not 'Datetime,,,'"
            )
        cols["date"] = 0
    else:
        n_header = 1
    for i, name in enumerate(header):
        key = _ALIASES.get(name.strip().lower())
        if key is None:
            continue
        if key in cols:
            raise _error(ctx, header_line, f"column {key!r} appears twice in the header")
        cols[key] = i
    missing = [k for k in _REQUIRED if k not in cols]
    if missing:
        raise _error(
            ctx, header_line, f"missing column(s) {', '.join(missing)} in header {header!r}"
        )
    data = rows[n_header:]
    if not data:
        raise HistoryInvalid(f"{ctx}: no data rows")
    width = len(header)
    for line, cells in data:
        if len(cells) != width:
            raise _error(ctx, line, f"{len(cells)} fields, the header has {width}")
    return _Table(cols=cols, rows=data)


def _error(ctx: str, line: int, message: str) -> HistoryInvalid:
    return HistoryInvalid(f"{ctx}: line {line}: {message}")


def _number(cells: list[str], cols: dict[str, int], key: str, ctx: str, line: int) -> float:
    raw = cells[cols[key]].strip()
    if not raw:
        return math.nan
    try:
        return float(raw)
    except ValueError:
        raise _error(ctx, line, f"{key} {raw!r} is not a number") from None


def _bar(
    cells: list[str],
    cols: dict[str, int],
    ctx: str,
    line: int,
    when: str,
    allow_missing_ohl: bool,
) -> tuple[float, float, float, float, float]:
    """One row's validated ``(open, high, low, close, volume)``; ``when`` labels errors."""
    o, h, lo, c = (_number(cells, cols, k, ctx, line) for k in ("open", "high", "low", "close"))
    volume = _number(cells, cols, "volume", ctx, line) if "volume" in cols else math.nan
    if allow_missing_ohl and all(x == 0 or math.isnan(x) for x in (o, h, lo)):
        o = h = lo = math.nan
        checked: tuple[tuple[str, float], ...] = (("close", c),)
    else:
        checked = (("open", o), ("high", h), ("low", lo), ("close", c))
    for key, x in checked:
        if math.isnan(x):
            raise _error(ctx, line, f"{when}: {key} is empty or NaN")
        if not math.isfinite(x) or x <= 0:
            raise _error(ctx, line, f"{when}: {key} {x!r} is not a positive finite price")
    if len(checked) == 4:
        tol = PRICE_TOLERANCE * h
        if h < lo - tol:
            raise _error(ctx, line, f"{when}: high {h!r} < low {lo!r}")
        for key, x in (("open", o), ("close", c)):
            if not lo - tol <= x <= h + tol:
                raise _error(ctx, line, f"{when}: {key} {x!r} outside [low {lo!r}, high {h!r}]")
    if volume < 0 or math.isinf(volume):
        raise _error(ctx, line, f"{when}: volume {volume!r} is negative or infinite")
    return o, h, lo, c, volume


def _timestamp_ns(raw: str, ctx: str, line: int) -> int:
    m = _AWARE_TS.fullmatch(raw)
    if m is None:
        if _NAIVE_TS.fullmatch(raw):
            raise _error(
                ctx, line, f"timestamp {raw!r} has no UTC offset; a naive time is not guessed"
            )
        raise _error(
            ctx, line, f"unparsable timestamp {raw!r} (expected e.g. 2023-04-03 09:15:00+05:30)"
        )
    day = _make_date(m[1], int(m[2]), m[3])
    hour, minute, second = int(m[4]), int(m[5]), int(m[6])
    off_h, off_m = (0, 0) if m[7] else (int(m[9]), int(m[10]))
    if day is None or hour > 23 or minute > 59 or second > 59 or off_h > 14 or off_m > 59:
        raise _error(ctx, line, f"timestamp {raw!r} is not a valid date, time and offset")
    offset = (off_h * 3600 + off_m * 60) * (-1 if m[8] == "-" else 1)
    days = day.toordinal() - _EPOCH_ORDINAL
    return (days * 86_400 + hour * 3600 + minute * 60 + second - offset) * _NS


def _show_day(value: int) -> str:
    return str(np.datetime64(int(value), "D"))


def _show_ns(value: int) -> str:
    utc = np.datetime64(int(value), "ns").astype("datetime64[s]")
    ist = (utc + IST_OFFSET).astype(object)
    return f"{utc}Z ({ist:%Y-%m-%d %H:%M} IST)"


def _ascending(
    keys: np.ndarray, lines: list[int], ctx: str, show: Callable[[int], str]
) -> np.ndarray:
    """Indices putting ``keys`` in ascending order: as is, or reversed if newest first."""
    n = len(keys)
    step = np.diff(keys)
    dup = np.flatnonzero(step == 0)
    if dup.size:
        i = int(dup[0])
        raise _error(ctx, lines[i + 1], f"duplicate {show(keys[i])} (also on line {lines[i]})")
    if np.all(step > 0):
        return np.arange(n)
    if np.all(step < 0):
        return np.arange(n)[::-1]
    ascending = bool(step[0] > 0)
    i = int(np.flatnonzero(step < 0 if ascending else step > 0)[0])
    direction = "ascending" if ascending else "descending"
    raise _error(
        ctx,
        lines[i + 1],
        f"{show(keys[i + 1])} after {show(keys[i])} (line {lines[i]}) breaks the {direction} "
        f"order of lines {lines[0]}-{lines[i]}: rows must be all oldest-first or all newest-first",
    )
