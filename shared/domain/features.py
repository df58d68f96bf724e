"""Point-in-time features and the causality audit (pure: numpy in, numpy out).

A :class:`Feature` computes a whole column at once over a :class:`Panel` (fast, vectorised)
and declares its **lookback** (rows of history it reads, the row it is for included) and its
**lag** (rows between the newest row it reads and the row it is for; 0: the row's own
close is known at the row's timestamp, e.g. a feature for the decision at today's close).
A correct feature's value at row ``t`` depends only on rows ``t - lag - lookback + 1 ..
t - lag``; before that much history exists it is NaN.

The vectorised form is where leakage hides (a centred window, a ``shift(-1)``, a full-sample
normalisation), so :func:`causality_audit` checks every feature against its declaration:
at random rows ``t`` it recomputes the column

* from the history **truncated** after row ``t`` (nothing later may matter), and
* from only the **declared window** of rows (nothing earlier may matter either),

and compares both with the full-history value at ``t``. Any difference is a
:class:`Mismatch`; a leak-free, honestly declared feature has none. Retraining runs the
audit before fitting, and the tests run it on 1,000 rows of real NIFTY history.

Conventions: rows are trading days (or bars), ascending; prices in index points; returns
are log returns; volatilities are annualised with 252 trading days unless a name says
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

__all__ = [
    "TRADING_DAYS",
    "AuditReport",
    "Feature",
    "FeatureMatrix",
    "Mismatch",
    "Panel",
    "causality_audit",
    "compute_features",
    "default_features",
    "garman_klass_variance",
]

TRADING_DAYS = 252
"""Trading days per year, for annualising daily variances."""

_Array = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Panel:
    """Aligned, ascending columns of one underlying's history.

    Attributes
    ----------
    index
        Row labels, ascending (``datetime64``), shape (n,).
    columns
        Name → float64 array of shape (n,) (e.g. ``open``, ``high``, ``low``, ``close``,
        ``rv``, ``vix``); read-only.
    """

    index: npt.NDArray[np.datetime64]
    columns: Mapping[str, _Array]

    def __post_init__(self) -> None:
        n = len(self.index)
        cols = {}
        for name, values in self.columns.items():
            a = np.array(values, dtype=np.float64)  # a private, read-only copy
            if a.shape != (n,):
                raise ValueError(f"column {name!r} has shape {a.shape}, index has ({n},)")
            a.setflags(write=False)
            cols[name] = a
        index = np.array(self.index)
        if n > 1 and not bool(np.all(index[1:] > index[:-1])):
            raise ValueError("panel index must be strictly ascending")
        index.setflags(write=False)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "columns", MappingProxyType(cols))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, name: str) -> _Array:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"panel has no column {name!r} (has {sorted(self.columns)})") from None

    def rows(self, start: int, stop: int) -> Panel:
        """Rows ``start`` (inclusive) to ``stop`` (exclusive), as a new panel."""
        start = max(start, 0)
        return Panel(self.index[start:stop], {k: v[start:stop] for k, v in self.columns.items()})


@dataclass(frozen=True, slots=True)
class Feature:
    """A point-in-time feature: ``compute(panel)`` returns the whole column, shape
    ``(len(panel),)``, whose row ``t`` uses only rows ``t - lag - lookback + 1 .. t - lag``
    (NaN where that window is not complete)."""

    name: str
    lookback: int
    lag: int
    compute: Callable[[Panel], _Array]
    needs: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.lookback < 1 or self.lag < 0:
            raise ValueError(f"feature {self.name}: lookback must be >= 1 and lag >= 0")

    @property
    def window(self) -> int:
        """Rows the feature at ``t`` depends on, counting back from ``t`` inclusive."""
        return self.lookback + self.lag


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """Features by row: ``values[t, j]`` is feature ``names[j]`` at ``index[t]``."""

    index: npt.NDArray[np.datetime64]
    names: tuple[str, ...]
    values: _Array

    def column(self, name: str) -> _Array:
        return self.values[:, self.names.index(name)]

    @property
    def complete_rows(self) -> npt.NDArray[np.bool_]:
        """Rows where every feature is finite (past every warm-up)."""
        return np.all(np.isfinite(self.values), axis=1)


def compute_features(panel: Panel, features: Sequence[Feature]) -> FeatureMatrix:
    """Every feature's column over ``panel`` (checks shapes and required columns)."""
    cols = []
    for f in features:
        missing = [c for c in f.needs if c not in panel.columns]
        if missing:
            raise KeyError(f"feature {f.name} needs columns {missing}")
        col = np.asarray(f.compute(panel), dtype=np.float64)
        if col.shape != (len(panel),):
            raise ValueError(f"feature {f.name} returned shape {col.shape}, "
                             f"expected ({len(panel)},)")
        cols.append(col)
    values = np.column_stack(cols) if cols else np.empty((len(panel), 0))
    values.setflags(write=False)
    return FeatureMatrix(panel.index, tuple(f.name for f in features), values)


