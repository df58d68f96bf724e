"""Drift and robustness (``shared/domain/models/drift.py``): PSI, KS, feature drift, rolling
rank IC and its decay, PSR/DSR, and the model-health verdict.

Numbers are checked against scipy.stats (``ks_2samp``, ``spearmanr``, ``skew``,
``kurtosis``, ``norm``), against identities, and against the worked example of Bailey and
Lopez de Prado (2014). Synthetic data come from ``np.random.default_rng(1234)`` (the
``rng`` fixture); run with ``-W error``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from shared.domain.models.drift import (
    EULER_GAMMA,
    PSI_DRIFTED,
    PSI_MODERATE,
    DriftReport,
    IcDecay,
    IcSeries,
    KsResult,
    ModelHealth,
    PsiResult,
    SharpeStat,
    deflated_sharpe,
    expected_max_sharpe,
    feature_drift,
    ic_decay,
    ks_drift,
    model_health,
    probabilistic_sharpe,
    probabilistic_sharpe_from_moments,
    psi,
    psi_level,
    rolling_ic,
)

ROOT = Path(__file__).resolve().parents[2]
IST = timezone(timedelta(hours=5, minutes=30))
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=IST)
DAY = timedelta(days=1)


# -------------------------------------------------------------------------------------
# PSI
# -------------------------------------------------------------------------------------


def test_psi_of_the_same_distribution_sits_at_its_noise_floor(rng):
    n, m, bins = 2_000, 500, 10
    values = np.array([psi(rng.standard_normal(n), rng.standard_normal(m), bins=bins).value
                       for _ in range(300)])
    # Binned Jeffreys divergence x nm/(n+m) ~ chi2(B-1): mean (B-1)(1/n + 1/m) = 0.0225.
    floor = (bins - 1) * (1 / n + 1 / m)
    assert values.mean() == pytest.approx(floor, rel=0.15)
    assert np.all(values >= 0.0)
    assert np.all(values < PSI_MODERATE)


def test_identical_samples_give_psi_zero_exactly(rng):
    x = rng.standard_normal(1_000)
    r = psi(x, x.copy())
    assert r.value == 0.0 and r.level == "stable" and r.reason is None
    assert np.all(r.contribution == 0.0)


def test_psi_grows_with_the_shift_and_flags_a_one_sd_shift(rng):
    train = rng.standard_normal(5_000)
    base = rng.standard_normal(2_000)
    values = [psi(train, base + shift).value for shift in (0.0, 0.25, 0.5, 1.0)]
    assert values == sorted(values)
    assert values[0] < PSI_MODERATE
    big = psi(train, base + 1.0)
    assert big.value > 0.8 and big.level == "drifted"
    # The top bins gain most of the mass: they carry the bulk of the divergence.
    assert big.contribution[-1] == big.contribution.max()
    assert big.actual_share[-1] > 0.35


def test_psi_is_symmetric_for_given_bins_and_nearly_so_when_samples_swap(rng):
    a = rng.standard_normal(4_000)
    b = rng.standard_normal(4_000) + 0.5
    ab, ba = psi(a, b), psi(b, a)
    # For fixed shares the formula is symmetric: sum (p - q) ln(p / q) is the same number.
    p, q = ab.expected_share, ab.actual_share
    assert float(np.sum((p - q) * np.log(p / q))) == pytest.approx(ab.value, rel=1e-12)
    # Swapping the samples changes the bins (quantiles of the other sample): close, not equal.
    assert ab.value != ba.value
    assert ab.value == pytest.approx(ba.value, rel=0.15)


def test_psi_bins_are_training_quantiles_with_open_outer_bins(rng):
    train = rng.standard_normal(10_000)
    recent = np.concatenate([rng.standard_normal(500), [-50.0, 60.0, 1e9]])
    r = psi(train, recent, bins=10)
    assert isinstance(r, PsiResult) and r.n_bins == 10
    assert r.edges[0] == -np.inf and r.edges[-1] == np.inf
    np.testing.assert_array_equal(r.edges[1:-1],
                                  np.quantile(train, np.arange(1, 10) / 10))
    assert np.all(np.abs(r.expected_count - 1_000) <= 1)  # quantile bins: equal counts
    assert r.expected_count.sum() == train.size and r.actual_count.sum() == recent.size
    # Values far outside the training range are counted, in the outer bins.
    below = np.sum(recent < r.edges[1])
    above = np.sum(recent >= r.edges[-2])
    assert (r.actual_count[0], r.actual_count[-1]) == (below, above)
    assert r.expected_share.sum() == pytest.approx(1.0, abs=1e-12)
    assert r.actual_share.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(r.contribution >= 0.0)
    assert r.contribution.sum() == pytest.approx(r.value, rel=1e-12)
    with pytest.raises(ValueError):
        r.edges[0] = 0.0  # read-only
    with pytest.raises(FrozenInstanceError):
        r.value = 0.0  # type: ignore[misc]


def test_psi_worked_by_hand():
    train = np.arange(100.0)  # quartiles at 24.75, 49.5, 74.25
    recent = np.array([10.0, 30.0, 60.0, 60.0, 80.0, 90.0, 95.0, 99.0])
    eps = 1e-6
    r = psi(train, recent, bins=4, eps=eps)
    np.testing.assert_array_equal(r.edges[1:-1], [24.75, 49.5, 74.25])
    np.testing.assert_array_equal(r.expected_count, [25, 25, 25, 25])
    np.testing.assert_array_equal(r.actual_count, [1, 1, 2, 4])
    p = (np.array([0.25, 0.25, 0.25, 0.25]) + eps) / (1 + 4 * eps)
    q = (np.array([1, 1, 2, 4]) / 8 + eps) / (1 + 4 * eps)
    expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert r.value == pytest.approx(expected, rel=1e-12)
    # 2 x (0.125 - 0.25) ln(0.5) + 0 + (0.5 - 0.25) ln 2 = 0.5 ln 2, up to the eps.
    assert r.value == pytest.approx(0.5 * math.log(2), rel=1e-4)


def test_psi_with_tied_training_quantiles_uses_fewer_bins_and_the_eps_keeps_it_finite():
    train = np.array([0.0] * 95 + [1.0] * 5)  # every decile is 0
    recent = np.array([0.0] * 50 + [1.0] * 50)
    r = psi(train, recent, bins=10)
    assert r.n_bins == 2  # one unique inner edge at 0: (-inf, 0) and [0, inf)
    assert r.expected_count[0] == 0 and r.actual_count[0] == 0  # empty bin, eps-smoothed
    # The limitation of quantile bins on a discrete feature: 0 and 1 share a bin, so the
    # move from 5 % to 50 % ones is invisible to PSI (KS sees it).
    assert math.isfinite(r.value) and r.value == pytest.approx(0.0, abs=1e-12)
    assert ks_drift(train, recent).pvalue < 1e-6
    const = psi(np.full(50, 3.0), np.full(20, 3.0))
    assert const.value == 0.0 and const.n_bins == 2


def test_psi_level_rule_of_thumb():
    assert (PSI_MODERATE, PSI_DRIFTED) == (0.10, 0.25)
    assert psi_level(0.0) == "stable"
    assert psi_level(0.0999) == "stable"
    assert psi_level(0.10) == "moderate"
    assert psi_level(0.2499) == "moderate"
    assert psi_level(0.25) == "drifted"
    assert psi_level(3.0) == "drifted"
    assert psi_level(math.nan) == "undetermined"


def test_psi_drops_missing_values_and_reports_empty_samples(rng):
    train = rng.standard_normal(400)
    recent = rng.standard_normal(100)
    dirty_train = np.concatenate([train, [np.nan, np.inf]])
    dirty_recent = np.concatenate([[np.nan], recent, [-np.inf, np.nan]])
    r = psi(dirty_train, dirty_recent)
    clean = psi(train, recent)
    assert r.value == clean.value
    assert (r.n_expected, r.n_actual) == (400, 100)
    assert (r.n_expected_missing, r.n_actual_missing) == (2, 3)
    empty = psi(train, [np.nan, np.nan])
    assert math.isnan(empty.value) and empty.level == "undetermined"
    assert "actual (recent)" in empty.reason and empty.n_actual_missing == 2
    assert "expected" in psi([], recent).reason


@pytest.mark.parametrize("kwargs", [dict(bins=1), dict(bins=2.5), dict(bins=True),
                                    dict(eps=0.0), dict(eps=1.0)])
def test_psi_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        psi([1.0, 2.0, 3.0], [1.0, 2.0], **kwargs)
    with pytest.raises(ValueError):
        psi(np.ones((3, 2)), [1.0])


# -------------------------------------------------------------------------------------
# KS
# -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,m,shift", [(50, 40, 0.3), (300, 200, 0.2), (3_000, 2_000, 0.05),
                                       (1_000, 1_000, 0.0), (20, 35, 1.0)])
def test_ks_matches_scipy_ks_2samp(rng, n, m, shift):
    x = rng.standard_normal(n)
    y = rng.standard_normal(m) + shift
    ours = ks_drift(x, y)
    asymp = stats.ks_2samp(x, y, method="asymp")
    default = stats.ks_2samp(x, y)  # exact for these sizes
    assert isinstance(ours, KsResult) and ours.reason is None
    assert ours.statistic == float(asymp.statistic)  # bit for bit
    assert ours.statistic == pytest.approx(float(default.statistic), abs=1e-12)
    assert ours.pvalue == pytest.approx(float(asymp.pvalue), rel=1e-12, abs=1e-300)
    # Smirnov's approximation vs the exact distribution: close, closer for larger samples.
    tol = 0.25 if min(n, m) < 100 else 0.05
    assert ours.pvalue == pytest.approx(float(default.pvalue), rel=tol, abs=1e-3)
    assert ours.location == float(asymp.statistic_location)
    assert ours.sign == int(asymp.statistic_sign)
    assert ours.effective_n == pytest.approx(n * m / (n + m))


def test_ks_handles_ties_like_scipy(rng):
    x = rng.integers(0, 5, 300).astype(float)
    y = rng.integers(0, 6, 250).astype(float)
    ours = ks_drift(x, y)
    ref = stats.ks_2samp(x, y, method="asymp")
    assert ours.statistic == float(ref.statistic)
    assert ours.pvalue == pytest.approx(float(ref.pvalue), rel=1e-12)
    assert ks_drift(x, x).statistic == 0.0 and ks_drift(x, x).pvalue == 1.0


def test_ks_pvalues_are_calibrated_under_no_drift(rng):
    p = np.array([ks_drift(rng.standard_normal(400), rng.standard_normal(300)).pvalue
                  for _ in range(400)])
    assert 0.02 < np.mean(p < 0.05) < 0.09
    assert 0.4 < np.median(p) < 0.6


def test_ks_sign_says_which_way_the_recent_sample_moved(rng):
    x = rng.standard_normal(500)
    assert ks_drift(x, rng.standard_normal(500) + 1.0).sign == 1
    assert ks_drift(x, rng.standard_normal(500) - 1.0).sign == -1


def test_ks_drops_missing_values_and_reports_empty_samples(rng):
    x = rng.standard_normal(200)
    y = rng.standard_normal(150) + 0.3
    r = ks_drift(np.append(x, np.nan), np.concatenate([[np.inf], y]))
    assert (r.statistic, r.pvalue) == (ks_drift(x, y).statistic, ks_drift(x, y).pvalue)
    assert (r.n_expected_missing, r.n_actual_missing) == (1, 1)
    empty = ks_drift([np.nan], y)
    assert math.isnan(empty.statistic) and math.isnan(empty.pvalue)
    assert empty.sign == 0 and "expected (training)" in empty.reason


# -------------------------------------------------------------------------------------
# Feature drift
# -------------------------------------------------------------------------------------


def _feature_windows(rng):
    n, m = 3_000, 600
    train = rng.standard_normal((n, 4))
    recent = rng.standard_normal((m, 4))
    recent[:, 1] += 0.8  # mean shift: PSI and KS
    recent[:, 2] *= 1.5  # wider: KS at least
    train[::10, 3] = np.nan  # 300 missing training rows in the last feature
    recent[:7, 3] = np.nan
    return train, recent, ("iv_rank", "basis", "rv_5d", "skew_25d")


def test_feature_drift_flags_the_moved_features_only(rng):
    train, recent, names = _feature_windows(rng)
    rep = feature_drift(train, recent, names)
    assert isinstance(rep, DriftReport)
    assert rep.drifted and rep.drifted_features == ("basis", "rv_5d")
    assert rep.undetermined == ()
    basis = rep.feature("basis")
    assert basis.psi.value >= 0.25 and basis.ks.pvalue < 0.01
    assert any(r.startswith("basis: PSI ") for r in basis.reasons)
    assert any(r.startswith("basis: KS D=") for r in basis.reasons)
    assert not rep.feature("iv_rank").drifted and rep.feature("iv_rank").reasons == ()
    skew = rep.feature("skew_25d")
    assert (skew.n_train, skew.n_recent) == (2_700, 593)
    assert (skew.n_train_missing, skew.n_recent_missing) == (300, 7)
    # Per feature: equal to the single-feature functions on that column's finite values.
    col = train[:, 3]
    assert skew.psi.value == psi(col[np.isfinite(col)], recent[7:, 3]).value
    assert skew.ks.statistic == ks_drift(col[np.isfinite(col)], recent[7:, 3]).statistic
    with pytest.raises(KeyError):
        rep.feature("nope")


def test_feature_drift_rules_can_be_switched_off(rng):
    train, recent, names = _feature_windows(rng)
    psi_only = feature_drift(train, recent, names, ks_alpha=0.0)
    ks_only = feature_drift(train, recent, names, psi_threshold=math.inf)
    assert "basis" in psi_only.drifted_features
    assert all("KS" not in r for f in psi_only.features for r in f.reasons)
    assert set(ks_only.drifted_features) == {"basis", "rv_5d"}
    assert all("PSI" not in r for f in ks_only.features for r in f.reasons)
    none = feature_drift(train, recent, names, ks_alpha=0.0, psi_threshold=math.inf)
    assert not none.drifted and none.drifted_features == ()


def test_feature_drift_on_stable_inputs_is_clean(rng):
    rep = feature_drift(rng.standard_normal((2_000, 3)), rng.standard_normal((500, 3)),
                        ["a", "b", "c"], ks_alpha=0.001)
    assert not rep.drifted and rep.drifted_features == ()
    assert all(f.psi.level == "stable" for f in rep.features)


def test_a_feature_with_no_recent_values_is_undetermined_not_drifted(rng):
    train = rng.standard_normal((500, 2))
    recent = rng.standard_normal((100, 2))
    recent[:, 1] = np.nan
    rep = feature_drift(train, recent, ["a", "b"])
    assert rep.undetermined == ("b",) and not rep.drifted
    b = rep.feature("b")
    assert not b.determined and b.psi.reason and b.ks.reason and b.n_recent_missing == 100


@pytest.mark.parametrize("case", ["shape", "columns", "names", "dupes", "psi", "alpha"])
def test_feature_drift_rejects_bad_arguments(case):
    X, Y, names = np.zeros((10, 2)), np.zeros((5, 2)), ["a", "b"]
    kwargs = {}
    if case == "shape":
        X = np.zeros(10)
    elif case == "columns":
        Y = np.zeros((5, 3))
    elif case == "names":
        names = ["a"]
    elif case == "dupes":
        names = ["a", "a"]
    elif case == "psi":
        kwargs = dict(psi_threshold=0.0)
    else:
        kwargs = dict(ks_alpha=1.0)
    with pytest.raises(ValueError):
        feature_drift(X, Y, names, **kwargs)


# -------------------------------------------------------------------------------------
# Rolling rank IC
# -------------------------------------------------------------------------------------


def test_rolling_ic_equals_scipy_spearman_window_by_window(rng):
    n, w = 400, 40
    pred = rng.standard_normal(n)
    realised = 0.3 * pred + rng.standard_normal(n)
    s = rolling_ic(pred, realised, window=w)
    assert isinstance(s, IcSeries) and len(s) == n
    assert np.all(s.status[: w - 1] == "warmup") and np.all(np.isnan(s.ic[: w - 1]))
    assert np.all(s.n_pairs[w - 1:] == w) and np.all(s.valid[w - 1:])
    ref = np.array([stats.spearmanr(pred[t - w + 1:t + 1], realised[t - w + 1:t + 1]).statistic
                    for t in range(w - 1, n)])
    np.testing.assert_allclose(s.ic[w - 1:], ref, rtol=0, atol=1e-13)


def test_rolling_ic_uses_average_ranks_for_ties(rng):
    n = 300
    pred = rng.integers(0, 6, n).astype(float)  # heavy ties on both sides
    realised = np.round(pred + rng.standard_normal(n))
    s = rolling_ic(pred, realised, window=n)
    assert s.ic[-1] == pytest.approx(stats.spearmanr(pred, realised).statistic, abs=1e-14)
    w = 25
    s = rolling_ic(pred, realised, window=w)
    ref = [stats.spearmanr(pred[t - w + 1:t + 1], realised[t - w + 1:t + 1]).statistic
           for t in range(w - 1, n)]
    np.testing.assert_allclose(s.ic[w - 1:], ref, rtol=0, atol=1e-13)


def test_rolling_ic_missing_and_constant_windows_say_why(rng):
    n, w = 60, 10
    pred = rng.standard_normal(n)
    realised = pred + rng.standard_normal(n)
    pred[30] = np.nan
    realised[45:55] = 1.0  # constant over a whole window
    s = rolling_ic(pred, realised, window=w)
    assert np.all(s.status[30:40] == "sparse") and np.all(s.n_pairs[30:40] == w - 1)
    assert s.status[54] == "constant" and math.isnan(s.ic[54])
    assert s.status[29] == "ok" and s.status[40] == "ok"
    assert set(np.unique(s.status[~s.valid])) == {"warmup", "sparse", "constant"}
    assert np.array_equal(s.valid, np.isfinite(s.ic))
    # With min_pairs below the window the pair is dropped and the IC computed without it.
    loose = rolling_ic(pred, realised, window=w, min_pairs=w - 1)
    keep = np.arange(26, 36) != 30
    ref = stats.spearmanr(pred[26:36][keep], realised[26:36][keep]).statistic
    assert loose.status[35] == "ok" and loose.ic[35] == pytest.approx(ref, abs=1e-14)


def test_rolling_ic_is_point_in_time(rng):
    n, w, t = 200, 30, 120
    pred = rng.standard_normal(n)
    realised = pred + rng.standard_normal(n)
    base = rolling_ic(pred, realised, window=w)
    pred2, realised2 = pred.copy(), realised.copy()
    pred2[t + 1:] = rng.standard_normal(n - t - 1) * 100
    realised2[t + 1:] = np.nan
    moved = rolling_ic(pred2, realised2, window=w)
    np.testing.assert_array_equal(moved.ic[: t + 1], base.ic[: t + 1])


@pytest.mark.parametrize("kwargs", [dict(window=2), dict(window=5.5), dict(window=5, min_pairs=2),
                                    dict(window=5, min_pairs=6)])
def test_rolling_ic_rejects_bad_windows(kwargs):
    with pytest.raises(ValueError):
        rolling_ic(np.arange(10.0), np.arange(10.0), **kwargs)
    with pytest.raises(ValueError):
        rolling_ic(np.arange(10.0), np.arange(9.0), window=5)


# -------------------------------------------------------------------------------------
# IC decay
# -------------------------------------------------------------------------------------


def _planted(rng, beta_before: float, beta_after: float, n: int = 1_600, cut: int = 1_000):
    """A score whose realised outcome loads ``beta_before`` on it, then ``beta_after`` from
    ``cut`` on (the last ``n - cut`` IC values are the recent window; the ``window - 1``
    first of them straddle the change)."""
    signal = rng.standard_normal(n)
    beta = np.where(np.arange(n) < cut, beta_before, beta_after)
    return signal, beta * signal + rng.standard_normal(n)


def test_ic_decay_detects_a_planted_loss_of_skill(rng):
    pred, realised = _planted(rng, 0.5, 0.0)  # Spearman IC about 0.43, then 0
    s = rolling_ic(pred, realised, window=60)
    d = ic_decay(s, reference_window=600, recent_window=600)
    assert isinstance(d, IcDecay) and d.decayed and d.determined and d.reason is None
    assert d.reference_mean > 0.3 and d.recent_mean < 0.15
    assert d.ratio == pytest.approx(d.recent_mean / d.reference_mean)
    assert (d.n_reference, d.n_recent) == (600, 600)


def test_ic_decay_stays_quiet_without_a_change(rng):
    pred, realised = _planted(rng, 0.5, 0.5)
    d = ic_decay(rolling_ic(pred, realised, window=60), reference_window=600, recent_window=600)
    assert not d.decayed and 0.6 < d.ratio < 1.4


def test_ic_decay_flags_a_negative_recent_ic_even_with_min_ratio_zero(rng):
    pred, realised = _planted(rng, 0.5, -0.3)
    s = rolling_ic(pred, realised, window=60)
    d = ic_decay(s, reference_window=600, recent_window=600, min_ratio=0.0)
    assert d.decayed and d.recent_mean < 0


def test_ic_decay_windows_by_hand():
    ic = np.array([0.0, 0.25, 0.25, 0.25, np.nan, 0.125, 0.125])
    d = ic_decay(ic, reference_window=4, recent_window=2)  # reference [0.25, 0.25, 0.25, nan]
    assert (d.reference_mean, d.recent_mean, d.ratio) == (0.25, 0.125, 0.5)
    assert (d.n_reference, d.n_recent) == (3, 2)
    assert not d.decayed  # 0.125 is not < 0.5 x 0.25: the rule is strict
    ic[-1] = 0.12
    assert ic_decay(ic, reference_window=4, recent_window=2).decayed  # 0.1225 < 0.125


def test_ic_decay_with_a_non_positive_reference_has_no_ratio():
    d = ic_decay([-0.1, 0.0, -0.05, 0.02, 0.01], reference_window=3, recent_window=2)
    assert math.isnan(d.ratio) and "<= 0" in d.reason
    assert not d.decayed  # recent 0.015 >= 0.5 x (-0.05) and not negative
    d = ic_decay([-0.1, 0.0, -0.05, -0.02, -0.01], reference_window=3, recent_window=2)
    assert d.decayed


def test_ic_decay_is_undetermined_for_short_or_empty_windows():
    short = ic_decay([0.1, 0.2], reference_window=2, recent_window=2)
    assert not short.decayed and not short.determined and "fewer than" in short.reason
    empty = ic_decay([0.1, 0.2, np.nan, np.nan], reference_window=2, recent_window=2)
    assert not empty.decayed and "recent window" in empty.reason
    assert empty.reference_mean == pytest.approx(0.15) and math.isnan(empty.recent_mean)
    with pytest.raises(ValueError):
        ic_decay([0.1] * 5, reference_window=0, recent_window=2)
    with pytest.raises(ValueError):
        ic_decay([0.1] * 5, reference_window=2, recent_window=2, min_ratio=1.5)


# -------------------------------------------------------------------------------------
# Probabilistic and Deflated Sharpe ratios
# -------------------------------------------------------------------------------------


def _reference_psr(r: np.ndarray, benchmark: float) -> float:
    """The published formula, straight from scipy's moments and normal CDF."""
    sr = r.mean() / r.std(ddof=1)
    g3 = stats.skew(r, bias=True)
    g4 = stats.kurtosis(r, fisher=False, bias=True)
    se = math.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (r.size - 1))
    return float(stats.norm.cdf((sr - benchmark) / se))


