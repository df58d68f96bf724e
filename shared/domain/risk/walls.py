"""The seven walls of the risk castle, in order. One wall, one class.

Every wall reads a validated :class:`~shared.domain.risk.context.RiskContext` and returns a
frozen :class:`~shared.contracts.WallVerdict`; quantities that scale with size are scaled
by ``ctx.size_multiplier`` (reduced by the news gate). Money in rupees; fractions of the
tenant's capital as decimals.

1. :class:`RegimeWall` - the structure is allowed in the current regime.
2. :class:`NewsGate` - news and scheduled events: proceed, reduce 25 %, reduce 50 %, blackout.
3. :class:`PolicyLimits` - the tenant's limits: open positions, position size, exposure per
   underlying, worst loss per trade.
4. :class:`MarginWall` - SPAN-like margin estimate with a buffer against free capital.
5. :class:`CorrelationWall` - correlation-weighted exposure and expiry concentration.
6. :class:`CostWall` - net expected value, cost ratio, win probability after costs.
7. :class:`TailHedgeWall` - sold premium needs a protective wing; the hedged composite
   must survive the extreme scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from shared.contracts import Structure, WallVerdict
from shared.domain.risk.base import Wall, money, ratio
from shared.domain.risk.context import RiskContext
from shared.domain.risk.inputs import NEWS_ACTIONS
from shared.domain.risk.ports import CostModel

__all__ = [
    "DEFAULT_REGIME_STRUCTURES",
    "NEWS_MULTIPLIERS",
    "CorrelationWall",
    "CostWall",
    "MarginWall",
    "NewsGate",
    "PolicyLimits",
    "RegimeWall",
    "TailHedgeWall",
    "default_walls",
]


def _vs(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` formatted with 2 decimals, or as many more as it takes for
    them to differ on the page (so that "0.40 > 0.40" never appears)."""
    for digits in (2, 3, 4, 6):
        a, b = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if a != b:
            return a, b
    return repr(value), repr(limit)


S = Structure
DEFAULT_REGIME_STRUCTURES: Mapping[str, frozenset[Structure]] = MappingProxyType({
    # quiet, mean-reverting market: sell premium, defined or undefined risk
    "range": frozenset({S.IRON_CONDOR, S.SHORT_STRANGLE, S.SHORT_STRADDLE,
                        S.CREDIT_VERTICAL, S.BUTTERFLY}),
    # cheap volatility: defined-risk premium selling or buying optionality
    "low_vol": frozenset({S.IRON_CONDOR, S.CREDIT_VERTICAL, S.DEBIT_VERTICAL, S.BUTTERFLY,
                          S.LONG_STRADDLE, S.LONG_STRANGLE}),
    # expensive, jumpy volatility: defined risk only
    "high_vol": frozenset({S.IRON_CONDOR, S.CREDIT_VERTICAL, S.BUTTERFLY}),
    # directional markets: verticals with the trend
    "trending_up": frozenset({S.CREDIT_VERTICAL, S.DEBIT_VERTICAL}),
    "trending_down": frozenset({S.CREDIT_VERTICAL, S.DEBIT_VERTICAL}),
    # ahead of a known event: long optionality only
    "event": frozenset({S.LONG_STRADDLE, S.LONG_STRANGLE, S.DEBIT_VERTICAL}),
    # disorderly market: nothing
    "crisis": frozenset(),
})
"""Structures allowed per regime label (default table; the service may pass its own).
``custom`` and ``naked_single`` are allowed nowhere by default."""


class RegimeWall(Wall):
    """Wall 1: the proposal's structure must be allowed in the *current* regime.

    Blocks with ``regime_unknown`` for a regime label missing from the table (fail
    closed) and ``regime_structure`` for a structure the regime does not allow. The
    proposal's own regime label (what decide assumed) is reported in the reason.
    """

    name = "regime"

    def __init__(self, allowed: Mapping[str, frozenset[Structure]] | None = None) -> None:
        self.allowed = DEFAULT_REGIME_STRUCTURES if allowed is None else allowed

    def check(self, ctx: RiskContext) -> WallVerdict:
        structure = ctx.proposal.structure
        regime = ctx.regime
        same = float(ctx.proposal.regime == regime)
        allowed = self.allowed.get(regime)
        if allowed is None:
            return self.blocked("regime_unknown",
                                f"regime {regime!r} has no allowed-structure table "
                                f"(known: {', '.join(sorted(self.allowed))})",
                                regime_matches_proposal=same)
        names = ", ".join(sorted(s.value for s in allowed)) or "nothing"
        assumed = "" if same else f"; the proposal assumed {ctx.proposal.regime!r}"
        if structure not in allowed:
            return self.blocked("regime_structure",
                                f"{structure.value} not allowed in regime {regime!r} "
                                f"(allowed: {names}){assumed}",
                                regime_matches_proposal=same)
        return self.passed("regime_ok", f"{structure.value} allowed in regime {regime!r}"
                           f"{assumed}", regime_matches_proposal=same)


