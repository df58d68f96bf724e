"""Validation of a proposal against the context, before any wall runs.

A proposal that fails here is *bad input*, not a risk decision: each failure raises a
:class:`~shared.errors.PermanentError` subclass with a stable ``reason_code`` (the handler
records and acks it; retrying cannot help). Checks, in order:

=============================  ==============================================================
``tenant_mismatch``            the proposal's tenant is not the context's tenant
``symbol_mismatch``            the proposal's underlying is not the market view's
``unknown_structure``          the structure is not a known :class:`~shared.contracts.Structure`
``nan_input``                  a non-finite edge, win probability, max loss or max profit
``bad_lots``                   lots that are not a positive integer (zero, negative, 1.5)
``nan_price``                  a leg's reference price, or the market quote it needs, is NaN
``leg_not_in_market``          a leg's (expiry, strike, CE/PE) is not in the market view
``quantity_not_lot_multiple``  ``lots * proposal.lot_size`` is not a multiple of the
                               contract's market lot
``structure_mismatch``         the legs do not have the declared structure's shape
=============================  ==============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from shared.contracts import Leg, OptionType, Side, Structure
from shared.domain.risk.context import RiskContext
from shared.errors import PermanentError

__all__ = [
    "BadLots",
    "InvalidProposal",
    "LegNotInMarket",
    "NonFiniteInput",
    "NonFinitePrice",
    "QuantityNotLotMultiple",
    "StructureMismatch",
    "SymbolMismatch",
    "TenantMismatch",
    "UnknownStructure",
    "validate_proposal",
]


class InvalidProposal(PermanentError):
    """The proposal cannot be risk-checked as it stands."""

    reason_code = "invalid_proposal"


class TenantMismatch(InvalidProposal):
    reason_code = "tenant_mismatch"
    http_status = 403


class SymbolMismatch(InvalidProposal):
    reason_code = "symbol_mismatch"


class UnknownStructure(InvalidProposal):
    reason_code = "unknown_structure"


class NonFiniteInput(InvalidProposal):
    reason_code = "nan_input"


class BadLots(InvalidProposal):
    reason_code = "bad_lots"


class NonFinitePrice(InvalidProposal):
    reason_code = "nan_price"


class LegNotInMarket(InvalidProposal):
    reason_code = "leg_not_in_market"


class QuantityNotLotMultiple(InvalidProposal):
    reason_code = "quantity_not_lot_multiple"


class StructureMismatch(InvalidProposal):
    reason_code = "structure_mismatch"


_KNOWN = frozenset(Structure)


def _leg_name(leg: Leg) -> str:
    side = getattr(leg.side, "value", leg.side)
    kind = getattr(leg.option_type, "value", leg.option_type)
    return f"{side} {kind} {leg.strike} {leg.expiry}"


def _finite_number(x: object) -> bool:
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def validate_proposal(ctx: RiskContext) -> None:
    """Raise the first :class:`InvalidProposal` that applies; return None when valid.

    Works on proposals built with ``model_construct`` (unvalidated) too, which is why it
    re-checks what the contract already forbids.
    """
    p = ctx.proposal
    if p.tenant_id != ctx.tenant_id:
        raise TenantMismatch(f"proposal {p.proposal_id} is for tenant {p.tenant_id}, "
                             f"not for {ctx.tenant_id}")
    if p.symbol != ctx.market.symbol:
        raise SymbolMismatch(f"proposal is on {p.symbol!r}, the market view on "
                             f"{ctx.market.symbol!r}")
    if p.structure not in _KNOWN:
        raise UnknownStructure(f"unknown structure {p.structure!r}; known: "
                               f"{', '.join(s.value for s in Structure)}")
    for name in ("expected_gross_edge", "win_probability"):
        if not _finite_number(getattr(p, name)):
            raise NonFiniteInput(f"{name} is {getattr(p, name)!r}")
    for name in ("max_loss", "max_profit"):
        v = getattr(p, name)
        if v is not None and not _finite_number(v):
            raise NonFiniteInput(f"{name} is {v!r} (None means unbounded)")
    if not 0 <= float(p.win_probability) <= 1:
        raise NonFiniteInput(f"win_probability {p.win_probability!r} is outside [0, 1]")
    if not p.legs:
        raise StructureMismatch("the proposal has no legs")
    lot_size = p.lot_size
    if isinstance(lot_size, bool) or not isinstance(lot_size, int) or lot_size <= 0:
        raise BadLots(f"proposal lot_size {lot_size!r} is not a positive integer")
    for leg in p.legs:
        lots = leg.lots
        if isinstance(lots, bool) or not isinstance(lots, int) or lots <= 0:
            raise BadLots(f"leg {_leg_name(leg)}: lots {lots!r} is not a positive integer")
        if not _finite_number(leg.price) or float(leg.price) < 0:
            raise NonFinitePrice(f"leg {_leg_name(leg)}: reference price {leg.price!r}")
        q = ctx.market.quote(leg.expiry, leg.strike, leg.option_type)
        if q is None:
            raise LegNotInMarket(f"leg {_leg_name(leg)} is not in {ctx.market.symbol} "
                                 f"snapshot {ctx.market.snapshot_id or ctx.market.asof}")
        exec_price = q.ask if leg.side == Side.BUY else q.bid
        for name, v in (("forward", q.forward), ("t", q.t), ("iv", q.iv)):
            if not math.isfinite(v) or v < 0 or (name != "t" and v == 0):
                raise NonFinitePrice(f"leg {_leg_name(leg)}: market {name} is {v!r}")
        if not (math.isfinite(exec_price) and exec_price > 0):
            side = "ask" if leg.side == Side.BUY else "bid"
            raise NonFinitePrice(f"leg {_leg_name(leg)}: no executable {side} "
                                 f"(market {side} is {exec_price!r})")
        units = lots * lot_size
        if units % q.lot_size:
            raise QuantityNotLotMultiple(
                f"leg {_leg_name(leg)}: quantity {lots} x {lot_size} = {units} is not a "
                f"multiple of the market lot {q.lot_size}")
    problem = _SHAPES.get(Structure(p.structure), _any)(p.legs)
    if problem:
        raise StructureMismatch(f"{Structure(p.structure).value}: {problem}")


# ---------------------------------------------------------------------------- shapes


def _any(legs: Sequence[Leg]) -> str | None:
    return None


def _count(legs: Sequence[Leg], n: int) -> str | None:
    return None if len(legs) == n else f"expected {n} legs, got {len(legs)}"


def _one_expiry(legs: Sequence[Leg]) -> str | None:
    return None if len({leg.expiry for leg in legs}) == 1 else "legs have different expiries"


def _pair(side: Side, same_strike: bool) -> Callable[[Sequence[Leg]], str | None]:
    """A straddle or strangle: one CE and one PE, both bought or both sold."""

    def check(legs: Sequence[Leg]) -> str | None:
        problem = _count(legs, 2) or _one_expiry(legs)
        if problem:
            return problem
        if {leg.option_type for leg in legs} != {OptionType.CE, OptionType.PE}:
            return "needs one CE and one PE"
        if any(leg.side != side for leg in legs):
            return f"both legs must be {side.value}"
        if same_strike and legs[0].strike != legs[1].strike:
            return "a straddle's legs share one strike"
        return None

    return check


def _vertical(credit: bool) -> Callable[[Sequence[Leg]], str | None]:
    """Two legs of one type and expiry, one bought and one sold; a credit vertical sells
    the leg nearer the money (the lower call strike, the higher put strike)."""

    def check(legs: Sequence[Leg]) -> str | None:
        problem = _count(legs, 2) or _one_expiry(legs)
        if problem:
            return problem
        if legs[0].option_type != legs[1].option_type:
            return "both legs must be of one type"
        sold = [leg for leg in legs if leg.side == Side.SELL]
        bought = [leg for leg in legs if leg.side == Side.BUY]
        if len(sold) != 1 or len(bought) != 1:
            return "needs one bought and one sold leg"
        if sold[0].strike == bought[0].strike:
            return "the legs need different strikes"
        calls = sold[0].option_type == OptionType.CE
        sells_nearer = (sold[0].strike < bought[0].strike) == calls
        if sells_nearer != credit:
            return "the sold leg must be nearer the money" if credit \
                else "the bought leg must be nearer the money"
        return None

    return check


def _iron_condor(legs: Sequence[Leg]) -> str | None:
    problem = _count(legs, 4) or _one_expiry(legs)
    if problem:
        return problem
    for kind, wing_above in ((OptionType.CE, True), (OptionType.PE, False)):
        side = [leg for leg in legs if leg.option_type == kind]
        sold = [leg for leg in side if leg.side == Side.SELL]
        bought = [leg for leg in side if leg.side == Side.BUY]
        if len(sold) != 1 or len(bought) != 1:
            return f"needs one sold and one bought {kind.value}"
        if (bought[0].strike > sold[0].strike) != wing_above:
            return f"the bought {kind.value} must be further out of the money"
    return None


def _butterfly(legs: Sequence[Leg]) -> str | None:
    if len(legs) not in (3, 4):
        return f"expected 3 or 4 legs, got {len(legs)}"
    problem = _one_expiry(legs)
    if problem:
        return problem
    if {leg.side for leg in legs} != {Side.BUY, Side.SELL}:
        return "needs bought and sold legs"
    return None


_SHAPES: dict[Structure, Callable[[Sequence[Leg]], str | None]] = {
    Structure.IRON_CONDOR: _iron_condor,
    Structure.SHORT_STRADDLE: _pair(Side.SELL, same_strike=True),
    Structure.LONG_STRADDLE: _pair(Side.BUY, same_strike=True),
    Structure.SHORT_STRANGLE: _pair(Side.SELL, same_strike=False),
    Structure.LONG_STRANGLE: _pair(Side.BUY, same_strike=False),
    Structure.CREDIT_VERTICAL: _vertical(credit=True),
    Structure.DEBIT_VERTICAL: _vertical(credit=False),
    Structure.BUTTERFLY: _butterfly,
    Structure.NAKED_SINGLE: lambda legs: _count(legs, 1),
    Structure.CUSTOM: _any,
}