# --------------------------------------------------------------------------- the audit


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One row where a feature's full-history value differs from a recomputation."""

    feature: str
    row: int
    check: str  # "truncated" (later rows mattered), "window" (earlier rows mattered), or
    # "error" (the feature cannot be computed from the truncated history)
    full: float
    recomputed: float


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What :func:`causality_audit` checked and found."""

    rows_checked: int
    features: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def leaky(self) -> tuple[str, ...]:
        """Features with at least one mismatch."""
        return tuple(dict.fromkeys(m.feature for m in self.mismatches))

    def explain(self) -> str:
        if self.passed:
            return (f"causality audit passed: {len(self.features)} features x "
                    f"{self.rows_checked} rows, 0 mismatches")
        first = self.mismatches[0]
        return (f"causality audit FAILED: {len(self.mismatches)} mismatches in "
                f"{', '.join(self.leaky())}; e.g. {first.feature} at row {first.row} "
                f"({first.check}): {first.full!r} vs {first.recomputed!r}")


def _same(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def _value_at(feature: Feature, panel: Panel, row: int) -> float | None:
    """The feature at ``row`` of ``panel``; None when it cannot be computed there."""
    try:
        return float(np.asarray(feature.compute(panel), dtype=np.float64)[row])
    except (ValueError, IndexError, ArithmeticError):
        return None


def causality_audit(panel: Panel, features: Iterable[Feature], *, rows: int = 1_000,
                    rng: np.random.Generator | None = None, rtol: float = 1e-9,
                    atol: float = 1e-12) -> AuditReport:
    """Check that every feature is point-in-time and honest about its window.

    Parameters
    ----------
    panel
        The history the features are computed on.
    features
        The features to audit.
    rows
        How many random rows to check (without replacement; all rows if fewer).
    rng
        Source of the rows (default ``np.random.default_rng(1234)``: reproducible).
    rtol, atol
        Tolerance of the comparison (recomputing a rolling sum on a shorter history may
        differ in the last bits).

    Returns
    -------
    AuditReport
        ``passed`` when no feature's value at a checked row changes when the history is
        truncated after that row, or cut to the feature's declared window.
    """
    rng = rng or np.random.default_rng(1234)
    features = tuple(features)
    n = len(panel)
    picked = np.sort(rng.choice(n, size=min(rows, n), replace=False))
    full = compute_features(panel, features)
    mismatches: list[Mismatch] = []
    for t in picked:
        t = int(t)
        truncated = panel.rows(0, t + 1)
        for j, f in enumerate(features):
            expected = float(full.values[t, j])
            got = _value_at(f, truncated, t)
            if got is None or not _same(expected, got, rtol, atol):
                check = "error" if got is None else "truncated"
                mismatches.append(Mismatch(f.name, t, check, expected,
                                           math.nan if got is None else got))
                continue
            start = t - f.window + 1
            if start < 0:  # not enough history for the window: the value must be NaN
                if not math.isnan(expected):
                    mismatches.append(Mismatch(f.name, t, "window", expected, math.nan))
                continue
            windowed = _value_at(f, panel.rows(start, t + 1), t - start)
            if windowed is None or not _same(expected, windowed, rtol, atol):
                mismatches.append(Mismatch(f.name, t, "error" if windowed is None else "window",
                                           expected, math.nan if windowed is None else windowed))
    return AuditReport(rows_checked=len(picked), features=tuple(f.name for f in features),
                       mismatches=tuple(mismatches))


# ----------------------------------------------------------------------- the library


def _trailing_mean(x: _Array, k: int) -> _Array:
    """Mean of ``x[t-k+1 .. t]`` at each ``t`` (NaN until ``k`` values exist or when any is
    NaN). A windowed sum, not a running cumulative sum, so that a row's value does not
    depend on how much earlier history there is."""
    out = np.full(len(x), np.nan)
    if len(x) >= k:
        windows = np.lib.stride_tricks.sliding_window_view(x, k)
        out[k - 1:] = windows.mean(axis=1)
    return out


def _lagged(x: _Array, lag: int) -> _Array:
    if lag == 0:
        return x
    out = np.full(len(x), np.nan)
    out[lag:] = x[:-lag]
    return out


def _log_return(p: Panel) -> _Array:
    close = p["close"]
    out = np.full(len(close), np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def garman_klass_variance(p: Panel) -> _Array:
    """Garman–Klass daily variance of a panel's OHLC (decimal, per day, not annualised):
    :func:`shared.domain.models.vol.garman_klass_variance` on its columns."""
    from shared.domain.models.vol import garman_klass_variance as gk

    return gk(p["open"], p["high"], p["low"], p["close"])


def _rv_feature(k: int) -> Feature:
    def compute(p: Panel) -> _Array:
        return np.sqrt(TRADING_DAYS * _trailing_mean(garman_klass_variance(p), k))

    return Feature(f"gk_vol_{k}d", lookback=k, lag=0, compute=compute,
                   needs=("open", "high", "low", "close"),
                   description=f"annualised Garman-Klass vol over the last {k} sessions")


def _momentum(k: int) -> Feature:
    def compute(p: Panel) -> _Array:
        close = p["close"]
        out = np.full(len(close), np.nan)
        out[k:] = np.log(close[k:] / close[:-k])
        return out

    return Feature(f"momentum_{k}d", lookback=k + 1, lag=0, compute=compute, needs=("close",),
                   description=f"log return over the last {k} sessions")


def _realised_return_vol(k: int) -> Feature:
    def compute(p: Panel) -> _Array:
        r2 = _log_return(p) ** 2
        return np.sqrt(TRADING_DAYS * _trailing_mean(r2, k))

    return Feature(f"ret_vol_{k}d", lookback=k + 1, lag=0, compute=compute, needs=("close",),
                   description=f"annualised close-to-close vol over the last {k} returns")


def default_features() -> tuple[Feature, ...]:
    """The daily features the vol and direction models use (HAR components included:
    ``gk_vol_1d``, ``gk_vol_5d``, ``gk_vol_22d``)."""
    return (
        Feature("ret_1d", lookback=2, lag=0, compute=_log_return, needs=("close",),
                description="today's close-to-close log return"),
        _momentum(5), _momentum(20),
        _rv_feature(1), _rv_feature(5), _rv_feature(22),
        _realised_return_vol(5), _realised_return_vol(22),
        Feature("range_1d", lookback=1, lag=0,
                compute=lambda p: np.log(p["high"] / p["low"]), needs=("high", "low"),
                description="today's high-low log range"),
        Feature("gap_1d", lookback=2, lag=0,
                compute=lambda p: _lagged_gap(p), needs=("open", "close"),
                description="overnight log gap: today's open over yesterday's close"),
    )


def _lagged_gap(p: Panel) -> _Array:
    prev = _lagged(p["close"], 1)
    with np.errstate(invalid="ignore"):
        return np.log(p["open"] / prev)


