"""Marking paper positions to market (``shared/domain/risk/marks.py``)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from shared.contracts import Leg, OptionType, Side
from shared.domain.black76 import black76_price
from shared.domain.risk.inputs import MarketView
from shared.domain.risk.marks import LegMark, PositionMark, mark_position
from shared.domain.risk.synthetic import (
    EXPIRIES,
    NOW,
    iron_condor,
    random_proposal,
    synthetic_market,
    vertical,
)

TODAY = NOW.date()
LOT = 65


@pytest.fixture(scope="module")
def market() -> MarketView:
    return synthetic_market(np.random.default_rng(1234))


def leg(strike: float, kind: OptionType, side: Side, *, lots: int = 1,
        expiry: date = EXPIRIES[0]) -> Leg:
    return Leg(expiry=expiry, strike=Decimal(str(strike)), option_type=kind, side=side,
               lots=lots, price=Decimal("0"))


def signed_units(x: Leg, lot_size: int = LOT) -> float:
    return x.lots * lot_size * (1.0 if x.side == Side.BUY else -1.0)


def mid(market: MarketView, x: Leg) -> float:
    q = market.quote(x.expiry, x.strike, x.option_type)
    assert q is not None and math.isfinite(q.bid) and math.isfinite(q.ask)
    return (q.bid + q.ask) / 2


def with_quote(market: MarketView, x: Leg, **changes) -> MarketView:
    """The market with one contract's quote changed."""
    key = (x.expiry, float(x.strike), str(x.option_type))
    return replace(market, quotes=tuple(replace(q, **changes) if q.key == key else q
                                        for q in market.quotes))


# ------------------------------------------------------------------------- identities


def test_position_marked_at_its_entry_mids_has_zero_pnl(market):
    rng = np.random.default_rng(1234)
    proposals = [iron_condor(market, lots=2)] + [random_proposal(rng, market) for _ in range(20)]
    for p in proposals:
        entry = -math.fsum(signed_units(x, p.lot_size) * mid(market, x) for x in p.legs)
        m = mark_position(p.legs, lot_size=p.lot_size, entry_premium=entry, market=market,
                          today=TODAY)
        assert isinstance(m, PositionMark)
        assert m.complete and m.reason == ""
        assert [x.basis for x in m.legs] == ["mid"] * len(p.legs)
        assert m.pnl == pytest.approx(0.0, abs=1e-9)
        assert m.value == pytest.approx(-entry, rel=1e-12)
        assert [x.units for x in m.legs] == [signed_units(x, p.lot_size) for x in p.legs]


def test_long_call_gains_when_spot_rises(market):
    call = leg(24_000, OptionType.CE, Side.BUY, lots=3)
    entry = -signed_units(call) * mid(market, call)
    up = synthetic_market(np.random.default_rng(1234), spot=24_300.0)  # same smile jitter
    m = mark_position([call], lot_size=LOT, entry_premium=entry, market=up, today=TODAY)
    assert m.complete
    assert m.pnl > 0
    assert m.pnl == pytest.approx(signed_units(call) * (mid(up, call) - mid(market, call)),
                                  rel=1e-12)
    down = synthetic_market(np.random.default_rng(1234), spot=23_700.0)
    assert mark_position([call], lot_size=LOT, entry_premium=entry, market=down,
                         today=TODAY).pnl < 0


def test_long_short_pair_is_the_difference_of_the_marks(market):
    p = vertical(market, credit=False, lots=2)
    pair = mark_position(p.legs, lot_size=p.lot_size, entry_premium=0.0, market=market,
                         today=TODAY)
    bought = next(x for x in p.legs if x.side == Side.BUY)
    sold = next(x for x in p.legs if x.side == Side.SELL)
    single = {x.side: mark_position([x.model_copy(update={"side": Side.BUY})],
                                    lot_size=p.lot_size, entry_premium=0.0, market=market,
                                    today=TODAY) for x in (bought, sold)}
    units = bought.lots * p.lot_size
    assert pair.value == pytest.approx(
        units * (single[Side.BUY].legs[0].price - single[Side.SELL].legs[0].price), rel=1e-12)
    assert pair.value == pytest.approx(single[Side.BUY].value - single[Side.SELL].value,
                                       rel=1e-12)
    assert pair.value > 0  # a debit vertical is worth something


