"""Direction model (``shared/domain/models/direction.py``): labels, metrics, calibration,
the LightGBM model and its fast path, and the walk-forward evaluation on real NIFTY data.

Synthetic data come from ``np.random.default_rng(1234)`` with a planted signal; the
real-data checks use the NIFTY 50 daily history in the kit's fixtures (skipped if absent).
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from shared.domain.features import Feature, Panel, default_features
from shared.domain.models.direction import (
    DirectionFit,
    DirectionModel,
    DirectionReport,
    TreeEnsemble,
    auc_mann_whitney,
    brier_score,
    direction_labels,
    evaluate_direction,
    expected_calibration_error,
    fit_platt,
    log_loss,
    score_probabilities,
)
from shared.marketdata import HistoryFormat, read_history

ROOT = Path(__file__).resolve().parents[2]
NIFTY_DAILY = (ROOT.parent / "shared" / "fixtures" / "index_history"
               / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv")


def seeded() -> np.random.Generator:
    return np.random.default_rng(1234)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def planted(n: int, features: int = 6, strength: float = 1.5,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of standard-normal features; ``P(up) = sigmoid(strength * x0)``, the rest
    noise. Returns ``(X, up, true_p)``."""
    gen = seeded()
    X = gen.standard_normal((n, features))
    p = sigmoid(strength * X[:, 0])
    return X, gen.random(n) < p, p


@pytest.fixture(scope="module")
def planted_fit() -> tuple[DirectionFit, np.ndarray, np.ndarray]:
    """Trained on the first 3,000 planted rows; the other 4,000 are out of sample."""
    X, up, _ = planted(7_000)
    return DirectionModel().fit(X[:3_000], up[:3_000]), X[3_000:], up[3_000:]


def nifty_panel() -> Panel:
    if not NIFTY_DAILY.exists():
        pytest.skip(f"{NIFTY_DAILY} is not available (the fixture kit is not beside the "
                    f"checkout)")
    bars = read_history(NIFTY_DAILY, HistoryFormat.YAHOO_PANDAS, symbol="NIFTY")
    return Panel(bars.dates, {"open": bars.open, "high": bars.high, "low": bars.low,
                              "close": bars.close})


def per_call_us(fn: Callable[[np.ndarray], float], x: np.ndarray, *, calls: int = 2_000,
                repeats: int = 7) -> tuple[float, float]:
    """(best, median) over ``repeats`` batches of the mean time per call, microseconds.
    The best batch is the least disturbed by other work on the machine."""
    for _ in range(200):
        fn(x)
    batches = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn(x)
        batches.append((time.perf_counter() - started) / calls * 1e6)
    return min(batches), float(np.median(batches))


# ----------------------------------------------------------------------------- labels


def test_labels_are_the_sign_of_the_forward_log_return():
    close = np.array([100.0, 101.0, 99.0, 99.0, 102.0, 103.0, 100.0])
    lab = direction_labels(close, horizon=2)
    expected = np.log(close[2:] / close[:-2])
    assert np.allclose(lab.forward_return[:-2], expected)
    assert np.isnan(lab.forward_return[-2:]).all()  # closes t+1..t+2 not known yet
    assert lab.up.tolist() == [False, False, True, True, False, False, False]
    # row 1: 101 -> 99 down; row 2: 99 -> 102 up; no zero return here
    assert lab.has_direction.tolist() == [True] * 5 + [False] * 2
    assert lab.trainable.tolist() == lab.has_direction.tolist()
    assert not lab.up.flags.writeable and lab.horizon == 2


def test_zero_returns_have_no_direction_and_the_dead_zone_only_limits_training():
    close = np.array([100.0, 100.0, 100.2, 103.0, 100.1])
    lab = direction_labels(close, horizon=1, dead_zone=0.005)
    # returns: 0, +0.2 %, +2.8 %, -2.9 %
    assert lab.has_direction.tolist() == [False, True, True, True, False]
    assert lab.trainable.tolist() == [False, False, True, True, False]
    assert lab.up.tolist() == [False, True, True, False, False]


