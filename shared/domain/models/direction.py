"""Direction of the index over the next ``h`` sessions: LightGBM plus a calibration model.

Pure domain code: numpy arrays in, frozen dataclasses out; no I/O, clock or environment.
LightGBM is imported lazily by the functions that train or load a booster, so importing
this module stays cheap (and :class:`TreeEnsemble` evaluates a trained model without it).

Conventions
-----------
rows
    Trading days, oldest first, as in :class:`shared.domain.features.Panel`.
label
    ``r_t = ln(C_{t+h} / C_t)``, the forward ``h``-session log return (decimal), and
    ``up_t = r_t > 0``. Row ``t``'s label reads closes ``t .. t + h`` only; the features
    at ``t`` read rows ``<= t`` (see :mod:`shared.domain.features`), so the label window
    starts where the feature window ends and shares only the close of ``t`` with it (known
    at decision time). Two rows closer than ``h + 1`` rows have overlapping labels: every
    split used here purges with ``label_horizon = h`` (:mod:`shared.domain.models.cv`).
    A forward return of exactly zero has no direction and is never a label; with a
    ``dead_zone`` ``d > 0`` rows with ``|r_t| <= d`` are left out of *training* (their
    direction is noise), but never out of scoring (that would select rows by their future).
probability
    ``p`` is a calibrated P(up) in ``[0, 1]``. The booster's raw score ``s`` is a
    log-odds (LightGBM ``binary`` objective, ``raw_score=True``); the calibration model
    maps it to ``p = 1 / (1 + exp(-(a s + b)))`` (Platt scaling) with ``a, b`` fitted on
    out-of-fold raw scores from a purged k-fold *inside* the training window.

Honesty
-------
Daily index direction is close to a coin flip. :func:`evaluate_direction` reports the
walk-forward out-of-sample accuracy next to the base rate (NIFTY drifted up in 2000-2019,
so "always up" is right well over half the time) and the Brier score next to that of the
base-rate forecast; overlapping ``h``-day labels make the effective sample about ``n / h``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.domain.features import Feature, Panel, compute_features, default_features
from shared.domain.models.cv import purged_kfold, walk_forward_splits
from shared.domain.models.serial import read_payload

__all__ = [
    "DEFAULT_HORIZON",
    "DirectionPredictor",
    "DEFAULT_PARAMS",
    "SERIAL_FORMAT",
    "DirectionFit",
    "DirectionLabels",
    "DirectionModel",
    "DirectionReport",
    "PlattCalibration",
    "ProbabilityScore",
    "TreeEnsemble",
    "auc_mann_whitney",
    "brier_score",
    "direction_labels",
    "evaluate_direction",
    "expected_calibration_error",
    "fit_platt",
    "log_loss",
    "score_probabilities",
]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

DEFAULT_HORIZON = 5
"""Sessions the label looks ahead (one trading week)."""

SERIAL_FORMAT = "quantsentinel.direction/1"
"""Tag of the :meth:`DirectionFit.to_bytes` payload."""

DEFAULT_PARAMS: Mapping[str, Any] = MappingProxyType({
    # small, heavily regularised trees: a few thousand daily rows, a faint signal
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 8,
    "max_depth": 3,
    "min_data_in_leaf": 100,
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "max_bin": 63,
    # reproducible: one seed for bagging, feature sampling and binning; one thread
    "seed": 1234,
    "deterministic": True,
    "num_threads": 1,
    "force_col_wise": True,
    "verbosity": -1,
})
"""LightGBM parameters of :class:`DirectionModel` (overridable, except as noted there)."""

DEFAULT_ROUNDS = 150
_FORCED = {"objective": "binary", "deterministic": True, "force_col_wise": True,
           "verbosity": -1}
_ROUND_ALIASES = frozenset({"num_iterations", "num_iteration", "n_iter", "num_tree",
                            "num_trees", "num_round", "num_rounds", "num_boost_round",
                            "n_estimators", "max_iter"})
_UNSUPPORTED = frozenset({"linear_tree", "linear_trees", "categorical_feature",
                          "categorical_column", "cat_feature", "categorical_features"})
_MIN_FIT_ROWS = 200
_LOG_LOSS_EPS = 1e-15
_ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float32)
_MISSING_CODES = {"None": 0, "Zero": 1, "NaN": 2}


def _frozen(a: npt.ArrayLike, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True, eq=False)
class DirectionLabels:
    """Forward-direction labels of a close series (arrays read-only, one per row).

    Attributes
    ----------
    forward_return : numpy.ndarray of float64
        ``ln(C_{t+h} / C_t)``, decimal; NaN for the last ``h`` rows, whose closes
        ``t + 1 .. t + h`` are not in the series yet.
    up : numpy.ndarray of bool
        ``forward_return > 0`` (False where it is NaN).
    has_direction : numpy.ndarray of bool
        Finite and non-zero forward return: the rows a prediction can be scored on.
    trainable : numpy.ndarray of bool
        ``has_direction`` and ``|forward_return| > dead_zone``: the rows to train on.
    horizon : int
        ``h``, sessions.
    dead_zone : float
        Log-return threshold of ``trainable`` (decimal; 0 keeps every directed row).
    """

    forward_return: Floats
    up: Bools
    has_direction: Bools
    trainable: Bools
    horizon: int
    dead_zone: float


def direction_labels(close: npt.ArrayLike, *, horizon: int = DEFAULT_HORIZON,
                     dead_zone: float = 0.0) -> DirectionLabels:
    """The ``h``-session direction label of every row of a close series.

    Parameters
    ----------
    close : array_like of float
        Closes, index points, oldest first, finite and positive.
    horizon : int, default 5
        ``h >= 1`` sessions; row ``t``'s label reads closes ``t .. t + h`` only.
    dead_zone : float, default 0.0
        Rows with ``|ln(C_{t+h}/C_t)| <= dead_zone`` are not ``trainable``.

    Returns
    -------
    DirectionLabels
    """
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1 or not bool(np.all(np.isfinite(c) & (c > 0))):
        raise ValueError("close must be a 1-D array of finite, positive prices")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    if not (math.isfinite(dead_zone) and dead_zone >= 0):
        raise ValueError(f"dead_zone must be finite and >= 0, got {dead_zone!r}")
    h = int(horizon)
    fwd = np.full(len(c), np.nan)
    if len(c) > h:
        fwd[:-h] = np.log(c[h:] / c[:-h])
    finite = np.isfinite(fwd)
    absolute = np.abs(np.where(finite, fwd, 0.0))
    directed = finite & (absolute > 0)
    return DirectionLabels(
        forward_return=_frozen(fwd),
        up=_frozen(finite & (np.where(finite, fwd, 0.0) > 0), np.bool_),
        has_direction=_frozen(directed, np.bool_),
        trainable=_frozen(directed & (absolute > dead_zone), np.bool_),
        horizon=h,
        dead_zone=float(dead_zone),
    )


# --------------------------------------------------------------------------- metrics


def _scored(p: npt.ArrayLike, up: npt.ArrayLike, what: str) -> tuple[Floats, Floats]:
    pa = np.asarray(p, dtype=np.float64)
    ya = np.asarray(up)
    if pa.ndim != 1 or pa.shape != ya.shape:
        raise ValueError(f"{what}: need 1-D arrays of equal length, got {pa.shape} and "
                         f"{ya.shape}")
    if pa.size == 0:
        raise ValueError(f"{what}: no observations")
    if not bool(np.all(np.isfinite(pa))):
        raise ValueError(f"{what}: non-finite forecast")
    y = ya.astype(np.float64)
    if not bool(np.all((y == 0) | (y == 1))):
        raise ValueError(f"{what}: outcomes must be 0/1 or bool")
    return pa, y


def _probabilities(p: Floats, what: str) -> Floats:
    if not bool(np.all((p >= 0) & (p <= 1))):
        raise ValueError(f"{what}: probabilities must lie in [0, 1]")
    return p


def brier_score(p: npt.ArrayLike, up: npt.ArrayLike) -> float:
    """Mean of ``(p - up)^2`` (0 is perfect; a constant 0.5 scores 0.25)."""
    pa, y = _scored(p, up, "brier_score")
    return float(np.mean((_probabilities(pa, "brier_score") - y) ** 2))


def log_loss(p: npt.ArrayLike, up: npt.ArrayLike) -> float:
    """Mean negative log-likelihood (nats) of the outcomes, ``p`` clipped to
    ``[1e-15, 1 - 1e-15]`` (a constant 0.5 scores ``ln 2 = 0.693``)."""
    pa, y = _scored(p, up, "log_loss")
    q = np.clip(_probabilities(pa, "log_loss"), _LOG_LOSS_EPS, 1.0 - _LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))


def expected_calibration_error(p: npt.ArrayLike, up: npt.ArrayLike, *, bins: int = 10) -> float:
    """Expected calibration error: ``sum_b (n_b / n) |mean(p)_b - mean(up)_b|`` over
    ``bins`` equal-width bins of ``[0, 1]`` (``p = 1`` falls in the last bin).

    Finite-sample noise keeps it above zero even for a perfectly calibrated forecast
    (about ``sqrt(2 p (1 - p) / (pi n_b))`` per bin).
    """
    pa, y = _scored(p, up, "expected_calibration_error")
    _probabilities(pa, "expected_calibration_error")
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    b = np.minimum((pa * bins).astype(np.int64), bins - 1)
    count = np.bincount(b, minlength=bins)
    gap = np.abs(np.bincount(b, weights=pa, minlength=bins)
                 - np.bincount(b, weights=y, minlength=bins))
    return float(gap.sum() / count.sum())  # sum_b |sum p - sum y| / n == the weighted mean


def auc_mann_whitney(score: npt.ArrayLike, up: npt.ArrayLike) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic.

    ``AUC = (R_up - n_up (n_up + 1) / 2) / (n_up n_down)`` with ``R_up`` the sum of the
    ranks of the up rows among all scores (ties get their average rank, i.e. count 1/2):
    the probability that a random up row scores above a random down row.

    Returns
    -------
    float
        In ``[0, 1]``; 0.5 is no skill. NaN when one class is absent (the AUC is then
        undefined).
    """
    s, y = _scored(score, up, "auc_mann_whitney")
    n = s.size
    n_up = int(y.sum())
    n_down = n - n_up
    if n_up == 0 or n_down == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    stops = np.r_[starts[1:], n]
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + stops + 1) / 2.0, stops - starts)  # 1-based, averaged
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - n_up * (n_up + 1) / 2.0) / (n_up * n_down)


