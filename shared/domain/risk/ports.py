"""Ports the risk castle needs from elsewhere, as small protocols.

:class:`CostModel` is implemented by an adapter over the Indian cost engine
(:mod:`shared.domain.costs`: statutory charges, brokerage, slippage); the risk package
does not import it, so either can change without the other, and the walls are tested with
a fake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from shared.contracts import DecisionProposedV1
from shared.domain.risk.inputs import MarketView

__all__ = ["CostEstimate", "CostModel"]


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """The cost of opening and closing a position, rupees.

    Attributes
    ----------
    total
        Every charge of the round trip (both sides of every leg): statutory charges,
        brokerage with its GST, and expected slippage, rupees (>= 0).
    breakdown
        The parts, for the explanation (e.g. ``{"stt": 17.5, "brokerage": 80.0, ...}``);
        they need not sum to ``total`` exactly (rounding).
    """

    total: float
    breakdown: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "breakdown", MappingProxyType(dict(self.breakdown)))

    @property
    def valid(self) -> bool:
        return math.isfinite(self.total) and self.total >= 0


@runtime_checkable
class CostModel(Protocol):
    """Prices the round trip of a proposal at a size."""

    def round_trip(self, proposal: DecisionProposedV1, market: MarketView, *, now: datetime,
                   size_multiplier: float = 1.0) -> CostEstimate:
        """Total rupee cost of opening and later closing ``proposal`` scaled by
        ``size_multiplier`` (the lots the executor will trade: ``floor(lots *
        size_multiplier)``), at the market's current quotes, under the charges in force
        on ``now``'s date."""
        ...
