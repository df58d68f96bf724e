"""Drift and robustness (pure domain): feature drift, IC decay, PSR/DSR, and model health.

A model is unhealthy when it is **stale** (not retrained for longer than a multiple of its
cadence), its input features have **drifted** away from the training window (PSI or a
two-sample KS test), or its predictive power has **decayed** (the recent rank IC has
fallen well below the reference IC). :func:`model_health` joins the three into one
frozen verdict with human reasons, so the model-staleness kill switch can act on it.
:func:`probabilistic_sharpe` and :func:`deflated_sharpe` judge a strategy's return series
(is its Sharpe ratio real, given its length, skew, fat tails and the number of trials?).

No I/O, no clock, no environment: ``now`` is an argument, inputs are numpy arrays (oldest
first), results are frozen dataclasses whose arrays are read-only copies. scipy is
imported lazily, by :func:`ks_drift` only.

Conventions
-----------
missing values
    Non-finite values (NaN, +-inf) are *missing*. :func:`psi`, :func:`ks_drift` and
    :func:`feature_drift` drop them (per feature) and report how many were dropped;
    :func:`rolling_ic` drops non-finite pairs inside a window; the Sharpe functions refuse
    them (a missing return is not a zero return; the caller decides).
NaN results
    A NaN in a result always comes with a ``reason`` (or, for :class:`IcSeries`, a
    ``status`` code per element) saying why. Invalid *arguments* (wrong shapes, a negative
    window, a naive datetime) raise :class:`ValueError` instead.
Sharpe ratios
    Per period (per return observation): ``SR = mean(r) / std(r, ddof=1)``. Nothing is
    annualised in this module; an annualised SR is ``sqrt(P) * SR`` for ``P`` periods a
    year (252 trading days), and a variance of annualised SRs is ``P`` times the
    per-period one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "EULER_GAMMA",
    "PSI_DRIFTED",
    "PSI_MODERATE",
    "DriftReport",
    "FeatureDrift",
    "IcDecay",
    "IcSeries",
    "KsResult",
    "ModelHealth",
    "PsiLevel",
    "PsiResult",
    "SharpeStat",
    "deflated_sharpe",
    "expected_max_sharpe",
    "feature_drift",
    "ic_decay",
    "ks_drift",
    "model_health",
    "probabilistic_sharpe",
    "probabilistic_sharpe_from_moments",
    "psi",
    "psi_level",
    "rolling_ic",
]

Floats = npt.NDArray[np.float64]
PsiLevel = Literal["stable", "moderate", "drifted", "undetermined"]

PSI_MODERATE = 0.10  # PSI at or above this is a moderate shift (rule of thumb)
PSI_DRIFTED = 0.25  # PSI at or above this is a significant shift (rule of thumb)
EULER_GAMMA = 0.5772156649015329  # Euler-Mascheroni constant
_STD_NORMAL = NormalDist()
_TINY_VAR = 64.0 * np.finfo(np.float64).eps  # relative size below which a variance is 0


def _frozen(a: npt.ArrayLike, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy of ``a``."""
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


def _as_1d(x: npt.ArrayLike, name: str) -> Floats:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _finite_part(x: npt.ArrayLike, name: str) -> tuple[Floats, int]:
    """The finite values of 1-D ``x`` and how many non-finite ones were dropped."""
    a = _as_1d(x, name)
    keep = np.isfinite(a)
    return a[keep], int(a.size - keep.sum())