NEWS_MULTIPLIERS: Mapping[str, float] = MappingProxyType(
    {"proceed": 1.0, "reduce_25": 0.75, "reduce_50": 0.5, "blackout": 0.0})


class NewsGate(Wall):
    """Wall 2: graduated news gate.

    The most severe action among the news items active for the symbol at ``now`` (see
    :class:`~shared.domain.risk.inputs.NewsItem`) decides: ``proceed`` passes,
    ``blackout`` blocks (``news_blackout``), ``reduce_25`` / ``reduce_50`` pass with a
    ``size_multiplier`` in ``numbers`` that the castle applies to the following walls.

    The reduction keeps whole lots and the legs' ratios: with ``n`` the greatest common
    divisor of the legs' lots, the position is ``n`` copies of its smallest whole unit
    (``lots / n`` per leg), and the reduced position is ``floor(n * requested)`` copies, so
    the multiplier is ``floor(n * requested) / n`` (<= the requested 0.75 or 0.5). When that
    is zero copies (a 1-lot iron condor at ``reduce_50``) the gate blocks
    (``news_reduce_below_one_lot``): a fraction of a lot cannot be traded.
    """

    name = "news"

    def check(self, ctx: RiskContext) -> WallVerdict:
        action, item = ctx.news.gate(ctx.now, ctx.proposal.symbol)
        severity = float(NEWS_ACTIONS.index(action))
        if item is None:
            return self.passed("news_proceed", "no active news event", size_multiplier=1.0,
                               severity=severity)
        when = f"{item.title!r} at {item.occurs_at.isoformat(timespec='minutes')} " \
               f"+-{item.window_minutes} min"
        if action == "blackout":
            return self.blocked("news_blackout", f"blackout: {when}", severity=severity)
        requested = NEWS_MULTIPLIERS[action]
        lots = ctx.position.lots
        copies = math.gcd(*lots)  # the position is `copies` copies of lots / copies
        n = max(round(copies * ctx.size_multiplier), 1)
        kept = math.floor(n * requested + 1e-9)
        if kept < 1:
            return self.blocked("news_reduce_below_one_lot",
                                f"{action}: {n} unit(s) x {requested:.2f} leaves less than one "
                                f"lot per leg; {when}", severity=severity,
                                requested_multiplier=requested)
        m = kept / n
        return self.passed(f"news_{action}",
                           f"{action}: size x{m:.2f} ({kept} of {n} unit(s)); {when}",
                           size_multiplier=m, requested_multiplier=requested,
                           severity=severity)