@dataclass(frozen=True, slots=True)
class ProbabilityScore:
    """How good a set of P(up) forecasts was.

    Attributes
    ----------
    n : int
        Forecasts scored.
    accuracy : float
        Share of rows where ``p > 0.5`` agrees with ``up`` (the hit rate).
    auc : float
        :func:`auc_mann_whitney` (NaN when one class is absent).
    brier : float
        :func:`brier_score`.
    log_loss : float
        :func:`log_loss`, nats.
    ece : float
        :func:`expected_calibration_error`.
    base_rate : float
        Share of up outcomes.
    mean_p : float
        Mean forecast (equal to ``base_rate`` for a calibrated forecaster, on average).
    """

    n: int
    accuracy: float
    auc: float
    brier: float
    log_loss: float
    ece: float
    base_rate: float
    mean_p: float

    @property
    def majority_accuracy(self) -> float:
        """Hit rate of always calling the more frequent outcome (with hindsight)."""
        return max(self.base_rate, 1.0 - self.base_rate)

    @property
    def brier_base_rate(self) -> float:
        """Brier score of the constant forecast ``base_rate``: ``b (1 - b)``."""
        return self.base_rate * (1.0 - self.base_rate)

    @property
    def brier_skill(self) -> float:
        """``1 - brier / brier_base_rate``: > 0 beats the (hindsight) base rate. NaN when
        every outcome is the same (no variance to explain)."""
        ref = self.brier_base_rate
        return 1.0 - self.brier / ref if ref > 0 else math.nan


