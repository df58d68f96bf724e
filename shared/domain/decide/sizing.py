"""Layer 4: sizing. How many whole lots of the chosen structure the tenant should trade.

Pure float math (no I/O, no clock, no numpy on the hot path): the service passes the
structure's per-lot figures, the tenant's :class:`~shared.domain.risk.inputs.TenantPolicy`,
its :class:`RiskAppetite` and its open (paper) :class:`~shared.domain.risk.inputs.Portfolio`.

The size is the smallest whole-lot allowance over the binding constraints::

    lots = min over constraints c of floor(budget_c / per_lot_c)

Constraints, in the order they are recorded (on a tie the first one is reported as binding):

``open_positions``
    0 lots when the book already holds ``max_open_positions`` (policy wall).
``max_loss_per_trade``
    ``min(max_loss_per_trade_pct * capital, max_loss_per_trade)`` over the per-lot worst loss
    (policy wall; ``per_lot_max_loss`` should be the castle's ``trade_max_loss`` per lot).
``position_pct``
    ``max_position_pct * capital`` over the per-lot capital required (margin plus premium
    paid) (policy wall).
``symbol_exposure``
    ``max_symbol_exposure_pct * capital`` minus the underlying's open exposure, over the
    per-lot capital required (policy wall).
``correlated_exposure``
    ``max_correlated_exposure_pct * capital`` minus the correlation-weighted open exposure
    (``max(rho, 0)``, unknown correlations count as 1), over the per-lot capital required
    (correlation wall).
``expiry_concentration``
    Only when ``expiry`` is given: ``max_expiry_concentration_pct * capital`` minus the open
    exposure on the same underlying and expiry (correlation wall).
``margin``
    Free capital ``equity - used_margin`` over ``margin * (1 + margin_buffer) + premium``
    per lot (margin wall).
``margin_utilisation``
    ``max_margin_utilisation * equity - used_margin`` over ``margin + premium`` per lot
    (margin wall; approving cannot trip the utilisation switch).
``tail_loss``
    Only when ``per_lot_tail_loss`` is given: ``max_tail_loss_pct * capital`` over it
    (tail-hedge wall).
``vol_target``
    The confidence-scaled daily risk budget of :class:`RiskAppetite` over the per-lot
    one-day one-standard-deviation P&L.
``max_lots``
    Only when the caller caps the lots (liquidity, freeze quantity ...).

A constraint whose per-lot charge is zero does not limit the size (its ``lots`` is None).
Zero lots is a recorded no-trade with the binding constraint as the reason. Every budget is
computed exactly as the castle's walls compute their limits, so a size chosen here passes
:class:`~shared.domain.risk.walls.PolicyLimits`, :class:`~shared.domain.risk.walls.MarginWall`,
the correlation and tail checks given the same per-lot figures (the news gate can only scale
it down).

Units: rupees; fractions of capital as decimals; volatility annualised decimals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from shared.domain.risk.inputs import Portfolio, TenantPolicy

if TYPE_CHECKING:
    from shared.domain.calendar import MarketCalendar

__all__ = [
    "CONSTRAINT_ORDER",
    "ConstraintAllowance",
    "RiskAppetite",
    "SizingDecision",
    "dated_lot_size",
    "size_position",
]

CONSTRAINT_ORDER: tuple[str, ...] = (
    "open_positions", "max_loss_per_trade", "position_pct", "symbol_exposure",
    "correlated_exposure", "expiry_concentration", "margin", "margin_utilisation",
    "tail_loss", "vol_target", "max_lots",
)
"""Names of the constraints in recording (and tie-breaking) order."""


def _rupees(x: float) -> str:
    if math.isinf(x):
        return "unbounded"
    return f"₹{x:,.0f}"


def _check(name: str, value: float, *, lo: float | None = None, lo_open: bool = False,
           hi: float | None = None, allow_inf: bool = False) -> float:
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return value


def _whole(budget: float, per_lot: float, fits: Callable[[int], bool] | None = None,
           ) -> int | None:
    """The largest ``n >= 0`` with ``n * per_lot <= budget`` (None when ``per_lot`` is 0).

    ``fits(n)`` is the limit exactly as the castle's wall evaluates it (same operations in
    the same order); the float division's estimate is corrected with it so a size chosen
    here is never blocked by an ulp at the boundary. Without it ``n * per_lot <= budget``.
    """
    if per_lot <= 0.0:
        return None
    if budget <= 0.0 or math.isinf(per_lot):
        return 0
    ok = fits if fits is not None else (lambda k: k * per_lot <= budget)
    n = int(budget / per_lot)
    while n > 0 and not ok(n):
        n -= 1
    if ok(n + 1):
        n += 1
    return n

# --------------------------------------------------------------------------- appetite


@dataclass(frozen=True, slots=True)
class RiskAppetite:
    """The tenant's risk appetite for the vol-targeting constraint.

    The book's daily risk budget is ``capital * target_annual_vol / sqrt(trading_days)``
    rupees (one standard deviation of one day's P&L). One trade gets ``trade_share`` of it;
    the default share ``1 / max_open_positions`` keeps a full book of perfectly correlated
    trades (the conservative case the correlation wall also assumes) on target. The budget
    is optionally capped by ``max_daily_risk_per_trade_pct * capital`` and then scaled by the
    consensus confidence: ``budget * confidence ** confidence_power`` (no trade at or below
    ``min_confidence``).

    Attributes
    ----------
    target_annual_vol
        Annualised volatility of the book's P&L as a fraction of capital, decimal
        (0.10 = 10 % a year). Default 0.10; in ``(0, 2]``.
    trade_share
        Share of the book's daily budget one trade may use, in ``(0, 1]``. Default None:
        ``1 / policy.max_open_positions``.
    max_daily_risk_per_trade_pct
        Optional cap on one trade's daily one-SD P&L, fraction of capital, in ``(0, 1]``.
        Default None (no cap).
    confidence_power
        Exponent applied to the confidence (1 = linear, 2 = punish doubt harder). Default
        1.0; ``> 0``.
    min_confidence
        Confidence at or below which the size is 0 lots. Default 0.0; in ``[0, 1)``.
    trading_days
        Trading days per year for annual-to-daily conversion. Default 252.
    """

    target_annual_vol: float = 0.10
    trade_share: float | None = None
    max_daily_risk_per_trade_pct: float | None = None
    confidence_power: float = 1.0
    min_confidence: float = 0.0
    trading_days: int = 252

    def __post_init__(self) -> None:
        _check("target_annual_vol", self.target_annual_vol, lo=0.0, lo_open=True, hi=2.0)
        if self.trade_share is not None:
            _check("trade_share", self.trade_share, lo=0.0, lo_open=True, hi=1.0)
        if self.max_daily_risk_per_trade_pct is not None:
            _check("max_daily_risk_per_trade_pct", self.max_daily_risk_per_trade_pct,
                   lo=0.0, lo_open=True, hi=1.0)
        _check("confidence_power", self.confidence_power, lo=0.0, lo_open=True)
        _check("min_confidence", self.min_confidence, lo=0.0)
        if self.min_confidence >= 1.0:
            raise ValueError(f"min_confidence must be < 1, got {self.min_confidence!r}")
        if isinstance(self.trading_days, bool) or not isinstance(self.trading_days, int) \
                or self.trading_days <= 0:
            raise ValueError(f"trading_days must be a positive int, got {self.trading_days!r}")

    def daily_budget(self, capital: float, max_open_positions: int, confidence: float) -> float:
        """One trade's confidence-scaled daily one-SD P&L budget, rupees."""
        if confidence <= self.min_confidence:
            return 0.0
        share = self.trade_share if self.trade_share is not None else 1.0 / max_open_positions
        budget = capital * self.target_annual_vol / math.sqrt(self.trading_days) * share
        if self.max_daily_risk_per_trade_pct is not None:
            budget = min(budget, self.max_daily_risk_per_trade_pct * capital)
        return budget * confidence ** self.confidence_power


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class ConstraintAllowance:
    """What one constraint allows.

    Attributes
    ----------
    name
        One of :data:`CONSTRAINT_ORDER`.
    lots
        Whole lots it allows; None when it does not limit the size (zero per-lot charge, or
        a free slot for ``open_positions``).
    budget
        Rupees available to the constraint (after the open book); for ``open_positions`` and
        ``max_lots`` the count of positions / lots left.
    per_lot
        Rupees one lot charges against the budget (1 for the counting constraints).
    detail
        The formula with its numbers, for the explanation.
    """

    name: str
    lots: int | None
    budget: float
    per_lot: float
    detail: str

    @property
    def used(self) -> float:
        """``per_lot * lots``: the budget this constraint's own allowance would use, rupees."""
        return 0.0 if self.lots is None else self.per_lot * self.lots


@dataclass(frozen=True, slots=True)
class SizingDecision:
    """The sizing outcome.

    Attributes
    ----------
    lots
        Whole lots to trade (0: no trade).
    binding
        Name of the constraint that set ``lots`` (the first in :data:`CONSTRAINT_ORDER` on a
        tie).
    constraints
        Every constraint's allowance, in :data:`CONSTRAINT_ORDER`.
    reason
        Human-readable explanation.
    lot_size
        The dated market lot, units, when the caller passed it (else None).
    daily_risk, max_loss, capital_required, margin
        The chosen size's one-day one-SD P&L, worst loss, capital tied up (margin plus
        premium paid) and margin estimate, rupees.
    """

    lots: int
    binding: str
    constraints: tuple[ConstraintAllowance, ...]
    reason: str
    lot_size: int | None
    daily_risk: float
    max_loss: float
    capital_required: float
    margin: float

    @property
    def trade(self) -> bool:
        return self.lots > 0

    @property
    def units(self) -> int | None:
        """Quantity in units of the underlying (``lots * lot_size``), None without a lot size."""
        return None if self.lot_size is None else self.lots * self.lot_size

    def allowance(self, name: str) -> ConstraintAllowance | None:
        for c in self.constraints:
            if c.name == name:
                return c
        return None


# --------------------------------------------------------------------------- sizing


def size_position(
    *,
    per_lot_max_loss: float,
    per_lot_margin: float,
    per_lot_daily_risk: float,
    confidence: float,
    policy: TenantPolicy,
    appetite: RiskAppetite,
    portfolio: Portfolio,
    symbol: str,
    per_lot_premium_paid: float = 0.0,
    per_lot_tail_loss: float | None = None,
    expiry: date | None = None,
    lot_size: int | None = None,
    max_lots: int | None = None,
) -> SizingDecision:
    """Size one trade in whole lots (see the module docstring for the constraints).

    Parameters
    ----------
    per_lot_max_loss
        Worst loss of one lot of the structure, rupees (> 0; ``inf`` for an unbounded
        payoff, which sizes to 0). Use the castle's ``trade_max_loss`` per lot.
    per_lot_margin
        SPAN-like margin estimate of one lot, rupees (>= 0; 0 for a pure buyer).
    per_lot_daily_risk
        One-day one-standard-deviation P&L of one lot, rupees (>= 0), from the structure's
        greeks or a scenario.
    confidence
        The consensus confidence, in ``[0, 1]``.
    policy, appetite, portfolio
        The tenant's limits, risk appetite and open book (paper or live).
    symbol
        The underlying.
    per_lot_premium_paid
        Net premium paid per lot, rupees (>= 0; 0 for a credit). Counts with the margin as
        capital required.
    per_lot_tail_loss
        Extreme-scenario loss per lot, rupees (tail-hedge wall); None skips the constraint.
    expiry
        The structure's nearest expiry (expiry-concentration constraint); None skips it.
    lot_size
        The dated market lot, units (:func:`dated_lot_size`); recorded, not used in the math
        since every figure is per lot.
    max_lots
        Optional caller cap on the lots (>= 0).

    Returns
    -------
    SizingDecision
    """
    per_lot_max_loss = _check("per_lot_max_loss", per_lot_max_loss, lo=0.0, lo_open=True,
                              allow_inf=True)
    per_lot_margin = _check("per_lot_margin", per_lot_margin, lo=0.0)
    per_lot_daily_risk = _check("per_lot_daily_risk", per_lot_daily_risk, lo=0.0)
    per_lot_premium_paid = _check("per_lot_premium_paid", per_lot_premium_paid, lo=0.0)
    confidence = _check("confidence", confidence, lo=0.0, hi=1.0)
    if per_lot_tail_loss is not None:
        per_lot_tail_loss = _check("per_lot_tail_loss", per_lot_tail_loss, lo=0.0,
                                   allow_inf=True)
    if lot_size is not None and (isinstance(lot_size, bool) or not isinstance(lot_size, int)
                                 or lot_size <= 0):
        raise ValueError(f"lot_size must be a positive int, got {lot_size!r}")
    if max_lots is not None and (isinstance(max_lots, bool) or not isinstance(max_lots, int)
                                 or max_lots < 0):
        raise ValueError(f"max_lots must be an int >= 0, got {max_lots!r}")

    cap = policy.capital
    equity = cap if portfolio.equity is None else portfolio.equity
    used = portfolio.used_margin
    per_lot_capital = per_lot_margin + per_lot_premium_paid
    m_, p_ = per_lot_margin, per_lot_premium_paid

    def exposure(n: int) -> float:  # the castle's capital_required = margin + premium paid
        return n * m_ + n * p_

    out: list[ConstraintAllowance] = []
    add = out.append

    # open positions (policy wall)
    n_open = len(portfolio.positions)
    slots = policy.max_open_positions - n_open
    add(ConstraintAllowance(
        "open_positions", None if slots > 0 else 0, float(max(slots, 0)), 1.0,
        f"{n_open} of {policy.max_open_positions} positions open"))

    # worst loss per trade (policy wall)
    loss_limit = policy.max_loss_per_trade_pct * cap
    if policy.max_loss_per_trade is not None:
        loss_limit = min(loss_limit, policy.max_loss_per_trade)
    add(ConstraintAllowance(
        "max_loss_per_trade", _whole(loss_limit, per_lot_max_loss), loss_limit,
        per_lot_max_loss,
        f"max loss {_rupees(loss_limit)} / {_rupees(per_lot_max_loss)} per lot"))

    # position size (policy wall)
    pos_budget = policy.max_position_pct * cap
    pos_lots = _whole(pos_budget, per_lot_capital,
                      lambda n: exposure(n) / cap <= policy.max_position_pct)
    add(ConstraintAllowance(
        "position_pct", pos_lots, pos_budget, per_lot_capital,
        f"{policy.max_position_pct:.2f} x capital {_rupees(pos_budget)} / "
        f"{_rupees(per_lot_capital)} capital per lot"))

    # exposure per underlying (policy wall)
    open_sym = portfolio.exposure_by_symbol.get(symbol, 0.0)
    sym_budget = policy.max_symbol_exposure_pct * cap - open_sym
    sym_lots = _whole(sym_budget, per_lot_capital,
                      lambda n: (open_sym + exposure(n)) / cap <= policy.max_symbol_exposure_pct)
    add(ConstraintAllowance(
        "symbol_exposure", sym_lots, sym_budget, per_lot_capital,
        f"{symbol} headroom {_rupees(sym_budget)} ({policy.max_symbol_exposure_pct:.2f} x "
        f"capital - open {_rupees(open_sym)}) / {_rupees(per_lot_capital)} per lot"))

    # correlation-weighted exposure (correlation wall)
    terms: list[float] = []
    for s, e in portfolio.exposure_by_symbol.items():
        rho = portfolio.rho(symbol, s)
        terms.append(max(1.0 if rho is None else rho, 0.0) * e)
    weighted = math.fsum(terms)
    corr_limit = policy.max_correlated_exposure_pct * cap
    corr_budget = corr_limit - weighted

    def corr_fits(n: int) -> bool:
        w = exposure(n)
        for t in terms:
            w += t
        return w <= corr_limit

    add(ConstraintAllowance(
        "correlated_exposure", _whole(corr_budget, per_lot_capital, corr_fits), corr_budget,
        per_lot_capital,
        f"headroom {_rupees(corr_budget)} (correlated open {_rupees(weighted)}) / "
        f"{_rupees(per_lot_capital)} per lot"))

    # expiry concentration (correlation wall)
    if expiry is not None:
        open_exp = portfolio.exposure_by_symbol_expiry.get((symbol, expiry), 0.0)
        exp_budget = policy.max_expiry_concentration_pct * cap - open_exp
        exp_lots = _whole(
            exp_budget, per_lot_capital,
            lambda n: (open_exp + exposure(n)) / cap <= policy.max_expiry_concentration_pct)
        add(ConstraintAllowance(
            "expiry_concentration", exp_lots, exp_budget, per_lot_capital,
            f"{symbol} {expiry.isoformat()} headroom {_rupees(exp_budget)} / "
            f"{_rupees(per_lot_capital)} per lot"))

    # free capital with the buffer (margin wall)
    free = equity - used
    need = per_lot_margin * (1.0 + policy.margin_buffer) + per_lot_premium_paid
    buffer = 1.0 + policy.margin_buffer
    margin_lots = _whole(free, need, lambda n: (n * m_) * buffer + n * p_ <= free)
    add(ConstraintAllowance(
        "margin", margin_lots, free, need,
        f"free {_rupees(free)} / (margin x{buffer:.2f} + premium) "
        f"{_rupees(need)} per lot"))

    # utilisation after the trade (margin wall)
    util_budget = policy.max_margin_utilisation * equity - used
    util_lots = _whole(
        util_budget, per_lot_capital,
        lambda n: equity > 0 and (used + n * m_ + n * p_) / equity
        <= policy.max_margin_utilisation)
    add(ConstraintAllowance(
        "margin_utilisation", util_lots, util_budget, per_lot_capital,
        f"{policy.max_margin_utilisation:.2f} x equity - used {_rupees(used)} = "
        f"{_rupees(util_budget)} / {_rupees(per_lot_capital)} per lot"))

    # tail loss (tail-hedge wall)
    if per_lot_tail_loss is not None:
        tail_budget = policy.max_tail_loss_pct * cap
        add(ConstraintAllowance(
            "tail_loss", _whole(tail_budget, per_lot_tail_loss), tail_budget,
            per_lot_tail_loss,
            f"tail {_rupees(tail_budget)} / {_rupees(per_lot_tail_loss)} per lot"))

    # vol target (appetite); against the lower of capital and equity
    base = min(cap, equity)
    budget = appetite.daily_budget(max(base, 0.0), policy.max_open_positions, confidence)
    vol_lots = (0 if budget <= 0.0 else _whole(budget, per_lot_daily_risk))
    add(ConstraintAllowance(
        "vol_target", vol_lots, budget, per_lot_daily_risk,
        f"daily 1-SD budget {_rupees(budget)} (vol {appetite.target_annual_vol:.2f}, "
        f"confidence {confidence:.2f}) / {_rupees(per_lot_daily_risk)} per lot"))

    if max_lots is not None:
        add(ConstraintAllowance("max_lots", max_lots, float(max_lots), 1.0,
                                f"caller cap {max_lots} lots"))

    # max_loss_per_trade always limits (its per-lot charge is > 0), so there is a minimum
    binding = min((c for c in out if c.lots is not None), key=lambda c: c.lots or 0)
    lots = binding.lots or 0

    others = "; ".join(f"{c.name} {c.lots}" for c in out
                       if c.lots is not None and c is not binding)
    if lots == 0:
        if binding.name == "vol_target" and confidence <= appetite.min_confidence:
            why = (f"confidence {confidence:.2f} <= minimum {appetite.min_confidence:.2f}")
        else:
            why = binding.detail
        reason = f"no trade: {binding.name} allows 0 lots ({why})"
    else:
        unit = "" if lot_size is None else f" x {lot_size} = {lots * lot_size} units"
        reason = f"{lots} lot(s){unit}: bound by {binding.name} ({binding.detail})"
    if others:
        reason += f"; others: {others}"
    return SizingDecision(
        lots=lots, binding=binding.name, constraints=tuple(out), reason=reason,
        lot_size=lot_size, daily_risk=lots * per_lot_daily_risk,
        max_loss=lots * per_lot_max_loss if lots else 0.0,
        capital_required=lots * per_lot_capital, margin=lots * per_lot_margin)


def dated_lot_size(symbol: str, expiry: date, calendar: MarketCalendar | None = None) -> int:
    """The exchange's market lot of ``symbol`` contracts expiring on ``expiry``, units.

    Uses ``calendar`` or the packaged default calendar (dated NSE lot sizes; reads packaged
    data once, cached).
    """
    if calendar is None:
        from shared.rules import default_calendar

        calendar = default_calendar()
    return int(calendar.lot_size(symbol, expiry).value)
