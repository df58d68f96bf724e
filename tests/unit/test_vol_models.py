"""Volatility models (``shared/domain/models/vol.py``): realized measures, HAR-RV, GARCH/GJR
and the walk-forward evaluation.

Synthetic data come from ``np.random.default_rng(1234)`` with known parameters; the
real-data check uses the NIFTY 50 daily history in the kit's fixtures (skipped if absent).
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shared.domain.models import (
    TRADING_DAYS,
    GarchParams,
    HarCoefficients,
    HarFeatures,
    HarModel,
    RealizedSeries,
    WalkForwardReport,
    annualised_vol,
    fit_garch,
    forecast_garch_variance,
    garman_klass_variance,
    har_features,
    har_target,
    parkinson_variance,
    realized_variance_from_bars,
    score_forecasts,
    walk_forward,
)

ROOT = Path(__file__).resolve().parents[2]
INDEX_HISTORY = ROOT.parent / "shared" / "fixtures" / "index_history"
NIFTY_DAILY = INDEX_HISTORY / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv"
BARS_PER_SESSION = 376  # 09:15-15:30 closes: 375 one-minute returns per NSE session


def seeded() -> np.random.Generator:
    """The suite's seeded generator (a fresh one per call, so tests are independent)."""
    return np.random.default_rng(1234)


def gbm_log_prices(gen: np.random.Generator, sessions: int, steps: int, sigma: float,
                   level: float = 20_000.0) -> np.ndarray:
    """Driftless log-price paths, one row per session, ``steps + 1`` points from the open;
    ``sigma`` is the daily (open-to-close) volatility."""
    z = gen.standard_normal((sessions, steps)) * (sigma / math.sqrt(steps))
    paths = np.zeros((sessions, steps + 1))
    np.cumsum(z, axis=1, out=paths[:, 1:])
    return paths + math.log(level)


# -------------------------------------------------------------------------------------
# Realized measures
# -------------------------------------------------------------------------------------


def test_realized_variance_recovers_sigma_of_gbm_bars():
    sigma, sessions, returns = 0.01, 300, BARS_PER_SESSION - 1
    logp = gbm_log_prices(seeded(), sessions, returns, sigma)
    ids = np.repeat(np.arange(20240101, 20240101 + sessions), BARS_PER_SESSION)

    out = realized_variance_from_bars(ids, np.exp(logp).ravel())

    assert isinstance(out, RealizedSeries)
    assert np.array_equal(out.sessions, np.unique(ids))
    assert np.all(out.n_bars == BARS_PER_SESSION)
    # Each session's RV is sigma^2 chi2(375)/375: relative sd sqrt(2/375) per session.
    per_session_sd = math.sqrt(2.0 / returns)
    assert np.all(np.abs(out.rv / sigma**2 - 1.0) < 5 * per_session_sd)
    mean_ratio = out.rv.mean() / sigma**2
    assert abs(mean_ratio - 1.0) < 4 * per_session_sd / math.sqrt(sessions)
    assert out.vol.mean() == pytest.approx(sigma * math.sqrt(TRADING_DAYS), rel=0.01)
    assert not out.rv.flags.writeable


def test_realized_variance_excludes_the_overnight_return():
    gen = seeded()
    logp = gbm_log_prices(gen, 20, 60, 0.01)
    gaps = np.cumsum(gen.normal(0.0, 0.05, size=(20, 1)), axis=0)  # 5 % overnight moves
    ids = np.repeat(np.arange(20), 61)

    flat = realized_variance_from_bars(ids, np.exp(logp).ravel())
    gapped = realized_variance_from_bars(ids, np.exp(logp + gaps).ravel())

    np.testing.assert_allclose(gapped.rv, flat.rv, rtol=1e-9)
    within = np.diff(logp, axis=1)
    np.testing.assert_allclose(flat.rv, (within**2).sum(axis=1), rtol=1e-12)