def score_probabilities(p: npt.ArrayLike, up: npt.ArrayLike, *, bins: int = 10,
                        ) -> ProbabilityScore:
    """All of :class:`ProbabilityScore` for forecasts ``p`` of outcomes ``up``."""
    pa, y = _scored(p, up, "score_probabilities")
    _probabilities(pa, "score_probabilities")
    return ProbabilityScore(
        n=int(pa.size),
        accuracy=float(np.mean((pa > 0.5) == (y == 1))),
        auc=auc_mann_whitney(pa, y),
        brier=brier_score(pa, y),
        log_loss=log_loss(pa, y),
        ece=expected_calibration_error(pa, y, bins=bins),
        base_rate=float(y.mean()),
        mean_p=float(pa.mean()),
    )


# ----------------------------------------------------------------------- calibration


def _sigmoid(z: Floats) -> Floats:
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z: Floats) -> Floats:
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


@dataclass(frozen=True, slots=True)
class PlattCalibration:
    """Platt scaling: ``P(up) = 1 / (1 + exp(-(a s + b)))`` of a raw log-odds score ``s``.

    ``a = 1, b = 0`` is the booster's own probability; ``0 < a < 1`` shrinks an
    over-confident booster towards ``b``'s base rate.
    """

    a: float
    b: float

    def apply(self, raw: npt.ArrayLike) -> Floats:
        """Calibrated probabilities of raw scores (any shape)."""
        return _sigmoid(self.a * np.asarray(raw, dtype=np.float64) + self.b)

    def apply_one(self, raw: float) -> float:
        """Calibrated probability of one raw score (scalar fast path)."""
        z = self.a * raw + self.b
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


