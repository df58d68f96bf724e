"""Futures fills with brokerage, by hand, on the first or last day of each rate regime.

What tests/unit/test_costs.py does not already cover:

* every futures case there uses the ``zero`` plan, so the brokerage term of the futures
  GST base (``pct_of:brokerage+exchange+sebi+ipft``) is never checked, in any regime;
* no futures fill is costed before 2023-04-01 (STT 0.01 %, NSE 0.002 %, IPFT Rs 0.01 per
  crore): the "before 2024-10-01" STT regime is covered for futures only by its
  2023-04-01..2024-09-30 rows;
* full breakdowns are only costed mid-regime; here every fill is on a regime's first or
  last day, so each charges.csv row is seen applying on its edge date.

Every expected value is worked out from the rates by hand (rate x base, in the comments) and
written out as a literal; nothing here calls the engine to get an expected number.

The trade: 1 lot of 75 NIFTY futures at Rs 24,012.50, traded value T = 24,012.50 x 75 =
Rs 18,00,937.50, plan ``standard`` (brokerage_plans.csv: flat Rs 20 per executed order, one
order). Rows used (shared/data/charges.csv; also /work/shared/docs/domain-facts.md):

* sebi,future,both,2021-04-01,,10,inr_per_crore: T x 10 / 1e7 = 1.80093750 in every regime.
* stamp,future,buy,2020-07-01,,0.002,pct_turnover: T x 0.002 % = 36.01875, buy fills only.
* gst,future,both,2017-07-01,,18,pct_of:brokerage+exchange+sebi+ipft: 18 % of
  (20 + exchange + sebi + ipft); never on STT or stamp.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from shared.costs import default_cost_schedule
from shared.domain.costs import quote

S = default_cost_schedule()

PRICE, QTY = "24012.50", 75  # T = 1,800,937.50

LAST_PRE_2023 = date(2023, 3, 31)  # last day of the 0.01 % STT / 0.002 % NSE / Rs 0.01 IPFT rows
LAST_PRE_2024_10 = date(2024, 9, 30)  # last day of STT 0.0125 %, NSE 0.0019 %
FIRST_2024_10 = date(2024, 10, 1)  # first day of STT 0.02 %, NSE 0.00173 %
FIRST_2026_04 = date(2026, 4, 1)  # first day of STT 0.05 %

FIELDS = ("stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage", "slippage", "total")

CASES = {
    # ---- before 2024-10-01, rows ending 2023-03-31 -----------------------------------
    # stt,future,sell,2021-01-01,2023-03-31,0.01,pct_turnover: T x 0.01 % = 180.09375
    # exchange,future,both,2021-01-01,2023-03-31,0.002,pct_turnover: T x 0.002 % = 36.01875
    # ipft,future,both,2021-01-01,2023-03-31,0.01,inr_per_crore: T x 0.01 / 1e7 = 0.0018009375
    # GST 18 % x (20 + 36.01875 + 1.8009375 + 0.0018009375) = 18 % x 57.8214884375
    #     = 10.40786791875
    # sell: 180.09375 + 36.01875 + 1.8009375 + 0.0018009375 + 10.40786791875 + 20
    #     = 248.32310635625
    (LAST_PRE_2023, "sell"): dict(
        stt="180.09375", exchange="36.01875", sebi="1.8009375", ipft="0.0018009375",
        stamp="0", gst="10.40786791875", brokerage="20", total="248.32310635625"),
    # buy: stamp 36.01875 instead of STT; 36.01875 + 36.01875 + 1.8009375 + 0.0018009375
    #     + 10.40786791875 + 20 = 104.24810635625
    (LAST_PRE_2023, "buy"): dict(
        stt="0", exchange="36.01875", sebi="1.8009375", ipft="0.0018009375",
        stamp="36.01875", gst="10.40786791875", brokerage="20", total="104.24810635625"),
    # ---- before 2024-10-01, rows 2023-04-01..2024-09-30 --------------------------------
    # stt,future,sell,2023-04-01,2024-09-30,0.0125,pct_turnover: T x 0.0125 % = 225.1171875
    # exchange,future,both,2023-04-01,2024-09-30,0.0019,pct_turnover: T x 0.0019 % = 34.2178125
    # ipft,future,both,2023-04-01,,10,inr_per_crore: T x 10 / 1e7 = 1.8009375
    # GST 18 % x (20 + 34.2178125 + 1.8009375 + 1.8009375) = 18 % x 57.8196875 = 10.40754375
    # sell: 225.1171875 + 34.2178125 + 1.8009375 + 1.8009375 + 10.40754375 + 20 = 293.34441875
    (LAST_PRE_2024_10, "sell"): dict(
        stt="225.1171875", exchange="34.2178125", sebi="1.8009375", ipft="1.8009375",
        stamp="0", gst="10.40754375", brokerage="20", total="293.34441875"),
    # buy: 36.01875 + 34.2178125 + 1.8009375 + 1.8009375 + 10.40754375 + 20 = 104.24598125
    (LAST_PRE_2024_10, "buy"): dict(
        stt="0", exchange="34.2178125", sebi="1.8009375", ipft="1.8009375",
        stamp="36.01875", gst="10.40754375", brokerage="20", total="104.24598125"),
    # ---- 2024-10-01..2026-03-31 ---------------------------------------------------------
    # stt,future,sell,2024-10-01,2026-03-31,0.02,pct_turnover: T x 0.02 % = 360.1875
    # exchange,future,both,2024-10-01,,0.00173,pct_turnover: T x 0.00173 % = 31.15621875
    # ipft 1.8009375 (as above)
    # GST 18 % x (20 + 31.15621875 + 1.8009375 + 1.8009375) = 18 % x 54.75809375
    #     = 9.856456875
    # sell: 360.1875 + 31.15621875 + 1.8009375 + 1.8009375 + 9.856456875 + 20 = 424.802050625
    (FIRST_2024_10, "sell"): dict(
        stt="360.1875", exchange="31.15621875", sebi="1.8009375", ipft="1.8009375",
        stamp="0", gst="9.856456875", brokerage="20", total="424.802050625"),
    # buy: 36.01875 + 31.15621875 + 1.8009375 + 1.8009375 + 9.856456875 + 20 = 100.633300625
    (FIRST_2024_10, "buy"): dict(
        stt="0", exchange="31.15621875", sebi="1.8009375", ipft="1.8009375",
        stamp="36.01875", gst="9.856456875", brokerage="20", total="100.633300625"),
    # ---- from 2026-04-01 ----------------------------------------------------------------
    # stt,future,sell,2026-04-01,,0.05,pct_turnover: T x 0.05 % = 900.46875; the other
    # rows as from 2024-10-01 (exchange 31.15621875, GST 9.856456875)
    # sell: 900.46875 + 31.15621875 + 1.8009375 + 1.8009375 + 9.856456875 + 20 = 965.083300625
    (FIRST_2026_04, "sell"): dict(
        stt="900.46875", exchange="31.15621875", sebi="1.8009375", ipft="1.8009375",
        stamp="0", gst="9.856456875", brokerage="20", total="965.083300625"),
    # buy: unchanged from 2024-10-01 (no STT on a buy) = 100.633300625
    (FIRST_2026_04, "buy"): dict(
        stt="0", exchange="31.15621875", sebi="1.8009375", ipft="1.8009375",
        stamp="36.01875", gst="9.856456875", brokerage="20", total="100.633300625"),
}


@pytest.mark.parametrize(("trade_date", "side"), list(CASES),
                         ids=[f"{d.isoformat()}-{s}" for d, s in CASES])
def test_future_fill_with_flat_brokerage_by_hand(trade_date, side):
    b = quote(S, trade_date=trade_date, instrument="future", side=side, price=PRICE, qty=QTY,
              plan="standard")
    expected = {k: D(v) for k, v in CASES[(trade_date, side)].items()}
    expected["slippage"] = D(0)
    assert {k: getattr(b, k) for k in FIELDS} == expected
