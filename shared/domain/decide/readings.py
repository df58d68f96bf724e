"""What every signal returns, and what the combiner consumes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

__all__ = ["Axis", "SignalReading"]


class Axis(StrEnum):
    """What a signal has a view on.

    ``direction``: ``+1`` bullish, ``-1`` bearish (the underlying's next moves).
    ``volatility``: ``+1`` long volatility (options cheap against the forecast, a move is
    coming), ``-1`` short volatility (options rich: sell premium).
    """

    DIRECTION = "direction"
    VOLATILITY = "volatility"


@dataclass(frozen=True, slots=True)
class SignalReading:
    """One signal's view at one snapshot.

    Attributes
    ----------
    name
        The signal's name (unique in the engine).
    axis
        See :class:`Axis`.
    score
        In [-1, 1]; 0 is no view.
    confidence
        In [0, 1]: how much the signal trusts its own score (data quality, sample size).
    inputs
        The numbers the score was made from, for the explanation (finite floats).
    reason
        One human line, e.g. ``"IV 14.2% vs forecast 11.0%: options rich"``.
    available
        False when the signal's inputs are missing: then ``score`` and ``confidence`` are
        0 and ``reason`` says what was missing (a flagged neutral, never a silent one).
    """

    name: str
    axis: Axis
    score: float
    confidence: float
    inputs: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""
    available: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.score) and -1.0 <= self.score <= 1.0):
            raise ValueError(f"{self.name}: score must be in [-1, 1], got {self.score!r}")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"{self.name}: confidence must be in [0, 1], got "
                             f"{self.confidence!r}")
        if not self.available and (self.score != 0.0 or self.confidence != 0.0):
            raise ValueError(f"{self.name}: an unavailable signal reads 0 with confidence 0")
        clean = {}
        for k, v in dict(self.inputs).items():
            if not math.isfinite(float(v)):
                raise ValueError(f"{self.name}: input {k} is not finite ({v!r})")
            clean[str(k)] = float(v)
        object.__setattr__(self, "inputs", MappingProxyType(clean))

    @classmethod
    def missing(cls, name: str, axis: Axis, reason: str) -> SignalReading:
        """A flagged neutral reading: the inputs were not there."""
        return cls(name=name, axis=axis, score=0.0, confidence=0.0, reason=reason,
                   available=False)