def _skewed_returns(rng, n: int = 1_000) -> np.ndarray:
    # Short-premium-like: small positive carry, occasional large losses (negative skew).
    return 0.001 + 0.01 * rng.standard_normal(n) - 0.06 * (rng.random(n) < 0.02)


@pytest.mark.parametrize("benchmark", [0.0, 0.02, -0.01, 0.1])
def test_psr_matches_the_published_formula(rng, benchmark):
    r = _skewed_returns(rng) + 0.0015
    s = probabilistic_sharpe(r, benchmark_sr=benchmark)
    assert isinstance(s, SharpeStat) and s.reason is None
    assert s.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-13)
    assert s.skewness == pytest.approx(stats.skew(r), rel=1e-10)
    assert s.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-10)
    assert s.skewness < -0.5 and s.kurtosis > 3.5
    assert s.probability == pytest.approx(_reference_psr(r, benchmark), rel=1e-10, abs=1e-15)
    assert s.n == r.size and s.n_trials is None and s.sr_variance is None


def test_psr_at_the_observed_sharpe_is_one_half(rng):
    r = _skewed_returns(rng)
    sr = probabilistic_sharpe(r).sharpe
    at = probabilistic_sharpe(r, benchmark_sr=sr)
    assert at.probability == 0.5 and at.z == 0.0