def _norm_cdf(z: float) -> float:
    """Standard normal CDF, accurate in both tails: ``0.5 erfc(-z / sqrt 2)``."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


# --------------------------------------------------------------------------------------
# Population Stability Index
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PsiResult:
    """Population Stability Index of one feature (arrays are read-only).

    Attributes
    ----------
    value : float
        ``PSI = sum_i (q_i - p_i) ln(q_i / p_i)`` over the bins, dimensionless, ``>= 0``
        (0 when the shares match). NaN (with ``reason``) when a sample is empty.
    level : {"stable", "moderate", "drifted", "undetermined"}
        The rule of thumb: ``stable`` below :data:`PSI_MODERATE` (0.10), ``moderate``
        below :data:`PSI_DRIFTED` (0.25), ``drifted`` at or above it; ``undetermined``
        when ``value`` is NaN.
    edges : ndarray of float64, shape (n_bins + 1,)
        Bin edges, ``-inf`` first and ``+inf`` last; bin ``i`` is the half-open interval
        ``[edges[i], edges[i+1])``.
    expected_share, actual_share : ndarray of float64, shape (n_bins,)
        Smoothed shares ``p_i`` (training sample) and ``q_i`` (recent sample); each sums
        to 1.
    expected_count, actual_count : ndarray of int64, shape (n_bins,)
        Raw counts per bin.
    contribution : ndarray of float64, shape (n_bins,)
        ``(q_i - p_i) ln(q_i / p_i)`` per bin (each ``>= 0``; they sum to ``value``), to
        see *where* the distribution moved.
    n_expected, n_actual : int
        Finite values used from each sample.
    n_expected_missing, n_actual_missing : int
        Non-finite values dropped from each sample.
    reason : str or None
        Why ``value`` is NaN; None when it is a number.
    """

    value: float
    level: PsiLevel
    edges: Floats
    expected_share: Floats
    actual_share: Floats
    expected_count: npt.NDArray[np.int64]
    actual_count: npt.NDArray[np.int64]
    contribution: Floats
    n_expected: int
    n_actual: int
    n_expected_missing: int = 0
    n_actual_missing: int = 0
    reason: str | None = None

    @property
    def n_bins(self) -> int:
        """Bins actually used (fewer than asked when training quantiles tie)."""
        return int(self.expected_share.size)


def psi_level(value: float) -> PsiLevel:
    """The rule-of-thumb level of a PSI value (see :class:`PsiResult`)."""
    if not math.isfinite(value):
        return "undetermined"
    if value < PSI_MODERATE:
        return "stable"
    if value < PSI_DRIFTED:
        return "moderate"
    return "drifted"


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike, *, bins: int = 10,
        eps: float = 1e-6) -> PsiResult:
    """Population Stability Index of ``actual`` (recent) against ``expected`` (training).

    Bins come from the training sample only: the inner edges are its quantiles at
    ``1/B, 2/B, .., (B-1)/B`` (``numpy.quantile``, linear interpolation), duplicates
    removed (a feature with ties at a quantile gets fewer bins), and the outer bins are
    open-ended, so recent values beyond the training range land in the first or last bin
    instead of being lost. Bin ``i`` is ``[e_i, e_{i+1})``.

    With counts ``c_i`` out of ``n`` the share is smoothed additively,

    ``p_i = (c_i / n + eps) / (1 + B eps)``,

    which keeps every share positive (an empty bin would make the log infinite) and the
    shares summing to 1, and then

    ``PSI = sum_i (q_i - p_i) ln(q_i / p_i)``

    with ``p`` the training shares and ``q`` the recent ones. PSI is the symmetrised
    Kullback-Leibler (Jeffreys) divergence ``KL(q||p) + KL(p||q)`` of the binned shares.

    Reading it (industry rule of thumb from credit scoring, not a statistical test):
    ``PSI < 0.10`` no material shift, ``0.10 <= PSI < 0.25`` moderate shift, worth a
    look, ``PSI >= 0.25`` significant shift, the model should not be trusted unchanged.

    Symmetry and sampling noise: for *given* bins the formula is symmetric in ``p`` and
    ``q``, but the bins are the training quantiles, so ``psi(a, b)`` and ``psi(b, a)``
    differ slightly (they are close for a pure location shift of similar samples). Two
    samples from the *same* distribution give a small positive PSI of about
    ``(B - 1) (1/n + 1/m)`` (the binned Jeffreys divergence times ``nm/(n+m)`` is
    asymptotically chi-squared with ``B - 1`` degrees of freedom), so with ``B = 10`` and
    100 recent values the noise floor alone is about 0.09: use a few hundred recent
    values or fewer bins.

    Parameters
    ----------
    expected : array_like of float, shape (n,)
        The reference (training-window) sample of the feature.
    actual : array_like of float, shape (m,)
        The recent sample of the same feature, in the same units.
    bins : int, default 10
        Number of quantile bins ``B >= 2`` asked for.
    eps : float, default 1e-6
        Additive share smoothing, ``0 < eps < 1``.

    Returns
    -------
    PsiResult
        NaN value (level ``undetermined``, with ``reason``) when either sample has no
        finite value.
    """
    if isinstance(bins, bool) or int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    e, e_missing = _finite_part(expected, "expected")
    a, a_missing = _finite_part(actual, "actual")
    if e.size == 0 or a.size == 0:
        which = "expected (training)" if e.size == 0 else "actual (recent)"
        empty = np.empty(0)
        return PsiResult(
            value=math.nan, level="undetermined", edges=_frozen(empty),
            expected_share=_frozen(empty), actual_share=_frozen(empty),
            expected_count=_frozen(empty, np.int64), actual_count=_frozen(empty, np.int64),
            contribution=_frozen(empty), n_expected=int(e.size), n_actual=int(a.size),
            n_expected_missing=e_missing, n_actual_missing=a_missing,
            reason=f"no finite values in the {which} sample")
    inner = np.unique(np.quantile(e, np.arange(1, int(bins)) / int(bins)))
    n_bins = inner.size + 1
    ce = np.bincount(np.searchsorted(inner, e, side="right"), minlength=n_bins)
    ca = np.bincount(np.searchsorted(inner, a, side="right"), minlength=n_bins)
    p = (ce / e.size + eps) / (1.0 + n_bins * eps)
    q = (ca / a.size + eps) / (1.0 + n_bins * eps)
    contribution = (q - p) * np.log(q / p)
    value = float(contribution.sum())
    return PsiResult(
        value=value, level=psi_level(value),
        edges=_frozen(np.concatenate(([-np.inf], inner, [np.inf]))),
        expected_share=_frozen(p), actual_share=_frozen(q),
        expected_count=_frozen(ce, np.int64), actual_count=_frozen(ca, np.int64),
        contribution=_frozen(contribution), n_expected=int(e.size), n_actual=int(a.size),
        n_expected_missing=e_missing, n_actual_missing=a_missing)


# --------------------------------------------------------------------------------------
# Two-sample Kolmogorov-Smirnov
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KsResult:
    """Two-sample Kolmogorov-Smirnov test of one feature.

    Attributes
    ----------
    statistic : float
        ``D = sup_x |F_expected(x) - F_actual(x)|`` of the empirical CDFs, in [0, 1].
    pvalue : float
        Two-sided p-value of ``D`` under "same continuous distribution" (Smirnov's
        asymptotic approximation, see :func:`ks_drift`).
    n_expected, n_actual : int
        Finite values used from each sample.
    effective_n : float
        ``n m / (n + m)``.
    location : float
        A value ``x`` where the largest gap is attained.
    sign : int
        ``+1`` when ``F_expected(x) > F_actual(x)`` there (the recent sample has less mass
        below ``x``: shifted up), ``-1`` otherwise; 0 when NaN.
    n_expected_missing, n_actual_missing : int
        Non-finite values dropped.
    reason : str or None
        Why ``statistic`` and ``pvalue`` are NaN; None otherwise.
    """

    statistic: float
    pvalue: float
    n_expected: int
    n_actual: int
    effective_n: float
    location: float
    sign: int
    n_expected_missing: int = 0
    n_actual_missing: int = 0
    reason: str | None = None


def ks_drift(expected: npt.ArrayLike, actual: npt.ArrayLike) -> KsResult:
    """Two-sample Kolmogorov-Smirnov statistic and p-value, recent against training.

    ``D = max_x |F_n(x) - G_m(x)|`` over the pooled sample points, with the
    right-continuous empirical CDFs ``F_n(x) = #{e_i <= x} / n`` (ties handled exactly).
    The p-value is Smirnov's approximation ``P(D_N >= D)`` with ``D_N`` the one-sample
    Kolmogorov statistic for ``N = round(n m / (n + m))`` observations
    (``scipy.stats.kstwo``), the same as ``scipy.stats.ks_2samp(method="asymp")``; it is
    close to the exact p-value for samples of a few dozen or more.

    KS detects any difference in distribution and its power grows with the sample sizes:
    with thousands of values a tiny, harmless shift is "significant". Read ``statistic``
    (an effect size: the largest gap between the CDFs) alongside the p-value, and PSI for
    the size of the shift. The test assumes independent observations; autocorrelated
    features make p-values too small.

    Parameters
    ----------
    expected : array_like of float, shape (n,)
        The training-window sample.
    actual : array_like of float, shape (m,)
        The recent sample.

    Returns
    -------
    KsResult
        NaN statistic and p-value (with ``reason``) when either sample has no finite
        value.
    """
    from scipy.stats import kstwo

    e, e_missing = _finite_part(expected, "expected")
    a, a_missing = _finite_part(actual, "actual")
    n, m = int(e.size), int(a.size)
    if n == 0 or m == 0:
        which = "expected (training)" if n == 0 else "actual (recent)"
        return KsResult(statistic=math.nan, pvalue=math.nan, n_expected=n, n_actual=m,
                        effective_n=math.nan, location=math.nan, sign=0,
                        n_expected_missing=e_missing, n_actual_missing=a_missing,
                        reason=f"no finite values in the {which} sample")
    e = np.sort(e)
    a = np.sort(a)
    pooled = np.concatenate([e, a])
    gap = (np.searchsorted(e, pooled, side="right") / n
           - np.searchsorted(a, pooled, side="right") / m)
    i = int(np.argmax(np.abs(gap)))
    d = float(abs(gap[i]))
    en = n * m / (n + m)
    pvalue = float(np.clip(kstwo.sf(d, max(1.0, float(np.round(en)))), 0.0, 1.0))
    return KsResult(statistic=d, pvalue=pvalue, n_expected=n, n_actual=m, effective_n=en,
                    location=float(pooled[i]), sign=1 if gap[i] > 0 else -1,
                    n_expected_missing=e_missing, n_actual_missing=a_missing)


# --------------------------------------------------------------------------------------
# Feature drift
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """Drift of one feature: PSI and KS of the recent window against the training window.

    Attributes
    ----------
    name : str
    psi : PsiResult
    ks : KsResult
    drifted : bool
        ``psi.value >= psi_threshold`` or ``ks.pvalue < ks_alpha``.
    reasons : tuple of str
        Which test(s) fired, with the numbers; empty when not drifted.
    """

    name: str
    psi: PsiResult
    ks: KsResult
    drifted: bool
    reasons: tuple[str, ...] = ()

    @property
    def n_train(self) -> int:
        """Finite training values used."""
        return self.psi.n_expected

    @property
    def n_recent(self) -> int:
        """Finite recent values used."""
        return self.psi.n_actual

    @property
    def n_train_missing(self) -> int:
        """Training rows dropped for this feature (non-finite value)."""
        return self.psi.n_expected_missing

    @property
    def n_recent_missing(self) -> int:
        """Recent rows dropped for this feature (non-finite value)."""
        return self.psi.n_actual_missing

    @property
    def determined(self) -> bool:
        """Whether both tests produced a number."""
        return self.psi.reason is None and self.ks.reason is None


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Feature drift of a model's inputs, recent window against the training window.

    Attributes
    ----------
    features : tuple of FeatureDrift
        One per feature, in column order.
    drifted_features : tuple of str
        Names of the drifted features, in column order.
    undetermined : tuple of str
        Features with no finite value in one of the windows (neither test could run).
    drifted : bool
        Whether any feature drifted.
    psi_threshold, ks_alpha : float
        The thresholds used.
    bins : int
        PSI bins asked for.
    """

    features: tuple[FeatureDrift, ...]
    drifted_features: tuple[str, ...]
    undetermined: tuple[str, ...]
    drifted: bool
    psi_threshold: float
    ks_alpha: float
    bins: int

    def feature(self, name: str) -> FeatureDrift:
        """The drift of feature ``name`` (KeyError if absent)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)


def feature_drift(train: npt.ArrayLike, recent: npt.ArrayLike, names: Sequence[str], *,
                  psi_threshold: float = PSI_DRIFTED, ks_alpha: float = 0.01,
                  bins: int = 10) -> DriftReport:
    """Per-feature drift of the recent window against the training window (PSI and KS).

    Feature ``j`` is drifted when ``PSI_j >= psi_threshold`` **or** the two-sample KS
    p-value ``p_j < ks_alpha`` (:func:`psi`, :func:`ks_drift`). Each feature is judged on
    its own finite values: a row with a NaN in feature ``j`` is dropped for feature ``j``
    only, and the counts are reported. A feature with no finite value in either window is
    *undetermined* (listed, not drifted).

    ``ks_alpha`` applies per feature, so with ``k`` features about ``k * ks_alpha`` of
    stable models are flagged by chance; pass ``ks_alpha / k`` for a Bonferroni bound.
    ``ks_alpha=0`` disables the KS rule and ``psi_threshold=inf`` the PSI rule.

    Parameters
    ----------
    train : array_like of float, shape (n, k)
        Feature matrix of the training window, one row per observation.
    recent : array_like of float, shape (m, k)
        Feature matrix of the recent (serving) window, the same columns.
    names : sequence of str, length k
        Unique feature names, in column order.
    psi_threshold : float, default 0.25
        PSI at or above which a feature has drifted (``> 0``).
    ks_alpha : float, default 0.01
        KS p-value below which a feature has drifted (``0 <= ks_alpha < 1``).
    bins : int, default 10
        PSI quantile bins.

    Returns
    -------
    DriftReport
    """
    X = np.asarray(train, dtype=np.float64)
    Y = np.asarray(recent, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"train and recent must be 2-D (rows x features), got shapes "
                         f"{X.shape} and {Y.shape}")
    k = X.shape[1]
    if Y.shape[1] != k:
        raise ValueError(f"train has {k} features but recent has {Y.shape[1]}")
    labels = tuple(str(s) for s in names)
    if len(labels) != k:
        raise ValueError(f"{len(labels)} names for {k} features")
    if len(set(labels)) != k:
        raise ValueError("feature names must be unique")
    if not (psi_threshold > 0.0):
        raise ValueError(f"psi_threshold must be positive, got {psi_threshold!r}")
    if not (0.0 <= ks_alpha < 1.0):
        raise ValueError(f"ks_alpha must be in [0, 1), got {ks_alpha!r}")
    out: list[FeatureDrift] = []
    for j, name in enumerate(labels):
        p = psi(X[:, j], Y[:, j], bins=bins)
        ks = ks_drift(X[:, j], Y[:, j])
        reasons: list[str] = []
        if p.reason is None and p.value >= psi_threshold:
            reasons.append(f"{name}: PSI {p.value:.3f} >= {psi_threshold:g}")
        if ks.reason is None and ks.pvalue < ks_alpha:
            reasons.append(f"{name}: KS D={ks.statistic:.3f} p={ks.pvalue:.2g} < "
                           f"{ks_alpha:g}")
        out.append(FeatureDrift(name=name, psi=p, ks=ks, drifted=bool(reasons),
                                reasons=tuple(reasons)))
    drifted = tuple(f.name for f in out if f.drifted)
    return DriftReport(features=tuple(out), drifted_features=drifted,
                       undetermined=tuple(f.name for f in out if not f.determined),
                       drifted=bool(drifted), psi_threshold=float(psi_threshold),
                       ks_alpha=float(ks_alpha), bins=int(bins))


# --------------------------------------------------------------------------------------
# Rank IC and its decay
# --------------------------------------------------------------------------------------


_IC_OK = "ok"
_IC_WARMUP = "warmup"
_IC_SPARSE = "sparse"
_IC_CONSTANT = "constant"


def _average_ranks(x: Floats) -> Floats:
    """1-based ranks of ``x``, ties given the average of the ranks they span."""
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    cuts = np.flatnonzero(xs[1:] != xs[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [n]))
    ranks = np.empty(n)
    ranks[order] = np.repeat(0.5 * (starts + ends + 1), ends - starts)
    return ranks


def _spearman(x: Floats, y: Floats) -> float:
    """Spearman rank correlation (average ranks); NaN if either side is constant."""
    rx = _average_ranks(x)
    ry = _average_ranks(y)
    dx = rx - rx.mean()
    dy = ry - ry.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    if sxx <= 0.0 or syy <= 0.0:
        return math.nan
    return float(np.clip((dx @ dy) / math.sqrt(sxx * syy), -1.0, 1.0))


@dataclass(frozen=True, eq=False)
class IcSeries:
    """Rolling Spearman rank information coefficient (arrays are read-only).

    Attributes
    ----------
    ic : ndarray of float64, shape (n,)
        ``ic[t]`` is the Spearman correlation of ``pred`` and ``realised`` over
        observations ``t - window + 1 .. t`` (aligned with the window's *last*
        observation), in [-1, 1]. NaN where ``status[t] != "ok"``.
    n_pairs : ndarray of int64, shape (n,)
        Finite (pred, realised) pairs in each window (0 during warm-up).
    status : ndarray of str, shape (n,)
        Why ``ic[t]`` is or is not a number: ``"ok"``; ``"warmup"`` (``t < window - 1``,
        the window is not full yet); ``"sparse"`` (fewer than ``min_pairs`` finite
        pairs); ``"constant"`` (``pred`` or ``realised`` is constant in the window, so
        the rank correlation is undefined).
    window : int
        Observations per window.
    min_pairs : int
        Fewest finite pairs an IC is computed from.
    """

    ic: Floats
    n_pairs: npt.NDArray[np.int64]
    status: np.ndarray
    window: int
    min_pairs: int

    def __len__(self) -> int:
        return int(self.ic.size)

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        """Where ``ic`` is a number."""
        return self.status == _IC_OK


def rolling_ic(pred: npt.ArrayLike, realised: npt.ArrayLike, *, window: int,
               min_pairs: int | None = None) -> IcSeries:
    """Rolling Spearman rank IC of predictions against realised outcomes.

    ``IC_t = corr(rank(pred_{t-w+1..t}), rank(realised_{t-w+1..t}))`` (Pearson
    correlation of the ranks; ties get the average of the ranks they span, as
    ``scipy.stats.spearmanr``). Pairs with a non-finite value are dropped from the window;
    the IC is computed when at least ``min_pairs`` remain.

    Point in time: ``realised[t]`` must be the outcome the prediction ``pred[t]`` was
    about, and ``IC_t`` is only known once ``realised[t]`` is (e.g. ``h`` days after the
    forecast for an ``h``-day target); aligning them is the caller's job.

    Parameters
    ----------
    pred : array_like of float, shape (n,)
        Model predictions (scores), oldest first.
    realised : array_like of float, shape (n,)
        The realised outcomes the predictions are scored against, aligned with ``pred``.
    window : int
        Observations per window, ``>= 3``.
    min_pairs : int, optional
        Fewest finite pairs needed, ``3 <= min_pairs <= window``; default ``window`` (any
        missing value in the window makes its IC NaN, status ``"sparse"``).

    Returns
    -------
    IcSeries
    """
    p = _as_1d(pred, "pred")
    r = _as_1d(realised, "realised")
    if p.shape != r.shape:
        raise ValueError(f"pred and realised must have the same length, got {p.size} and "
                         f"{r.size}")
    if isinstance(window, bool) or int(window) != window or window < 3:
        raise ValueError(f"window must be an integer >= 3, got {window!r}")
    w = int(window)
    need = w if min_pairs is None else min_pairs
    if isinstance(need, bool) or int(need) != need or not (3 <= need <= w):
        raise ValueError(f"min_pairs must be an integer in [3, window], got {min_pairs!r}")
    need = int(need)
    n = p.size
    ic = np.full(n, np.nan)
    n_pairs = np.zeros(n, dtype=np.int64)
    status = np.full(n, _IC_WARMUP, dtype="<U8")
    ok = np.isfinite(p) & np.isfinite(r)
    for t in range(w - 1, n):
        lo = t - w + 1
        keep = ok[lo:t + 1]
        k = int(keep.sum())
        n_pairs[t] = k
        if k < need:
            status[t] = _IC_SPARSE
            continue
        value = _spearman(p[lo:t + 1][keep], r[lo:t + 1][keep])
        if math.isnan(value):
            status[t] = _IC_CONSTANT
        else:
            ic[t] = value
            status[t] = _IC_OK
    return IcSeries(ic=_frozen(ic), n_pairs=_frozen(n_pairs, np.int64),
                    status=_frozen(status, status.dtype), window=w, min_pairs=need)


@dataclass(frozen=True, slots=True)
class IcDecay:
    """Whether a model's rank IC has decayed: recent window against a reference window.

    Attributes
    ----------
    reference_mean, recent_mean : float
        Mean of the valid IC values in each window; NaN (with ``reason``) when a window
        holds none.
    ratio : float
        ``recent_mean / reference_mean``; NaN (with ``reason``) unless
        ``reference_mean > 0``.
    n_reference, n_recent : int
        Valid IC values averaged in each window.
    min_ratio : float
        The threshold used.
    decayed : bool
        ``recent_mean < min_ratio * reference_mean`` or ``recent_mean < 0``; False when
        undetermined.
    reason : str or None
        Why a field is NaN (an empty window, a non-positive reference); None otherwise.
    """

    reference_mean: float
    recent_mean: float
    ratio: float
    n_reference: int
    n_recent: int
    min_ratio: float
    decayed: bool
    reason: str | None = None

    @property
    def determined(self) -> bool:
        """Whether both windows held a valid IC (the verdict means something)."""
        return math.isfinite(self.reference_mean) and math.isfinite(self.recent_mean)


def ic_decay(ic_series: IcSeries | npt.ArrayLike, *, reference_window: int,
             recent_window: int, min_ratio: float = 0.5) -> IcDecay:
    """Flag IC decay: the recent mean IC has fallen below ``min_ratio`` x the reference.

    With ``ic`` the series (oldest first) of length ``n``, the *recent* window is its last
    ``recent_window`` values and the *reference* window the ``reference_window`` values
    just before them. NaN values are skipped. The model has decayed when

    ``mean_recent < min_ratio * mean_reference``  or  ``mean_recent < 0``

    (so a model whose reference IC was already non-positive is flagged only when the
    recent IC is negative). No significance test is made: rolling IC values overlap
    (adjacent ones share ``window - 1`` observations), so keep the windows several IC
    windows long for the means to be stable.

    Parameters
    ----------
    ic_series : IcSeries or array_like of float, shape (n,)
        Rolling IC (e.g. from :func:`rolling_ic`), oldest first.
    reference_window, recent_window : int
        Lengths of the two windows, in IC observations, each ``>= 1``.
    min_ratio : float, default 0.5
        ``0 <= min_ratio <= 1``.

    Returns
    -------
    IcDecay
        Undetermined (NaN means, ``decayed=False``, with ``reason``) when the series is
        shorter than the two windows or a window has no valid IC.
    """
    ic = ic_series.ic if isinstance(ic_series, IcSeries) else _as_1d(ic_series, "ic_series")
    for label, v in (("reference_window", reference_window), ("recent_window", recent_window)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {v!r}")
    if not (0.0 <= min_ratio <= 1.0):
        raise ValueError(f"min_ratio must be in [0, 1], got {min_ratio!r}")
    ref_w, rec_w = int(reference_window), int(recent_window)
    if ic.size < ref_w + rec_w:
        return IcDecay(reference_mean=math.nan, recent_mean=math.nan, ratio=math.nan,
                       n_reference=0, n_recent=0, min_ratio=float(min_ratio), decayed=False,
                       reason=f"IC series has {ic.size} values, fewer than reference_window "
                              f"+ recent_window = {ref_w + rec_w}")
    recent = ic[ic.size - rec_w:]
    reference = ic[ic.size - rec_w - ref_w: ic.size - rec_w]
    recent = recent[np.isfinite(recent)]
    reference = reference[np.isfinite(reference)]
    n_ref, n_rec = int(reference.size), int(recent.size)
    if n_ref == 0 or n_rec == 0:
        which = "reference" if n_ref == 0 else "recent"
        return IcDecay(reference_mean=float(reference.mean()) if n_ref else math.nan,
                       recent_mean=float(recent.mean()) if n_rec else math.nan,
                       ratio=math.nan, n_reference=n_ref, n_recent=n_rec,
                       min_ratio=float(min_ratio), decayed=False,
                       reason=f"no valid IC in the {which} window")
    ref_mean = float(reference.mean())
    rec_mean = float(recent.mean())
    decayed = rec_mean < min_ratio * ref_mean or rec_mean < 0.0
    if ref_mean > 0.0:
        ratio, reason = rec_mean / ref_mean, None
    else:
        ratio, reason = math.nan, f"reference mean IC {ref_mean:.4f} <= 0: ratio undefined"
    return IcDecay(reference_mean=ref_mean, recent_mean=rec_mean, ratio=ratio,
                   n_reference=n_ref, n_recent=n_rec, min_ratio=float(min_ratio),
                   decayed=bool(decayed), reason=reason)


# --------------------------------------------------------------------------------------
# Probabilistic and Deflated Sharpe ratios
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SharpeStat:
    """Probabilistic (or Deflated) Sharpe ratio of a return series.

    Attributes
    ----------
    probability : float
        ``PSR(SR*) = Phi(z)``: the probability that the true per-period Sharpe ratio
        exceeds the benchmark ``SR*``, in [0, 1]. For :func:`deflated_sharpe` this is the
        DSR. NaN (with ``reason``) when it cannot be computed.
    z : float
        ``(SR - SR*) / std_error``.
    sharpe : float
        Observed per-period Sharpe ratio ``mean / std (ddof=1)``, **not annualised**.
    benchmark_sr : float
        ``SR*``, per period (for the DSR: the expected maximum Sharpe of ``n_trials``
        unskilled trials, :func:`expected_max_sharpe`).
    std_error : float
        ``sqrt((1 - g3 SR + (g4 - 1) / 4 SR^2) / (n - 1))``, per period.
    n : int
        Number of returns.
    skewness : float
        ``g3 = m3 / m2^1.5`` (biased sample moments).
    kurtosis : float
        ``g4 = m4 / m2^2``, **not** excess (3 for a normal distribution).
    n_trials : int or None
        Trials the DSR deflates for; None for a plain PSR.
    sr_variance : float or None
        Variance of the trials' per-period Sharpe ratios (DSR only).
    reason : str or None
        Why ``probability`` is NaN; None otherwise.
    """

    probability: float
    z: float
    sharpe: float
    benchmark_sr: float
    std_error: float
    n: int
    skewness: float
    kurtosis: float
    n_trials: int | None = None
    sr_variance: float | None = None
    reason: str | None = None


def probabilistic_sharpe_from_moments(sharpe: float, *, n: int, skewness: float,
                                      kurtosis: float, benchmark_sr: float = 0.0
                                      ) -> SharpeStat:
    """PSR from summary statistics (Bailey and Lopez de Prado 2012).

    ``PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )``

    with ``Phi`` the standard normal CDF, ``SR`` the observed per-period Sharpe ratio,
    ``g3`` the skewness and ``g4`` the (non-excess) kurtosis of the returns. The
    denominator is the asymptotic standard error of ``SR`` for non-normal iid returns
    (Mertens 2002); negative skew and fat tails widen it. For sample moments
    ``g4 >= 1 + g3^2``, which makes the variance term ``>= (1 - g3 SR / 2)^2 >= 0``.

    Parameters
    ----------
    sharpe : float
        Observed per-period Sharpe ratio (not annualised).
    n : int
        Number of returns it was estimated from, ``>= 2``.
    skewness : float
        ``g3``.
    kurtosis : float
        ``g4``, not excess (3 for normal returns).
    benchmark_sr : float, default 0
        ``SR*``, per period, in the same units as ``sharpe``.

    Returns
    -------
    SharpeStat
        NaN probability (with ``reason``) when the variance term is not positive.
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    for label, v in (("sharpe", sharpe), ("skewness", skewness), ("kurtosis", kurtosis),
                     ("benchmark_sr", benchmark_sr)):
        if not math.isfinite(v):
            raise ValueError(f"{label} must be finite, got {v!r}")
    sr, g3, g4 = float(sharpe), float(skewness), float(kurtosis)
    term = 1.0 - g3 * sr + 0.25 * (g4 - 1.0) * sr * sr
    if not (term > 0.0):
        return SharpeStat(probability=math.nan, z=math.nan, sharpe=sr,
                          benchmark_sr=float(benchmark_sr), std_error=math.nan, n=int(n),
                          skewness=g3, kurtosis=g4,
                          reason=f"variance term 1 - g3 SR + (g4 - 1)/4 SR^2 = {term:.3g} "
                                 f"<= 0 (degenerate moments)")
    se = math.sqrt(term / (int(n) - 1))
    z = (sr - float(benchmark_sr)) / se
    return SharpeStat(probability=_norm_cdf(z), z=z, sharpe=sr,
                      benchmark_sr=float(benchmark_sr), std_error=se, n=int(n),
                      skewness=g3, kurtosis=g4)


