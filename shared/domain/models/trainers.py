"""Trainers: how each model type is fitted, scored and serialised (pure).

A trainer turns validated daily history into a :class:`TrainedModel` (artifact bytes, the
feature schema, out-of-sample metrics on a held-out slice at the end of the history) and
scores *any* artifact of its type on a given slice, so that a candidate and the production
version are compared on exactly the same rows (:class:`~shared.domain.registry.PairedScore`).

The held-out slice is the last ``holdout_fraction`` of the usable rows. The candidate is
fitted only on rows whose targets end before the slice starts (no overlap of the h-day
targets with the slice), so its slice metrics are out of sample.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np

from shared.domain.features import Panel, causality_audit, default_features
from shared.domain.models.vol import (
    HarCoefficients,
    HarFit,
    HarModel,
    garman_klass_variance,
    har_features,
    har_target,
    walk_forward,
)
from shared.domain.registry import Bound, PairedScore, ValidationContract
from shared.errors import PermanentError
from shared.marketdata import DailyBars

__all__ = ["CausalityAuditFailed", "HarVolTrainer", "TrainedModel", "Trainer",
           "TrainingDataInvalid", "panel_of"]


class TrainingDataInvalid(PermanentError):
    reason_code = "training_data_invalid"


class CausalityAuditFailed(PermanentError):
    reason_code = "causality_audit_failed"


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A fitted candidate: what the registry stores and judges."""

    artifact: bytes
    feature_schema: tuple[str, ...]
    metrics: dict[str, float]
    holdout_start: date
    holdout_rows: int


class Trainer(Protocol):
    model_type: str
    contract: ValidationContract

    def train(self, bars: DailyBars) -> TrainedModel: ...

    def paired(self, candidate: TrainedModel, production_artifact: bytes,
               bars: DailyBars) -> PairedScore: ...


def panel_of(bars: DailyBars) -> Panel:
    return Panel(bars.dates, {"open": bars.open, "high": bars.high, "low": bars.low,
                              "close": bars.close})


def _audit(bars: DailyBars, rows: int) -> None:
    report = causality_audit(panel_of(bars), default_features(), rows=rows)
    if not report.passed:
        raise CausalityAuditFailed(report.explain())


