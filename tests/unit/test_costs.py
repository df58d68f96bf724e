"""The Indian cost engine: dated statutory charges, brokerage plans, slippage, structures.

Every expected number below is worked out by hand in the comments (rate x base), never by
calling the engine. Rates: charges.csv; regimes: before 2024-10-01, 2024-10-01..2026-03-31,
from 2026-04-01 (plus one pre-2023-04-01 check).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.costs import (
    CHARGES_FILE,
    PLANS_FILE,
    CostDataError,
    default_cost_schedule,
    load_table,
    parse_table,
    schedule_from_text,
)
from shared.domain.costs import (
    BrokeragePlan,
    CostBreakdown,
    InvalidCostInput,
    Leg,
    NoCostData,
    SlippageModel,
    UnknownPlan,
    quote,
    quote_json,
    round_trip,
)
from shared.errors import PermanentError

S = default_cost_schedule()

R0 = date(2022, 6, 15)  # before 2023-04-01: STT 0.05 / 0.01, NSE 0.053 / 0.002, IPFT Rs 0.01/cr
R1 = date(2024, 6, 14)  # 2023-04-01..2024-09-30: STT 0.0625 / 0.0125, NSE 0.05 / 0.0019
R2 = date(2025, 6, 2)  # 2024-10-01..2026-03-31: STT 0.1 / 0.02, NSE 0.03503 / 0.00173
R3 = date(2026, 6, 2)  # from 2026-04-01: STT 0.15 / 0.05, exercise 0.15


def q(**kw):
    kw.setdefault("plan", "zero")
    return quote(S, **kw)


def parts(b: CostBreakdown) -> dict[str, D]:
    return {k: getattr(b, k) for k in ("stt", "exchange", "sebi", "ipft", "stamp", "gst",
                                       "brokerage", "slippage", "total")}


def want(**kw: str) -> dict[str, D]:
    out = dict.fromkeys(("stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage",
                         "slippage"), D(0))
    out.update({k: D(v) for k, v in kw.items()})
    out["total"] = sum((v for k, v in out.items() if k != "total"), D(0))
    return out


# ---------------------------------------------------------------------------- worked example


def test_domain_facts_worked_example_exactly():
    # buy 1 lot (500) of a stock option at 25, sell at 35, 2025 rates, before brokerage.
    buy = q(trade_date=R2, instrument="option", side="buy", price=25, qty=500)
    sell = q(trade_date=R2, instrument="option", side="sell", price=35, qty=500)
    both = buy + sell
    assert quote_json(both) == {
        "exchange": 10.51,  # 30,000 x 0.03503% = 10.509
        "sebi": 0.03,  # 30,000 x 10 / 1e7
        "ipft": 0.15,  # 30,000 x 50 / 1e7
        "stamp": 0.38,  # 12,500 x 0.003% = 0.375 (buy only), half up
        "stt": 17.50,  # 17,500 x 0.1% (sell only)
        "gst": 1.92,  # 18% x (10.509 + 0.03 + 0.15) = 1.92402
        "brokerage": 0.0,
        "total": 30.49,
    }
    assert both.rounded().statutory == D("30.49")
    # Exact, before rounding.
    assert parts(both) == want(stt="17.5", exchange="10.509", sebi="0.03", ipft="0.15",
                               stamp="0.375", gst="1.92402")


def test_worked_example_with_flat_brokerage():
    buy = q(trade_date=R2, instrument="option", side="buy", price=25, qty=500, plan="standard")
    sell = q(trade_date=R2, instrument="option", side="sell", price=35, qty=500,
             plan="standard")
    both = buy + sell
    # brokerage 2 x 20 = 40; GST 18% x (40 + 10.509 + 0.03 + 0.15) = 9.12402
    assert both.brokerage == D(40)
    assert both.gst == D("9.12402")
    assert quote_json(both)["total"] == 77.69  # 10.51+0.03+0.15+0.38+17.50+9.12+40


# ---------------------------------------------------------------------------- each regime

# Option fill: premium 100 x 75 = 7,500.
OPTION_BUY_STANDARD = {
    # exchange 7500 x 0.053% = 3.975; SEBI 7500 x 10/1e7 = 0.0075; IPFT 7500 x 0.01/1e7
    # = 0.0000075; stamp 7500 x 0.003% = 0.225; GST 18% x (20 + 3.975 + 0.0075 + 0.0000075)
    # = 4.31685135
    R0: want(exchange="3.975", sebi="0.0075", ipft="0.0000075", stamp="0.225",
             gst="4.31685135", brokerage="20"),
    # exchange 0.05% = 3.75; IPFT 50/1e7 x 7500 = 0.0375; GST 18% x 23.795 = 4.2831
    R1: want(exchange="3.75", sebi="0.0075", ipft="0.0375", stamp="0.225", gst="4.2831",
             brokerage="20"),
    # exchange 0.03503% = 2.62725; GST 18% x (20 + 2.62725 + 0.0075 + 0.0375) = 4.081005
    R2: want(exchange="2.62725", sebi="0.0075", ipft="0.0375", stamp="0.225",
             gst="4.081005", brokerage="20"),
    # buy side unchanged in 2026 (no STT on buys; stamp and exchange as in 2025)
    R3: want(exchange="2.62725", sebi="0.0075", ipft="0.0375", stamp="0.225",
             gst="4.081005", brokerage="20"),
}

OPTION_SELL_ZERO_BROKERAGE = {
    # STT 0.05% = 3.75; GST 18% x (3.975 + 0.0075 + 0.0000075) = 0.71685135
    R0: want(stt="3.75", exchange="3.975", sebi="0.0075", ipft="0.0000075",
             gst="0.71685135"),
    # STT 0.0625% = 4.6875; GST 18% x (3.75 + 0.0075 + 0.0375) = 0.6831
    R1: want(stt="4.6875", exchange="3.75", sebi="0.0075", ipft="0.0375", gst="0.6831"),
    # STT 0.1% = 7.5; GST 18% x 2.67225 = 0.481005
    R2: want(stt="7.5", exchange="2.62725", sebi="0.0075", ipft="0.0375", gst="0.481005"),
    # STT 0.15% = 11.25
    R3: want(stt="11.25", exchange="2.62725", sebi="0.0075", ipft="0.0375", gst="0.481005"),
}

# Exercise of a long option: intrinsic 120 x 75 = 9,000; only STT.
OPTION_EXERCISE = {
    R1: want(stt="11.25"),  # 0.125%
    R2: want(stt="11.25"),  # 0.125%
    R3: want(stt="13.5"),  # 0.15%
}

# Futures fill: 24,000 x 75 = 18,00,000 turnover; zero brokerage.
# SEBI 1,800,000 x 10/1e7 = 1.8; IPFT 1,800,000 x 10/1e7 = 1.8 (from 2023-04-01)
FUTURE_SELL = {
    # STT 0.0125% = 225; exchange 0.0019% = 34.2; GST 18% x (34.2 + 1.8 + 1.8) = 6.804
    R1: want(stt="225", exchange="34.2", sebi="1.8", ipft="1.8", gst="6.804"),
    # STT 0.02% = 360; exchange 0.00173% = 31.14; GST 18% x 34.74 = 6.2532
    R2: want(stt="360", exchange="31.14", sebi="1.8", ipft="1.8", gst="6.2532"),
    # STT 0.05% = 900
    R3: want(stt="900", exchange="31.14", sebi="1.8", ipft="1.8", gst="6.2532"),
}
FUTURE_BUY = {
    # stamp 0.002% = 36; no STT on buys
    R1: want(stamp="36", exchange="34.2", sebi="1.8", ipft="1.8", gst="6.804"),
    R2: want(stamp="36", exchange="31.14", sebi="1.8", ipft="1.8", gst="6.2532"),
    R3: want(stamp="36", exchange="31.14", sebi="1.8", ipft="1.8", gst="6.2532"),
}


@pytest.mark.parametrize("d", list(OPTION_BUY_STANDARD))
def test_option_buy_each_regime(d):
    b = quote(S, trade_date=d, instrument="option", side="buy", price=100, qty=75)
    assert parts(b) == OPTION_BUY_STANDARD[d]


@pytest.mark.parametrize("d", list(OPTION_SELL_ZERO_BROKERAGE))
def test_option_sell_each_regime(d):
    b = q(trade_date=d, instrument="option", side="sell", price=100, qty=75)
    assert parts(b) == OPTION_SELL_ZERO_BROKERAGE[d]


@pytest.mark.parametrize("d", list(OPTION_EXERCISE))
def test_option_exercise_each_regime(d):
    # Default plan: an exercise is no executed order, so no brokerage and no GST.
    b = quote(S, trade_date=d, instrument="option", side="sell", price=0, qty=75,
              exercise=True, intrinsic=120)
    assert parts(b) == OPTION_EXERCISE[d]


@pytest.mark.parametrize("d", list(FUTURE_SELL))
def test_future_sell_each_regime(d):
    b = q(trade_date=d, instrument="future", side="sell", price=24000, qty=75)
    assert parts(b) == FUTURE_SELL[d]


@pytest.mark.parametrize("d", list(FUTURE_BUY))
def test_future_buy_each_regime(d):
    b = q(trade_date=d, instrument="future", side="buy", price=24000, qty=75)
    assert parts(b) == FUTURE_BUY[d]


@pytest.mark.parametrize(
    ("d", "option_stt", "future_stt"),
    [
        (date(2023, 3, 31), "0.05", "0.01"),
        (date(2023, 4, 1), "0.0625", "0.0125"),
        (date(2024, 9, 30), "0.0625", "0.0125"),
        (date(2024, 10, 1), "0.1", "0.02"),
        (date(2026, 3, 31), "0.1", "0.02"),
        (date(2026, 4, 1), "0.15", "0.05"),
    ],
)
def test_stt_switches_on_the_effective_dates(d, option_stt, future_stt):
    # premium / turnover 10,000 x 1 -> STT = rate% x 10,000 = rate x 100
    o = q(trade_date=d, instrument="option", side="sell", price=10000, qty=1)
    f = q(trade_date=d, instrument="future", side="sell", price=10000, qty=1)
    assert o.stt == D(option_stt) * 100
    assert f.stt == D(future_stt) * 100


@pytest.mark.parametrize(
    ("d", "option_rate", "future_rate"),
    [
        (date(2024, 9, 30), "0.05", "0.0019"),
        (date(2024, 10, 1), "0.03503", "0.00173"),
        (date(2023, 3, 31), "0.053", "0.002"),
    ],
)
def test_exchange_charge_history(d, option_rate, future_rate):
    o = q(trade_date=d, instrument="option", side="buy", price=1_000_000, qty=1)
    f = q(trade_date=d, instrument="future", side="buy", price=1_000_000, qty=1)
    assert o.exchange == D(option_rate) * 10_000  # rate% of 10 lakh
    assert f.exchange == D(future_rate) * 10_000


def test_exercise_stt_switch_2026():
    args = dict(instrument="option", side="sell", price=0, qty=1, exercise=True,
                intrinsic=10000)
    assert q(trade_date=date(2026, 3, 31), **args).stt == D("12.5")  # 0.125% x 10,000
    assert q(trade_date=date(2026, 4, 1), **args).stt == D("15")  # 0.15% x 10,000


# ---------------------------------------------------------------------------- GST base


def test_gst_is_on_brokerage_exchange_sebi_ipft_only():
    b = quote(S, trade_date=R2, instrument="option", side="sell", price=200, qty=150)
    # premium 30,000: exchange 10.509, SEBI 0.03, IPFT 0.15, brokerage 20; STT 30 excluded
    assert b.stt == D(30)
    assert b.gst == D("0.18") * (D(20) + D("10.509") + D("0.03") + D("0.15"))
    assert b.gst == D("5.52402")


def test_gst_base_is_data_driven():
    text = _read(CHARGES_FILE).replace("pct_of:brokerage+exchange+sebi+ipft",
                                       "pct_of:brokerage+exchange+sebi")
    sched = schedule_from_text(text, _read(PLANS_FILE))
    b = quote(sched, trade_date=R2, instrument="option", side="sell", price=200, qty=150,
              plan="zero")
    assert b.gst == D("0.18") * (D("10.509") + D("0.03"))  # IPFT left out: 1.89702


# ---------------------------------------------------------------------------- brokerage


@pytest.mark.parametrize(
    ("plan", "instrument", "price", "qty", "orders", "fee"),
    [
        ("standard", "option", 100, 75, 1, "20"),
        ("standard", "option", 100, 75, 3, "60"),  # 3 executed orders
        ("standard", "future", 24000, 75, 1, "20"),
        ("zero", "option", 100, 75, 1, "0"),
        ("percent", "option", 100, 75, 1, "2.25"),  # 0.03% x 7,500
        ("percent", "future", 24000, 75, 1, "20"),  # 0.03% x 18 lakh = 540 -> cap 20
        ("percent", "future", 24000, 75, 40, "540"),  # cap 40 x 20 = 800 > 540
        ("discount_fo", "option", 1000, 1000, 1, "20"),  # options flat
        ("discount_fo", "future", 100, 10, 1, "0.3"),  # 0.03% x 1,000
    ],
)
def test_brokerage_per_plan(plan, instrument, price, qty, orders, fee):
    b = quote(S, trade_date=R2, instrument=instrument, side="buy", price=price, qty=qty,
              plan=plan, orders=orders)
    assert b.brokerage == D(fee)


def test_custom_plan_object_and_unknown_plan():
    mine = BrokeragePlan("tenant_x", "both", D(15), None, None, "tenant config")
    b = quote(S, trade_date=R2, instrument="option", side="buy", price=100, qty=75,
              plan=mine)
    assert b.brokerage == D(15)
    with pytest.raises(UnknownPlan, match="no brokerage plan 'gold'"):
        quote(S, trade_date=R2, instrument="option", side="buy", price=1, qty=1, plan="gold")


# ---------------------------------------------------------------------------- slippage


def test_slippage_formula():
    m = SlippageModel(impact=0.5, exponent=0.5)
    est = m.estimate(spread=2, qty=75, displayed_qty=300)
    # half-spread 1 x 75 x (1 + 0.5 x sqrt(75/300)) = 75 x 1.25
    assert est.amount == D("93.75")
    assert m.estimate(bid=99, ask=101, qty=75, displayed_qty=300).amount == D("93.75")
    assert m.estimate(spread=0, qty=75, displayed_qty=1).amount == 0
    # impact 0: exactly half the spread per unit
    assert SlippageModel(impact=0).estimate(spread="0.5", qty=10, displayed_qty=1).amount \
        == D("2.5")


def test_slippage_monotone_in_size_and_spread():
    m = SlippageModel()
    by_size = [m.estimate(spread=1, qty=n, displayed_qty=500).amount
               for n in (1, 25, 75, 500, 5000)]
    assert all(a < b for a, b in zip(by_size, by_size[1:], strict=False))
    per_unit = [m.estimate(spread=1, qty=n, displayed_qty=500).amount / n
                for n in (1, 25, 75, 500, 5000)]
    assert all(a < b for a, b in zip(per_unit, per_unit[1:], strict=False))
    by_spread = [m.estimate(spread=s, qty=75, displayed_qty=500).amount
                 for s in (0, 0.05, 0.5, 5)]
    assert all(a < b for a, b in zip(by_spread, by_spread[1:], strict=False))


def test_slippage_enters_the_total():
    est = SlippageModel().estimate(bid="99.5", ask="100.5", qty=75, displayed_qty=75)
    b = q(trade_date=R2, instrument="option", side="buy", price=100, qty=75, slippage=est)
    assert b.slippage == D("56.25")  # 0.5 x 75 x (1 + 0.5 x 1)
    assert b.total == b.statutory + b.brokerage + D("56.25")
    assert any("slippage model" in line for line in b.explain())
    assert q(trade_date=R2, instrument="option", side="buy", price=100, qty=75,
             slippage=3.5).slippage == D("3.5")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(bid=0, ask=101, qty=1, displayed_qty=1),  # zero is a missing quote
        dict(bid=101, ask=100, qty=1, displayed_qty=1),  # crossed
        dict(spread=-1, qty=1, displayed_qty=1),
        dict(spread=math.nan, qty=1, displayed_qty=1),
        dict(spread=1, qty=0, displayed_qty=1),
        dict(spread=1, qty=1, displayed_qty=0),
        dict(spread=1, bid=1, ask=2, qty=1, displayed_qty=1),
        dict(qty=1, displayed_qty=1),
    ],
)
def test_slippage_bad_inputs(kwargs):
    with pytest.raises(InvalidCostInput):
        SlippageModel().estimate(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(impact=-0.1), dict(exponent=0), dict(impact=math.inf)])
def test_slippage_model_bad_parameters(kwargs):
    with pytest.raises(InvalidCostInput):
        SlippageModel(**kwargs)


# ---------------------------------------------------------------------------- structures


def condor(**exits):
    # NIFTY iron condor, lot 75: short 24000 PE @100, long 23800 PE @50,
    # short 25000 CE @90, long 25200 CE @40.
    specs = [("short", 100, "24000PE"), ("long", 50, "23800PE"),
             ("short", 90, "25000CE"), ("long", 40, "25200CE")]
    return [Leg("option", pos, 75, px, label=label, **exits.get(label, {}))
            for pos, px, label in specs]


# Entry 2025-06-02: sold premium 7,500 + 6,750 = 14,250; bought 3,750 + 3,000 = 6,750;
# total 21,000. STT 0.1% x 14,250 = 14.25; exchange 0.03503% x 21,000 = 7.3563;
# SEBI 0.021; IPFT 0.105; stamp 0.003% x 6,750 = 0.2025; brokerage 4 x 20 = 80;
# GST 18% x (80 + 7.3563 + 0.021 + 0.105) = 15.746814. Total 117.681614.
CONDOR_ENTRY = want(stt="14.25", exchange="7.3563", sebi="0.021", ipft="0.105",
                    stamp="0.2025", gst="15.746814", brokerage="80")


def test_iron_condor_closed_by_trading():
    legs = condor(**{
        "24000PE": {"exit_price": 60}, "23800PE": {"exit_price": 30},
        "25000CE": {"exit_price": 50}, "25200CE": {"exit_price": 20},
    })
    rt = round_trip(S, legs, entry_date=R2, exit_date=date(2025, 6, 10))
    assert parts(rt.entry) == CONDOR_ENTRY
    # Exit: shorts bought back 4,500 + 3,750 = 8,250; longs sold 2,250 + 1,500 = 3,750;
    # total 12,000. STT 0.1% x 3,750 = 3.75; exchange 0.03503% x 12,000 = 4.2036;
    # SEBI 0.012; IPFT 0.06; stamp 0.003% x 8,250 = 0.2475; brokerage 80;
    # GST 18% x (80 + 4.2036 + 0.012 + 0.06) = 15.169608.
    assert parts(rt.exit) == want(stt="3.75", exchange="4.2036", sebi="0.012", ipft="0.06",
                                  stamp="0.2475", gst="15.169608", brokerage="80")
    assert rt.total == D("117.681614") + D("103.442708")
    assert len(rt.fills) == 8


def test_iron_condor_expiring_otm_costs_nothing_at_expiry():
    legs = condor(**{k: {"settlement_intrinsic": 0}
                     for k in ("24000PE", "23800PE", "25000CE", "25200CE")})
    rt = round_trip(S, legs, entry_date=R2, exit_date=date(2025, 6, 26))
    assert parts(rt.entry) == CONDOR_ENTRY
    assert rt.exit.total == 0
    assert rt.total == D("117.681614")


def test_iron_condor_breached_long_call_pays_exercise_stt():
    # Settlement 25,300: short 25000 CE assigned (no charge), long 25200 CE exercised with
    # intrinsic 100: STT 0.125% x 100 x 75 = 9.375. Puts OTM.
    legs = condor(**{"24000PE": {"settlement_intrinsic": 0},
                     "23800PE": {"settlement_intrinsic": 0},
                     "25000CE": {"settlement_intrinsic": 300},
                     "25200CE": {"settlement_intrinsic": 100}})
    rt = round_trip(S, legs, entry_date=R2, exit_date=date(2025, 6, 26))
    assert parts(rt.exit) == want(stt="9.375")
    assert rt.total == D("117.681614") + D("9.375")
    # Same breach in 2026: 0.15% x 7,500 = 11.25
    rt26 = round_trip(S, legs, entry_date=R3, exit_date=date(2026, 6, 30))
    assert rt26.exit.stt == D("11.25")


def test_future_held_to_expiry_pays_only_entry():
    rt = round_trip(S, [Leg("future", "long", 75, 24000)], entry_date=R2,
                    exit_date=date(2025, 6, 26), plan="zero")
    assert parts(rt.entry) == FUTURE_BUY[R2]
    assert rt.exit.total == 0


def test_round_trip_bad_structures():
    with pytest.raises(InvalidCostInput, match="settlement_intrinsic"):
        round_trip(S, [Leg("option", "long", 75, 10)], entry_date=R2, exit_date=R2)
    with pytest.raises(InvalidCostInput, match="before entry_date"):
        round_trip(S, [Leg("option", "long", 75, 10, exit_price=5)], entry_date=R2,
                   exit_date=date(2025, 1, 1))
    with pytest.raises(InvalidCostInput, match="position"):
        round_trip(S, [Leg("option", "flat", 75, 10, exit_price=5)], entry_date=R2,
                   exit_date=R2)
    with pytest.raises(InvalidCostInput):
        round_trip(S, [], entry_date=R2, exit_date=R2)


# ---------------------------------------------------------------------------- bad inputs

GOOD = dict(trade_date=R2, instrument="option", side="buy", price=100, qty=75)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(price=math.nan), "price must be finite"),
        (dict(price=math.inf), "price must be finite"),
        (dict(price=-1), "price must be >= 0"),
        (dict(price="abc"), "price must be a number"),
        (dict(price=None), "price must be a number"),
        (dict(price=True), "price must be a number"),
        (dict(qty=0), "qty must be a positive integer"),
        (dict(qty=-75), "qty must be a positive integer"),
        (dict(qty=1.5), "qty must be an integer"),
        (dict(qty=75.0), "qty must be an integer"),
        (dict(qty=True), "qty must be an integer"),
        (dict(instrument="stock"), "instrument must be one of"),
        (dict(side="hold"), "side must be one of"),
        (dict(trade_date="2025-06-02"), "expected a date"),
        (dict(trade_date=datetime(2025, 6, 2, 10)), "expected a date"),
        (dict(orders=-1), "orders must be >= 0"),
        (dict(slippage=-1), "slippage must be >= 0"),
        (dict(intrinsic=5), "only used with exercise"),
        (dict(exercise=True, side="sell", intrinsic=None), "needs the intrinsic"),
        (dict(exercise=True, side="buy", intrinsic=5), "side='sell'"),
        (dict(exercise=True, side="sell", intrinsic=-5), "intrinsic must be >= 0"),
        (dict(exercise=True, instrument="future", side="sell", intrinsic=5), "only options"),
        (dict(exercise="yes"), "exercise must be True or False"),
    ],
)
def test_bad_inputs_raise_a_clear_permanent_value_error(change, match):
    with pytest.raises(InvalidCostInput, match=match) as exc:
        quote(S, **{**GOOD, **change})
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, PermanentError)
    assert exc.value.reason_code == "cost_invalid_input"


@pytest.mark.parametrize("d", [date(2020, 12, 31), date(2019, 1, 1)])
def test_dates_outside_the_data_are_rejected(d):
    with pytest.raises(NoCostData, match="cost data covers 2021-01-01") as exc:
        quote(S, **{**GOOD, "trade_date": d})
    assert isinstance(exc.value, PermanentError) and isinstance(exc.value, ValueError)
    assert exc.value.reason_code == "cost_no_data"


def test_zero_price_costs_only_brokerage():
    b = quote(S, **{**GOOD, "price": 0})
    assert b.statutory == D("3.6")  # GST 18% on the Rs 20 brokerage only
    assert b.total == D("23.6")


# ---------------------------------------------------------------------------- presentation


def test_quote_json_shape_and_rounding():
    b = q(trade_date=R2, instrument="option", side="buy", price=25, qty=500)
    j = quote_json(b)
    assert list(j) == ["stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage",
                       "total"]
    assert all(isinstance(v, float) for v in j.values())
    # exchange 4.37875 -> 4.38; SEBI 0.0125 -> 0.01; IPFT 0.0625 -> 0.06; stamp 0.375 ->
    # 0.38; GST 18% x 4.45375 = 0.801675 -> 0.80; total = sum of rounded lines
    assert j == {"stt": 0.0, "exchange": 4.38, "sebi": 0.01, "ipft": 0.06, "stamp": 0.38,
                 "gst": 0.8, "brokerage": 0.0, "total": 5.63}


def test_rounding_stt_to_rupee_option():
    b = q(trade_date=R2, instrument="option", side="sell", price=35, qty=500)  # STT 17.50
    assert b.rounded().stt == D("17.50")
    assert b.rounded(stt_to_rupee=True).stt == D("18")  # half up to the rupee
    r = b.rounded(stt_to_rupee=True)
    assert r.total == r.statutory + r.brokerage + r.slippage


def test_explanations_cite_the_rows_used():
    b = q(trade_date=R1, instrument="future", side="sell", price=24000, qty=75)
    charges = {line.charge for line in b.lines}
    assert {"stt", "exchange", "sebi", "ipft", "gst", "brokerage"} <= charges
    stt_line = next(line for line in b.lines if line.charge == "stt")
    assert stt_line.rule.rate == D("0.0125")
    assert stt_line.rule.effective_from == date(2023, 4, 1)
    assert "Finance Act 2023" in stt_line.source
    assert all(line.source for line in b.lines)


# ---------------------------------------------------------------------------- properties

PRICES = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False,
                     allow_infinity=False)
DATES = st.dates(min_value=date(2021, 1, 1), max_value=date(2030, 12, 31))


@settings(max_examples=200, deadline=None)
@given(
    d=DATES,
    instrument=st.sampled_from(["option", "future"]),
    side=st.sampled_from(["buy", "sell"]),
    price=PRICES,
    qty=st.integers(min_value=1, max_value=20_000),
    k=st.integers(min_value=2, max_value=10),
    plan=st.sampled_from(["standard", "zero", "percent", "discount_fo"]),
)
def test_total_dominates_statutory_and_scales_linearly(d, instrument, side, price, qty, k,
                                                       plan):
    one = quote(S, trade_date=d, instrument=instrument, side=side, price=price, qty=qty,
                plan=plan)
    many = quote(S, trade_date=d, instrument=instrument, side=side, price=price, qty=k * qty,
                 plan=plan)
    assert one.total >= one.statutory >= 0
    assert many.total >= many.statutory >= 0
    assert one.total == one.statutory + one.brokerage + one.slippage
    # Statutory charges other than GST on brokerage are exactly linear in qty (exact
    # arithmetic); brokerage is flat or capped per order, so total grows at most linearly.
    gst_on_brokerage = lambda b: D("0.18") * b.brokerage  # noqa: E731
    assert many.statutory - gst_on_brokerage(many) == k * (one.statutory
                                                           - gst_on_brokerage(one))
    assert many.total <= k * one.total
    assert many.brokerage >= one.brokerage


@settings(max_examples=100, deadline=None)
@given(d=DATES, price=PRICES, qty=st.integers(1, 5000), iv=PRICES)
def test_exercise_is_only_stt_and_nonnegative(d, price, qty, iv):
    b = quote(S, trade_date=d, instrument="option", side="sell", price=price, qty=qty,
              exercise=True, intrinsic=iv)
    assert b.total == b.stt >= 0
    assert b.exchange == b.stamp == b.brokerage == b.gst == 0


# ---------------------------------------------------------------------------- data files


def _read(name: str) -> str:
    from shared.costs import _read as read

    return read(name)


def test_packaged_tables_load_and_every_row_has_a_source():
    charges = load_table(CHARGES_FILE)
    plans = load_table(PLANS_FILE)
    assert len(charges) >= 30 and len(plans) >= 4
    for _, row in (*charges, *plans):
        assert row.source.strip()
    assert S.coverage("option") == (date(2021, 1, 1), None)
    assert S.coverage("future") == (date(2021, 1, 1), None)
    assert {"standard", "zero", "percent"} <= set(S.plan_names)


HEADER = "charge,instrument,side,effective_from,effective_to,rate,basis,source,notes\n"
OK_ROWS = [
    "stt,option,sell,2021-01-01,,0.1,pct_premium,src,",
    "gst,option,both,2021-01-01,,18,pct_of:brokerage+exchange,src,",
    "stt,future,sell,2021-01-01,,0.02,pct_turnover,src,",
]


def charges_text(*extra: str, rows=OK_ROWS) -> str:
    return HEADER + "\n".join([*rows, *extra]) + "\n"


def test_minimal_table_parses():
    rows = parse_table(CHARGES_FILE, charges_text())
    assert [line for line, _ in rows] == [2, 3, 4]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("exchange,option,both,2021-01-01,,abc,pct_premium,src,", "line 5: rate"),
        ("exchange,option,both,2021-01-01,,-1,pct_premium,src,", "line 5: rate"),
        ("exchange,option,both,2021-01-01,,NaN,pct_premium,src,", "line 5: rate"),
        ("exchange,option,both,2021-01-01,,101,pct_premium,src,", "line 5: .*<= 100"),
        ("exchange,option,both,2021-01-01,,0.03,pct_turnover,src,", "line 5: .*not fit options"),
        ("exchange,option,both,2021-01-01,,0.03,per_lakh,src,", "line 5: .*basis must be"),
        ("exchange,option,both,2021-01-01,,0.03,pct_premium,,", "line 5: source"),
        ("exchange,options,both,2021-01-01,,0.03,pct_premium,src,", "line 5: instrument"),
        ("exchange,option,both,2021-13-01,,0.03,pct_premium,src,", "line 5: effective_from"),
        ("exchange,option,both,2022-01-01,2021-01-01,0.03,pct_premium,src,",
         "line 5: .*effective_to is before"),
        ("stt,option,exercise,2021-01-01,,0.125,pct_premium,src,", "line 5: .*exercise"),
        ("gst,future,both,2021-01-01,,18,pct_of:brokerage+stt+gst,src,", "line 5: .*gst base"),
        ("gst,future,sell,2021-01-01,,18,pct_of:brokerage,src,", "line 5: .*side must be"),
        ("brokerage,option,both,2021-01-01,,1,pct_premium,src,", "line 5: charge"),
        ("exchange,option,both,2021-01-01,,0.03,pct_premium,src,x,y", "line 5: more fields"),
        ("exchange,option,both,2021-01-01", "line 5: fewer fields"),
        # Overlap with line 2 (same key), and a 'both' row colliding with a 'sell' row.
        ("stt,option,sell,2024-10-01,,0.15,pct_premium,src,", "line 5: .*overlaps"),
        ("stt,option,both,2021-01-01,,0.1,pct_premium,src,", "line 5: .*both apply"),
    ],
)
def test_bad_charge_rows_name_file_and_line(extra, match):
    with pytest.raises(CostDataError, match=f"^charges.csv {match}"):
        parse_table(CHARGES_FILE, charges_text(extra))


def test_gap_between_rows_is_rejected():
    rows = [
        "stt,option,sell,2021-01-01,2023-03-31,0.05,pct_premium,src,",
        "stt,option,sell,2023-04-02,,0.0625,pct_premium,src,",
        *OK_ROWS[1:],
    ]
    with pytest.raises(CostDataError, match=r"^charges.csv line 3: .*gap"):
        parse_table(CHARGES_FILE, charges_text(rows=rows))


def test_bad_header_and_empty_file():
    with pytest.raises(CostDataError, match="^charges.csv line 1: header"):
        parse_table(CHARGES_FILE, HEADER.replace("basis", "base") + OK_ROWS[0] + "\n")
    with pytest.raises(CostDataError, match="^charges.csv: empty file"):
        parse_table(CHARGES_FILE, "")
    with pytest.raises(CostDataError, match="no rows for futures"):
        parse_table(CHARGES_FILE, charges_text(rows=OK_ROWS[:2]))


PLAN_HEADER = "plan,instrument,flat_per_order,percent,cap_per_order,source,notes\n"


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["a,both,20,0.03,,src,"], "line 2: .*either flat_per_order or percent"),
        (["a,both,,,,src,"], "line 2: .*either flat_per_order or percent"),
        (["a,both,20,,5,src,"], "line 2: .*cap_per_order only goes with percent"),
        (["a,both,-1,,,src,"], "line 2: flat_per_order"),
        (["A b,both,20,,,src,"], "line 2: plan"),
        (["a,option,20,,,src,"], "line 2: plan a has no future row"),
        (["a,both,20,,,src,", "a,future,,0.03,20,src,"], "line 3: plan a already covers"),
    ],
)
def test_bad_plan_rows_name_file_and_line(rows, match):
    with pytest.raises(CostDataError, match=f"^brokerage_plans.csv {match}"):
        parse_table(PLANS_FILE, PLAN_HEADER + "\n".join(rows) + "\n")


def test_unknown_table_name():
    with pytest.raises(CostDataError, match="not a cost table"):
        parse_table("lot_sizes.csv", "")