def fit_platt(raw: npt.ArrayLike, up: npt.ArrayLike, *, monotone: bool = True,
              max_iter: int = 100, tol: float = 1e-10) -> PlattCalibration:
    """Fit Platt scaling by Newton's method (a two-parameter logistic regression).

    Parameters
    ----------
    raw : array_like of float
        Raw scores, ideally out-of-fold (in-sample scores are over-confident).
    up : array_like of bool or 0/1
        Outcomes.
    monotone : bool, default True
        Constrain ``a >= 0``. A negative slope would *reverse* the booster's ranking
        because of its out-of-fold scores, which on near-coin-flip data is noise; the
        constrained fit then is ``a = 0`` and the (smoothed) base rate.
    max_iter, tol
        Newton iterations and the convergence threshold on the step.

    Returns
    -------
    PlattCalibration

    Notes
    -----
    Targets are Platt's smoothed ``(N_up + 1) / (N_up + 2)`` and ``1 / (N_down + 2)``
    instead of 1 and 0, so separable data give a finite fit; a ridge of ``1e-9`` on the
    Hessian keeps a constant score (``a`` not identified) solvable, at ``a = 0``.
    """
    s, y = _scored(raw, up, "fit_platt")
    n_up = float(y.sum())
    n_down = float(y.size - n_up)
    t = np.where(y == 1, (n_up + 1.0) / (n_up + 2.0), 1.0 / (n_down + 2.0))
    design = np.column_stack([s, np.ones_like(s)])
    theta = np.array([0.0, math.log((n_up + 1.0) / (n_down + 1.0))])

    def loss(th: Floats) -> float:
        z = design @ th
        return float(np.sum(t * _softplus(-z) + (1.0 - t) * _softplus(z)))

    current = loss(theta)
    for _ in range(max_iter):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - t)
        hess = (design * (p * (1.0 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-8:  # backtracking: Newton on a convex loss, kept monotone
            trial = theta - scale * step
            value = loss(trial)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        theta, current = trial, value
        if float(np.max(np.abs(scale * step))) < tol:
            break
    if monotone and theta[0] < 0:  # the convex loss' optimum on a = 0: b = logit(mean t)
        mean_t = float(t.mean())
        return PlattCalibration(a=0.0, b=math.log(mean_t / (1.0 - mean_t)))
    return PlattCalibration(a=float(theta[0]), b=float(theta[1]))


# --------------------------------------------------------------------- the fast path


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """A LightGBM binary model's trees as flat arrays, evaluated with numpy alone.

    Nodes of all trees share one numbering; a leaf is a node whose children are itself,
    so walking every tree ``depth`` steps from its root lands on its leaf. The raw score
    is the sum of the leaves over trees **in tree order** (as LightGBM adds them), so it
    equals ``Booster.predict(X, raw_score=True)`` bit for bit, missing values included
    (LightGBM's rules: a NaN is 0.0 unless the split's missing type is NaN; a missing value
    goes the split's default side).

    Attributes
    ----------
    n_features : int
    feature, threshold, left, right, value, default_left, missing_type : numpy.ndarray
        Per node: split feature, threshold (``x <= threshold`` goes left), children,
        leaf value (0 at splits), default direction, missing type (0 None, 1 Zero, 2 NaN).
    roots : numpy.ndarray of int64
        Root node of each tree, in tree order.
    depth : int
        Longest root-to-leaf path.
    """

    n_features: int
    feature: Ints
    threshold: Floats
    left: Ints
    right: Ints
    value: Floats
    default_left: Bools
    missing_type: npt.NDArray[np.int8]
    roots: Ints
    depth: int
    _simple: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name, dtype in (("feature", np.int64), ("threshold", np.float64),
                            ("left", np.int64), ("right", np.int64), ("value", np.float64),
                            ("default_left", np.bool_), ("missing_type", np.int8),
                            ("roots", np.int64)):
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        # no zero-as-missing split: a finite row needs nothing but the comparisons
        object.__setattr__(self, "_simple", not bool(np.any(self.missing_type == 1)))

    @classmethod
    def from_dump(cls, dump: Mapping[str, Any]) -> TreeEnsemble:
        """Flatten ``Booster.dump_model()`` of a single-output, numerical-split model."""
        if dump.get("num_tree_per_iteration", 1) != 1 or dump.get("average_output", False):
            raise ValueError("only single-output, non-averaged (not rf) models are supported")
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        default_left: list[bool] = []
        missing: list[int] = []
        roots: list[int] = []
        depth = 0

        def node(spec: Mapping[str, Any], level: int) -> int:
            nonlocal depth
            i = len(feature)
            feature.append(0)
            threshold.append(math.inf)
            left.append(i)
            right.append(i)
            value.append(0.0)
            default_left.append(False)
            missing.append(0)
            if "leaf_value" in spec:
                if "leaf_coeff" in spec:
                    raise ValueError("linear trees are not supported")
                value[i] = float(spec["leaf_value"])
                depth = max(depth, level)
                return i
            if spec.get("decision_type") != "<=":
                raise ValueError(f"split type {spec.get('decision_type')!r} is not supported "
                                 f"(numerical '<=' only)")
            feature[i] = int(spec["split_feature"])
            threshold[i] = float(spec["threshold"])
            default_left[i] = bool(spec["default_left"])
            missing[i] = _MISSING_CODES[spec["missing_type"]]
            left[i] = node(spec["left_child"], level + 1)
            right[i] = node(spec["right_child"], level + 1)
            return i

        for tree in dump["tree_info"]:
            roots.append(node(tree["tree_structure"], 0))
        if not roots:
            raise ValueError("the model has no trees")
        return cls(n_features=int(dump["max_feature_idx"]) + 1, feature=feature,
                   threshold=threshold, left=left, right=right, value=value,
                   default_left=default_left, missing_type=missing, roots=roots, depth=depth)

    def _step(self, x: Floats, nodes: Ints, simple: bool) -> Ints:
        """One level down every tree: ``x`` is a row (nodes per tree) or a matrix (nodes
        per row and tree)."""
        feat = self.feature[nodes]
        v = x[feat] if x.ndim == 1 else np.take_along_axis(x, feat, axis=1)
        if simple:
            return np.where(v <= self.threshold[nodes], self.left[nodes], self.right[nodes])
        mt = self.missing_type[nodes]
        nan = np.isnan(v)
        v = np.where(nan & (mt != 2), 0.0, v)
        is_missing = ((mt == 1) & (np.abs(v) <= _ZERO_THRESHOLD)) | ((mt == 2) & nan)
        go_left = np.where(is_missing, self.default_left[nodes], v <= self.threshold[nodes])
        return np.where(go_left, self.left[nodes], self.right[nodes])

    def raw_one(self, x: Floats) -> float:
        """Raw score (log-odds) of one row ``x``: float64, shape ``(n_features,)``."""
        nodes = self.roots
        if self._simple and not np.isnan(x).any():
            feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
            for _ in range(self.depth):
                nodes = np.where(x[feature[nodes]] <= threshold[nodes], left[nodes],
                                 right[nodes])
        else:
            for _ in range(self.depth):
                nodes = self._step(x, nodes, simple=False)
        return float(np.cumsum(self.value[nodes])[-1])  # sequential, in tree order

    def raw(self, X: npt.ArrayLike) -> Floats:
        """Raw scores of the rows of ``X``, shape ``(n, n_features)``."""
        xa = np.asarray(X, dtype=np.float64)
        if xa.ndim != 2 or xa.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), got {xa.shape}")
        nodes = np.broadcast_to(self.roots, (xa.shape[0], self.roots.size))
        simple = self._simple and not bool(np.isnan(xa).any())
        for _ in range(self.depth):
            nodes = self._step(xa, nodes, simple)
        leaves = self.value[nodes]
        out = np.zeros(xa.shape[0])
        for j in range(leaves.shape[1]):  # tree order, like LightGBM
            out += leaves[:, j]
        return out


# ------------------------------------------------------------------------ the model


def _check_design(X: npt.ArrayLike, what: str, n_features: int | None = None) -> Floats:
    xa = np.asarray(X, dtype=np.float64)
    if xa.ndim != 2:
        raise ValueError(f"{what}: X must be 2-D (rows, features), got shape {xa.shape}")
    if n_features is not None and xa.shape[1] != n_features:
        raise ValueError(f"{what}: X has {xa.shape[1]} features, the model {n_features}")
    if bool(np.any(np.isinf(xa))):
        raise ValueError(f"{what}: X has infinite values (NaN is allowed: missing)")
    return xa


@dataclass(frozen=True, eq=False)
class DirectionFit:
    """A trained direction model: booster, calibration and the flat-array fast path.

    Attributes
    ----------
    booster : lightgbm.Booster
        The model trained on the whole training window.
    calibration : PlattCalibration
        Fitted on out-of-fold raw scores (purged k-fold inside the training window).
    ensemble : TreeEnsemble
        ``booster`` as flat arrays, for :meth:`predict_one`.
    feature_names : tuple of str
    n_train : int
        Training rows.
    base_rate : float
        Share of up labels among them.
    oof : ProbabilityScore or None
        Calibrated out-of-fold score inside the training window (calibration fitted on the
        same rows: two parameters, slightly optimistic); None for a loaded model that was
        saved without it.
    """

    booster: Any
    calibration: PlattCalibration
    ensemble: TreeEnsemble
    feature_names: tuple[str, ...]
    n_train: int
    base_rate: float
    oof: ProbabilityScore | None

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def raw_score(self, X: npt.ArrayLike) -> Floats:
        """Booster raw scores (log-odds) of the rows of ``X`` (LightGBM, batch)."""
        xa = _check_design(X, "raw_score", self.n_features)
        return np.asarray(self.booster.predict(xa, raw_score=True, num_threads=1),
                          dtype=np.float64)

    def predict(self, X: npt.ArrayLike) -> Floats:
        """Calibrated P(up) of the rows of ``X`` (LightGBM, batch)."""
        return self.calibration.apply(self.raw_score(X))

    def predict_one(self, x: npt.ArrayLike) -> float:
        """Calibrated P(up) of one row, shape ``(n_features,)``; the latency path.

        Evaluates :attr:`ensemble` (numpy, ~14 us for 150 depth-3 trees on an idle
        2-core machine) rather than ``Booster.predict`` (:meth:`predict_one_native`), whose
        cost for one row is almost all per-call overhead: argument checks and a predictor
        with its config built on every call, ~22 us idle, 40-80 us on a busy machine. Worse,
        ``Booster.predict`` does not inherit the training ``num_threads``: left to OpenMP's
        default it wakes every core for one row and took 0.1-1 ms per call under load
        (hence ``num_threads=1`` in every native call here). The raw score is identical
        to ``Booster.predict(raw_score=True)``, bit for bit.
        """
        xa = np.asarray(x, dtype=np.float64)
        if xa.shape != (self.ensemble.n_features,):
            raise ValueError(f"x must have shape ({self.ensemble.n_features},), got {xa.shape}")
        return self.calibration.apply_one(self.ensemble.raw_one(xa))

    def predict_one_native(self, x: npt.ArrayLike) -> float:
        """:meth:`predict_one` through ``Booster.predict`` on a (1, n_features) float64
        array (single-threaded): the same value, slower; kept for comparison."""
        xa = np.asarray(x, dtype=np.float64).reshape(1, -1)
        raw = self.booster.predict(xa, raw_score=True, num_threads=1)
        return self.calibration.apply_one(float(raw[0]))

    def to_bytes(self) -> bytes:
        """UTF-8 JSON: the LightGBM model string, the calibration and the metadata."""
        payload = {
            "format": SERIAL_FORMAT,
            "model": self.booster.model_to_string(),
            "calibration": {"a": self.calibration.a, "b": self.calibration.b},
            "feature_names": list(self.feature_names),
            "n_train": self.n_train,
            "base_rate": self.base_rate,
            "oof": None if self.oof is None else asdict(self.oof),
            # the trees as LightGBM dumps them: serving rebuilds the flat-array evaluator
            # from these without importing lightgbm (DirectionPredictor)
            "trees": self.booster.dump_model(),
        }
        return json.dumps(payload, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> DirectionFit:
        """The inverse of :meth:`to_bytes` (predictions identical to the saved model's)."""
        import lightgbm

        payload = read_payload(data, SERIAL_FORMAT, "direction model")
        booster = lightgbm.Booster(model_str=payload["model"])
        names = tuple(payload["feature_names"])
        if tuple(booster.feature_name()) != names:
            raise ValueError("feature names of the payload and of its model differ")
        cal = payload["calibration"]
        oof = payload.get("oof")
        return cls(booster=booster,
                   calibration=PlattCalibration(a=float(cal["a"]), b=float(cal["b"])),
                   ensemble=TreeEnsemble.from_dump(booster.dump_model()),
                   feature_names=names, n_train=int(payload["n_train"]),
                   base_rate=float(payload["base_rate"]),
                   oof=None if oof is None else ProbabilityScore(**oof))


@dataclass(frozen=True, slots=True)
class DirectionPredictor:
    """What serving needs of a :class:`DirectionFit`: the flat-array trees and the
    calibration, loaded from :meth:`DirectionFit.to_bytes` **without importing lightgbm**
    (about 1.5 s of a cold start). Predictions equal :meth:`DirectionFit.predict_one`."""

    ensemble: TreeEnsemble
    calibration: PlattCalibration
    feature_names: tuple[str, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> DirectionPredictor:
        payload = read_payload(data, SERIAL_FORMAT, "direction model")
        if "trees" not in payload:
            raise ValueError(f"a {SERIAL_FORMAT} payload without its trees (saved before "
                             f"serving could load it without lightgbm): retrain it")
        cal = payload["calibration"]
        return cls(ensemble=TreeEnsemble.from_dump(payload["trees"]),
                   calibration=PlattCalibration(a=float(cal["a"]), b=float(cal["b"])),
                   feature_names=tuple(payload["feature_names"]))

    def predict_one(self, x: npt.ArrayLike) -> float:
        """Calibrated P(up) of one row, shape ``(n_features,)``."""
        xa = np.asarray(x, dtype=np.float64)
        if xa.shape != (self.ensemble.n_features,):
            raise ValueError(f"x must have shape ({self.ensemble.n_features},), got {xa.shape}")
        return self.calibration.apply_one(self.ensemble.raw_one(xa))


@dataclass(frozen=True, slots=True)
class DirectionModel:
    """How to train a direction model (a recipe; :meth:`fit` returns a :class:`DirectionFit`).

    Attributes
    ----------
    horizon : int, default 5
        Label look-ahead ``h`` in rows: the purge width of the calibration folds (and of
        :func:`evaluate_direction`'s walk-forward).
    calibration_folds : int, default 5
        Folds of the purged k-fold producing out-of-fold raw scores for the calibration.
    embargo : int, default 5
        Rows embargoed after each purged calibration fold.
    num_boost_round : int, default 150
        Boosting rounds.
    params : mapping
        Overrides of :data:`DEFAULT_PARAMS`. ``objective`` (binary), ``deterministic``,
        ``force_col_wise`` and ``verbosity`` are fixed; round-count aliases, linear trees
        and categorical features are refused.
    """

    horizon: int = DEFAULT_HORIZON
    calibration_folds: int = 5
    embargo: int = DEFAULT_HORIZON
    num_boost_round: int = DEFAULT_ROUNDS
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for name, minimum in (("horizon", 1), ("calibration_folds", 2), ("embargo", 0),
                              ("num_boost_round", 1)):
            value = getattr(self, name)
            if int(value) != value or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def resolved_params(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:data:`DEFAULT_PARAMS`, then :attr:`params`, then ``params``, checked."""
        merged = {**DEFAULT_PARAMS, **self.params, **(params or {})}
        bad = sorted(_ROUND_ALIASES.intersection(merged))
        if bad:
            raise ValueError(f"set the number of rounds with num_boost_round, not {bad}")
        bad = sorted(_UNSUPPORTED.intersection(merged))
        if bad:
            raise ValueError(f"unsupported LightGBM parameters {bad}")
        for key, required in _FORCED.items():
            if merged.get(key, required) != required:
                raise ValueError(f"LightGBM parameter {key} is fixed to {required!r}")
        merged.update(_FORCED)
        return merged

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, *,
            params: Mapping[str, Any] | None = None, num_boost_round: int | None = None,
            feature_names: Sequence[str] | None = None) -> DirectionFit:
        """Train the booster and its calibration on time-ordered rows.

        Parameters
        ----------
        X : array_like, shape (n, n_features)
            Features, rows oldest first (NaN is LightGBM's missing value; no infinities).
        y : array_like of bool or 0/1, shape (n,)
            Up labels; both classes present.
        params : mapping, optional
            Per-call overrides on top of :attr:`params`.
        num_boost_round : int, optional
            Default :attr:`num_boost_round`.
        feature_names : sequence of str, optional
            Default ``x0, x1, ...``.

        Returns
        -------
        DirectionFit

        Notes
        -----
        The calibration folds are purged by *position* in ``X``. When rows were dropped
        (warm-up, dead zone), positions are closer than calendar rows, so the purge is
        wider than needed, never narrower.
        """
        xa = _check_design(X, "DirectionModel.fit")
        ya = np.asarray(y)
        if ya.shape != (xa.shape[0],):
            raise ValueError(f"y must have shape ({xa.shape[0]},), got {ya.shape}")
        yf = ya.astype(np.float64)
        if not bool(np.all((yf == 0) | (yf == 1))):
            raise ValueError("y must be 0/1 or bool")
        n = xa.shape[0]
        if n < _MIN_FIT_ROWS:
            raise ValueError(f"need at least {_MIN_FIT_ROWS} rows, got {n}")
        if yf.min() == yf.max():
            raise ValueError("y has a single class: nothing to learn")
        names = (tuple(f"x{j}" for j in range(xa.shape[1])) if feature_names is None
                 else tuple(str(f) for f in feature_names))
        if len(names) != xa.shape[1]:
            raise ValueError(f"{len(names)} feature names for {xa.shape[1]} features")
        resolved = self.resolved_params(params)
        rounds = self.num_boost_round if num_boost_round is None else int(num_boost_round)
        if rounds < 1:
            raise ValueError(f"num_boost_round must be >= 1, got {num_boost_round!r}")

        oof = np.empty(n)
        for split in purged_kfold(n, self.calibration_folds, label_horizon=self.horizon,
                                  embargo=self.embargo):
            fold_y = yf[split.train]
            if fold_y.min() == fold_y.max():
                raise ValueError("a calibration fold's training rows have a single class")
            booster = _train(xa[split.train], fold_y, names, resolved, rounds)
            oof[split.test] = booster.predict(xa[split.test], raw_score=True, num_threads=1)
        calibration = fit_platt(oof, yf)
        booster = _train(xa, yf, names, resolved, rounds)
        return DirectionFit(booster=booster, calibration=calibration,
                            ensemble=TreeEnsemble.from_dump(booster.dump_model()),
                            feature_names=names, n_train=n, base_rate=float(yf.mean()),
                            oof=score_probabilities(calibration.apply(oof), yf))


def _train(X: Floats, y: Floats, names: tuple[str, ...], params: Mapping[str, Any],
           rounds: int) -> Any:
    import lightgbm

    data = lightgbm.Dataset(X, label=y, feature_name=list(names), free_raw_data=True)
    return lightgbm.train(dict(params), data, num_boost_round=rounds)


# ------------------------------------------------------------------- the evaluation


@dataclass(frozen=True, eq=False)
class DirectionReport:
    """Walk-forward out-of-sample forecasts of the direction and how good they were.

    Attributes
    ----------
    rows : numpy.ndarray of int64
        Panel rows (decision days ``t``) of the scored forecasts, ascending.
    dates : numpy.ndarray of datetime64
        Their dates.
    p_up : numpy.ndarray of float64
        Calibrated P(up over ``t .. t + h``), made from rows ``<= t`` and labels known by
        the start of ``t``'s test block.
    raw_p : numpy.ndarray of float64
        The booster's own probability ``sigmoid(raw score)``, before calibration.
    up : numpy.ndarray of bool
        What happened.
    forward_return : numpy.ndarray of float64
        ``ln(C_{t+h} / C_t)``.
    score : ProbabilityScore
        Of ``p_up``: the headline.
    raw : ProbabilityScore
        Of ``raw_p``: what the calibration changed.
    n_splits : int
        Walk-forward refits.
    horizon : int
    dead_zone : float
    feature_names : tuple of str
    """

    rows: Ints
    dates: npt.NDArray[np.datetime64]
    p_up: Floats
    raw_p: Floats
    up: Bools
    forward_return: Floats
    score: ProbabilityScore
    raw: ProbabilityScore
    n_splits: int
    horizon: int
    dead_zone: float
    feature_names: tuple[str, ...]

    @property
    def effective_n(self) -> float:
        """About ``n / h`` independent outcomes: daily origins, ``h``-day labels overlap."""
        return self.score.n / max(self.horizon, 1)

    @property
    def accuracy_se(self) -> float:
        """Standard error of the accuracy under no skill, with :attr:`effective_n`."""
        acc = self.score.majority_accuracy
        return math.sqrt(acc * (1.0 - acc) / self.effective_n)

    def explain(self) -> str:
        s = self.score
        return (f"{s.n} OOS forecasts ({self.n_splits} refits, h={self.horizon}): "
                f"accuracy {s.accuracy:.3f} vs base rate {s.base_rate:.3f} "
                f"(majority {s.majority_accuracy:.3f}, se ~{self.accuracy_se:.3f}), "
                f"AUC {s.auc:.3f}, Brier {s.brier:.4f} (base rate {s.brier_base_rate:.4f}), "
                f"log loss {s.log_loss:.4f}, ECE {s.ece:.3f}")


def evaluate_direction(panel: Panel, *, model: DirectionModel | None = None,
                       features: Sequence[Feature] | None = None, dead_zone: float = 0.0,
                       min_train: int = 1000, test_size: int = 250,
                       max_train: int | None = None, bins: int = 10) -> DirectionReport:
    """Walk-forward out-of-sample evaluation of :class:`DirectionModel` on a panel.

    Parameters
    ----------
    panel : Panel
        Daily history with the columns ``features`` need (``close`` at least).
    model : DirectionModel, optional
        Default ``DirectionModel()``; its ``horizon`` is the label horizon ``h``.
    features : sequence of Feature, optional
        Default :func:`shared.domain.features.default_features`.
    dead_zone : float, default 0.0
        Training rows need ``|r| > dead_zone``; scoring uses every row with a direction.
    min_train, test_size, max_train
        Of :func:`shared.domain.models.cv.walk_forward_splits`, in panel rows (warm-up rows
        with incomplete features count; they are not trained on). The model is refitted at
        the start of every test block, on rows ending ``h + 1`` rows before it.
    bins : int, default 10
        Of the ECE.

    Returns
    -------
    DirectionReport
    """
    model = DirectionModel() if model is None else model
    features = default_features() if features is None else tuple(features)
    h = model.horizon
    matrix = compute_features(panel, features)
    labels = direction_labels(panel["close"], horizon=h, dead_zone=dead_zone)
    complete = matrix.complete_rows
    trainable = complete & labels.trainable
    scorable = complete & labels.has_direction
    splits = walk_forward_splits(len(panel), min_train=min_train, test_size=test_size,
                                 max_train=max_train, label_horizon=h)
    rows, p_up, raw = [], [], []
    n_fits = 0
    for split in splits:
        train = split.train[trainable[split.train]]
        test = split.test[scorable[split.test]]
        if test.size == 0:
            continue
        fit = model.fit(matrix.values[train], labels.up[train], feature_names=matrix.names)
        n_fits += 1
        scores = fit.raw_score(matrix.values[test])
        rows.append(test)
        raw.append(scores)
        p_up.append(fit.calibration.apply(scores))
    if not rows:
        raise ValueError("no test row has complete features and a realised direction")
    r = np.concatenate(rows)
    p = np.concatenate(p_up)
    raw_p = _sigmoid(np.concatenate(raw))
    up = labels.up[r]
    return DirectionReport(
        rows=_frozen(r, np.int64), dates=_frozen(panel.index[r], panel.index.dtype),
        p_up=_frozen(p), raw_p=_frozen(raw_p), up=_frozen(up, np.bool_),
        forward_return=_frozen(labels.forward_return[r]),
        score=score_probabilities(p, up, bins=bins), raw=score_probabilities(raw_p, up, bins=bins),
        n_splits=n_fits, horizon=h, dead_zone=float(dead_zone), feature_names=matrix.names)