def test_realized_variance_edge_cases():
    out = realized_variance_from_bars(["a", "a", "b", "c", "c", "c"],
                                      [100.0, 101.0, 50.0, 10.0, 10.0, 11.0])
    assert out.sessions.tolist() == ["a", "b", "c"]
    assert out.n_bars.tolist() == [2, 1, 3]
    assert out.rv[0] == pytest.approx(math.log(1.01) ** 2)
    assert math.isnan(out.rv[1])  # one bar: no return, no variance
    assert out.rv[2] == pytest.approx(math.log(1.1) ** 2)

    with pytest.raises(ValueError, match="contiguous"):
        realized_variance_from_bars([1, 1, 2, 1], [1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        realized_variance_from_bars([1, 1], [1.0, 0.0])
    with pytest.raises(ValueError):
        realized_variance_from_bars([1, 1], [1.0])


def test_range_estimators_are_nearly_unbiased_on_one_minute_paths():
    """Daily OHLC aggregated from simulated 1-minute paths (8000 sessions, sigma 1 %/day).

    Both estimators target the open-to-close variance; a 375-bar path's range is a little
    narrower than the continuous one, so both come out a few % low (as documented).
    """
    sigma, days = 0.01, 8000
    prices = np.exp(gbm_log_prices(seeded(), days, BARS_PER_SESSION - 1, sigma))
    o, h, lo, c = prices[:, 0], prices.max(axis=1), prices.min(axis=1), prices[:, -1]

    pk = parkinson_variance(h, lo)
    gk = garman_klass_variance(o, h, lo, c)

    for estimate in (pk, gk):
        ratio = estimate.mean() / sigma**2
        assert 0.88 < ratio < 1.0, ratio
    # Garman-Klass is far more efficient than the squared open-to-close return.
    assert np.var(np.log(c / o) ** 2) / np.var(gk) > 5.0
    assert np.all(gk >= 0.0)


def test_range_estimator_formulas_and_invalid_bars():
    o, h, lo, c = (np.array(v) for v in ([100.0, 100.0, 100.0], [110.0, 90.0, 105.0],
                                         [95.0, 95.0, -1.0], [105.0, 95.0, 100.0]))
    gk = garman_klass_variance(o, h, lo, c)
    expected = 0.5 * math.log(110 / 95) ** 2 - (2 * math.log(2) - 1) * math.log(1.05) ** 2
    assert gk[0] == pytest.approx(expected, rel=1e-14)
    assert np.isnan(gk[1:]).all()  # high below the open; negative low

    pk = parkinson_variance(h, lo)
    assert pk[0] == pytest.approx(math.log(110 / 95) ** 2 / (4 * math.log(2)), rel=1e-14)
    assert np.isnan(pk[1:]).all()  # high below low; negative low

    assert annualised_vol([1e-4])[0] == pytest.approx(0.01 * math.sqrt(252))


# -------------------------------------------------------------------------------------
# HAR-RV
# -------------------------------------------------------------------------------------

HAR_TRUE = np.array([1.0e-5, 0.35, 0.30, 0.25])  # const (daily variance), d, w, m


def simulate_har(gen: np.random.Generator, n: int, burn: int = 500) -> np.ndarray:
    """Level HAR with multiplicative Gamma(4) noise: E[RV_{t+1} | F_t] is exactly linear."""
    c, bd, bw, bm = HAR_TRUE
    total = n + burn
    rv = np.full(total, c / (1.0 - bd - bw - bm))
    shocks = gen.gamma(4.0, 0.25, size=total)
    for t in range(22, total - 1):
        mean = c + bd * rv[t] + bw * rv[t - 4:t + 1].mean() + bm * rv[t - 21:t + 1].mean()
        rv[t + 1] = mean * shocks[t + 1]
    return rv[burn:]


def simulate_log_har(gen: np.random.Generator, n: int, coef: np.ndarray,
                     noise: float, burn: int = 500) -> np.ndarray:
    c, bd, bw, bm = coef
    total = n + burn
    rv = np.full(total, math.exp(c / (1.0 - bd - bw - bm)))
    eps = gen.normal(0.0, noise, size=total)
    for t in range(22, total - 1):
        log_mean = (c + bd * math.log(rv[t]) + bw * math.log(rv[t - 4:t + 1].mean())
                    + bm * math.log(rv[t - 21:t + 1].mean()))
        rv[t + 1] = math.exp(log_mean + eps[t + 1])
    return rv[burn:]


def test_har_recovers_simulated_coefficients():
    rv = simulate_har(seeded(), 6000)

    fit = HarModel().fit(rv, 1)

    assert fit.n_obs == rv.size - 21 - 1
    est, se = fit.params.as_array(), fit.std_errors.as_array()
    assert np.all(se > 0)
    assert np.all(np.abs(est - HAR_TRUE) < 4 * se), (est, se)
    np.testing.assert_allclose(fit.t_stats.as_array(), est / se)
    assert 0.0 < fit.r2 < 1.0


def test_log_har_recovers_simulated_coefficients_and_predicts_levels():
    coef = np.array([-1.0, 0.30, 0.35, 0.25])
    rv = simulate_log_har(seeded(), 5000, coef, noise=0.4)

    fit = HarModel(log=True).fit(rv, 1)

    est, se = fit.params.as_array(), fit.std_errors.as_array()
    assert np.all(np.abs(est - coef) < 4 * se), (est, se)
    assert fit.resid_var == pytest.approx(0.4**2, rel=0.1)
    # predict() returns daily variance levels with the log-normal mean correction.
    feats = har_features(rv)
    pred = fit.predict(feats)
    row = feats.X[-1]
    manual = math.exp(est @ np.r_[1.0, np.log(row)] + 0.5 * fit.resid_var)
    assert pred[-1] == pytest.approx(manual, rel=1e-12)
    assert np.isnan(pred[:21]).all() and np.isfinite(pred[21:]).all()
    assert fit.predict(row).shape == (1,)


def test_har_hac_errors_and_horizons():
    rv = simulate_har(seeded(), 3000)
    for h in (1, 5, 22):
        fit = HarModel().fit(rv, h)
        assert fit.horizon == h and fit.n_obs == rv.size - 21 - h
        assert fit.params.monthly > 0  # persistence shows at every horizon
    target = har_target(rv, 5)
    assert target[0] == pytest.approx(rv[1:6].mean())
    assert np.isnan(target[-5:]).all() and np.isfinite(target[:-5]).all()
    with pytest.raises(ValueError):
        HarModel().fit(rv[:40], 5)
    with pytest.raises(ValueError):
        HarModel(log=True).fit(np.r_[0.0, rv], 0)


def test_har_features_are_point_in_time():
    rv = simulate_har(seeded(), 400)
    base = har_features(rv)
    assert isinstance(base, HarFeatures) and base.X.shape == (400, 3)
    assert not base.valid[:21].any() and base.valid[21:].all()
    np.testing.assert_allclose(base.X[30], [rv[30], rv[26:31].mean(), rv[9:31].mean()])

    gen = np.random.default_rng(99)
    for t in (21, 50, 200, 398):
        altered = rv.copy()
        altered[t + 1:] = gen.uniform(0.0, 1.0, size=altered.size - t - 1)
        moved = har_features(altered)
        assert np.array_equal(moved.X[: t + 1], base.X[: t + 1], equal_nan=True)
        assert np.array_equal(moved.valid[: t + 1], base.valid[: t + 1])


def test_har_coefficients_round_trip():
    c = HarCoefficients.from_array([1.0, 2.0, 3.0, 4.0])
    assert (c.const, c.daily, c.weekly, c.monthly) == (1.0, 2.0, 3.0, 4.0)
    assert c.as_array().tolist() == [1.0, 2.0, 3.0, 4.0]


# -------------------------------------------------------------------------------------
# GARCH / GJR
# -------------------------------------------------------------------------------------


def simulate_garch(gen: np.random.Generator, n: int, omega: float, alpha: float,
                   gamma: float, beta: float, burn: int = 500) -> np.ndarray:
    total = n + burn
    z = gen.standard_normal(total)
    r = np.empty(total)
    var = omega / (1.0 - alpha - 0.5 * gamma - beta)
    for t in range(total):
        r[t] = math.sqrt(var) * z[t]
        var = omega + (alpha + gamma * (r[t] < 0)) * r[t] ** 2 + beta * var
    return r[burn:]


def test_garch_recovers_persistence():
    r = simulate_garch(seeded(), 4000, omega=2e-6, alpha=0.08, gamma=0.0, beta=0.90)

    fit = fit_garch(r, "garch")

    assert fit.converged and fit.kind == "garch" and fit.n_obs == 4000
    assert fit.persistence == pytest.approx(0.98, abs=0.015)
    assert fit.params.alpha == pytest.approx(0.08, abs=0.03)
    assert fit.params.gamma == 0.0
    # Decimal units: unconditional variance 1e-4 (1 % a day), omega ~ 2e-6.
    assert fit.params.unconditional_variance == pytest.approx(1e-4, rel=0.3)
    assert 0.5e-6 < fit.params.omega < 5e-6
    # Log-likelihood of decimal returns: about -0.5 ln(2 pi) - ln(0.01) - 0.5 per day.
    assert fit.loglikelihood / fit.n_obs == pytest.approx(3.19, abs=0.2)


def test_gjr_finds_the_leverage_effect():
    r = simulate_garch(seeded(), 4000, omega=2e-6, alpha=0.02, gamma=0.15, beta=0.88)

    fit = fit_garch(r, "gjr")

    assert fit.converged and fit.kind == "gjr"
    assert fit.params.gamma > 0 and fit.params.gamma / fit.std_errors.gamma > 3
    assert fit.persistence == pytest.approx(0.975, abs=0.02)
    assert fit.persistence == pytest.approx(
        fit.params.alpha + fit.params.gamma / 2 + fit.params.beta)


def test_garch_variance_forecast_is_the_mean_of_the_term_structure():
    r = simulate_garch(seeded(), 2000, omega=2e-6, alpha=0.08, gamma=0.0, beta=0.90)
    fit = fit_garch(r, "garch")
    p = fit.params
    first = fit.forecast_variance(1)
    ubar = p.unconditional_variance
    steps = [ubar + p.persistence**k * (first - ubar) for k in range(22)]
    assert fit.forecast_variance(22) == pytest.approx(np.mean(steps), rel=1e-10)
    assert 1e-6 < first < 1e-3  # decimal daily variance, not percent^2
    # Filtering with the fitted parameters fixed reproduces the fit's own forecast.
    assert forecast_garch_variance(r, p, 5) == pytest.approx(fit.forecast_variance(5),
                                                             rel=1e-10)
    # ... and refitting is not needed to take in new data.
    longer = np.r_[r, 0.05]  # a 5 % shock raises the next-day variance
    assert forecast_garch_variance(longer, p, 1) > first
    again = GarchParams.from_arch("garch", p.to_arch())
    assert again.kind == "garch" and again.omega == pytest.approx(p.omega, rel=1e-14)


def test_garch_rejects_bad_input():
    with pytest.raises(ValueError):
        fit_garch(np.zeros(50), "garch")
    with pytest.raises(ValueError):
        fit_garch(np.r_[np.nan, np.zeros(200)], "garch")
    with pytest.raises(ValueError):
        fit_garch(np.zeros(200), "egarch")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------
# Walk-forward
# -------------------------------------------------------------------------------------


def synthetic_market(n: int) -> tuple[np.ndarray, np.ndarray]:
    """GARCH returns and a noisy RV proxy of their conditional variance."""
    gen = seeded()
    omega, alpha, beta = 2e-6, 0.08, 0.90
    z = gen.standard_normal(n + 200)
    r = np.empty(n + 200)
    var = np.empty(n + 200)
    v = omega / (1 - alpha - beta)
    for t in range(n + 200):
        var[t] = v
        r[t] = math.sqrt(v) * z[t]
        v = omega + alpha * r[t] ** 2 + beta * v
    rv = var * gen.gamma(5.0, 0.2, size=n + 200)
    return rv[200:], r[200:]


MODELS = ("har", "har_log", "garch", "gjr", "combo")


def run_small(rv: np.ndarray, r: np.ndarray, horizon: int = 5) -> WalkForwardReport:
    return walk_forward(rv, r, horizon, min_train=300, step=3, refit_every=10, combo_window=40)


def test_walk_forward_reports_every_model():
    rv, r = synthetic_market(600)
    rep = run_small(rv, r)

    assert tuple(rep.forecasts) == MODELS
    assert tuple(s.name for s in rep.scores) == MODELS
    assert rep.origins[0] == 299 and rep.origins[-1] + 5 <= rv.size - 1
    assert np.all(np.diff(rep.origins) == 3)
    assert rep.garch_refits == math.ceil(rep.origins.size / 10)
    np.testing.assert_allclose(rep.target, [rv[t + 1:t + 6].mean() for t in rep.origins])
    np.testing.assert_allclose(rep.benchmark, [rv[: t + 1].mean() for t in rep.origins])
    assert rep.combo_weight_har[0] == 0.5  # no completed origin yet
    assert np.all((rep.combo_weight_har > 0) & (rep.combo_weight_har < 1))
    for name in MODELS:
        f = rep.forecasts[name]
        assert np.all(f > 0) and not f.flags.writeable
        again = score_forecasts(name, f, rep.target, rep.benchmark,
                                n_filtered=rep.score(name).n_filtered)
        assert again == rep.score(name)
    s = rep.score("garch")
    sse = float(((rep.target - rep.forecasts["garch"]) ** 2).sum())
    assert s.mse == pytest.approx(sse / s.n)
    assert s.r2 == pytest.approx(1 - sse / ((rep.target - rep.target.mean()) ** 2).sum())
    assert s.r2_os == pytest.approx(1 - sse / ((rep.target - rep.benchmark) ** 2).sum())
    assert rep.benchmark_score.r2_os == 0.0
    # On data generated by a GARCH, GARCH beats the expanding mean.
    assert s.r2_os > 0 and s.qlike < rep.benchmark_score.qlike
    with pytest.raises(KeyError):
        rep.score("nope")


@pytest.mark.parametrize("cut", ["after_last_origin", "interior_origin"])
def test_walk_forward_has_no_look_ahead(cut):
    rv, r = synthetic_market(600)
    base = run_small(rv, r)
    t_cut = int(base.origins[-1] if cut == "after_last_origin" else base.origins[40])

    rv2, r2 = rv.copy(), r.copy()
    gen = np.random.default_rng(7)
    rv2[t_cut + 1:] *= gen.uniform(0.1, 10.0, size=rv.size - t_cut - 1)
    r2[t_cut + 1:] = -3.0 * r2[t_cut + 1:]
    moved = run_small(rv2, r2)

    known = base.origins <= t_cut
    assert not np.array_equal(moved.target[known], base.target[known])  # targets did move
    for name in MODELS:
        assert np.array_equal(moved.forecasts[name][known], base.forecasts[name][known]), name
    assert np.array_equal(moved.benchmark[known], base.benchmark[known])
    assert np.array_equal(moved.combo_weight_har[known], base.combo_weight_har[known])


def test_walk_forward_rejects_bad_input():
    rv, r = synthetic_market(400)
    with pytest.raises(ValueError):
        walk_forward(rv, r[:-1], 5, min_train=300)
    with pytest.raises(ValueError):
        walk_forward(np.r_[0.0, rv[1:]], r, 5, min_train=300)
    with pytest.raises(ValueError):
        walk_forward(rv, r, 5, min_train=50)
    with pytest.raises(ValueError):
        walk_forward(rv, r, 5, min_train=300, step=0)


def load_nifty_daily() -> dict[str, np.ndarray]:
    if not NIFTY_DAILY.exists():
        pytest.skip(f"{NIFTY_DAILY} is not available")
    with NIFTY_DAILY.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(row[k]) for row in rows]) for k in ("Open", "High", "Low", "Close")}