def test_psr_grows_with_the_sample_for_a_positive_sharpe(rng):
    x = _skewed_returns(rng, 250)
    r = 0.01 * (x - x.mean()) / x.std(ddof=1) + 0.001  # SR exactly 0.1 per period
    # Tiling keeps the mean, skewness and kurtosis; only n (and ddof=1 std, slightly) move.
    probs = [probabilistic_sharpe(np.tile(r, k)).probability for k in (1, 2, 4, 8)]
    assert probs[0] > 0.5 and probs == sorted(probs) and len(set(probs)) == 4
    by_n = [probabilistic_sharpe_from_moments(0.05, n=n, skewness=-1.0, kurtosis=6.0)
            .probability for n in (50, 100, 500, 2_000)]
    assert by_n == sorted(by_n) and len(set(by_n)) == 4


def test_negative_skew_and_fat_tails_lower_the_psr():
    normal = probabilistic_sharpe_from_moments(0.08, n=500, skewness=0.0, kurtosis=3.0)
    ugly = probabilistic_sharpe_from_moments(0.08, n=500, skewness=-2.0, kurtosis=12.0)
    assert ugly.std_error > normal.std_error and ugly.probability < normal.probability


def test_psr_is_per_period_and_scale_free(rng):
    r = _skewed_returns(rng) + 0.001
    a = probabilistic_sharpe(r)
    b = probabilistic_sharpe(100.0 * r)  # returns in percent: same SR, same PSR
    assert b.sharpe == pytest.approx(a.sharpe, rel=1e-12)
    assert b.probability == pytest.approx(a.probability, rel=1e-12)
    assert a.sharpe < 0.5  # per period (daily); an annualised SR would be sqrt(252) x larger