@dataclass(frozen=True, slots=True)
class HarVolTrainer:
    """Log HAR-RV on Garman–Klass daily variance: forecasts the average daily variance of
    the next ``horizon`` sessions.

    * **Validation metrics** are walk-forward out of sample
      (:func:`~shared.domain.models.vol.walk_forward`, expanding window, refitted at every
      origin, origins every ``step`` days over the last ``evaluation_fraction`` of the
      history): ``qlike`` (the contract's primary metric: robust to the noise of a range
      proxy, Patton 2011), ``r2_os`` (Campbell–Thompson, against the expanding mean) and
      ``oos_r2`` (1 - SSE/SST around the test mean: harsh in calm stretches, reported
      as is) of log-HAR, with GARCH, GJR and their combination alongside.
    * **The artifact** is log-HAR fitted on the whole history (what serves).
    * **The paired comparison** with production is on the last ``paired_rows`` sessions:
      the candidate refitted *without* them against the production artifact (which may
      have seen them: the comparison favours production, never the candidate).
    """

    horizon: int = 5
    evaluation_fraction: float = 0.4
    step: int = 5
    refit_every: int = 44
    paired_rows: int = 250
    audit_rows: int = 1_000
    min_rows: int = 750

    @property
    def model_type(self) -> str:
        return f"vol_har_{self.horizon}d"

    @property
    def contract(self) -> ValidationContract:
        return ValidationContract(self.model_type,
                                  (Bound("qlike", "max", 0.6), Bound("r2_os", "min", 0.0),
                                   Bound("n_obs", "min", 500.0)),
                                  primary="qlike", higher_is_better=False,
                                  # production has seen the paired slice; the candidate has
                                  # not: a tie within 0.005 QLIKE is no loss
                                  min_improvement=-0.005,
                                  artifact_bytes=(64, 100_000))

    # -------------------------------------------------------------------------------
    def _series(self, bars: DailyBars) -> tuple[np.ndarray, np.ndarray]:
        if len(bars) < self.min_rows:
            raise TrainingDataInvalid(f"{bars.symbol}: {len(bars)} daily rows, need at least "
                                      f"{self.min_rows}")
        rv = garman_klass_variance(bars.open, bars.high, bars.low, bars.close)
        bad = int((~np.isfinite(rv)).sum())
        if bad > 0.01 * len(rv):
            raise TrainingDataInvalid(f"{bars.symbol}: {bad} of {len(rv)} days have no usable "
                                      f"OHLC range (more than 1 %)")
        # a flat or unusable day gets a tiny variance: the log model needs positive RV
        rv = np.where(np.isfinite(rv), np.maximum(rv, 1e-10), 1e-10)
        returns = np.zeros(len(bars))
        returns[1:] = np.log(bars.close[1:] / bars.close[:-1])
        return rv, returns

    def _slice_qlike(self, fit: HarFit, rv: np.ndarray) -> tuple[float, int]:
        """QLIKE of ``fit``'s forecasts at the last ``paired_rows`` origins with a target."""
        start = len(rv) - self.paired_rows - self.horizon
        rows = np.arange(start, len(rv) - self.horizon)
        forecast = fit.predict(har_features(rv).X[rows])
        y = har_target(rv, self.horizon)[rows]
        ok = np.isfinite(forecast) & (forecast > 0) & np.isfinite(y) & (y > 0)
        ratio = y[ok] / forecast[ok]
        return float(np.mean(ratio - np.log(ratio) - 1.0)), int(ok.sum())

    def train(self, bars: DailyBars) -> TrainedModel:
        _audit(bars, self.audit_rows)
        rv, returns = self._series(bars)
        wf = walk_forward(rv, returns, self.horizon,
                          min_train=int(len(rv) * (1.0 - self.evaluation_fraction)),
                          step=self.step, refit_every=self.refit_every)
        har = wf.score("har_log")
        fit = HarModel(log=True).fit(rv, self.horizon)
        artifact = json.dumps({
            "kind": "har_rv", "horizon": self.horizon, "log": True,
            "params": list(fit.params.as_array()), "resid_var": fit.resid_var,
            "n_obs": fit.n_obs, "in_sample_r2": fit.r2,
            "features": ["rv_d", "rv_w", "rv_m"], "rv": "garman_klass_daily_variance",
        }, sort_keys=True).encode()
        metrics = {"oos_r2": har.r2, "r2_os": har.r2_os, "qlike": har.qlike,
                   "oos_origins": float(har.n), "in_sample_log_r2": fit.r2,
                   "n_obs": float(fit.n_obs)}
        for name in ("har", "garch", "gjr", "combo"):
            score = wf.score(name)
            metrics[f"{name}_oos_r2"] = score.r2
            metrics[f"{name}_qlike"] = score.qlike
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDataInvalid(f"non-finite metrics {metrics}")
        first = int(wf.origins[0])
        return TrainedModel(artifact=artifact, feature_schema=("rv_d", "rv_w", "rv_m"),
                            metrics=metrics, holdout_start=bars.dates[first].astype(object),
                            holdout_rows=har.n)

    @staticmethod
    def load(artifact: bytes) -> HarFit:
        """The :class:`HarFit` an artifact holds (only what prediction needs)."""
        try:
            d = json.loads(artifact)
        except ValueError as exc:
            raise TrainingDataInvalid(f"not a HAR-RV artifact: {exc}") from None
        if not isinstance(d, dict) or d.get("kind") != "har_rv":
            raise TrainingDataInvalid("not a HAR-RV artifact")
        zero = HarCoefficients(0.0, 0.0, 0.0, 0.0)
        return HarFit(horizon=int(d["horizon"]), log=bool(d["log"]),
                      params=HarCoefficients.from_array(d["params"]), std_errors=zero,
                      t_stats=zero, n_obs=int(d["n_obs"]), r2=float(d["in_sample_r2"]),
                      resid_var=float(d["resid_var"]))

    def paired(self, candidate: TrainedModel, production_artifact: bytes,
               bars: DailyBars) -> PairedScore:
        """QLIKE on the last ``paired_rows`` origins: the candidate refitted without them
        against the production artifact as it is (lower is better)."""
        rv, _ = self._series(bars)
        cut = len(rv) - self.paired_rows - self.horizon
        mine, rows = self._slice_qlike(HarModel(log=True).fit(rv[:cut], self.horizon), rv)
        theirs, _ = self._slice_qlike(self.load(production_artifact), rv)
        return PairedScore("qlike", candidate=mine, production=theirs, rows=rows,
                           slice_end=str(bars.dates[-1]))


