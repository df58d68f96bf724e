"""Market data read from files: index OHLC histories (:mod:`shared.marketdata.history`)."""

from shared.marketdata.history import (
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

__all__ = [
    "DailyBars",
    "HistoryFormat",
    "HistoryInvalid",
    "IntradayBars",
    "check_gaps",
    "detect_format",
    "parse_daily",
    "parse_intraday",
    "read_history",
]