def test_expected_max_sharpe_follows_the_euler_mascheroni_formula(rng):
    assert math.isclose(EULER_GAMMA, 0.5772156649015329, rel_tol=0, abs_tol=1e-16)
    assert expected_max_sharpe(1, 0.3) == 0.0
    n = 100
    z = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n) + EULER_GAMMA * stats.norm.ppf(
        1 - 1 / (n * math.e))
    assert expected_max_sharpe(n, 4.0) == pytest.approx(2.0 * z, rel=1e-12)
    # It approximates E[max of N iid N(0, V)] (within about 1 % for N = 100).
    mc = rng.standard_normal((20_000, n)).max(axis=1).mean()
    assert expected_max_sharpe(n, 1.0) == pytest.approx(mc, rel=0.02)
    values = [expected_max_sharpe(k, 1.0) for k in (2, 5, 10, 100, 1_000)]
    assert values == sorted(values) and values[0] > 0.0
    for bad in (dict(n_trials=0, sr_variance=1.0), dict(n_trials=2.5, sr_variance=1.0),
                dict(n_trials=2, sr_variance=-1.0), dict(n_trials=2, sr_variance=math.nan)):
        with pytest.raises(ValueError):
            expected_max_sharpe(**bad)


def test_dsr_reproduces_the_bailey_lopez_de_prado_2014_example():
    # Annualised SR 2.5 from 5 years of daily returns (T = 1250, 250 days a year), skewness
    # -3, kurtosis 10, the best of N = 100 trials whose annualised SRs have variance 0.5.
    sr = 2.5 / math.sqrt(250)
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert round(sr0, 4) == 0.1132
    dsr = probabilistic_sharpe_from_moments(sr, n=1250, skewness=-3.0, kurtosis=10.0,
                                            benchmark_sr=sr0)
    assert round(dsr.probability, 4) == 0.9004
    # The same straight from the published formula.
    z = (sr - sr0) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + 9 / 4 * sr**2)
    assert dsr.probability == pytest.approx(stats.norm.cdf(z), rel=1e-12)


