"""The risk castle: validation, then kill switches, then walls, first block wins.

:meth:`RiskCastle.evaluate` on a :class:`~shared.domain.risk.context.RiskContext`:

1. :func:`~shared.domain.risk.validation.validate_proposal` raises an
   :class:`~shared.domain.risk.validation.InvalidProposal` (a ``PermanentError`` with a
   ``reason_code``) for bad input; no gate runs.
2. Every kill switch is evaluated, in order. The verdict list stops at the first blocking
   switch, but every switch's *data* is still read so that no trip the data calls for is
   missed (:attr:`CastleVerdict.trips`).
3. If no switch blocked, the walls run in order and the first block short-circuits. A wall
   that passes with ``numbers["size_multiplier"] < 1`` (the news gate) reduces the size
   for the walls after it.

Adding a wall is one class with ``name`` and ``check(ctx) -> WallVerdict``, placed in the
sequence given to :class:`RiskCastle`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.contracts import (
    DecisionProposedV1,
    KillSwitchResetV1,
    KillSwitchTrippedV1,
    SignalApprovedV1,
    SignalBlockedV1,
    WallVerdict,
)
from shared.domain.risk.base import Gate, money
from shared.domain.risk.context import RiskContext
from shared.domain.risk.ports import CostModel
from shared.domain.risk.switches import FORCED_PAPER, SwitchReset, SwitchTrip, default_switches
from shared.domain.risk.validation import validate_proposal
from shared.domain.risk.walls import default_walls

__all__ = ["CastleVerdict", "RiskCastle", "sized_lots"]


def sized_lots(proposal: DecisionProposedV1, size_multiplier: float) -> tuple[int, ...]:
    """Whole lots per leg at ``size_multiplier``: what a reduced approval trades. (The news
    gate only reduces by whole copies of the structure, so these keep the legs' ratios.)"""
    return tuple(math.floor(leg.lots * size_multiplier + 1e-9) for leg in proposal.legs)


@dataclass(frozen=True, slots=True)
class CastleVerdict:
    """The castle's decision on one proposal, explainable on its own.

    Attributes
    ----------
    approved
        True when no switch and no wall blocked.
    verdicts
        The verdicts in evaluation order, up to and including the blocking one.
    blocked_by, reason_code, reason
        The blocking gate's name, code and reason (None, ``approved`` /
        ``approved_reduced`` and a summary when approved).
    size_multiplier
        Size to trade relative to the proposal, in (0, 1] (news-gate reductions).
    net_ev, total_costs
        From the cost wall, rupees at the final size; None when it did not run.
    trips
        Kill-switch trips the current data calls for and that are not yet persisted: the
        service persists them and publishes ``killswitch.tripped`` (also when blocked).
    resets
        Persisted automatic trips the current data resets (they did not block): the service
        persists the resets and publishes ``killswitch.reset``.
    dry_run
        The tenant is inside its paper-only lock.
    live
        The order may go to a broker (a live order that was not forced to paper).
    """

    approved: bool
    verdicts: tuple[WallVerdict, ...]
    blocked_by: str | None
    reason_code: str
    reason: str
    size_multiplier: float
    net_ev: float | None
    total_costs: float | None
    trips: tuple[SwitchTrip, ...]
    dry_run: bool
    live: bool
    resets: tuple[SwitchReset, ...] = ()

    def explain(self) -> str:
        """One line, e.g. ``blocked by cost: cost_ratio 0.52 > 0.40``."""
        if self.approved:
            return self.reason
        return f"blocked by {self.blocked_by}: {self.reason}"

    def to_signal(self, *, verdict_id: UUID, proposal: DecisionProposedV1,
                  decided_at: datetime) -> SignalApprovedV1 | SignalBlockedV1:
        """The ``signal.approved`` or ``signal.blocked`` message for this verdict."""
        common = dict(verdict_id=verdict_id, proposal_id=proposal.proposal_id,
                      tenant_id=proposal.tenant_id, dry_run=self.dry_run or not self.live,
                      verdicts=self.verdicts, decided_at=decided_at)
        if not self.approved:
            return SignalBlockedV1(**common, blocked_by=self.blocked_by or "",
                                   reason_code=self.reason_code, reason=self.reason)
        if self.net_ev is None or self.total_costs is None:
            raise ValueError("an approved signal needs the cost wall's net_ev and total_costs")
        return SignalApprovedV1(**common, net_ev=self.net_ev, total_costs=self.total_costs,
                                size_multiplier=self.size_multiplier)

    def trip_events(self, at: datetime) -> tuple[KillSwitchTrippedV1, ...]:
        """The ``killswitch.tripped`` messages for :attr:`trips`."""
        return tuple(t.to_event(at) for t in self.trips)

    def reset_events(self, at: datetime) -> tuple[KillSwitchResetV1, ...]:
        """The ``killswitch.reset`` messages for :attr:`resets`."""
        return tuple(r.to_event(at) for r in self.resets)


class RiskCastle:
    """Kill switches, then walls, in the given order (see the module docstring).

    Parameters
    ----------
    walls
        The walls in order; :func:`~shared.domain.risk.walls.default_walls` gives the seven.
    switches
        The kill switches in order; default :func:`~shared.domain.risk.switches.
        default_switches`. A switch with an ``evaluate(ctx)`` method reports trips; any
        other gate is only checked.
    """

    def __init__(self, walls: Sequence[Gate], switches: Sequence[Gate] | None = None) -> None:
        self.walls = tuple(walls)
        self.switches = tuple(default_switches() if switches is None else switches)
        names = [g.name for g in (*self.switches, *self.walls)]
        if len(set(names)) != len(names):
            raise ValueError(f"gate names must be unique: {names}")

    @classmethod
    def default(cls, cost_model: CostModel, *, force_paper: bool = False) -> RiskCastle:
        """Twelve switches and seven walls with their defaults."""
        return cls(default_walls(cost_model), default_switches(force_paper=force_paper))

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in (*self.switches, *self.walls))

    def evaluate(self, ctx: RiskContext) -> CastleVerdict:
        """Decide on ``ctx``; raises :class:`~shared.domain.risk.validation.InvalidProposal`
        for bad input."""
        validate_proposal(ctx)
        verdicts: list[WallVerdict] = []
        trips: list[SwitchTrip] = []
        resets: list[SwitchReset] = []
        blocking: WallVerdict | None = None
        forced_paper = False
        for switch in self.switches:
            evaluate = getattr(switch, "evaluate", None)
            if evaluate is not None:
                evaluation = evaluate(ctx)
                verdict = evaluation.verdict
                trips.extend(evaluation.trips)
                resets.extend(evaluation.resets)
            elif blocking is None:
                verdict = switch.check(ctx)
            else:
                continue
            if blocking is None:
                verdicts.append(verdict)
                forced_paper |= verdict.reason_code == FORCED_PAPER
                if verdict.blocked:
                    blocking = verdict

        sized = ctx
        reductions: list[str] = []
        if blocking is None:
            for wall in self.walls:
                verdict = wall.check(sized)
                verdicts.append(verdict)
                if verdict.blocked:
                    blocking = verdict
                    break
                m = verdict.numbers.get("size_multiplier", 1.0)
                if m < 1.0:
                    sized = sized.resized(sized.size_multiplier * m)
                    reductions.append(f"{verdict.wall} x{m:.2f}")

        net_ev = total_costs = None
        for v in verdicts:
            if "net_ev" in v.numbers:
                net_ev, total_costs = v.numbers["net_ev"], v.numbers.get("total_costs")
        live = ctx.live_order and not forced_paper
        if blocking is not None:
            return CastleVerdict(approved=False, verdicts=tuple(verdicts),
                                 blocked_by=blocking.wall, reason_code=blocking.reason_code,
                                 reason=blocking.reason, size_multiplier=sized.size_multiplier,
                                 net_ev=net_ev, total_costs=total_costs, trips=tuple(trips),
                                 dry_run=ctx.dry_run, live=live, resets=tuple(resets))
        m = sized.size_multiplier
        parts = [f"approved after {len(verdicts)} checks"]
        if reductions:
            parts.append(f"size x{m:.2f} ({', '.join(reductions)})")
        if net_ev is not None:
            parts.append(f"net_ev {money(net_ev)}")
        parts.append("live" if live else "paper")
        return CastleVerdict(approved=True, verdicts=tuple(verdicts), blocked_by=None,
                             reason_code="approved_reduced" if reductions else "approved",
                             reason="; ".join(parts), size_multiplier=m, net_ev=net_ev,
                             total_costs=total_costs, trips=tuple(trips), dry_run=ctx.dry_run,
                             live=live, resets=tuple(resets))