class PolicyLimits(Wall):
    """Wall 3: the tenant's limits (:class:`~shared.domain.risk.inputs.TenantPolicy`).

    In order, with ``E = capital_required * size_multiplier`` the capital the new position
    ties up (estimated margin plus premium paid):

    * ``policy_concurrent_positions``: open positions + 1 > ``max_open_positions``;
    * ``policy_position_pct``: ``E / capital > max_position_pct``;
    * ``policy_symbol_exposure``: (the underlying's open exposure + ``E``) / capital >
      ``max_symbol_exposure_pct``;
    * ``policy_max_loss``: ``trade_max_loss * size_multiplier`` > ``max_loss_per_trade_pct
      * capital`` (or the absolute ``max_loss_per_trade`` when lower). ``trade_max_loss``
      is the larger of the declared and the computed expiry loss, or the stress loss when
      the payoff is unbounded (see :class:`~shared.domain.risk.position.PositionMath`).
    """

    name = "policy"

    def check(self, ctx: RiskContext) -> WallVerdict:
        pol, pos, m = ctx.policy, ctx.position, ctx.size_multiplier
        cap = pol.capital
        open_after = len(ctx.portfolio.positions) + 1
        exposure = pos.capital_required * m
        position_pct = exposure / cap
        symbol = ctx.proposal.symbol
        symbol_pct = (ctx.portfolio.exposure_by_symbol.get(symbol, 0.0) + exposure) / cap
        loss = pos.trade_max_loss * m
        loss_limit = pol.max_loss_per_trade_pct * cap
        if pol.max_loss_per_trade is not None:
            loss_limit = min(loss_limit, pol.max_loss_per_trade)
        nums = dict(open_positions_after=open_after, max_open_positions=pol.max_open_positions,
                    position_pct=position_pct, max_position_pct=pol.max_position_pct,
                    symbol_exposure_pct=symbol_pct,
                    max_symbol_exposure_pct=pol.max_symbol_exposure_pct,
                    trade_max_loss=loss, max_loss_limit=loss_limit, exposure=exposure)
        if open_after > pol.max_open_positions:
            return self.blocked("policy_concurrent_positions",
                                f"concurrent_positions {open_after} > {pol.max_open_positions}",
                                **nums)
        if position_pct > pol.max_position_pct:
            a, b = _vs(position_pct, pol.max_position_pct)
            return self.blocked("policy_position_pct",
                                f"position_pct {a} > {b} (ties up {money(exposure)} of "
                                f"capital {money(cap)})", **nums)
        if symbol_pct > pol.max_symbol_exposure_pct:
            a, b = _vs(symbol_pct, pol.max_symbol_exposure_pct)
            return self.blocked("policy_symbol_exposure",
                                f"symbol_exposure_pct {symbol} {a} > {b}", **nums)
        if loss > loss_limit:
            return self.blocked("policy_max_loss",
                                f"max_loss {money(loss)} > {money(loss_limit)} "
                                f"(basis: {pos.max_loss_basis})", **nums)
        return self.passed("policy_ok",
                           f"positions {open_after}/{pol.max_open_positions}; position_pct "
                           f"{position_pct:.2f} <= {pol.max_position_pct:.2f}; "
                           f"symbol_exposure_pct {symbol_pct:.2f} <= "
                           f"{pol.max_symbol_exposure_pct:.2f}; max_loss {money(loss)} <= "
                           f"{money(loss_limit)}", **nums)


class MarginWall(Wall):
    """Wall 4: the estimated margin, with a buffer, must fit in the free capital.

    With ``M = margin * size_multiplier`` (SPAN-like estimate: scan risk plus exposure
    margin, see :mod:`shared.domain.risk.position`; an estimate, not NSE SPAN),
    ``D = max(net_premium, 0) * size_multiplier`` the premium paid, ``free = equity -
    used_margin``:

    * ``margin_insufficient``: ``M * (1 + margin_buffer) + D > free`` (buffer default 30 %);
    * ``margin_utilisation``: ``(used_margin + M + D) / equity > max_margin_utilisation``
      (default 0.80), so approving cannot itself trip the utilisation switch.
    """

    name = "margin"

    def check(self, ctx: RiskContext) -> WallVerdict:
        pos, m, pol = ctx.position, ctx.size_multiplier, ctx.policy
        margin = pos.margin * m
        debit = max(pos.net_premium, 0.0) * m
        need = margin * (1.0 + pol.margin_buffer) + debit
        equity = ctx.equity
        used = ctx.portfolio.used_margin
        free = equity - used
        util = (used + margin + debit) / equity if equity > 0 else math.inf
        nums = dict(margin_estimate=margin, scan_risk=pos.scan_risk * m,
                    exposure_margin=pos.exposure_margin * m, premium_paid=debit,
                    margin_need=need, free_capital=free, buffer=pol.margin_buffer,
                    utilisation_after=util, max_utilisation=pol.max_margin_utilisation,
                    worst_scenario=pos.worst_scenario)
        detail = (f"estimate {money(margin)} = scan {money(pos.scan_risk * m)} (scenario "
                  f"{pos.worst_scenario}) + exposure {money(pos.exposure_margin * m)}, x"
                  f"{1 + pol.margin_buffer:.2f} buffer, + premium {money(debit)}")
        if need > free:
            return self.blocked("margin_insufficient",
                                f"margin_need {money(need)} > free {money(free)} ({detail})",
                                **nums)
        if util > pol.max_margin_utilisation:
            a, b = _vs(util, pol.max_margin_utilisation)
            return self.blocked("margin_utilisation",
                                f"margin_utilisation_after {a} > {b}", **nums)
        return self.passed("margin_ok", f"margin_need {money(need)} <= free {money(free)} "
                           f"({detail}); utilisation_after {ratio(util)}", **nums)


