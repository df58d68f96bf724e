"""The proposal as a position: premiums, a SPAN-like margin estimate, stress and payoff.

Everything is computed once per proposal (at full size, ``size_multiplier = 1``) and cached
on the :class:`~shared.domain.risk.context.RiskContext`; every quantity here is linear in
the position size, so a wall that sees a reduced size multiplies by the multiplier.

The margin estimate
-------------------
**An estimate in the spirit of NSE SPAN, not NSE SPAN** (no inter-month spread charge, no
short-option minimum, no risk-parameter file, instantaneous scenarios). The whole position
is repriced with Black-76 (:func:`shared.domain.black76.black76_price`) on the 16 SPAN
scenarios of a price scan range ``PSR = price_scan * F`` and a volatility scan range
``VSR = vol_scan``::

    scenarios 1-14   forward F * (1 + p * price_scan), p in {0, +-1/3, +-2/3, +-1},
                     volatility sigma +- vol_scan (floored at min_vol), loss weight 1
    scenarios 15-16  forward F * (1 +- extreme_multiple * price_scan), volatility unchanged,
                     loss weight extreme_cover

where each leg is repriced on its own forward and time to expiry, and the loss of a
scenario is ``weight * (V0 - Vs)`` with ``V = sum_i units_i * black76_i`` (units signed,
positive when bought) and ``V0`` the unshocked model value. Then::

    scan_risk        = max(0, max over scenarios of the loss)          (rupees)
    exposure_margin  = exposure_margin_pct * spot * sum of sold units   (rupees)
    margin           = scan_risk + exposure_margin, or 0 for a position without sold legs
                       (an option buyer pays the premium and no margin)

Defaults: ``price_scan`` 6 %, ``vol_scan`` 4 volatility points (absolute), extreme moves
of twice the scan range counted at 35 % (SPAN's convention), exposure margin 2 % of the
notional of sold index options (SEBI's figure for index derivatives).

Stress and payoff
-----------------
``tail_loss`` is the loss at full weight in the extreme moves, with volatility unchanged
and with volatility up ``tail_vol_up`` (default +10 points): what the tail-hedge wall and
(for unbounded structures) the per-trade loss limit look at. ``expiry_max_loss`` is the
worst loss of the expiry payoff of a single-expiry position, premiums included at the
executable prices (ask to buy, bid to sell); ``inf`` when sold calls outnumber bought ones
(unbounded), None for a multi-expiry position (no single payoff).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from shared.contracts import DecisionProposedV1, OptionType, Side
from shared.domain.black76 import black76_price
from shared.domain.risk.inputs import MarketView

__all__ = ["NakedShort", "PositionMath", "ScanParameters", "position_math"]

_Array = npt.NDArray[np.float64]

# Rows of the scenario table: index 0 is the unshocked base; 1-16 the SPAN scenarios;
# 17-20 the tail scenarios.
SPAN_ROWS = slice(1, 17)
TAIL_ROWS = slice(17, 21)


@dataclass(frozen=True, slots=True)
class ScanParameters:
    """Parameters of the SPAN-like scenario grid (see the module docstring).

    Attributes
    ----------
    price_scan
        Price scan range as a fraction of each leg's forward. Default 0.06.
    vol_scan
        Volatility scan range, absolute (0.04 = 4 volatility points). Default 0.04.
    extreme_multiple
        Extreme moves are this multiple of the price scan range. Default 2.0.
    extreme_cover
        Share of the extreme-move loss counted in the scan risk. Default 0.35.
    exposure_margin_pct
        Exposure margin, fraction of the notional (spot times units) of sold options.
        Default 0.02.
    tail_vol_up
        Volatility rise (absolute) combined with the extreme moves for ``tail_loss``.
        Default 0.10.
    min_vol
        Floor of a shocked volatility. Default 0.01.
    """

    price_scan: float = 0.06
    vol_scan: float = 0.04
    extreme_multiple: float = 2.0
    extreme_cover: float = 0.35
    exposure_margin_pct: float = 0.02
    tail_vol_up: float = 0.10
    min_vol: float = 0.01

    def __post_init__(self) -> None:
        for name in ("price_scan", "vol_scan", "extreme_multiple", "extreme_cover",
                     "exposure_margin_pct", "tail_vol_up", "min_vol"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if self.price_scan * self.extreme_multiple >= 1:
            raise ValueError("the extreme move must be less than 100 % of the forward")

    def grid(self) -> tuple[_Array, _Array, _Array]:
        """``(price_moves, vol_shifts, weights)`` of the 21 rows (base, SPAN 1-16, tail 17-20).

        A row's forward is ``F * (1 + price_move)`` and its volatility
        ``max(sigma + vol_shift, min_vol)`` (the base row keeps sigma as it is).
        """
        return _grid(self)


_DEFAULT_SCAN = ScanParameters()


@lru_cache(maxsize=32)
def _grid(p: ScanParameters) -> tuple[_Array, _Array, _Array]:
    moves, shifts, weights = [0.0], [0.0], [1.0]
    for frac in (0.0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1.0, -1.0):  # SPAN 1-14
        for vol in (1.0, -1.0):
            moves.append(frac * p.price_scan)
            shifts.append(vol * p.vol_scan)
            weights.append(1.0)
    extreme = p.extreme_multiple * p.price_scan
    for sign in (1.0, -1.0):  # SPAN 15-16
        moves.append(sign * extreme)
        shifts.append(0.0)
        weights.append(p.extreme_cover)
    for vol in (0.0, p.tail_vol_up):  # tail 17-20
        for sign in (1.0, -1.0):
            moves.append(sign * extreme)
            shifts.append(vol)
            weights.append(1.0)
    out = tuple(np.array(a) for a in (moves, shifts, weights))
    for a in out:
        a.setflags(write=False)
    return out  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class NakedShort:
    """Sold options of one type, expiring on or after ``expiry``, that no bought option of
    the same type and no earlier expiry covers."""

    expiry: date
    option_type: str
    uncovered_lots: float  # in market lots
    strikes: tuple[float, ...]  # strikes of the sold legs

    def describe(self) -> str:
        strikes = "/".join(f"{k:g}" for k in self.strikes)
        return (f"{self.uncovered_lots:g} lot(s) of short {self.option_type} {strikes} "
                f"{self.expiry.isoformat()} without a protective wing")


@dataclass(frozen=True, eq=False)
class PositionMath:
    """The proposal as a priced position at full size (rupees unless stated).

    Attributes
    ----------
    units
        Signed quantity per leg, units of the underlying (positive when bought).
    forward, strike, t, iv, is_call
        Per-leg repricing inputs from the market view.
    exec_price
        Per-leg executable premium: ask to buy, bid to sell.
    net_premium
        ``sum(units * exec_price)``: paid when positive (debit), received when negative.
    scenario_value
        ``sum_i units_i * price_i`` in each of the 21 scenario rows (row 0 = base ``V0``).
    scenario_loss
        Weighted loss ``weight * (V0 - V)`` of each row (row 0 is 0).
    scan_risk, worst_scenario
        Largest SPAN loss (rows 1-16, floored at 0) and its scenario number (1-16; 0 when
        no scenario loses).
    exposure_margin, margin
        See the module docstring. ``margin`` is 0 for a position without sold legs.
    tail_loss
        Largest loss of rows 17-20 (extreme moves at full weight), floored at 0.
    expiry_max_loss
        Worst loss of the expiry payoff; ``inf`` if unbounded; None for several expiries.
    naked
        Uncovered sold options per type (a bought option of the same type expiring no
        earlier covers a sold one, at any strike), with the expiry from which on they are
        uncovered.
    capital_required
        ``margin + max(net_premium, 0)``: what the position ties up (its *exposure*).
    trade_max_loss, max_loss_basis
        The loss the per-trade limit compares, never below what the proposal declares:

        * single expiry, bounded payoff: ``max(declared, expiry_max_loss)`` (basis
          ``declared`` when the declared figure is larger, else ``payoff``);
        * several expiries with a declared ``max_loss``: ``max(declared, tail_loss)``
          (basis ``declared`` or ``stress``, whichever is larger);
        * unbounded payoff, or several expiries and nothing declared: ``tail_loss``
          (basis ``stress``).
    notional
        ``spot * sum(|units|)``, rupees.
    lots
        Per-leg lots as proposed (units of the proposal's ``lot_size``, unsigned).
    """

    units: _Array
    forward: _Array
    strike: _Array
    t: _Array
    iv: _Array
    is_call: npt.NDArray[np.bool_]
    exec_price: _Array
    net_premium: float
    scenario_value: _Array
    scenario_loss: _Array
    scan_risk: float
    worst_scenario: int
    exposure_margin: float
    margin: float
    tail_loss: float
    expiry_max_loss: float | None
    naked: tuple[NakedShort, ...]
    capital_required: float
    trade_max_loss: float
    max_loss_basis: str
    notional: float
    lots: tuple[int, ...]


def position_math(proposal: DecisionProposedV1, market: MarketView,
                  scan: ScanParameters | None = None) -> PositionMath:
    """Price the proposal's legs against the market view (a valid proposal: see
    :func:`shared.domain.risk.validation.validate_proposal`); default scan parameters when
    ``scan`` is None."""
    scan = scan or _DEFAULT_SCAN
    n = len(proposal.legs)
    units = np.empty(n)
    forward = np.empty(n)
    strike = np.empty(n)
    t = np.empty(n)
    iv = np.empty(n)
    exec_price = np.empty(n)
    is_call = np.empty(n, dtype=bool)
    lot_of_leg = np.empty(n)
    lots: list[int] = []
    expiries: set[date] = set()
    for i, leg in enumerate(proposal.legs):
        q = market.quote(leg.expiry, leg.strike, leg.option_type)
        if q is None:  # validate_proposal raises LegNotInMarket before we get here
            raise KeyError((leg.expiry, leg.strike, leg.option_type))
        buy = leg.side == Side.BUY
        qty = leg.lots * proposal.lot_size
        units[i] = qty if buy else -qty
        forward[i] = q.forward
        strike[i] = q.strike
        t[i] = q.t
        iv[i] = q.iv
        exec_price[i] = q.ask if buy else q.bid
        is_call[i] = leg.option_type == OptionType.CE
        lot_of_leg[i] = q.lot_size
        lots.append(leg.lots)
        expiries.add(leg.expiry)

    moves, shifts, weights = scan.grid()
    f_grid = forward[None, :] * (1.0 + moves[:, None])
    vol_grid = iv[None, :] + shifts[:, None]
    np.maximum(vol_grid, scan.min_vol, out=vol_grid)
    vol_grid[0] = iv  # the base row is unshocked, even below the floor
    prices = black76_price(f_grid, strike, t, market.rate, vol_grid, is_call)
    value = prices @ units
    loss = weights * (value[0] - value)
    loss[0] = 0.0
    span = loss[SPAN_ROWS]
    k = int(np.argmax(span))
    scan_risk = max(float(span[k]), 0.0)
    worst = k + 1 if scan_risk > 0 else 0
    tail_loss = max(float(loss[TAIL_ROWS].max()), 0.0)
    sold = -units[units < 0].sum()
    exposure = scan.exposure_margin_pct * market.spot * float(sold)
    margin = scan_risk + exposure if sold > 0 else 0.0
    net_premium = float(units @ exec_price)

    expiry_loss = _expiry_max_loss(units, strike, is_call, net_premium) if len(expiries) == 1 \
        else None
    naked = _naked(proposal, units, strike, is_call, lot_of_leg)

    declared = proposal.max_loss
    if expiry_loss is not None and math.isfinite(expiry_loss):
        if declared is not None and declared > expiry_loss:
            trade_loss, basis = float(declared), "declared"
        else:
            trade_loss, basis = expiry_loss, "payoff"
    elif expiry_loss is None and declared is not None:
        trade_loss = max(float(declared), tail_loss)
        basis = "declared" if declared >= tail_loss else "stress"
    else:
        trade_loss, basis = tail_loss, "stress"

    for a in (units, forward, strike, t, iv, exec_price, is_call, value, loss):
        a.setflags(write=False)
    return PositionMath(
        units=units, forward=forward, strike=strike, t=t, iv=iv, is_call=is_call,
        exec_price=exec_price, net_premium=net_premium, scenario_value=value,
        scenario_loss=loss, scan_risk=scan_risk, worst_scenario=worst,
        exposure_margin=exposure, margin=margin, tail_loss=tail_loss,
        expiry_max_loss=expiry_loss, naked=naked,
        capital_required=margin + max(net_premium, 0.0), trade_max_loss=trade_loss,
        max_loss_basis=basis, notional=market.spot * float(np.abs(units).sum()),
        lots=tuple(lots),
    )


def _expiry_max_loss(units: _Array, strike: _Array, is_call: npt.NDArray[np.bool_],
                     net_premium: float) -> float:
    """Worst loss of ``sum units * intrinsic(x) - net_premium`` over ``x >= 0``.

    The payoff is piecewise linear with kinks at the strikes, so its minimum on
    ``[0, max strike]`` is at 0 or a strike; beyond the last strike its slope is the net
    number of calls, and a negative slope means an unbounded loss.
    """
    if units[is_call].sum() < 0:
        return math.inf
    x = np.concatenate(([0.0], strike))
    intrinsic = np.where(is_call[None, :], np.maximum(x[:, None] - strike[None, :], 0.0),
                         np.maximum(strike[None, :] - x[:, None], 0.0))
    payoff = intrinsic @ units - net_premium
    return max(-float(payoff.min()), 0.0)


def _naked(proposal: DecisionProposedV1, units: _Array, strike: _Array,
           is_call: npt.NDArray[np.bool_], lot_of_leg: _Array) -> tuple[NakedShort, ...]:
    """Sold options not covered by bought ones of the same type, in market lots.

    A bought option covers a sold one of the same type when it expires on the same day or
    later (any strike: the loss between the strikes is bounded). By Hall's theorem for
    these nested sets, the sold options of one type are all covered iff for every expiry
    ``e``, the sold units expiring on or after ``e`` do not exceed the bought units
    expiring on or after ``e``; the largest excess is the uncovered quantity.
    """
    out = []
    for kind, mask in (("CE", is_call), ("PE", ~is_call)):
        legs = [(proposal.legs[i].expiry, units[i], float(strike[i]), lot_of_leg[i])
                for i in np.flatnonzero(mask)]
        if not any(u < 0 for _, u, _, _ in legs):
            continue
        worst, at = 0.0, None
        net = 0.0  # bought minus sold units expiring on or after e
        for e in sorted({leg[0] for leg in legs}, reverse=True):
            net += sum(u for x, u, _, _ in legs if x == e)
            if -net > worst:
                worst, at = -net, e
        if at is not None:
            lot = max(lot for _, _, _, lot in legs)
            sold = tuple(sorted({k for x, u, k, _ in legs if u < 0 and x >= at}))
            out.append(NakedShort(at, kind, float(worst / lot), sold))
    return tuple(out)