def test_dsr_deflates_the_psr(rng):
    r = _skewed_returns(rng) + 0.002
    psr0 = probabilistic_sharpe(r).probability
    v = 0.05**2
    one = deflated_sharpe(r, n_trials=1, sr_variance=v)
    assert one.probability == psr0 and one.benchmark_sr == 0.0
    dsrs = [deflated_sharpe(r, n_trials=k, sr_variance=v) for k in (2, 10, 100, 1_000)]
    assert all(d.probability <= psr0 for d in dsrs)
    assert [d.probability for d in dsrs] == sorted((d.probability for d in dsrs), reverse=True)
    d = dsrs[2]
    assert (d.n_trials, d.sr_variance) == (100, v)
    assert d.benchmark_sr == expected_max_sharpe(100, v)
    assert d.probability == pytest.approx(_reference_psr(r, d.benchmark_sr), rel=1e-10)
    # No dispersion across trials: nothing to deflate.
    assert deflated_sharpe(r, n_trials=100, sr_variance=0.0).probability == psr0


def test_sharpe_nan_only_with_a_reason(rng):
    flat = probabilistic_sharpe(np.full(100, 0.001))
    assert math.isnan(flat.probability) and "zero variance" in flat.reason
    one = probabilistic_sharpe([0.01])
    assert math.isnan(one.probability) and "at least 2" in one.reason
    d = deflated_sharpe(np.zeros(50), n_trials=10, sr_variance=0.01)
    assert math.isnan(d.probability) and d.reason and d.n_trials == 10
    degenerate = probabilistic_sharpe_from_moments(1.0, n=100, skewness=2.0, kurtosis=1.0)
    assert math.isnan(degenerate.probability) and "degenerate" in degenerate.reason
    with pytest.raises(ValueError):
        probabilistic_sharpe([0.01, np.nan, 0.02])
    with pytest.raises(ValueError):
        probabilistic_sharpe_from_moments(0.1, n=1, skewness=0.0, kurtosis=3.0)
    two = probabilistic_sharpe([0.01, 0.03])  # smallest sample: defined
    assert two.reason is None and 0.5 < two.probability < 1.0


# -------------------------------------------------------------------------------------
# Model health
# -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports():
    gen = np.random.default_rng(1234)
    train = gen.standard_normal((2_000, 2))
    recent = gen.standard_normal((500, 2))
    calm = feature_drift(train, recent, ["a", "b"], ks_alpha=0.001)
    moved = recent.copy()
    moved[:, 1] += 1.0
    drifted = feature_drift(train, moved, ["a", "b"], ks_alpha=0.001)
    n = 2_200
    sig = gen.standard_normal(n)
    steady = rolling_ic(sig, 0.5 * sig + gen.standard_normal(n), window=60)
    healthy = ic_decay(steady, reference_window=500, recent_window=1_200)
    beta = np.where(np.arange(n) < 1_000, 0.5, 0.1)  # IC about 0.43, then about 0.1
    fading = rolling_ic(sig, beta * sig + gen.standard_normal(n), window=60)
    decayed = ic_decay(fading, reference_window=500, recent_window=1_200)
    assert not calm.drifted and drifted.drifted and decayed.decayed and not healthy.decayed
    return dict(calm=calm, drifted=drifted, healthy=healthy, decayed=decayed)


def _health(reports, *, hours_ago: float | None = 10.0, drift: str | None = "calm",
            ic: str | None = "healthy", **kw) -> ModelHealth:
    return model_health(now=NOW, last_trained_at=None if hours_ago is None else
                        NOW - timedelta(hours=hours_ago), cadence=DAY,
                        drift=None if drift is None else reports[drift],
                        ic=None if ic is None else reports[ic], **kw)


def test_a_fresh_stable_skilful_model_is_healthy(reports):
    h = _health(reports)
    assert isinstance(h, ModelHealth)
    assert not (h.stale or h.drifted or h.decayed or h.flagged)
    assert h.reasons == () and h.notes == ()
    assert h.age == timedelta(hours=10) and h.limit == 2 * DAY and h.as_of == NOW
    with pytest.raises(FrozenInstanceError):
        h.flagged = True  # type: ignore[misc]


def test_staleness_is_strictly_over_the_multiple_of_the_cadence(reports):
    assert not _health(reports, hours_ago=48).stale  # exactly 2 x cadence: not yet
    h = _health(reports, hours_ago=49)
    assert h.stale and h.flagged and not h.drifted and not h.decayed
    (reason,) = h.reasons
    assert reason.startswith("stale: model age 49.0h > 2 x cadence = 48.0h")
    assert _health(reports, hours_ago=49, staleness_multiple=3.0).flagged is False
    never = _health(reports, hours_ago=None)
    assert never.stale and never.age is None and "never trained" in never.reasons[0]


def test_drift_alone_flags_with_the_feature_and_numbers(reports):
    h = _health(reports, drift="drifted")
    assert h.drifted and h.flagged and not h.stale and not h.decayed
    assert h.drifted_features == ("b",)
    (reason,) = h.reasons
    assert reason.startswith("drifted: 1 of 2 features (b: PSI ")


def test_decay_alone_flags_with_the_numbers(reports):
    h = _health(reports, ic="decayed")
    assert h.decayed and h.flagged and not h.stale and not h.drifted
    (reason,) = h.reasons
    assert reason.startswith("decayed: recent mean IC ") and "x reference mean IC" in reason
    assert "1200 recent, 500 reference" in reason


def test_everything_wrong_gives_three_reasons(reports):
    h = _health(reports, hours_ago=100, drift="drifted", ic="decayed")
    assert h.stale and h.drifted and h.decayed and h.flagged
    assert [r.split(":")[0] for r in h.reasons] == ["stale", "drifted", "decayed"]


def test_missing_or_undetermined_checks_are_noted_but_never_flag(reports):
    h = _health(reports, drift=None, ic=None)
    assert not h.flagged and h.reasons == ()
    assert h.notes == ("feature drift not checked", "IC decay not checked")
    undetermined = ic_decay([0.1, np.nan, np.nan], reference_window=1, recent_window=2)
    d = feature_drift(np.zeros((10, 1)) + np.arange(10)[:, None], np.full((5, 1), np.nan), ["x"])
    h = model_health(now=NOW, last_trained_at=NOW - DAY, cadence=DAY, drift=d, ic=undetermined)
    assert not h.flagged
    assert any("drift undetermined for x" in n for n in h.notes)
    assert any(n.startswith("IC decay undetermined: no valid IC in the recent") for n in h.notes)


def test_a_training_time_in_the_future_is_noted_not_stale(reports):
    h = _health(reports, hours_ago=-2)
    assert not h.stale and h.age == timedelta(hours=-2)
    assert h.notes == ("last_trained_at is 2.0h after now (clock skew?)",)


def test_model_health_agrees_with_the_model_staleness_kill_switch(reports):
    from shared.domain.risk import ModelFreshness, ModelStalenessSwitch
    from shared.domain.risk.synthetic import NOW as CTX_NOW
    from shared.domain.risk.synthetic import context, iron_condor, synthetic_market

    market = synthetic_market(np.random.default_rng(1234))
    ctx = context(iron_condor(market, edge=2_000.0), market)
    for hours in (None, 1.0, 47.9, 48.0, 48.01, 49.0, 500.0):
        at = None if hours is None else CTX_NOW - timedelta(hours=hours)
        trips = ModelStalenessSwitch().detect(
            replace(ctx, models=(ModelFreshness("regime", at, DAY),)))
        h = model_health(now=CTX_NOW, last_trained_at=at, cadence=DAY, drift=None, ic=None)
        assert h.stale == bool(trips), hours


@pytest.mark.parametrize("case", ["naive_now", "naive_trained", "cadence", "multiple"])
def test_model_health_rejects_bad_arguments(case):
    kw = dict(now=NOW, last_trained_at=NOW - DAY, cadence=DAY, drift=None, ic=None)
    if case == "naive_now":
        kw["now"] = NOW.replace(tzinfo=None)
    elif case == "naive_trained":
        kw["last_trained_at"] = datetime(2026, 11, 19, 12, 0)
    elif case == "cadence":
        kw["cadence"] = timedelta(0)
    else:
        kw["staleness_multiple"] = 0.0
    with pytest.raises(ValueError):
        model_health(**kw)


# -------------------------------------------------------------------------------------
# Purity
# -------------------------------------------------------------------------------------


def test_module_imports_no_heavy_library():
    code = ("import json, sys; import shared.domain.models.drift; "
            "print(json.dumps(sorted(m for m in ('arch', 'statsmodels', 'scipy', 'pandas') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


# ---------------------------------------------------------------- calibrated drift


def _ar1(rng, n, k, phi=0.95):
    x = np.zeros((n, k))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.normal(size=k)
    return x


def test_calibrated_drift_learns_autocorrelated_features_normal_drift():
    from shared.domain.models.drift import calibrate_psi, calibrated_drift, feature_drift

    rng = np.random.default_rng(1234)
    X = _ar1(rng, 1_500, 3)
    names = ("a", "b", "c")
    textbook = feature_drift(X[:-60], X[-60:], names, ks_alpha=0.0)
    cal = calibrate_psi(X[:-60], names)
    assert cal.windows > 200 and all(t > 0.25 for t in cal.thresholds)  # wider than 0.25
    report = calibrated_drift(X, names)
    assert textbook.drifted_features == names  # the textbook 0.25 flags a stationary AR(1)
    assert not report.drifted and report.drifted_features == ()


def test_calibrated_drift_flags_a_real_shift_in_the_recent_window():
    from shared.domain.models.drift import calibrated_drift

    rng = np.random.default_rng(1234)
    X = _ar1(rng, 1_500, 3)
    X[-60:, :2] += 25.0  # two features move far outside anything seen
    report = calibrated_drift(X, ("a", "b", "c"))
    assert report.drifted and set(report.drifted_features) == {"a", "b"}
    single = calibrated_drift(np.column_stack([X[:, 0], _ar1(rng, 1_500, 2)]),
                              ("a", "b", "c"), min_drifted=2)
    assert single.drifted_features == ("a",) and not single.drifted  # one is not enough
