"""Time-series cross-validation splits: walk-forward and purged/embargoed k-fold (pure).

Rows are observations in time order (trading days, oldest first); a split is a pair of
integer index arrays into them. Nothing here shuffles: a shuffled split of serially
dependent data leaks the future into the past.

Labels that look ahead
----------------------
A forecasting label usually reads *later* rows than the features: the ``h``-day direction
label of row ``i`` reads closes ``i .. i + h`` (its *label window* ``[i, i + h]``, with
``h = label_horizon``), while the features of row ``i`` read rows ``<= i``. Two rows whose
label windows intersect share information, so a training row whose label window intersects
a test row's label window must not be trained on when that test row is scored:

* :func:`purged_kfold` (López de Prado, *Advances in Financial Machine Learning*, ch. 7):
  a contiguous test fold ``[a, b]`` spans ``[a, b + h]`` through its labels; training rows
  ``i`` with ``[i, i + h]`` intersecting ``[a, b + h]``, i.e. ``a - h <= i <= b + h``, are
  **purged**, and the ``embargo`` rows after that, ``b + h + 1 .. b + h + embargo``, are
  **embargoed** too (serial correlation of features beyond the label overlap). Rows before
  the fold keep their place: a k-fold trains on the future of a fold as well as its past,
  which is acceptable for out-of-fold calibration inside a training window, never for a
  performance estimate.
* :func:`walk_forward_splits`: training rows always precede the test block ``[s, ...]``;
  with ``label_horizon = h`` the last training row is ``s - 1 - h``, so every training
  label is known by the close of row ``s - 1`` (the closed-window rule above, applied to
  the past side only).

Intervals are closed: windows that only touch at one row count as intersecting (purging
one row more than strictly needed is cheap; one row too few is a leak).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Split", "purged_kfold", "walk_forward_splits"]

Rows = npt.NDArray[np.int64]


def _rows(values: npt.ArrayLike, name: str) -> Rows:
    """A read-only int64 copy of ``values``, checked to be 1-D ascending row numbers."""
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise ValueError(f"Split.{name} must be 1-D, got shape {raw.shape}")
    if raw.size and not np.issubdtype(raw.dtype, np.integer):
        raise ValueError(f"Split.{name} must hold integer row numbers, got {raw.dtype}")
    a = np.array(raw, dtype=np.int64, copy=True)
    if a.size > 1 and not bool(np.all(a[1:] > a[:-1])):
        raise ValueError(f"Split.{name} must be strictly ascending row numbers")
    if a.size and a[0] < 0:
        raise ValueError(f"Split.{name} has a negative row number {int(a[0])}")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test split of ``n`` time-ordered rows.

    Attributes
    ----------
    train : numpy.ndarray of int64
        Training row numbers, strictly ascending, read-only.
    test : numpy.ndarray of int64
        Test row numbers, strictly ascending, non-empty, read-only; disjoint from ``train``.
    """

    train: Rows
    test: Rows

    def __post_init__(self) -> None:
        train, test = _rows(self.train, "train"), _rows(self.test, "test")
        if test.size == 0:
            raise ValueError("Split.test is empty")
        if np.intersect1d(train, test, assume_unique=True).size:
            raise ValueError("Split.train and Split.test overlap")
        object.__setattr__(self, "train", train)
        object.__setattr__(self, "test", test)

    def __repr__(self) -> str:
        def span(a: Rows) -> str:
            return f"{a.size} rows [{int(a[0])}..{int(a[-1])}]" if a.size else "0 rows"

        return f"Split(train={span(self.train)}, test={span(self.test)})"


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def walk_forward_splits(n: int, *, min_train: int, test_size: int, step: int | None = None,
                        max_train: int | None = None, label_horizon: int = 0,
                        ) -> tuple[Split, ...]:
    """Walk-forward splits: train on the past, test on the block that follows.

    Parameters
    ----------
    n : int
        Number of rows (time-ordered, oldest first).
    min_train : int
        Training rows of the first split; the first test block starts at row
        ``min_train + label_horizon``.
    test_size : int
        Rows per test block; the last block is shorter when fewer rows remain.
    step : int, optional
        Rows between the starts of consecutive test blocks (default ``test_size``: every
        row from the first test row on is tested exactly once; a smaller step tests rows
        repeatedly, a larger one skips rows).
    max_train : int, optional
        Rolling window: at most this many (latest) training rows. Default: expanding window
        from row 0.
    label_horizon : int, default 0
        Rows a label looks ahead (``h``). For a test block starting at ``s`` the training
        rows end at ``s - 1 - h``, so no training label reads row ``s`` or later.

    Returns
    -------
    tuple of Split
        In time order; ``max(train) < min(test)`` in every split.

    Raises
    ------
    ValueError
        On a non-positive size, ``max_train < min_train``, or ``n`` too small for one split.
    """
    n = _positive("n", n)
    min_train = _positive("min_train", min_train)
    test_size = _positive("test_size", test_size)
    step = test_size if step is None else _positive("step", step)
    h = _positive("label_horizon", label_horizon, minimum=0)
    if max_train is not None and _positive("max_train", max_train) < min_train:
        raise ValueError(f"max_train ({max_train}) must be >= min_train ({min_train})")
    first = min_train + h
    if first >= n:
        raise ValueError(f"n={n} rows leave no test row after min_train={min_train} and "
                         f"label_horizon={h}")
    splits = []
    for s in range(first, n, step):
        train_stop = s - h  # exclusive
        train_start = 0 if max_train is None else max(0, train_stop - max_train)
        test = np.arange(s, min(s + test_size, n))
        splits.append(Split(np.arange(train_start, train_stop), test))
    return tuple(splits)


def purged_kfold(n: int, k: int, *, label_horizon: int, embargo: int) -> tuple[Split, ...]:
    """Contiguous k-fold with purging and an embargo (López de Prado), never shuffled.

    Parameters
    ----------
    n : int
        Number of rows (time-ordered).
    k : int
        Number of folds, ``2 <= k <= n``; fold ``j`` is the ``j``-th of ``k`` contiguous
        blocks (``numpy.array_split``: the first ``n % k`` folds have one row more).
    label_horizon : int
        Rows a label looks ahead (``h``): row ``i``'s label window is ``[i, i + h]``.
    embargo : int
        Rows dropped after the purged zone that follows each test fold.

    Returns
    -------
    tuple of Split
        ``k`` splits; every row is a test row in exactly one. For a test fold ``[a, b]`` the
        training rows are ``0 .. a - h - 1`` and ``b + h + embargo + 1 .. n - 1``.

    Raises
    ------
    ValueError
        On bad sizes, or when purging leaves a fold without training rows.
    """
    n = _positive("n", n)
    k = _positive("k", k, minimum=2)
    h = _positive("label_horizon", label_horizon, minimum=0)
    embargo = _positive("embargo", embargo, minimum=0)
    if k > n:
        raise ValueError(f"k={k} folds need at least k rows, got n={n}")
    rows = np.arange(n)
    splits = []
    for fold in np.array_split(rows, k):
        a, b = int(fold[0]), int(fold[-1])
        keep = (rows < a - h) | (rows > b + h + embargo)
        if not keep.any():
            raise ValueError(f"fold [{a}, {b}] has no training rows left after purging "
                             f"(label_horizon={h}, embargo={embargo}, n={n})")
        splits.append(Split(rows[keep], fold))
    return tuple(splits)