def _sharpe_moments(returns: npt.ArrayLike) -> tuple[float, int, float, float] | str:
    """``(SR, n, g3, g4)`` of a return series, or the reason they are undefined."""
    r = _as_1d(returns, "returns")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite (decide how to treat missing periods "
                         "before computing a Sharpe ratio)")
    n = int(r.size)
    if n < 2:
        return f"{n} return(s): a Sharpe ratio needs at least 2"
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    scale = float(np.max(np.abs(r)))
    if m2 <= (_TINY_VAR * scale) ** 2:
        return "returns have zero variance: the Sharpe ratio is undefined"
    sr = float(r.mean()) / math.sqrt(m2 * n / (n - 1))
    g3 = float(np.mean(d**3)) / m2**1.5
    g4 = float(np.mean(d**4)) / (m2 * m2)
    return sr, n, g3, g4


def _undefined_sharpe(reason: str, n: int, benchmark_sr: float,
                      n_trials: int | None = None,
                      sr_variance: float | None = None) -> SharpeStat:
    return SharpeStat(probability=math.nan, z=math.nan, sharpe=math.nan,
                      benchmark_sr=benchmark_sr, std_error=math.nan, n=n,
                      skewness=math.nan, kurtosis=math.nan, n_trials=n_trials,
                      sr_variance=sr_variance, reason=reason)