def test_a_label_reads_only_closes_t_to_t_plus_h():
    close = 100.0 * np.exp(np.cumsum(seeded().normal(0, 0.01, 60)))
    h, t = 5, 30
    base = direction_labels(close, horizon=h)
    later, inside = close.copy(), close.copy()
    later[t + h + 1:] *= 1.5  # after the label window: row t must not move
    inside[t + h] *= 1.5  # the window's last close: row t must move
    assert direction_labels(later, horizon=h).forward_return[t] == base.forward_return[t]
    assert direction_labels(inside, horizon=h).forward_return[t] != base.forward_return[t]
    earlier = close.copy()
    earlier[:t] *= 1.5  # before the window (features' side): row t must not move
    assert direction_labels(earlier, horizon=h).forward_return[t] == base.forward_return[t]


@pytest.mark.parametrize("kwargs", [{"horizon": 0}, {"dead_zone": -0.1},
                                    {"dead_zone": math.nan}])
def test_labels_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        direction_labels(np.ones(10), **kwargs)
    with pytest.raises(ValueError):
        direction_labels(np.array([1.0, -1.0, 2.0]))


# ---------------------------------------------------------------------------- metrics


def test_auc_is_the_pairwise_probability_with_ties_counted_half():
    gen = seeded()
    score = gen.integers(0, 6, 80).astype(float)  # many ties
    up = gen.random(80) < 0.4
    pos, neg = score[up], score[~up]
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a, b in itertools.product(pos, neg)]
    assert auc_mann_whitney(score, up) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert auc_mann_whitney([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
    assert auc_mann_whitney([0.9, 0.2, 0.1], [0, 0, 1]) == 0.0
    assert auc_mann_whitney([0.5, 0.5], [0, 1]) == 0.5
    assert math.isnan(auc_mann_whitney([0.3, 0.4], [1, 1]))  # undefined: one class


def test_brier_log_loss_and_ece_on_hand_computed_cases():
    p = np.array([0.1, 0.1, 0.8, 0.8, 0.8, 0.8, 0.8])
    up = np.array([0, 0, 1, 1, 1, 1, 0])
    assert brier_score(p, up) == pytest.approx((2 * 0.01 + 4 * 0.04 + 0.64) / 7)
    assert log_loss(p, up) == pytest.approx(
        -(2 * math.log(0.9) + 4 * math.log(0.8) + math.log(0.2)) / 7)
    # bins 1 (p 0.1, outcome rate 0) and 8 (p 0.8, outcome rate 4/5)
    assert expected_calibration_error(p, up) == pytest.approx(
        2 / 7 * 0.1 + 5 / 7 * 0.0, abs=1e-12)
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0  # p = 1 in the last bin
    assert log_loss([0.0, 1.0], [1, 0]) == pytest.approx(-math.log(1e-15), rel=1e-4)  # clipped
    assert brier_score([0.5] * 4, [0, 1, 0, 1]) == 0.25
    s = score_probabilities(p, up)
    assert s.n == 7 and s.accuracy == pytest.approx(6 / 7)
    assert s.base_rate == pytest.approx(4 / 7) and s.majority_accuracy == pytest.approx(4 / 7)
    assert s.brier_skill == pytest.approx(1 - s.brier / (4 / 7 * 3 / 7))
    with pytest.raises(ValueError):
        brier_score([1.2], [1])
    with pytest.raises(ValueError):
        log_loss([0.5, np.nan], [1, 0])
    with pytest.raises(ValueError):
        expected_calibration_error([0.5], [2])


# ------------------------------------------------------------------------ calibration


def test_platt_recovers_a_known_slope_and_intercept():
    gen = seeded()
    raw = gen.normal(0, 1.5, 40_000)
    up = gen.random(raw.size) < sigmoid(0.6 * raw - 0.4)
    cal = fit_platt(raw, up)
    assert cal.a == pytest.approx(0.6, abs=0.03) and cal.b == pytest.approx(-0.4, abs=0.03)
    assert cal.apply_one(0.7) == pytest.approx(float(cal.apply(np.array([0.7]))[0]), rel=1e-14)
    assert cal.apply_one(-800.0) == 0.0 or cal.apply_one(-800.0) < 1e-200  # no overflow


def test_platt_never_reverses_the_ranking_unless_asked():
    gen = seeded()
    raw = gen.normal(0, 1, 5_000)
    up = gen.random(raw.size) < sigmoid(-0.5 * raw)  # anti-informative scores
    flat = fit_platt(raw, up)
    assert flat.a == 0.0
    assert float(flat.apply(np.zeros(1))[0]) == pytest.approx(up.mean(), abs=1e-3)
    assert fit_platt(raw, up, monotone=False).a == pytest.approx(-0.5, abs=0.08)
    # separable data and a constant score still give a finite answer
    assert math.isfinite(fit_platt([-1.0, -0.5, 0.5, 1.0], [0, 0, 1, 1]).a)
    assert fit_platt(np.zeros(10), [0, 1] * 5).a == pytest.approx(0.0, abs=1e-6)


def test_calibration_repairs_an_overconfident_booster():
    X, up, _ = planted(5_000, strength=0.5)  # a weak signal an overfit booster overstates
    overfit = DirectionModel(num_boost_round=300, params={
        "num_leaves": 31, "max_depth": -1, "min_data_in_leaf": 5, "learning_rate": 0.1,
        "lambda_l2": 0.0})
    fit = overfit.fit(X[:2_000], up[:2_000])
    raw = score_probabilities(sigmoid(fit.raw_score(X[2_000:])), up[2_000:])
    cal = score_probabilities(fit.predict(X[2_000:]), up[2_000:])
    print(f"\noverfit booster OOS: raw ECE {raw.ece:.3f} Brier {raw.brier:.4f}; "
          f"calibrated ECE {cal.ece:.3f} Brier {cal.brier:.4f} (a={fit.calibration.a:.3f})")
    assert fit.calibration.a < 0.5  # strong shrinkage
    assert cal.ece < 0.5 * raw.ece and cal.brier < raw.brier and cal.log_loss < raw.log_loss


# -------------------------------------------------------------------------- the model


def test_planted_signal_is_found_and_calibrated(planted_fit):
    fit, X_test, up_test = planted_fit
    s = score_probabilities(fit.predict(X_test), up_test)
    X, up, p_true = planted(7_000)
    best = score_probabilities(p_true[3_000:], up[3_000:])  # the true probabilities
    print(f"\nplanted OOS: accuracy {s.accuracy:.3f} (oracle {best.accuracy:.3f}), "
          f"AUC {s.auc:.3f} (oracle {best.auc:.3f}), ECE {s.ece:.3f}, Brier {s.brier:.4f}")
    assert s.accuracy > 0.68 and s.auc > 0.75  # coin flip: 0.5
    assert s.accuracy > best.accuracy - 0.03 and s.brier < best.brier + 0.01
    assert s.ece < 0.04  # 10 bins x ~400 rows: sampling noise alone is ~0.02
    assert fit.oof is not None and fit.oof.auc > 0.75 and fit.oof.n == 3_000
    assert 0.7 < fit.calibration.a < 1.4
    importance = fit.booster.feature_importance(importance_type="gain")
    assert int(np.argmax(importance)) == 0


def test_predict_one_equals_booster_predict_on_1000_random_rows(planted_fit):
    fit, _, _ = planted_fit
    R = seeded().normal(0, 1.5, (1_000, fit.n_features))
    native_raw = fit.booster.predict(R, raw_score=True)
    assert np.array_equal(fit.ensemble.raw(R), native_raw)  # bit for bit
    one = np.array([fit.predict_one(r) for r in R])
    assert np.array_equal(one, [fit.calibration.apply_one(s) for s in native_raw])
    assert np.array_equal(one, [fit.predict_one_native(r) for r in R])
    assert np.allclose(one, fit.predict(R), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="shape"):
        fit.predict_one(R[0, :3])


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_the_fast_path_follows_lightgbm_on_missing_values(zero_as_missing):
    gen = seeded()
    X, up, _ = planted(1_500)
    X[gen.random(X.shape) < 0.15] = np.nan  # trained with missing values: NaN splits
    X[gen.random(X.shape) < 0.05] = 0.0
    fit = DirectionModel(calibration_folds=2, num_boost_round=60,
                         params={"min_data_in_leaf": 20, "zero_as_missing": zero_as_missing}
                         ).fit(X, up)
    R = gen.normal(0, 1.5, (1_000, X.shape[1]))
    R[gen.random(R.shape) < 0.2] = np.nan
    R[gen.random(R.shape) < 0.1] = 0.0
    assert np.array_equal(fit.ensemble.raw(R), fit.booster.predict(R, raw_score=True))
    assert all(fit.ensemble.raw_one(r) == fit.booster.predict(r[None], raw_score=True)[0]
               for r in R)
    kinds = set(fit.ensemble.missing_type.tolist())
    assert (1 in kinds) == zero_as_missing and (zero_as_missing or 2 in kinds)


def test_bytes_round_trip_gives_identical_predictions(planted_fit):
    fit, X_test, _ = planted_fit
    data = fit.to_bytes()
    again = DirectionFit.from_bytes(data)
    assert again.calibration == fit.calibration and again.feature_names == fit.feature_names
    assert again.oof == fit.oof and again.n_train == fit.n_train
    assert np.array_equal(again.predict(X_test), fit.predict(X_test))
    assert np.array_equal([again.predict_one(x) for x in X_test[:200]],
                          [fit.predict_one(x) for x in X_test[:200]])
    assert again.to_bytes() == data
    payload = json.loads(data)
    payload["format"] = "something/else"
    with pytest.raises(ValueError, match="payload"):
        DirectionFit.from_bytes(json.dumps(payload).encode())
    with pytest.raises(ValueError):
        DirectionFit.from_bytes(b"\xff not json")


def test_training_is_deterministic():
    X, up, _ = planted(1_000)
    model = DirectionModel(num_boost_round=50)
    a, b = model.fit(X, up), model.fit(X, up)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    assert a.calibration == b.calibration


def test_predict_one_latency(planted_fit):
    """The latency target is <= 50 us per call (a benchmark's business); here only a
    generous bound that a busy CI machine still meets."""
    fit, X_test, _ = planted_fit
    x = np.ascontiguousarray(X_test[0])
    fast_best, fast_median = per_call_us(fit.predict_one, x)
    native_best, native_median = per_call_us(fit.predict_one_native, x)
    print(f"\npredict_one ({fit.ensemble.roots.size} trees, depth {fit.ensemble.depth}): "
          f"fast path {fast_best:.1f} us (median {fast_median:.1f}), "
          f"Booster.predict {native_best:.1f} us (median {native_median:.1f})")
    assert fast_best < 500


def test_parameters_that_would_break_the_model_are_refused():
    X, up, _ = planted(400)
    model = DirectionModel()
    for params in ({"objective": "multiclass"}, {"num_iterations": 10},
                   {"linear_tree": True}, {"deterministic": False}):
        with pytest.raises(ValueError):
            model.fit(X, up, params=params)
    with pytest.raises(ValueError, match="single class"):
        model.fit(X, np.ones(400, dtype=bool))
    with pytest.raises(ValueError, match="at least"):
        model.fit(X[:50], up[:50])
    with pytest.raises(ValueError, match="infinite"):
        model.fit(np.where(X > 2, np.inf, X), up)
    with pytest.raises(ValueError):
        DirectionModel(calibration_folds=1)
    assert model.resolved_params({"num_threads": 2})["num_threads"] == 2


def test_tree_ensemble_refuses_models_it_cannot_evaluate():
    dump = {"num_tree_per_iteration": 1, "max_feature_idx": 0, "tree_info": [
        {"tree_structure": {"split_feature": 0, "threshold": "1||2", "decision_type": "==",
                            "default_left": False, "missing_type": "None",
                            "left_child": {"leaf_value": 0.1},
                            "right_child": {"leaf_value": -0.1}}}]}
    with pytest.raises(ValueError, match="not supported"):
        TreeEnsemble.from_dump(dump)
    with pytest.raises(ValueError, match="single-output"):
        TreeEnsemble.from_dump({"num_tree_per_iteration": 3, "tree_info": []})
    stump = TreeEnsemble.from_dump({"max_feature_idx": 1, "tree_info": [
        {"tree_structure": {"leaf_value": 0.25}}, {"tree_structure": {"leaf_value": 0.5}}]})
    assert stump.depth == 0 and stump.raw_one(np.zeros(2)) == 0.75


def test_module_imports_no_heavy_library():
    code = ("import json, sys; import shared.domain.models.direction, "
            "shared.domain.models.cv; print(json.dumps(sorted(m for m in "
            "('lightgbm', 'statsmodels', 'scipy', 'pandas') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


# ---------------------------------------------------------------- real NIFTY history


def test_walk_forward_direction_on_nifty_daily_history():
    """5-day direction of NIFTY 50, 2000-2019, the default features, yearly refits.

    Honest expectation: a coin flip with a drift. The base rate is ~0.58 (NIFTY rose), the
    booster's ranking carries no reliable information out of sample, so the calibration
    mostly learns the base rate; the test only asks for finite, sane metrics.
    """
    panel = nifty_panel()
    started = time.perf_counter()
    rep = evaluate_direction(panel, min_train=1_000, test_size=250)
    elapsed = time.perf_counter() - started
    print(f"\nNIFTY 5-day direction, {elapsed:.1f} s: {rep.explain()}")
    print(f"  uncalibrated: accuracy {rep.raw.accuracy:.3f}, AUC {rep.raw.auc:.3f}, "
          f"Brier {rep.raw.brier:.4f}, ECE {rep.raw.ece:.3f}")
    assert isinstance(rep, DirectionReport) and rep.n_splits >= 10
    s = rep.score
    assert s.n > 3_000 and np.all(np.diff(rep.rows) > 0)
    for value in (s.accuracy, s.auc, s.brier, s.log_loss, s.ece, rep.raw.auc):
        assert math.isfinite(value)
    assert 0.40 < s.accuracy < 0.70 and 0.35 < s.auc < 0.65
    assert s.brier < 0.26 and s.log_loss < 0.72  # near the base rate's 0.243 / 0.68
    assert s.ece < 0.08
    assert np.array_equal(rep.up, rep.forward_return > 0)
    assert rep.dates[0] > panel.index[1_000]  # nothing scored inside the first window


def test_no_look_ahead_on_nifty_predictions():
    """Changing every price after a decision day ``t`` changes no forecast made at or
    before ``t``; a feature that reads tomorrow's close (the control) does."""
    panel = nifty_panel().rows(0, 1_700)
    kwargs = {"model": DirectionModel(num_boost_round=60), "min_train": 1_000,
              "test_size": 200}
    base = evaluate_direction(panel, **kwargs)
    t = int(base.rows[base.rows >= 1_005 + 200][12])  # inside the second test block

    factor = np.ones(len(panel))
    factor[t + 1:] = np.exp(np.cumsum(seeded().normal(0, 0.02, len(panel) - t - 1)))
    moved_panel = Panel(panel.index, {k: v * factor for k, v in panel.columns.items()})
    moved = evaluate_direction(moved_panel, **kwargs)
    known = base.rows <= t
    assert np.array_equal(moved.rows[moved.rows <= t], base.rows[known])
    assert np.array_equal(moved.p_up[moved.rows <= t], base.p_up[known])
    assert np.array_equal(moved.raw_p[moved.rows <= t], base.raw_p[known])
    assert not np.array_equal(moved.p_up[moved.rows > t], base.p_up[~known])  # it moved

    def tomorrow(p: Panel) -> np.ndarray:
        out = np.full(len(p), np.nan)
        out[:-1] = np.log(p["close"][1:] / p["close"][:-1])
        return out

    leaky = (*default_features(), Feature("next_ret", lookback=2, lag=0, compute=tomorrow,
                                          needs=("close",)))
    leak_base = evaluate_direction(panel, features=leaky, **kwargs)
    leak_moved = evaluate_direction(moved_panel, features=leaky, **kwargs)
    at_t = leak_base.rows == t
    assert leak_base.p_up[at_t] != leak_moved.p_up[leak_moved.rows == t]
    assert leak_base.score.accuracy > 0.6  # the leak "works", as leaks do


def test_serving_loads_the_predictor_without_lightgbm():
    """The artifact carries the dumped trees: DirectionPredictor rebuilds the evaluator in a
    fresh interpreter that never imports lightgbm, and predicts exactly as the fit does."""
    import subprocess
    import sys

    from shared.domain.models.direction import DirectionModel, DirectionPredictor

    rng = np.random.default_rng(1234)
    X = rng.normal(size=(1_500, 4))
    y = X[:, 0] + 0.5 * rng.normal(size=1_500) > 0
    fit = DirectionModel(num_boost_round=40).fit(X, y)
    data = fit.to_bytes()
    predictor = DirectionPredictor.from_bytes(data)
    rows = rng.normal(size=(200, 4))
    assert [predictor.predict_one(r) for r in rows] == [fit.predict_one(r) for r in rows]
    code = ("import sys; from shared.domain.models.direction import DirectionPredictor; "
            "p = DirectionPredictor.from_bytes(sys.stdin.buffer.read()); "
            "print(p.predict_one([0.1, 0.0, 0.0, 0.0]), 'lightgbm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True,
                         check=True)
    value, imported = out.stdout.decode().split()
    assert float(value) == fit.predict_one(np.array([0.1, 0.0, 0.0, 0.0]))
    assert imported == "False"
