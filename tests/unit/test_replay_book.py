"""The replay's paper book (shared.replay.book): P&L recomputed by hand from the fills and
the cost engine, settlement at expiry, notify's target and stop, the product's portfolio,
and the conservative ledger."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest

from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, SignalApprovedV1, Structure
from shared.costs import default_cost_schedule
from shared.domain.calendar import IST
from shared.domain.costs import SlippageModel, quote
from shared.domain.risk.inputs import LegQuote, MarketView
from shared.replay.book import PaperBook
from shared.replay.config import SLIPPAGE_MULTIPLIER

EXPIRY = date(2025, 7, 24)
DAY = date(2025, 7, 16)
LOT = 75
TENANT = uuid.UUID(int=7)
SCHEDULE = default_cost_schedule()


def at(hh: int, mm: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def view(spot: float, quotes: dict[tuple[float, str], tuple[float, float]],
         now: datetime) -> MarketView:
    return MarketView(symbol="NIFTY", asof=now, spot=spot, rate=0.06, source="test",
                      quotes=tuple(LegQuote(expiry=EXPIRY, strike=k, option_type=OptionType(t),
                                            bid=b, ask=a, iv=0.12, forward=spot, t=8 / 365,
                                            lot_size=LOT)
                                   for (k, t), (b, a) in quotes.items()))


def proposal(legs: list[tuple[float, str, Side, float]], structure: Structure) -> DecisionProposedV1:
    return DecisionProposedV1(
        proposal_id=uuid.uuid4(), tenant_id=TENANT, snapshot_id=uuid.uuid4(), symbol="NIFTY",
        structure=structure, lot_size=LOT, max_profit=None, max_loss=None,
        expected_gross_edge=100.0, win_probability=0.6, regime="range", proposed_at=at(10, 0),
        legs=tuple(Leg(expiry=EXPIRY, strike=Decimal(str(k)), option_type=OptionType(t), side=s,
                       lots=1, price=Decimal(f"{p:.2f}")) for k, t, s, p in legs))


def book() -> PaperBook:
    b = PaperBook(SCHEDULE)
    b.add_tenant(TENANT, 1_000_000.0, "standard")
    return b


def slip(bid: float, ask: float, k: float = 1.0) -> Decimal:
    return SlippageModel().estimate(qty=LOT, displayed_qty=LOT, bid=bid, ask=ask).amount \
        * Decimal(repr(k))


def fill(side: str, price: float, s: Decimal | None, on: date = DAY) -> float:
    return float(quote(SCHEDULE, trade_date=on, instrument="option", side=side,
                       price=Decimal(f"{price:.2f}"), qty=LOT, plan="standard",
                       slippage=s).total)


PUT_SPREAD = [(25000, "PE", Side.SELL, 100.0), (24900, "PE", Side.BUY, 70.0)]
ENTRY = {(25000.0, "PE"): (99.0, 101.0), (24900.0, "PE"): (69.0, 71.0)}
LATER = {(25000.0, "PE"): (79.0, 81.0), (24900.0, "PE"): (54.0, 56.0)}


def test_pnl_equals_a_hand_recomputation_from_the_fills_and_the_cost_engine():
    b = book()
    p = proposal(PUT_SPREAD, Structure.CREDIT_VERTICAL)
    pos = b.open(p, lots=(1, 1), market=view(25100, ENTRY, at(10, 0)), now=at(10, 0),
                 margin=50_000.0, entry_premium_touch=75 * (99 - 71), strategy="credit_vertical")
    assert pos is not None
    exit_view = view(25180, LATER, at(11, 0))
    assert b.mark(exit_view, at(11, 0)) == []  # no card: no target or stop
    trade = b.close(pos, now=at(11, 0), reason="session_end", market=exit_view)

    # by hand: sold the 25000 put at 100 and bought the 24900 put at 70 (the mids), bought
    # the first back at 80 and sold the second at 55 (the mids an hour later)
    gross = -LOT * (80 - 100) + LOT * (55 - 70)
    assert gross == 375
    costs = (fill("sell", 100, slip(99, 101)) + fill("buy", 70, slip(69, 71))
             + fill("buy", 80, slip(79, 81)) + fill("sell", 55, slip(54, 56)))
    assert trade.gross_pnl == pytest.approx(gross, abs=1e-9)
    assert trade.costs == pytest.approx(costs, abs=1e-9)
    assert trade.pnl == pytest.approx(gross - costs, abs=1e-9)
    k = SLIPPAGE_MULTIPLIER
    costs_c = (fill("sell", 100, slip(99, 101, k)) + fill("buy", 70, slip(69, 71, k))
               + fill("buy", 80, slip(79, 81, k)) + fill("sell", 55, slip(54, 56, k)))
    assert trade.pnl_conservative == pytest.approx(gross - costs_c, abs=1e-9)
    assert trade.pnl_conservative < trade.pnl
    assert trade.event_penalty == 0.0  # not an event day
    # the product's ledger: entry at the touch (bid 99 sold, ask 71 bought), before costs
    assert trade.product_pnl == pytest.approx(75 * (99 - 71) - 75 * 80 + 75 * 55)
    assert trade.bandit_reward == pytest.approx(trade.product_pnl / 50_000.0)
    assert trade.ret(False) == pytest.approx(trade.pnl / 50_000.0)
    r_n, r_c = b.realised(TENANT)
    assert (r_n, r_c) == (pytest.approx(trade.pnl), pytest.approx(trade.pnl_conservative))


def test_held_to_expiry_settles_at_intrinsic_and_pays_stt_on_exercise():
    b = book()
    p = proposal([(25000, "CE", Side.BUY, 100.0), (25100, "CE", Side.SELL, 60.0)],
                 Structure.DEBIT_VERTICAL)
    quotes = {(25000.0, "CE"): (99.0, 101.0), (25100.0, "CE"): (59.0, 61.0)}
    pos = b.open(p, lots=(1, 1), market=view(25000, quotes, at(10, 0)), now=at(10, 0),
                 margin=3_075.0, entry_premium_touch=-75 * (101 - 59), strategy="debit_vertical")
    settle = at(15, 29, EXPIRY)
    trade = b.close(pos, now=settle, reason="expiry", settlement_spot=25150.0)
    gross = LOT * (150 - 100) - LOT * (50 - 60)
    # the long call is exercised (STT on its intrinsic value); the assigned short pays nothing
    exercise = float(quote(SCHEDULE, trade_date=EXPIRY, instrument="option", side="sell",
                           price=Decimal(150), qty=LOT, exercise=True, intrinsic=Decimal(150),
                           plan="standard", orders=0).total)
    costs = fill("buy", 100, slip(99, 101)) + fill("sell", 60, slip(59, 61)) + exercise
    assert trade.gross_pnl == pytest.approx(gross)
    assert trade.costs == pytest.approx(costs, abs=1e-9)
    assert trade.pnl == pytest.approx(gross - costs, abs=1e-9)
    assert exercise > 0


def _card(p: DecisionProposedV1) -> dict:
    from shared.domain.notify.render import render_signal

    signal = SignalApprovedV1(verdict_id=uuid.uuid4(), proposal_id=p.proposal_id,
                              tenant_id=p.tenant_id, dry_run=True, verdicts=(),
                              decided_at=at(10, 0), net_ev=10.0, total_costs=5.0,
                              size_multiplier=1.0)
    return render_signal(signal, p, image=False).data


def test_a_credit_is_closed_at_notify_target_and_at_its_stop():
    p = proposal(PUT_SPREAD, Structure.CREDIT_VERTICAL)  # credit 30 points a copy
    card = _card(p)
    assert card["target"]["close_at"] == pytest.approx(15.0)  # buy back at 50 % of it
    assert card["stop"]["close_at"] == pytest.approx(60.0)  # or at twice it
    for later, expected in (({(25000.0, "PE"): (59.0, 61.0), (24900.0, "PE"): (45.0, 47.0)},
                             "target"),  # 60 - 46 = 14 <= 15
                            ({(25000.0, "PE"): (149.0, 151.0), (24900.0, "PE"): (89.0, 91.0)},
                             "stop"),  # 150 - 90 = 60 >= 60
                            ({(25000.0, "PE"): (89.0, 91.0), (24900.0, "PE"): (64.0, 66.0)},
                             None)):  # 90 - 65 = 25: neither
        b = book()
        pos = b.open(p, lots=(1, 1), market=view(25100, ENTRY, at(10, 0)), now=at(10, 0),
                     margin=50_000.0, entry_premium_touch=2100.0, strategy="credit_vertical",
                     card=card)
        hits = b.mark(view(25100, later, at(10, 30)), at(10, 30))
        assert [why for _, why in hits] == ([expected] if expected else [])
        if expected:
            assert hits[0][0] is pos


def test_the_portfolio_is_the_products_ledger():
    b = book()
    assert b.portfolio(TENANT, at(10, 0)).positions == ()
    p = proposal(PUT_SPREAD, Structure.CREDIT_VERTICAL)
    b.open(p, lots=(1, 1), market=view(25100, ENTRY, at(10, 0)), now=at(10, 0),
           margin=50_000.0, entry_premium_touch=2100.0, strategy="credit_vertical")
    b.mark(view(25180, LATER, at(11, 0)), at(11, 0))
    pf = b.portfolio(TENANT, at(11, 0))
    (pos,) = pf.positions
    value = -75 * 80 + 75 * 55  # the mids
    assert pos.margin == 50_000.0 and pos.expiry == EXPIRY
    assert pos.mtm_pnl == pytest.approx(2100.0 + value)
    assert pos.mtm_pnl_today is None  # opened today
    assert pf.equity == pytest.approx(1_000_000.0 + 2100.0 + value)
    # the next day: today's part of the open P&L counts from yesterday's last mark
    nxt = date(2025, 7, 17)
    b.mark(view(25200, {(25000.0, "PE"): (69.0, 71.0), (24900.0, "PE"): (49.0, 51.0)},
                at(9, 15, nxt)), at(9, 15, nxt))
    (pos,) = b.portfolio(TENANT, at(9, 15, nxt)).positions
    assert pos.mtm_pnl_today == pytest.approx((-75 * 70 + 75 * 50) - value)


@pytest.mark.parametrize("spot_after, adverse", [(24950.0, True), (25250.0, False)])
def test_an_event_day_widens_adverse_moves_only(spot_after, adverse):
    b = book()
    b.event_day = True
    p = proposal(PUT_SPREAD, Structure.CREDIT_VERTICAL)  # short puts: a fall hurts
    b.open(p, lots=(1, 1), market=view(25100, ENTRY, at(10, 0)), now=at(10, 0),
           margin=50_000.0, entry_premium_touch=2100.0, strategy="credit_vertical")
    later = view(spot_after, LATER, at(11, 0))
    b.mark(later, at(11, 0))
    normal, cons = b.open_pnl(TENANT, later, at(11, 0))
    (pos,) = b.ledgers[TENANT].open
    extra_slippage = pos.entry_cost_conservative - pos.entry_cost
    assert extra_slippage > 0
    if adverse:
        assert cons < normal - extra_slippage - 1.0
    else:
        assert cons == pytest.approx(normal - extra_slippage)
    trade = b.close(pos, now=at(11, 0), reason="session_end", market=later)
    assert trade.pnl_conservative <= trade.pnl
    assert (trade.event_penalty < 0) is adverse
    assert math.isfinite(trade.pnl_conservative)