# ------------------------------------------------------------------------------ expiry


def test_expired_legs_settle_at_intrinsic_against_spot():
    after = synthetic_market(np.random.default_rng(1234), spot=24_130.0)
    today = EXPIRIES[0] + timedelta(days=1)
    legs = [leg(24_000, OptionType.CE, Side.SELL, lots=2), leg(24_300, OptionType.CE, Side.BUY),
            leg(24_200, OptionType.PE, Side.BUY), leg(23_900, OptionType.PE, Side.SELL)]
    m = mark_position(legs, lot_size=LOT, entry_premium=5_000.0, market=after, today=today)
    # quotes of the expired contracts are still listed: they must be ignored
    assert after.quote(EXPIRIES[0], 24_000, "CE") is not None
    assert [x.basis for x in m.legs] == ["intrinsic"] * 4
    assert [x.price for x in m.legs] == [130.0, 0.0, 70.0, 0.0]
    assert m.complete and m.reason == ""
    assert m.value == pytest.approx(LOT * (-2 * 130.0 + 70.0))
    assert m.pnl == pytest.approx(5_000.0 + m.value)


def test_a_leg_expiring_today_is_still_live(market):
    call = leg(24_000, OptionType.CE, Side.BUY)
    m = mark_position([call], lot_size=LOT, entry_premium=0.0, market=market,
                      today=EXPIRIES[0])
    assert m.legs[0].basis == "mid"
    assert m.legs[0].price == mid(market, call)


# ---------------------------------------------------------------------------- fallbacks


def test_one_sided_quote_is_priced_by_the_model(market):
    put = leg(23_800, OptionType.PE, Side.SELL)
    q = market.quote(put.expiry, put.strike, put.option_type)
    for side in ("bid", "ask"):
        one_sided = with_quote(market, put, **{side: math.nan})
        m = mark_position([put], lot_size=LOT, entry_premium=0.0, market=one_sided, today=TODAY)
        expected = black76_price(q.forward, 23_800.0, q.t, market.rate, q.iv, False)[0]
        assert m.legs[0].basis == "model"
        assert m.legs[0].price == pytest.approx(expected, rel=1e-14)
        assert q.bid < m.legs[0].price < q.ask  # the model agrees with the two-sided quote
        assert m.complete and m.reason == ""


def test_one_sided_quote_without_iv_uses_the_side_quoted(market):
    put = leg(23_800, OptionType.PE, Side.SELL)
    q = market.quote(put.expiry, put.strike, put.option_type)
    only_bid = with_quote(market, put, ask=math.nan, iv=math.nan)
    only_ask = with_quote(market, put, bid=math.nan, iv=math.nan)
    for view, basis, price in ((only_bid, "bid", q.bid), (only_ask, "ask", q.ask)):
        m = mark_position([put], lot_size=LOT, entry_premium=0.0, market=view, today=TODAY)
        assert (m.legs[0].basis, m.legs[0].price) == (basis, price)
        assert m.value == -LOT * price
        assert m.complete