@dataclass(frozen=True, slots=True)
class DirectionTrainer:
    """The LightGBM direction model (P(up over the next ``horizon`` sessions)) with its
    Platt-calibrated confidence model, on :func:`~shared.domain.features.default_features`.

    * **Validation metrics**: walk-forward out of sample
      (:func:`~shared.domain.models.direction.evaluate_direction`, refitted every
      ``test_size`` sessions): ``brier``, ``brier_skill`` (against the base rate known in
      hindsight: harsh), ``ece``, ``auc``, ``accuracy``, ``base_rate``.
    * **The contract** asks for skill: a calibrated model that does not beat the base rate
      (``brier_skill < 0``) is rejected, however well calibrated. On NIFTY's daily history
      that is what happens; the registry is built to refuse such a model.
    * **The artifact**: the model fitted on every trainable row (what serves).
    * **Paired**: Brier on the last ``paired_rows`` sessions, the candidate refitted
      without them against the production artifact as it is (lower is better).
    """

    horizon: int = 5
    test_size: int = 250
    min_train: int = 1_000
    paired_rows: int = 250
    audit_rows: int = 1_000

    @property
    def model_type(self) -> str:
        return f"direction_lgbm_{self.horizon}d"

    @property
    def contract(self) -> ValidationContract:
        return ValidationContract(self.model_type,
                                  (Bound("brier_skill", "min", 0.0), Bound("ece", "max", 0.05),
                                   Bound("oos_n", "min", 500.0)),
                                  primary="brier", higher_is_better=False, min_improvement=0.0,
                                  artifact_bytes=(256, 20_000_000))

    def _data(self, bars: DailyBars):  # -> (matrix, labels)
        from shared.domain.features import compute_features
        from shared.domain.models.direction import direction_labels

        panel = panel_of(bars)
        return compute_features(panel, default_features()), direction_labels(
            panel["close"], horizon=self.horizon)

    def train(self, bars: DailyBars) -> TrainedModel:
        from shared.domain.models.direction import DirectionModel, evaluate_direction

        _audit(bars, self.audit_rows)
        model = DirectionModel(horizon=self.horizon)
        report = evaluate_direction(panel_of(bars), model=model, min_train=self.min_train,
                                    test_size=self.test_size)
        matrix, labels = self._data(bars)
        trainable = matrix.complete_rows & labels.trainable
        fit = model.fit(matrix.values[trainable], labels.up[trainable],
                        feature_names=matrix.names)
        s = report.score
        metrics = {"brier": s.brier, "brier_skill": s.brier_skill, "ece": s.ece,
                   "auc": s.auc, "accuracy": s.accuracy, "base_rate": s.base_rate,
                   "log_loss": s.log_loss, "oos_n": float(s.n),
                   "refits": float(report.n_splits)}
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDataInvalid(f"non-finite metrics {metrics}")
        return TrainedModel(artifact=fit.to_bytes(), feature_schema=matrix.names,
                            metrics=metrics, holdout_start=report.dates[0].astype(object),
                            holdout_rows=s.n)

    def paired(self, candidate: TrainedModel, production_artifact: bytes,
               bars: DailyBars) -> PairedScore:
        from shared.domain.models.direction import DirectionFit, DirectionModel, brier_score

        matrix, labels = self._data(bars)
        n = len(bars)
        slice_rows = np.arange(n - self.paired_rows - self.horizon, n - self.horizon)
        slice_rows = slice_rows[matrix.complete_rows[slice_rows] & labels.has_direction[slice_rows]]
        cut = n - self.paired_rows - 2 * self.horizon - 1  # labels end before the slice
        train = np.arange(cut)
        train = train[matrix.complete_rows[train] & labels.trainable[train]]
        mine = DirectionModel(horizon=self.horizon).fit(
            matrix.values[train], labels.up[train], feature_names=matrix.names)
        theirs = DirectionFit.from_bytes(production_artifact)
        up = labels.up[slice_rows]
        return PairedScore(
            "brier", candidate=brier_score(mine.predict(matrix.values[slice_rows]), up),
            production=brier_score(theirs.predict(matrix.values[slice_rows]), up),
            rows=int(slice_rows.size), slice_end=str(bars.dates[-1]))
