"""Marking paper positions to market (pure).

A position is a list of :class:`~shared.contracts.Leg` held at ``lots`` each; its *mark*
is what the legs are worth now, leg by leg, from the latest :class:`MarketView`, and its
P&L is that value plus the premium settled at entry.

Units and conventions
---------------------
* Prices are rupees per unit of the underlying; ``units = lots * lot_size``, signed:
  positive when bought, negative when sold.
* ``value = sum(units * price)``, rupees: what closing every leg at its mark would bring
  in (positive) or cost (negative).
* ``entry_premium`` is rupees received (+) or paid (-) at entry, i.e. ``-sum(units *
  entry_price)``; ``pnl = entry_premium + value``. Costs and charges are not included.
* Intrinsic values are undiscounted: ``max(S - K, 0)`` for a call, ``max(K - S, 0)`` for a
  put.

Marking rules, per leg (first match wins)
-----------------------------------------
1. ``market is None``: no price can be formed (basis ``unpriced``, NaN).
2. ``expiry < today``: settled at intrinsic against ``market.spot`` (basis
   ``intrinsic``). NSE settles on the expiry day's closing index value; today's spot is a
   stand-in for it, exact only when the market view is of the expiry day's close.
3. A quote with a finite bid and ask: the mid (basis ``mid``).
4. A quote with one side only: the Black-76 price at the quote's forward, time and implied
   volatility, discounted at ``market.rate`` (basis ``model``), when that price is finite;
   otherwise the side there is (basis ``bid`` or ``ask``).
5. A quote with neither side: the Black-76 price as in 4 if it is finite (basis
   ``model``), else intrinsic against the quote's forward (basis ``intrinsic``). Not
   live: the mark is incomplete.
6. No quote: intrinsic against the forward of another quote of the same expiry, or
   against spot when the view lists none (basis ``intrinsic``). The mark is incomplete.

A mark is *complete* when every leg is priced from a live quote (rules 3 and 4) or settled
at expiry (rule 2); otherwise ``reason`` names each leg that fell back and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from numbers import Integral
from typing import Literal

from shared.contracts import Leg, OptionType, Side
from shared.domain.black76 import black76_price
from shared.domain.risk.inputs import LegQuote, MarketView

__all__ = ["LegMark", "MarkBasis", "PositionMark", "mark_position"]

MarkBasis = Literal["mid", "model", "bid", "ask", "intrinsic", "unpriced"]


@dataclass(frozen=True, slots=True)
class LegMark:
    """The mark of one leg.

    Attributes
    ----------
    expiry, strike, option_type
        The contract; ``strike`` in rupees.
    units
        Signed quantity, units of the underlying (``lots * lot_size``; + bought, - sold).
    price
        The mark, rupees per unit (NaN only when ``basis == "unpriced"``).
    basis
        How the price was formed: ``mid``, ``model`` (Black-76 at the quote's implied
        volatility), ``bid`` / ``ask`` (the one side quoted), ``intrinsic`` (settled at
        expiry, or a live leg without a usable quote) or ``unpriced`` (no market view).
    """

    expiry: date
    strike: float
    option_type: OptionType
    units: float
    price: float
    basis: MarkBasis


@dataclass(frozen=True, slots=True)
class PositionMark:
    """The mark of a whole position.

    Attributes
    ----------
    value
        ``sum(units * price)`` over the legs, rupees: what the legs are worth now at the
        mark. NaN when some leg could not be priced at all (``reason`` says why).
    pnl
        ``entry_premium + value``, rupees (NaN with ``value``).
    legs
        The per-leg marks, in the order of the position's legs.
    complete
        True when every leg is priced from a live quote (mid, model on a one-sided quote,
        or its one side) or settled at intrinsic after expiry.
    reason
        ``""`` when complete; otherwise each leg that fell back, and why, ``"; "``-joined.
    """

    value: float
    pnl: float
    legs: tuple[LegMark, ...]
    complete: bool
    reason: str


def mark_position(legs: Sequence[Leg], *, lot_size: int, entry_premium: float,
                  market: MarketView | None, today: date) -> PositionMark:
    """Mark a position's legs to market (see the module docstring for the rules).

    Parameters
    ----------
    legs
        The position's legs, each at the lots held.
    lot_size
        Units per lot (> 0).
    entry_premium
        Rupees received (+) or paid (-) when the position was opened (finite).
    market
        The latest view of the underlying, or None when there is none.
    today
        The marking date (exchange calendar date); legs expiring before it are settled.

    Returns
    -------
    PositionMark

    Raises
    ------
    ValueError
        If ``legs`` is empty, ``lot_size <= 0`` or ``entry_premium`` is not finite.
    """
    if not legs:
        raise ValueError("a position needs at least one leg to mark")
    if isinstance(lot_size, bool) or not isinstance(lot_size, Integral) or lot_size <= 0:
        raise ValueError(f"lot_size must be a positive integer, got {lot_size!r}")
    if not math.isfinite(entry_premium):
        raise ValueError(f"entry_premium must be finite rupees, got {entry_premium!r}")

    marks: list[LegMark] = []
    problems: list[str] = []
    for leg in legs:
        strike = float(leg.strike)
        kind = OptionType(leg.option_type)
        units = float(leg.lots * int(lot_size)) * (1.0 if leg.side == Side.BUY else -1.0)
        price, basis, problem = _mark_leg(leg.expiry, strike, kind, market, today)
        marks.append(LegMark(expiry=leg.expiry, strike=strike, option_type=kind, units=units,
                             price=price, basis=basis))
        if problem:
            problems.append(f"{_name(leg.expiry, strike, kind)}: {problem}")

    if any(m.basis == "unpriced" for m in marks):
        value = math.nan
    else:
        value = math.fsum(m.units * m.price for m in marks)
    pnl = entry_premium + value if math.isfinite(value) else math.nan
    return PositionMark(value=value, pnl=pnl, legs=tuple(marks), complete=not problems,
                        reason="; ".join(problems))


def _name(expiry: date, strike: float, kind: OptionType) -> str:
    k = f"{strike:.2f}".rstrip("0").rstrip(".")
    return f"{k} {kind.value} {expiry.isoformat()}"


def _intrinsic(underlying: float, strike: float, kind: OptionType) -> float:
    if kind is OptionType.CE:
        return max(underlying - strike, 0.0)
    return max(strike - underlying, 0.0)


def _model(q: LegQuote, strike: float, kind: OptionType, rate: float) -> float:
    """Black-76 at the quote's forward, t and iv; NaN if any of them is unusable."""
    if not (math.isfinite(q.iv) and q.iv > 0):
        return math.nan
    return float(black76_price(q.forward, strike, q.t, rate, q.iv, kind is OptionType.CE)[0])


