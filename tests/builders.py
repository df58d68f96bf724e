"""Seeded builders of test data shared by the test layers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from shared.domain.black76 import black76_price
from shared.domain.chain import ChainSnapshot, Missing

IST = ZoneInfo("Asia/Kolkata")


@dataclass(frozen=True)
class SyntheticExpiry:
    expiry: date
    t: float
    forward: float
    smile: tuple[float, ...]  # IV polynomial in x = ln(K/F), highest power first


def synthetic_chain(expiries: list[SyntheticExpiry], *, spot: float, rate: float,
                    strike_step: float = 50.0, width: float = 0.12, spread_ticks: int = 2,
                    rng: np.random.Generator | None = None, oi_scale: float = 1e4,
                    asof: datetime | None = None, tick: float = 0.05) -> ChainSnapshot:
    """A clean chain priced by Black-76 from known smiles: quotes straddle the model price
    by ``spread_ticks`` ticks, OI is random (seeded) and larger near the money."""
    rng = rng or np.random.default_rng(1234)
    cols: dict[str, list] = {k: [] for k in ("expiry", "strike", "is_call", "price", "oi", "doi", "vol")}
    for e in expiries:
        lo = np.ceil(spot * (1 - width) / strike_step) * strike_step
        hi = np.floor(spot * (1 + width) / strike_step) * strike_step
        strikes = np.arange(lo, hi + strike_step / 2, strike_step)
        for is_call in (True, False):
            iv = np.polyval(np.asarray(e.smile), np.log(strikes / e.forward))
            px = black76_price(e.forward, strikes, e.t, rate, iv, is_call)
            near = np.exp(-0.5 * (np.log(strikes / spot) / 0.03) ** 2)
            cols["expiry"] += [np.datetime64(e.expiry, "D")] * len(strikes)
            cols["strike"] += list(strikes)
            cols["is_call"] += [is_call] * len(strikes)
            cols["price"] += list(px)
            cols["oi"] += list(np.round(oi_scale * (0.1 + near) * rng.uniform(0.5, 1.5, len(strikes))))
            cols["doi"] += list(np.round(rng.normal(0, 0.1 * oi_scale, len(strikes))))
            cols["vol"] += list(np.round(oi_scale * near * rng.uniform(0, 3, len(strikes))))
    price = np.asarray(cols["price"])
    half = spread_ticks * tick
    bid = np.round((price - half) / tick) * tick
    ask = np.round((price + half) / tick) * tick
    bid = np.where(bid > 0, bid, np.nan)
    missing = np.where(np.isnan(bid), np.uint16(Missing.BID), np.uint16(0)).astype(np.uint16)
    n = price.shape[0]
    return ChainSnapshot(
        symbol="NIFTY", asof=asof or datetime(2026, 11, 20, 12, 0, tzinfo=IST), spot=spot,
        source="synthetic", expiries=tuple(sorted({e.expiry for e in expiries})),
        expiry=np.asarray(cols["expiry"], dtype="datetime64[D]"), strike=np.asarray(cols["strike"]),
        is_call=np.asarray(cols["is_call"]), last=price.copy(), bid=bid, ask=ask,
        volume=np.asarray(cols["vol"], dtype=float), oi=np.asarray(cols["oi"], dtype=float),
        oi_change=np.asarray(cols["doi"], dtype=float), vendor_iv=np.full(n, np.nan), missing=missing,
    )


def analysed_fixture(path: Path, rate: float = 0.065, *, skip_if_absent: bool = False):
    """A recorded chain payload parsed and analysed as chain_poll does (year fractions and
    dated lot sizes from the packaged calendar): ``(snapshot, analytics, lot sizes)``.
    ``skip_if_absent``: skip the test when the file (the kit's) is not there."""
    if skip_if_absent and not path.exists():
        import pytest

        pytest.skip(f"{path} is absent (kit fixtures not mounted)")
    return _analysed(path, rate)


@functools.cache
def _analysed(path: Path, rate: float):
    import contextlib

    from shared.adapters.providers import parse_payload
    from shared.domain.analytics import analyse_chain
    from shared.domain.calendar import CalendarDataError
    from shared.rules import default_calendar

    snap = parse_payload(path.read_bytes())
    cal = default_calendar()
    t, lots = {}, {}
    for e in snap.expiries:
        with contextlib.suppress(CalendarDataError):
            t[e] = cal.year_fraction(snap.asof, e)
        with contextlib.suppress(CalendarDataError):
            lots[e] = cal.lot_size(snap.symbol, e).value
    return snap, analyse_chain(snap, t_by_expiry=t, rate=rate, lot_size_by_expiry=lots), lots
