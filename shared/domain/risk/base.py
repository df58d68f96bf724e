"""The gate interface shared by walls and kill switches, and verdict helpers.

One gate, one class: a gate has a ``name`` and ``check(ctx) -> WallVerdict`` and nothing
else the castle needs. A verdict's ``reason`` carries the numbers that decided it, in the
form ``"<measure> <value> <op> <limit>"`` (e.g. ``"cost_ratio 0.52 > 0.40"``), and
``numbers`` carries them again as floats (non-finite values are left out: the contract
forbids them; the reason says ``unbounded`` instead).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, runtime_checkable

from shared.contracts import WallVerdict
from shared.domain.risk.context import RiskContext

__all__ = ["Gate", "Wall", "clean_numbers", "money", "ratio"]


@runtime_checkable
class Gate(Protocol):
    """Anything the castle can run: a wall or a kill switch."""

    name: str

    def check(self, ctx: RiskContext) -> WallVerdict: ...


def money(x: float) -> str:
    """Rupees for a reason string: ``₹12,345`` (``unbounded`` for infinity)."""
    if math.isinf(x):
        return "unbounded"
    return f"₹{x:,.0f}"


def ratio(x: float) -> str:
    """A ratio or fraction for a reason string, two decimals."""
    if math.isinf(x):
        return "unbounded"
    return f"{x:.2f}"


def clean_numbers(numbers: dict[str, float]) -> dict[str, float]:
    """The finite numbers as floats (a WallVerdict refuses NaN and infinity)."""
    out = {}
    for k, v in numbers.items():
        f = float(v)
        if math.isfinite(f):
            out[k] = f
    return out


class Wall(ABC):
    """Base of the seven walls: subclasses set ``name`` and implement :meth:`check`.

    A wall may also *reduce* the size instead of blocking: it passes with
    ``numbers["size_multiplier"] < 1`` and the castle runs the following walls on the
    reduced size (see :class:`~shared.domain.risk.walls.NewsGate`).
    """

    name: ClassVar[str] = "wall"

    @abstractmethod
    def check(self, ctx: RiskContext) -> WallVerdict:
        """The verdict of this wall on ``ctx`` (never raises on a validated proposal)."""

    def passed(self, code: str, reason: str, **numbers: float) -> WallVerdict:
        return WallVerdict(wall=self.name, blocked=False, reason_code=code, reason=reason,
                           numbers=clean_numbers(numbers))

    def blocked(self, code: str, reason: str, **numbers: float) -> WallVerdict:
        return WallVerdict(wall=self.name, blocked=True, reason_code=code, reason=reason,
                           numbers=clean_numbers(numbers))
