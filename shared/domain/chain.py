"""The typed option-chain snapshot every provider produces and every analytic consumes.

A snapshot is columnar (one numpy array per field, one row per *leg*, i.e. per
(expiry, strike, CE/PE)), so analytics are vectorised with no per-option Python loops.

Conventions
-----------
* Prices are rupees per unit of the underlying; strikes likewise.
* Missing data is ``NaN`` (float fields), never 0: feeds encode "no data" as 0, parsers
  translate. Why a value is missing is recorded per leg in ``missing`` (bit flags).
* ``vendor_iv`` is the provider's implied volatility as a decimal (0.1345 for 13.45 %),
  NaN where the provider gave 0. Our own IVs are computed by the analytics, not trusted.
* ``oi`` and ``oi_change`` are in contracts and may be fractional (lot-size changes on
  long-dated contracts), so they are floats.
* ``asof`` is timezone-aware (Asia/Kolkata for NSE data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntFlag
from typing import Annotated

import numpy as np
import numpy.typing as npt

# Shape annotations: every leg array has shape (n_legs,).
FloatLegs = Annotated[npt.NDArray[np.float64], "(n_legs,)"]
BoolLegs = Annotated[npt.NDArray[np.bool_], "(n_legs,)"]
DateLegs = Annotated[npt.NDArray[np.datetime64], "(n_legs,) datetime64[D]"]
FlagLegs = Annotated[npt.NDArray[np.uint16], "(n_legs,)"]


class Missing(IntFlag):
    """Why a leg field is missing. A leg may carry several flags."""

    NONE = 0
    LAST_PRICE = 1  # last traded price 0 / absent: never traded
    BID = 2  # no bid quote
    ASK = 4  # no ask quote
    VENDOR_IV = 8  # provider IV 0 / absent
    OI = 16  # open interest absent
    VOLUME = 32  # volume absent
    LEG_ABSENT = 64  # the row had no CE (or no PE) object at all
    STALE_PRICE = 128  # last price non-zero but zero volume today: yesterday's close


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """One provider snapshot of an underlying's option chain (all expiries it carries)."""

    symbol: str
    asof: datetime
    spot: float
    source: str  # "nse", "upstox", "replay:<name>", "simulator"
    expiries: tuple[date, ...]  # sorted, unique
    expiry: DateLegs
    strike: FloatLegs
    is_call: BoolLegs
    last: FloatLegs
    bid: FloatLegs
    ask: FloatLegs
    volume: FloatLegs
    oi: FloatLegs
    oi_change: FloatLegs
    vendor_iv: FloatLegs
    missing: FlagLegs
    flags: tuple[str, ...] = field(default=())  # snapshot-level quirks noticed while parsing

    def __post_init__(self) -> None:
        if self.asof.tzinfo is None:
            raise ValueError("ChainSnapshot.asof must be timezone-aware")
        n = self.strike.shape[0]
        for name in ("expiry", "is_call", "last", "bid", "ask", "volume", "oi", "oi_change",
                     "vendor_iv", "missing"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"ChainSnapshot.{name} has shape {arr.shape}, expected ({n},)")
            arr.setflags(write=False)
        self.strike.setflags(write=False)

    @property
    def n_legs(self) -> int:
        return int(self.strike.shape[0])

    def for_expiry(self, expiry: date) -> npt.NDArray[np.bool_]:
        """Boolean mask of the legs of one expiry."""
        return self.expiry == np.datetime64(expiry, "D")