def test_missing_quote_falls_back_to_intrinsic_against_the_forward(market):
    off_grid = leg(23_975, OptionType.CE, Side.BUY)  # strikes are on a 50-point grid
    listed = leg(24_000, OptionType.CE, Side.SELL)
    m = mark_position([off_grid, listed], lot_size=LOT, entry_premium=0.0, market=market,
                      today=TODAY)
    forward = market.quote(EXPIRIES[0], 24_000, "CE").forward
    assert forward > 23_975
    assert m.legs[0] == LegMark(expiry=EXPIRIES[0], strike=23_975.0,
                                option_type=OptionType.CE, units=float(LOT),
                                price=forward - 23_975, basis="intrinsic")
    assert m.legs[1].basis == "mid"
    assert not m.complete
    assert "23975 CE" in m.reason and "no quote" in m.reason and "24000" not in m.reason
    again = mark_position([off_grid, listed], lot_size=np.int64(LOT), entry_premium=0.0,
                          market=market, today=TODAY)  # a numpy integer lot size is fine
    assert again == m
    assert m.value == pytest.approx(LOT * (forward - 23_975 - mid(market, listed)))


def test_missing_expiry_falls_back_to_intrinsic_against_spot(market):
    unlisted = date(2026, 12, 29)
    put = leg(24_200, OptionType.PE, Side.BUY, expiry=unlisted)
    m = mark_position([put], lot_size=LOT, entry_premium=-1_000.0, market=market, today=TODAY)
    assert (m.legs[0].basis, m.legs[0].price) == ("intrinsic", 24_200 - market.spot)
    assert not m.complete and "spot" in m.reason and unlisted.isoformat() in m.reason
    assert m.pnl == pytest.approx(-1_000.0 + LOT * (24_200 - market.spot))


def test_quote_with_neither_side_is_incomplete(market):
    call = leg(24_100, OptionType.CE, Side.BUY)
    q = market.quote(call.expiry, call.strike, call.option_type)
    dead = with_quote(market, call, bid=math.nan, ask=math.nan)
    m = mark_position([call], lot_size=LOT, entry_premium=0.0, market=dead, today=TODAY)
    assert m.legs[0].basis == "model"
    assert m.legs[0].price == pytest.approx(
        black76_price(q.forward, 24_100.0, q.t, market.rate, q.iv, True)[0], rel=1e-14)
    assert not m.complete and "neither bid nor ask" in m.reason

    no_iv = with_quote(market, call, bid=math.nan, ask=math.nan, iv=math.nan)
    m = mark_position([call], lot_size=LOT, entry_premium=0.0, market=no_iv, today=TODAY)
    assert (m.legs[0].basis, m.legs[0].price) == ("intrinsic", max(q.forward - 24_100, 0.0))
    assert not m.complete


def test_no_market_gives_nan_with_a_reason():
    legs = [leg(24_000, OptionType.CE, Side.SELL), leg(24_000, OptionType.PE, Side.SELL,
                                                       expiry=date(2026, 11, 1))]
    m = mark_position(legs, lot_size=LOT, entry_premium=3_000.0, market=None, today=TODAY)
    assert math.isnan(m.value) and math.isnan(m.pnl)
    assert not m.complete
    assert "no market view" in m.reason
    assert [x.basis for x in m.legs] == ["unpriced", "unpriced"]
    assert all(math.isnan(x.price) for x in m.legs)
    assert [x.units for x in m.legs] == [-LOT, -LOT]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kw, message", [
    (dict(lot_size=0), "lot_size"),
    (dict(lot_size=-65), "lot_size"),
    (dict(lot_size=65.0), "lot_size"),
    (dict(lot_size=True), "lot_size"),
    (dict(entry_premium=math.nan), "entry_premium"),
    (dict(entry_premium=math.inf), "entry_premium"),
])
def test_bad_inputs_are_rejected(market, kw, message):
    args = dict(lot_size=LOT, entry_premium=0.0, market=market, today=TODAY) | kw
    with pytest.raises(ValueError, match=message):
        mark_position([leg(24_000, OptionType.CE, Side.BUY)], **args)


def test_an_empty_position_is_rejected(market):
    with pytest.raises(ValueError, match="at least one leg"):
        mark_position([], lot_size=LOT, entry_premium=0.0, market=market, today=TODAY)