def test_walk_forward_on_nifty_daily_history():
    """5-day-ahead OOS accuracy on NIFTY 50, 2000-2019, Garman-Klass variance as the RV.

    Measured (min_train=1000, step=5, refit_every=22: 790 origins, 2003-12 to 2019-11,
    about 4 s): HAR R^2 0.14 (R^2_OS 0.15), log-HAR 0.25 (0.26), GARCH -0.02, GJR -0.01,
    combination 0.12. GARCH/GJR forecast the close-to-close variance, overnight gap
    included, so they sit above the range-based target. The 0.5-0.6 claimed upstream
    matches the *in-sample* R^2 of the log-HAR in log space (~0.65), not an
    out-of-sample figure.
    """
    px = load_nifty_daily()
    gk = garman_klass_variance(px["Open"], px["High"], px["Low"], px["Close"])
    returns = np.diff(np.log(px["Close"]))
    rv = gk[1:]
    assert np.all(rv > 0) and np.isfinite(returns).all()

    started = time.perf_counter()
    rep = walk_forward(rv, returns, 5, min_train=1000, step=5, refit_every=22)
    elapsed = time.perf_counter() - started

    print(f"\nNIFTY 5-day-ahead, {rep.origins.size} origins, {elapsed:.1f} s")
    for s in (*rep.scores, rep.benchmark_score):
        print(f"  {s.name:15s} R2={s.r2:6.3f} R2_OS={s.r2_os:6.3f} QLIKE={s.qlike:.3f} "
              f"MSE={s.mse:.3e} bias={s.bias:.2e}")
    har, har_log = rep.score("har"), rep.score("har_log")
    assert har.r2 > 0 and har.r2_os > 0
    assert har_log.r2 > 0 and har_log.r2_os > 0
    assert har_log.qlike < rep.benchmark_score.qlike
    assert har.r2 < 0.5  # the honest figure, well below the claimed 0.5-0.6


def test_module_imports_no_heavy_library():
    code = ("import json, sys; import shared.domain.models.vol; "
            "print(json.dumps(sorted(m for m in ('arch', 'statsmodels', 'scipy', 'pandas') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []
