"""Sharpe, PSR and DSR (shared.domain.backtest.sharpe) against independent references:
scipy's moments and normal distribution, a Monte-Carlo expected maximum, and the worked
example of Bailey & López de Prado (2014)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from shared.domain.backtest import (
    EULER_GAMMA,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    strategy_sharpes,
)


def _scipy_psr(returns: np.ndarray, benchmark: float) -> float:
    """PSR computed directly from scipy's statistics (no code shared with the module)."""
    sr = returns.mean() / returns.std(ddof=1)
    g3 = stats.skew(returns, bias=True)
    g4 = stats.kurtosis(returns, fisher=False, bias=True)
    n = returns.size
    return float(stats.norm.cdf((sr - benchmark) * math.sqrt(n - 1)
                                / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2)))


def test_sharpe_and_moments_match_scipy(rng):
    r = 0.002 + 0.01 * rng.standard_t(5, size=400)
    est = sharpe_ratio(r)
    assert est.reason == ""
    assert est.n == 400
    assert est.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert est.skew == pytest.approx(stats.skew(r, bias=True), rel=1e-10)
    assert est.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False, bias=True), rel=1e-10)


@pytest.mark.parametrize("benchmark", [0.0, 0.05, -0.1, 0.3])
def test_psr_matches_a_direct_scipy_computation(rng, benchmark):
    r = 0.01 + 0.05 * rng.gamma(2.0, 1.0, size=120) - 0.1  # skewed
    est = sharpe_ratio(r)
    psr = probabilistic_sharpe_ratio(est.sharpe, est.n, est.skew, est.kurtosis,
                                     benchmark=benchmark)
    assert psr.reason == ""
    assert psr.psr == pytest.approx(_scipy_psr(r, benchmark), abs=1e-12)


def test_psr_is_one_half_at_the_benchmark_and_grows_with_the_track_record():
    assert probabilistic_sharpe_ratio(0.2, 50, -1.0, 6.0, benchmark=0.2).psr == 0.5
    values = [probabilistic_sharpe_ratio(0.1, n, -0.5, 4.0).psr for n in (10, 50, 250, 1000)]
    assert values == sorted(values) and values[0] > 0.5
    below = probabilistic_sharpe_ratio(-0.1, 100, 0.0, 3.0)
    assert below.psr == pytest.approx(1.0 - probabilistic_sharpe_ratio(0.1, 100, 0.0, 3.0).psr)


def test_bailey_lopez_de_prado_2014_worked_example():
    """The DSR paper's example: annualised SR 2.5 over 5 years of daily returns (T = 1,250,
    250 days a year), skewness -3, kurtosis 10, N = 100 trials whose annualised Sharpe
    ratios have variance 0.5: SR_0 = 0.1132 per day and DSR = 0.9004."""
    sr = 2.5 / math.sqrt(250)
    var = 0.5 / 250
    assert expected_max_sharpe(100, var) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, n_trials=100, var_trials=var)
    assert dsr.reason == ""
    assert dsr.dsr == pytest.approx(0.9004, abs=5e-4)
    assert dsr.psr.psr == dsr.dsr and dsr.sr0 == pytest.approx(0.1132, abs=5e-5)


def test_expected_maximum_matches_scipy_and_monte_carlo():
    n, var = 50, 0.04
    ref = math.sqrt(var) * ((1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / n)
                            + np.euler_gamma * stats.norm.ppf(1 - 1 / (n * math.e)))
    assert abs(EULER_GAMMA - np.euler_gamma) < 1e-15
    assert expected_max_sharpe(n, var) == pytest.approx(ref, rel=1e-12)
    # the formula approximates E[max of N iid N(0, V)]: within a few percent for N = 50
    draws = np.random.default_rng(7).normal(0.0, math.sqrt(var), size=(20_000, n)).max(axis=1)
    assert expected_max_sharpe(n, var) == pytest.approx(draws.mean(), rel=0.03)
    assert expected_max_sharpe(1, var) == 0.0


def test_dsr_falls_as_more_trials_are_run():
    values = [deflated_sharpe_ratio(0.15, 500, -0.5, 5.0, n_trials=k, var_trials=0.003).dsr
              for k in (1, 2, 5, 10, 100, 1000, 10_000)]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))
    # one trial has nothing to deflate: DSR is the PSR against zero
    assert values[0] == probabilistic_sharpe_ratio(0.15, 500, -0.5, 5.0).psr
    # a wider spread of the trials' Sharpe ratios deflates more
    assert deflated_sharpe_ratio(0.15, 500, 0, 3, n_trials=10, var_trials=0.01).dsr < \
        deflated_sharpe_ratio(0.15, 500, 0, 3, n_trials=10, var_trials=0.001).dsr


def test_undefined_results_are_nan_with_a_reason():
    one = sharpe_ratio([0.01])
    assert math.isnan(one.sharpe) and "at least 2" in one.reason
    flat = sharpe_ratio([0.01, 0.01, 0.01])
    assert math.isnan(flat.sharpe) and "zero variance" in flat.reason
    short = probabilistic_sharpe_ratio(0.5, 1)
    assert math.isnan(short.psr) and "at least 2" in short.reason
    # extreme positive skew with a large SR: the estimator's variance term is negative
    bad = probabilistic_sharpe_ratio(1.0, 30, skew=5.0, kurtosis=3.0)
    assert math.isnan(bad.psr) and "not positive" in bad.reason
    nan_var = deflated_sharpe_ratio(0.1, 100, 0, 3, n_trials=5, var_trials=math.nan)
    assert math.isnan(nan_var.dsr) and nan_var.reason
    with pytest.raises(ValueError, match="finite"):
        sharpe_ratio([0.1, math.nan])
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)


def test_strategy_sharpes_deflate_among_the_strategies_that_traded(rng):
    returns = {"iron_condor": list(0.01 + 0.02 * rng.standard_normal(40)),
               "credit_vertical": list(-0.005 + 0.03 * rng.standard_normal(25)),
               "long_straddle": [0.2]}  # one trade: no Sharpe ratio
    out = {s.strategy: s for s in strategy_sharpes(returns)}
    assert list(out) == sorted(returns)
    lone = out["long_straddle"]
    assert math.isnan(lone.estimate.sharpe) and math.isnan(lone.psr.psr)
    assert math.isnan(lone.dsr.dsr) and "at least 2" in lone.dsr.reason
    srs = [out[k].estimate.sharpe for k in ("credit_vertical", "iron_condor")]
    for k in ("credit_vertical", "iron_condor"):
        s = out[k]
        assert s.dsr.n_trials == 2
        assert s.dsr.var_trials == pytest.approx(np.var(srs, ddof=1))
        assert s.psr.psr == pytest.approx(_scipy_psr(np.array(returns[k]), 0.0), abs=1e-12)
        assert s.dsr.dsr <= s.psr.psr  # SR_0 > 0 with two trials
    single = strategy_sharpes({"iron_condor": returns["iron_condor"]})[0]
    assert single.dsr.n_trials == 1 and single.dsr.dsr == single.psr.psr