def probabilistic_sharpe(returns: npt.ArrayLike, *, benchmark_sr: float = 0.0) -> SharpeStat:
    """Probabilistic Sharpe ratio of a return series (Bailey and Lopez de Prado 2012).

    Estimates ``SR = mean(r) / std(r, ddof=1)``, ``g3 = m3 / m2^1.5`` and
    ``g4 = m4 / m2^2`` (``m_k`` the biased central sample moments) and returns
    :func:`probabilistic_sharpe_from_moments`:

    ``PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )``.

    Everything is **per period**: no annualisation is applied inside. To test against an
    annual benchmark ``SR*_a`` with ``P`` periods a year pass ``SR*_a / sqrt(P)``; the
    probability itself does not depend on the unit as long as ``SR`` and ``SR*`` agree.
    Returns are assumed iid (serial correlation makes the PSR overconfident); simple or
    log returns both work, as long as the benchmark uses the same.

    Parameters
    ----------
    returns : array_like of float, shape (n,)
        Per-period strategy returns (decimal), finite, oldest first.
    benchmark_sr : float, default 0
        ``SR*``, per period.

    Returns
    -------
    SharpeStat
        NaN (with ``reason``) for fewer than 2 returns or zero variance.

    Raises
    ------
    ValueError
        If a return is not finite.
    """
    m = _sharpe_moments(returns)
    if isinstance(m, str):
        return _undefined_sharpe(m, int(np.size(returns)), float(benchmark_sr))
    sr, n, g3, g4 = m
    return probabilistic_sharpe_from_moments(sr, n=n, skewness=g3, kurtosis=g4,
                                             benchmark_sr=benchmark_sr)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``N`` unskilled trials (Bailey et al. 2014).

    ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``

    with ``V`` the variance of the trials' Sharpe ratios, ``gamma`` the Euler-Mascheroni
    constant (:data:`EULER_GAMMA`) and ``e`` Euler's number: an approximation of the
    expected maximum of ``N`` iid ``Normal(0, V)`` Sharpe ratios (true SR zero). ``SR0``
    is 0 for ``N = 1`` (the formula's ``Phi^-1(0)`` is ``-inf`` there; one trial has
    nothing to select from).

    Parameters
    ----------
    n_trials : int
        ``N >= 1``: independent strategy configurations tried.
    sr_variance : float
        ``V >= 0``: variance across the trials of their Sharpe ratios, in the units of the
        Sharpe ratio it is compared with (per period: an annualised variance divided by
        periods a year).

    Returns
    -------
    float
        ``SR0``, in the units of ``sqrt(sr_variance)``.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if not (math.isfinite(sr_variance) and sr_variance >= 0.0):
        raise ValueError(f"sr_variance must be finite and >= 0, got {sr_variance!r}")
    N = int(n_trials)
    if N == 1:
        return 0.0
    inv = _STD_NORMAL.inv_cdf
    return math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * inv(1.0 - 1.0 / N)
                                     + EULER_GAMMA * inv(1.0 - 1.0 / (N * math.e)))