def _usable_forward(f: float) -> bool:
    return math.isfinite(f) and f > 0


def _mark_leg(expiry: date, strike: float, kind: OptionType, market: MarketView | None,
              today: date) -> tuple[float, MarkBasis, str]:
    """``(price, basis, problem)`` of one leg; ``problem`` is "" for a complete mark."""
    if market is None:
        return math.nan, "unpriced", "no market view to price it against"
    if expiry < today:
        return _intrinsic(market.spot, strike, kind), "intrinsic", ""

    q = market.quote(expiry, strike, kind)
    if q is not None:
        has_bid, has_ask = math.isfinite(q.bid), math.isfinite(q.ask)
        if has_bid and has_ask:
            return 0.5 * (q.bid + q.ask), "mid", ""
        model = _model(q, strike, kind, market.rate)
        if has_bid or has_ask:
            if math.isfinite(model):
                return model, "model", ""
            if has_bid:
                return q.bid, "bid", ""
            return q.ask, "ask", ""
        if math.isfinite(model):
            return model, "model", (f"quote has neither bid nor ask; Black-76 at its implied "
                                    f"volatility {q.iv:.4f}")
        if _usable_forward(q.forward):
            return (_intrinsic(q.forward, strike, kind), "intrinsic",
                    f"quote has neither bid nor ask nor a usable implied volatility; "
                    f"intrinsic against its forward {q.forward:.2f}")

    why = "no quote" if q is None else "quote has no usable price, volatility or forward"
    forward = next((o.forward for o in market.quotes
                    if o.expiry == expiry and _usable_forward(o.forward)), None)
    if forward is not None:
        return (_intrinsic(forward, strike, kind), "intrinsic",
                f"{why}; intrinsic against the {expiry.isoformat()} forward {forward:.2f}")
    return (_intrinsic(market.spot, strike, kind), "intrinsic",
            f"{why} and none for its expiry; intrinsic against spot {market.spot:.2f}")
