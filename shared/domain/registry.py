"""The model registry's rules (pure): validation contracts, the paired comparison of a
candidate with production, and the life cycle of a model version.

A trained candidate reaches production only through :func:`judge`:

1. **Validation contract** (:class:`ValidationContract`, one per model type): every
   metric floor (or ceiling) holds, the feature schema equals the running version's (a
   model that expects other inputs cannot be served by the running code), the artifact's
   size is in range and its SHA-256 is what was recorded.
2. **Paired evaluation**: candidate and production scored on the *same* held-out slice
   (:class:`PairedScore`); the candidate must beat production on the contract's primary
   metric by at least ``min_improvement``. With no production version, the contract alone
   decides.

The verdict (:class:`Judgement`) says promote or reject, with every reason. The life cycle
(:data:`TRANSITIONS`) is ``staged → shadow → production → archived`` (``rejected`` from
staged or shadow); a promotion archives the previous production version in the same
transaction, and a rollback makes the previous version production again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

__all__ = [
    "NIGHTLY_CADENCE",
    "TRANSITIONS",
    "Bound",
    "Candidate",
    "Judgement",
    "ModelState",
    "PairedScore",
    "ValidationContract",
    "can_move",
    "judge",
]


NIGHTLY_CADENCE = timedelta(days=3)
"""How often a global model is retrained at the most: ``schedules/retrain-nightly.yaml`` runs
on weekdays at 18:30 IST, so the longest gap between runs is Friday to Monday. The
model-staleness switch trips at twice this (a model not retrained for six days)."""


class ModelState(StrEnum):
    STAGED = "staged"
    SHADOW = "shadow"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    REJECTED = "rejected"


TRANSITIONS: Mapping[ModelState, frozenset[ModelState]] = MappingProxyType({
    ModelState.STAGED: frozenset({ModelState.SHADOW, ModelState.PRODUCTION,
                                  ModelState.REJECTED}),
    ModelState.SHADOW: frozenset({ModelState.PRODUCTION, ModelState.REJECTED}),
    ModelState.PRODUCTION: frozenset({ModelState.ARCHIVED}),
    ModelState.ARCHIVED: frozenset({ModelState.PRODUCTION}),  # a rollback
    ModelState.REJECTED: frozenset(),
})
"""Allowed state changes of a model version."""


def can_move(old: ModelState, new: ModelState) -> bool:
    return new in TRANSITIONS[old]


@dataclass(frozen=True, slots=True)
class Bound:
    """A floor (``kind="min"``) or ceiling (``kind="max"``) on one metric."""

    metric: str
    kind: Literal["min", "max"]
    value: float

    def holds(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        return x >= self.value if self.kind == "min" else x <= self.value

    def describe(self, x: float) -> str:
        op = ">=" if self.kind == "min" else "<="
        return f"{self.metric} {x:.4g} {'' if self.holds(x) else 'not '}{op} {self.value:.4g}"


@dataclass(frozen=True, slots=True)
class ValidationContract:
    """What a candidate of one model type must satisfy.

    Attributes
    ----------
    model_type
        E.g. ``vol_har``, ``direction_lgbm``.
    bounds
        Floors and ceilings on out-of-sample metrics.
    primary, higher_is_better
        The metric of the paired comparison, and its direction.
    min_improvement
        How much better than production the candidate must be on ``primary`` (absolute).
    artifact_bytes
        Inclusive size range of the serialised model, bytes.
    """

    model_type: str
    bounds: tuple[Bound, ...]
    primary: str
    higher_is_better: bool = True
    min_improvement: float = 0.0
    artifact_bytes: tuple[int, int] = (64, 50_000_000)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trained model as the registry sees it."""

    model_type: str
    metrics: Mapping[str, float]
    schema: tuple[str, ...]
    artifact_size: int
    sha256: str
    recorded_sha256: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))


@dataclass(frozen=True, slots=True)
class PairedScore:
    """Candidate and production on the same held-out slice (``primary`` metric)."""

    metric: str
    candidate: float
    production: float
    rows: int
    slice_end: str = ""


@dataclass(frozen=True, slots=True)
class Judgement:
    """Promote or reject, with the reasons (every failed check, or the passing summary)."""

    promote: bool
    reasons: tuple[str, ...]
    numbers: Mapping[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        return ("promote: " if self.promote else "reject: ") + "; ".join(self.reasons)


def judge(contract: ValidationContract, candidate: Candidate, *,
          production_schema: tuple[str, ...] | None = None,
          paired: PairedScore | None = None) -> Judgement:
    """Decide on a candidate (see the module docstring). ``production_schema`` and
    ``paired`` are None when no version is in production yet."""
    failures: list[str] = []
    if candidate.model_type != contract.model_type:
        failures.append(f"contract is for {contract.model_type}, candidate is "
                        f"{candidate.model_type}")
    for bound in contract.bounds:
        x = float(candidate.metrics.get(bound.metric, math.nan))
        if not bound.holds(x):
            failures.append(bound.describe(x) if math.isfinite(x)
                            else f"{bound.metric} missing or not finite")
    if production_schema is not None and tuple(candidate.schema) != tuple(production_schema):
        added = sorted(set(candidate.schema) - set(production_schema))
        dropped = sorted(set(production_schema) - set(candidate.schema))
        failures.append(f"schema differs from production (added {added}, dropped {dropped}"
                        f"{', reordered' if not added and not dropped else ''})")
    lo, hi = contract.artifact_bytes
    if not lo <= candidate.artifact_size <= hi:
        failures.append(f"artifact size {candidate.artifact_size} B outside [{lo}, {hi}]")
    if candidate.sha256 != candidate.recorded_sha256:
        failures.append(f"artifact sha256 {candidate.sha256[:12]}… does not match the "
                        f"recorded {candidate.recorded_sha256[:12]}…")
    numbers: dict[str, float] = {}
    if paired is not None:
        gain = paired.candidate - paired.production
        if not contract.higher_is_better:
            gain = -gain
        numbers = {"candidate": paired.candidate, "production": paired.production,
                   "gain": gain, "rows": float(paired.rows)}
        if not (math.isfinite(gain) and gain >= contract.min_improvement
                and (gain > 0 or contract.min_improvement < 0)):
            failures.append(f"paired {paired.metric} on {paired.rows} held-out rows: candidate "
                            f"{paired.candidate:.4g} vs production {paired.production:.4g} "
                            f"(needs a gain >= {contract.min_improvement:.4g}, got {gain:.4g})")
    if failures:
        return Judgement(False, tuple(failures), numbers)
    summary = [f"{len(contract.bounds)} bounds hold"]
    if paired is not None:
        summary.append(f"beats production on {paired.metric}: {paired.candidate:.4g} vs "
                       f"{paired.production:.4g} over {paired.rows} rows")
    else:
        summary.append("no production version to compare with")
    return Judgement(True, tuple(summary), numbers)
