"""The :class:`~shared.domain.risk.ports.CostModel` port over the Indian cost engine.

A proposal's round trip is costed as: every leg opened at its proposed price and later
closed by an opposite fill at the same price (a conservative choice: closing by trade pays
both sides' STT, stamp and brokerage; expiring worthless would pay less), each fill under
the dated charges of the trade date and the tenant's brokerage plan, plus expected slippage
from the leg's quoted spread (:class:`~shared.domain.costs.SlippageModel`; the displayed
size is not in the market view, so the order is taken to match it).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from shared.contracts import DecisionProposedV1, Side
from shared.domain.costs import CostBreakdown, CostSchedule, SlippageModel, quote
from shared.domain.risk.inputs import MarketView
from shared.domain.risk.ports import CostEstimate


class EngineCostModel:
    """Round-trip costs from the dated charge schedule (see the module docstring)."""

    def __init__(self, schedule: CostSchedule, *, plan: str = "standard",
                 slippage: SlippageModel | None = None) -> None:
        self._schedule = schedule
        self._plan = plan
        self._slippage = slippage or SlippageModel()

    def round_trip(self, proposal: DecisionProposedV1, market: MarketView, *, now: datetime,
                   size_multiplier: float = 1.0) -> CostEstimate:
        total: CostBreakdown | None = None
        for leg in proposal.legs:
            lots = math.floor(leg.lots * size_multiplier + 1e-9)
            qty = lots * proposal.lot_size
            if qty <= 0:
                continue
            price = Decimal(str(leg.price))
            quoted = market.quote(leg.expiry, float(leg.strike), leg.option_type.value)
            slip = None
            if (quoted is not None and math.isfinite(quoted.bid) and math.isfinite(quoted.ask)
                    and quoted.ask > quoted.bid > 0):
                slip = self._slippage.estimate(qty=qty, displayed_qty=qty, bid=quoted.bid,
                                               ask=quoted.ask)
            opening = leg.side.value
            closing = Side.SELL.value if leg.side == Side.BUY else Side.BUY.value
            for side, slippage in ((opening, slip), (closing, slip)):
                fill = quote(self._schedule, trade_date=now.date(), instrument="option",
                             side=side, price=price, qty=qty, plan=self._plan,
                             slippage=slippage)
                total = fill if total is None else total + fill
        if total is None:
            return CostEstimate(total=0.0)
        parts = {name: float(getattr(total, name)) for name in
                 ("stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage", "slippage")}
        return CostEstimate(total=float(total.total), breakdown=parts)