def deflated_sharpe(returns: npt.ArrayLike, *, n_trials: int,
                    sr_variance: float) -> SharpeStat:
    """Deflated Sharpe ratio (Bailey and Lopez de Prado 2014).

    ``DSR = PSR(SR0)`` with the benchmark ``SR0`` = :func:`expected_max_sharpe`
    ``(n_trials, sr_variance)``: the probability that the true Sharpe ratio exceeds what
    the best of ``n_trials`` skill-less trials would show by luck, corrected for the
    series' length, skewness and kurtosis. For ``n_trials > 1`` and ``sr_variance > 0``,
    ``SR0 > 0`` and so ``DSR < PSR(0)``. Per period throughout, like
    :func:`probabilistic_sharpe`: ``sr_variance`` is the variance of *per-period*
    Sharpe ratios.

    Parameters
    ----------
    returns : array_like of float, shape (n,)
        Per-period returns of the selected strategy, finite, oldest first.
    n_trials : int
        Independent trials (configurations) the strategy was selected from, ``>= 1``.
    sr_variance : float
        Variance of the trials' per-period Sharpe ratios, ``>= 0``.

    Returns
    -------
    SharpeStat
        ``probability`` is the DSR; ``benchmark_sr`` is ``SR0``.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    m = _sharpe_moments(returns)
    if isinstance(m, str):
        return _undefined_sharpe(m, int(np.size(returns)), sr0, int(n_trials),
                                 float(sr_variance))
    sr, n, g3, g4 = m
    s = probabilistic_sharpe_from_moments(sr, n=n, skewness=g3, kurtosis=g4,
                                          benchmark_sr=sr0)
    return SharpeStat(probability=s.probability, z=s.z, sharpe=s.sharpe,
                      benchmark_sr=s.benchmark_sr, std_error=s.std_error, n=s.n,
                      skewness=s.skewness, kurtosis=s.kurtosis, n_trials=int(n_trials),
                      sr_variance=float(sr_variance), reason=s.reason)


# --------------------------------------------------------------------------------------
# Model health
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelHealth:
    """A model's health verdict: stale, drifted or decayed (any of them flags it).

    Attributes
    ----------
    stale : bool
        ``now - last_trained_at > staleness_multiple * cadence`` (strictly), or never
        trained (the rule of the model-staleness kill switch).
    drifted : bool
        The drift report flagged at least one feature.
    decayed : bool
        The IC-decay check flagged decay.
    flagged : bool
        ``stale or drifted or decayed``: the kill switch should act.
    reasons : tuple of str
        One human sentence per flag, with the numbers; empty when not flagged.
    notes : tuple of str
        What could not be checked (no report given, undetermined features or IC, a
        training time in the future); informative, never flags.
    age : timedelta or None
        ``now - last_trained_at``; None when never trained.
    limit : timedelta
        ``staleness_multiple * cadence``.
    drifted_features : tuple of str
        From the drift report (empty without one).
    as_of : datetime
        ``now``.
    """

    stale: bool
    drifted: bool
    decayed: bool
    flagged: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    age: timedelta | None
    limit: timedelta
    drifted_features: tuple[str, ...]
    as_of: datetime


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _hours(td: timedelta) -> float:
    return td.total_seconds() / 3600.0


def model_health(*, now: datetime, last_trained_at: datetime | None, cadence: timedelta,
                 drift: DriftReport | None, ic: IcDecay | None,
                 staleness_multiple: float = 2.0) -> ModelHealth:
    """Join staleness, feature drift and IC decay into one verdict for the kill switch.

    * **stale**: ``now - last_trained_at > staleness_multiple * cadence`` (the same rule
      as the model-staleness kill switch), or ``last_trained_at`` is None (never
      trained). A training time after ``now`` (clock skew) is not stale but noted.
    * **drifted**: ``drift.drifted`` (see :func:`feature_drift`).
    * **decayed**: ``ic.decayed`` (see :func:`ic_decay`).
    * **flagged**: any of the three.

    A missing report (None) or an undetermined one cannot flag; it is listed in
    ``notes``.

    Parameters
    ----------
    now : datetime
        The evaluation time, timezone-aware (passed in; this module reads no clock).
    last_trained_at : datetime or None
        When the model in production was trained, timezone-aware; None if never.
    cadence : timedelta
        The model's retraining cadence, positive.
    drift : DriftReport or None
        Feature drift of the recent inputs, if checked.
    ic : IcDecay or None
        IC-decay check of the recent predictions, if checked.
    staleness_multiple : float, default 2.0
        How many cadences old a model may be, ``> 0``.

    Returns
    -------
    ModelHealth
    """
    _require_aware("now", now)
    if last_trained_at is not None:
        _require_aware("last_trained_at", last_trained_at)
    if not isinstance(cadence, timedelta) or cadence <= timedelta(0):
        raise ValueError(f"cadence must be a positive timedelta, got {cadence!r}")
    if not (math.isfinite(staleness_multiple) and staleness_multiple > 0.0):
        raise ValueError(f"staleness_multiple must be positive, got {staleness_multiple!r}")
    limit = cadence * staleness_multiple
    reasons: list[str] = []
    notes: list[str] = []

    age: timedelta | None = None
    if last_trained_at is None:
        stale = True
        reasons.append(f"stale: never trained (limit {staleness_multiple:g} x cadence = "
                       f"{_hours(limit):.1f}h)")
    else:
        age = now - last_trained_at
        stale = age > limit
        if stale:
            reasons.append(f"stale: model age {_hours(age):.1f}h > {staleness_multiple:g} x "
                           f"cadence = {_hours(limit):.1f}h (trained "
                           f"{last_trained_at.isoformat(timespec='seconds')})")
        elif age < timedelta(0):
            notes.append(f"last_trained_at is {_hours(-age):.1f}h after now (clock skew?)")

    drifted = bool(drift is not None and drift.drifted)
    drifted_features: tuple[str, ...] = ()
    if drift is None:
        notes.append("feature drift not checked")
    else:
        drifted_features = drift.drifted_features
        if drifted:
            detail = "; ".join(r for f in drift.features if f.drifted for r in f.reasons)
            reasons.append(f"drifted: {len(drifted_features)} of {len(drift.features)} "
                           f"features ({detail})")
        if drift.undetermined:
            notes.append(f"drift undetermined for {', '.join(drift.undetermined)} "
                         f"(no finite values in a window)")

    decayed = bool(ic is not None and ic.decayed)
    if ic is None:
        notes.append("IC decay not checked")
    elif decayed:
        if ic.recent_mean < 0.0:
            why = f"recent mean IC {ic.recent_mean:.4f} < 0"
        else:
            why = (f"recent mean IC {ic.recent_mean:.4f} < {ic.min_ratio:g} x reference "
                   f"mean IC {ic.reference_mean:.4f}")
        reasons.append(f"decayed: {why} ({ic.n_recent} recent, {ic.n_reference} reference "
                       f"IC values)")
    elif not ic.determined:
        notes.append(f"IC decay undetermined: {ic.reason}")

    return ModelHealth(stale=stale, drifted=drifted, decayed=decayed,
                       flagged=stale or drifted or decayed, reasons=tuple(reasons),
                       notes=tuple(notes), age=age, limit=limit,
                       drifted_features=drifted_features, as_of=now)


# --------------------------------------------------------------------------------------
# Drift calibrated on the history's own windows
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PsiCalibration:
    """Per-feature PSI thresholds learned from a history's own window-to-window drift.

    Attributes
    ----------
    names : tuple of str
    thresholds : tuple of float
        The ``quantile`` of PSI(all rows before a window, the window) over the history's
        past windows, per feature (NaN when too few windows: that feature cannot drift).
    window, step : int
        Rows per window, and between window ends.
    quantile : float
    windows : int
        Past windows the thresholds were learned from.
    """

    names: tuple[str, ...]
    thresholds: tuple[float, ...]
    window: int
    step: int
    quantile: float
    windows: int


def calibrate_psi(history: npt.ArrayLike, names: Sequence[str], *, window: int = 60,
                  step: int = 5, quantile: float = 0.99, min_reference: int = 250,
                  bins: int = 10) -> PsiCalibration:
    """Learn how much a ``window``-row stretch normally drifts from everything before it.

    Daily features are autocorrelated and regimes come and go, so a recent window's PSI
    against the whole history is large almost always (the textbook 0.25 flags NIFTY's
    features at every date). Here the threshold of feature ``j`` is the ``quantile`` of
    ``PSI(history[:t - window], history[t - window:t])`` over past window ends ``t``
    (every ``step`` rows, once ``min_reference`` rows precede the window): a recent window
    counts as drifted only when it is rarer than ``1 - quantile`` of the history's own
    windows.
    """
    X = np.asarray(history, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"history must be (rows, {len(names)}), got {X.shape}")
    if window < 10 or step < 1 or not (0.5 < quantile < 1.0):
        raise ValueError("window >= 10, step >= 1 and 0.5 < quantile < 1 are required")
    ends = range(min_reference + window, X.shape[0] + 1, step)
    values: list[list[float]] = [[] for _ in names]
    for t in ends:
        for j in range(X.shape[1]):
            p = psi(X[: t - window, j], X[t - window:t, j], bins=bins)
            if p.reason is None:
                values[j].append(p.value)
    thresholds = tuple(float(np.quantile(v, quantile)) if len(v) >= 20 else math.nan
                       for v in values)
    return PsiCalibration(names=tuple(str(n) for n in names), thresholds=thresholds,
                          window=int(window), step=int(step), quantile=float(quantile),
                          windows=len(ends))


def calibrated_drift(history: npt.ArrayLike, names: Sequence[str], *, window: int = 60,
                     step: int = 5, quantile: float = 0.99, min_drifted: int = 2,
                     bins: int = 10) -> DriftReport:
    """Drift of the last ``window`` rows of ``history`` against the rows before them, each
    feature judged against its own calibrated threshold (:func:`calibrate_psi`, learned
    from the history *before* the recent window). The report is ``drifted`` when at least
    ``min_drifted`` features are (one feature past its 99th percentile happens by chance
    about one window in ten across ten features)."""
    X = np.asarray(history, dtype=np.float64)
    cal = calibrate_psi(X[:-window], names, window=window, step=step, quantile=quantile,
                        bins=bins)
    per_feature = []
    for j, name in enumerate(cal.names):
        threshold = cal.thresholds[j]
        one = feature_drift(X[:-window, j:j + 1], X[-window:, j:j + 1], (name,),
                            psi_threshold=threshold if math.isfinite(threshold) else math.inf,
                            ks_alpha=0.0, bins=bins)
        per_feature.append(one.features[0])
    flagged = tuple(f.name for f in per_feature if f.drifted)
    return DriftReport(features=tuple(per_feature), drifted_features=flagged,
                       undetermined=tuple(f.name for f in per_feature if not f.determined),
                       drifted=len(flagged) >= min_drifted, psi_threshold=math.nan,
                       ks_alpha=0.0, bins=int(bins))