class CorrelationWall(Wall):
    """Wall 5: portfolio correlation and concentration.

    With ``E`` the new position's exposure (capital required times the size multiplier)
    and ``e_s`` the open exposure per underlying ``s``:

    * ``correlated_exposure``: ``E + sum_s max(rho(new, s), 0) * e_s`` >
      ``max_correlated_exposure_pct * capital``. The same underlying counts with
      ``rho = 1``; an unknown correlation counts as 1 (conservative).
    * ``expiry_concentration``: exposure on the same underlying *and* expiry (the
      proposal's nearest expiry), ``E`` included, over capital >
      ``max_expiry_concentration_pct``: weekly options concentrate gamma on one date.
    """

    name = "correlation"

    def check(self, ctx: RiskContext) -> WallVerdict:
        pol, book = ctx.policy, ctx.portfolio
        cap = pol.capital
        symbol = ctx.proposal.symbol
        new = ctx.position.capital_required * ctx.size_multiplier
        weighted, unknown, total = new, 0, 0.0
        rho_sum = 0.0
        for s, e in book.exposure_by_symbol.items():
            rho = book.rho(symbol, s)
            if rho is None:
                rho, unknown = 1.0, unknown + 1
            weighted += max(rho, 0.0) * e
            rho_sum += rho * e
            total += e
        limit = pol.max_correlated_exposure_pct * cap
        expiry = min(leg.expiry for leg in ctx.proposal.legs)
        same_expiry = book.exposure_by_symbol_expiry.get((symbol, expiry), 0.0) + new
        concentration = same_expiry / cap
        nums = dict(correlated_exposure=weighted, correlated_limit=limit,
                    mean_correlation=rho_sum / total if total > 0 else 0.0,
                    unknown_correlations=unknown, expiry_concentration=concentration,
                    max_expiry_concentration=pol.max_expiry_concentration_pct)
        if weighted > limit:
            return self.blocked("correlated_exposure",
                                f"correlated_exposure {money(weighted)} > {money(limit)} "
                                f"({pol.max_correlated_exposure_pct:.2f} of capital"
                                f"{f'; {unknown} unknown correlation(s) taken as 1' if unknown else ''})",
                                **nums)
        if concentration > pol.max_expiry_concentration_pct:
            a, b = _vs(concentration, pol.max_expiry_concentration_pct)
            return self.blocked("expiry_concentration",
                                f"expiry_concentration {symbol} {expiry.isoformat()} {a} > {b}",
                                **nums)
        return self.passed("correlation_ok",
                           f"correlated_exposure {money(weighted)} <= {money(limit)}; "
                           f"expiry_concentration {concentration:.2f} <= "
                           f"{pol.max_expiry_concentration_pct:.2f}", **nums)


