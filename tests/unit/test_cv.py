"""Time-series splits (``shared/domain/models/cv.py``): walk-forward and purged k-fold.

Small cases are checked row by row against the definitions; larger grids check the
invariants (no overlap, train before test, purge and embargo, every row tested once).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shared.domain.models.cv import Split, purged_kfold, walk_forward_splits


def rows(a: int, b: int) -> list[int]:
    """Rows ``a .. b`` inclusive."""
    return list(range(a, b + 1))


# ------------------------------------------------------------------------------ Split


def test_split_arrays_are_read_only_int64_copies():
    train = np.array([0, 1, 2])
    split = Split(train, np.array([5, 6]))
    train[0] = 99
    assert split.train.tolist() == [0, 1, 2] and split.train.dtype == np.int64
    assert not split.train.flags.writeable and not split.test.flags.writeable
    with pytest.raises(ValueError):
        split.test[0] = 1
    assert "3 rows [0..2]" in repr(split)


@pytest.mark.parametrize(("train", "test", "message"), [
    ([0, 1, 2], [2, 3], "overlap"),
    ([0, 2, 1], [5], "ascending"),
    ([0, 1], [], "empty"),
    ([-1, 0], [3], "negative"),
    ([0.0, 1.0], [3], "integer"),
    ([[0, 1]], [3], "1-D"),
])
def test_split_refuses_inconsistent_rows(train, test, message):
    with pytest.raises(ValueError, match=message):
        Split(np.array(train), np.array(test))


# ----------------------------------------------------------------------- walk-forward


def test_walk_forward_expanding_window_exact():
    splits = walk_forward_splits(10, min_train=4, test_size=2)
    assert [s.test.tolist() for s in splits] == [[4, 5], [6, 7], [8, 9]]
    assert [s.train.tolist() for s in splits] == [rows(0, 3), rows(0, 5), rows(0, 7)]


def test_walk_forward_rolling_window_step_and_short_last_block():
    splits = walk_forward_splits(11, min_train=3, test_size=3, step=2, max_train=4)
    assert [s.test.tolist() for s in splits] == [[3, 4, 5], [5, 6, 7], [7, 8, 9], [9, 10]]
    assert [s.train.tolist() for s in splits] == [rows(0, 2), rows(1, 4), rows(3, 6),
                                                  rows(5, 8)]


def test_walk_forward_leaves_a_label_horizon_gap():
    # h = 2: a test block starting at s trains on rows <= s - 3, whose labels read closes
    # up to s - 1
    splits = walk_forward_splits(12, min_train=5, test_size=3, label_horizon=2)
    assert [s.test.tolist() for s in splits] == [[7, 8, 9], [10, 11]]
    assert [s.train.tolist() for s in splits] == [rows(0, 4), rows(0, 7)]
    for s in splits:
        assert s.train[-1] + 2 < s.test[0]


def test_walk_forward_test_always_after_train_on_a_grid():
    for n, min_train, test_size, step, max_train, h in itertools.product(
            (30, 57), (5, 12), (1, 4, 9), (None, 3, 10), (None, 12, 20), (0, 1, 5)):
        splits = walk_forward_splits(n, min_train=min_train, test_size=test_size, step=step,
                                     max_train=max_train, label_horizon=h)
        assert splits, (n, min_train, test_size, step, max_train, h)
        starts = [int(s.test[0]) for s in splits]
        assert starts == list(range(min_train + h, n, step or test_size))
        for s in splits:
            assert s.train.size >= 1 and s.train[-1] + h < s.test[0]
            assert np.array_equal(s.train, np.arange(s.train[0], s.train[-1] + 1))
            assert np.array_equal(s.test, np.arange(s.test[0], s.test[-1] + 1))
            assert s.test[-1] < n and s.test.size <= test_size
            assert max_train is None or s.train.size <= max_train
            assert max_train is not None or s.train[0] == 0
        if step is None:  # every row from the first test row on is tested exactly once
            tested = np.concatenate([s.test for s in splits])
            assert tested.tolist() == list(range(min_train + h, n))


@pytest.mark.parametrize("kwargs", [
    {"min_train": 10, "test_size": 2},  # no test row left
    {"min_train": 8, "test_size": 2, "label_horizon": 2},  # the gap eats the test rows
    {"min_train": 4, "test_size": 0},
    {"min_train": 0, "test_size": 2},
    {"min_train": 4, "test_size": 2, "step": 0},
    {"min_train": 4, "test_size": 2, "max_train": 3},
    {"min_train": 4, "test_size": 2, "label_horizon": -1},
])
def test_walk_forward_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        walk_forward_splits(10, **kwargs)


# ------------------------------------------------------------------------ purged k-fold


def test_purged_kfold_exact_purge_and_embargo():
    # n = 20, 4 folds of 5, h = 2, embargo 1: fold [a, b] drops a-2 .. b+2 and b+3
    splits = purged_kfold(20, 4, label_horizon=2, embargo=1)
    assert [s.test.tolist() for s in splits] == [rows(0, 4), rows(5, 9), rows(10, 14),
                                                  rows(15, 19)]
    assert splits[0].train.tolist() == rows(8, 19)  # 5, 6 purged, 7 embargoed
    assert splits[1].train.tolist() == rows(0, 2) + rows(13, 19)  # 3, 4 | 10, 11 | 12
    assert splits[2].train.tolist() == rows(0, 7) + rows(18, 19)  # 8, 9 | 15, 16 | 17
    assert splits[3].train.tolist() == rows(0, 12)  # 13, 14 purged; nothing after


def test_purged_kfold_without_horizon_or_embargo_is_plain_contiguous_kfold():
    splits = purged_kfold(7, 3, label_horizon=0, embargo=0)
    assert [s.test.tolist() for s in splits] == [[0, 1, 2], [3, 4], [5, 6]]
    for s in splits:
        assert sorted([*s.train.tolist(), *s.test.tolist()]) == list(range(7))


def test_purged_kfold_invariants_on_a_grid():
    for n, k, h, embargo in itertools.product((23, 50, 101), (2, 3, 5), (0, 1, 5),
                                              (0, 2, 7)):
        folds = np.array_split(np.arange(n), k)
        if any(f[0] - h <= 0 and f[-1] + h + embargo >= n - 1 for f in folds):
            with pytest.raises(ValueError, match="no training rows"):
                purged_kfold(n, k, label_horizon=h, embargo=embargo)
            continue
        splits = purged_kfold(n, k, label_horizon=h, embargo=embargo)
        assert len(splits) == k
        tested = np.concatenate([s.test for s in splits])
        assert tested.tolist() == list(range(n))  # every row tested once, in order
        sizes = [s.test.size for s in splits]
        assert max(sizes) - min(sizes) <= 1
        for s in splits:
            a, b = int(s.test[0]), int(s.test[-1])
            assert np.array_equal(s.test, np.arange(a, b + 1))  # contiguous, not shuffled
            assert np.intersect1d(s.train, s.test).size == 0
            train = set(s.train.tolist())
            for i in range(n):
                # label window [i, i + h] vs the fold's span [a, b + h], then the embargo
                overlaps = i <= b + h and i + h >= a
                embargoed = b + h < i <= b + h + embargo
                assert (i in train) == (not overlaps and not embargoed), (n, k, h, embargo, i)


@pytest.mark.parametrize(("n", "k", "h", "embargo"), [
    (10, 11, 0, 0),  # more folds than rows
    (10, 1, 0, 0),  # one fold trains on nothing
    (10, 2, 5, 0),  # the purge eats everything
    (10, 2, 0, -1),
])
def test_purged_kfold_rejects_bad_sizes(n, k, h, embargo):
    with pytest.raises(ValueError):
        purged_kfold(n, k, label_horizon=h, embargo=embargo)