class CostWall(Wall):
    """Wall 6: the trade must pay for itself after Indian costs.

    With ``G = expected_gross_edge * size_multiplier`` and ``C`` the round-trip cost from
    the :class:`~shared.domain.risk.ports.CostModel` at that size, in order:

    * ``cost_invalid``: the cost model returned a negative or non-finite total (fail closed);
    * ``net_ev_non_positive``: ``G - C <= 0``;
    * ``cost_ratio``: ``C / G > max_cost_ratio`` (default 0.40);
    * ``win_probability``: ``win_probability < min_win_probability`` (default 0.45).

    ``numbers`` carries ``gross_edge``, ``total_costs``, ``net_ev``, ``cost_ratio``,
    ``win_probability`` and the breakdown as ``cost_<part>``.
    """

    name = "cost"

    def __init__(self, cost_model: CostModel, *, max_cost_ratio: float = 0.40,
                 min_win_probability: float = 0.45) -> None:
        self.cost_model = cost_model
        self.max_cost_ratio = max_cost_ratio
        self.min_win_probability = min_win_probability

    def check(self, ctx: RiskContext) -> WallVerdict:
        p, m = ctx.proposal, ctx.size_multiplier
        est = self.cost_model.round_trip(p, ctx.market, now=ctx.now, size_multiplier=m)
        if not est.valid:
            return self.blocked("cost_invalid", f"cost model returned total {est.total!r}")
        gross = float(p.expected_gross_edge) * m
        costs = float(est.total)
        net = gross - costs
        win = float(p.win_probability)
        cost_ratio = costs / gross if gross > 0 else math.inf
        nums: dict[str, float] = dict(gross_edge=gross, total_costs=costs, net_ev=net,
                                      cost_ratio=cost_ratio, win_probability=win,
                                      max_cost_ratio=self.max_cost_ratio,
                                      min_win_probability=self.min_win_probability)
        nums.update({f"cost_{k}": float(v) for k, v in est.breakdown.items()})
        if net <= 0:
            return self.blocked("net_ev_non_positive",
                                f"net_ev {money(net)} <= 0 (gross edge {money(gross)} - "
                                f"costs {money(costs)})", **nums)
        if cost_ratio > self.max_cost_ratio:
            a, b = _vs(cost_ratio, self.max_cost_ratio)
            return self.blocked("cost_ratio",
                                f"cost_ratio {a} > {b} (costs {money(costs)} / gross edge "
                                f"{money(gross)})", **nums)
        if win < self.min_win_probability:
            a, b = _vs(win, self.min_win_probability)
            return self.blocked("win_probability", f"win_probability {a} < {b}", **nums)
        return self.passed("cost_ok",
                           f"net_ev {money(net)} > 0; cost_ratio {cost_ratio:.2f} <= "
                           f"{self.max_cost_ratio:.2f}; win_probability {win:.2f} >= "
                           f"{self.min_win_probability:.2f}", **nums)


class TailHedgeWall(Wall):
    """Wall 7: sold premium needs a protective wing, and the hedged composite is stressed.

    * ``naked_short``: some sold option has no protective wing: a bought option of the
      same type expiring on the same day or later, at any strike (so verticals, condors,
      butterflies and calendars are covered; a short strangle, a ratio spread's extra short
      and a reverse calendar are not). See :func:`~shared.domain.risk.position.position_math`.
    * ``tail_loss``: the whole structure's loss in the extreme scenarios (forward +-
      ``extreme_multiple * price_scan``, volatility unchanged and up ``tail_vol_up``; full
      weight), times the size multiplier, > ``max_tail_loss_pct * capital``: a wing too far
      out to protect.
    """

    name = "tail_hedge"

    def check(self, ctx: RiskContext) -> WallVerdict:
        pos, m, pol = ctx.position, ctx.size_multiplier, ctx.policy
        tail = pos.tail_loss * m
        limit = pol.max_tail_loss_pct * pol.capital
        expiry_loss = pos.expiry_max_loss
        nums = dict(tail_loss=tail, tail_limit=limit,
                    naked_lots=sum(n.uncovered_lots for n in pos.naked) * m)
        if expiry_loss is not None:
            nums["expiry_max_loss"] = expiry_loss * m
        if pos.naked:
            return self.blocked("naked_short",
                                "; ".join(n.describe() for n in pos.naked)
                                + f" (tail_loss {money(tail)})", **nums)
        if tail > limit:
            return self.blocked("tail_loss",
                                f"tail_loss {money(tail)} > {money(limit)} "
                                f"({pol.max_tail_loss_pct:.2f} of capital)", **nums)
        sold = bool((pos.units < 0).any())
        what = "wings cover every sold option" if sold else "no sold premium"
        at_expiry = "" if expiry_loss is None else f"; expiry max loss {money(expiry_loss * m)}"
        return self.passed("tail_hedged" if sold else "no_short_premium",
                           f"{what}; tail_loss {money(tail)} <= {money(limit)}{at_expiry}",
                           **nums)


def default_walls(cost_model: CostModel) -> tuple[Wall, ...]:
    """The seven walls in castle order, with their default parameters."""
    return (RegimeWall(), NewsGate(), PolicyLimits(), MarginWall(), CorrelationWall(),
            CostWall(cost_model), TailHedgeWall())
