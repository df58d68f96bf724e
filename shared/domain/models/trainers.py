"""Trainers: how each model type is fitted, scored and serialised (pure).

A trainer turns validated daily history into a :class:`TrainedModel` (artifact bytes, the
feature schema, out-of-sample metrics on a held-out slice at the end of the history) and
scores *any* artifact of its type on a given slice, so that a candidate and the production
version are compared on exactly the same rows (:class:`~shared.domain.registry.PairedScore`).

Two kinds of evidence, kept apart:

* the **validation metrics** are walk-forward out of sample (refitted on the past only at
  every origin): how good the training *procedure* is;
* the **paired comparison** scores the two *artifacts that would serve* - the candidate
  and production, as they are - on the same recent slice of history. Both have seen that
  slice (production up to its own data end), so it is not an out-of-sample test of either:
  it catches a candidate that serves worse than what runs now (bad data, a regression in
  the code) before it replaces it. A retrain on one more day of the same data ties, and a
  tie within the contract's tolerance promotes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import numpy as np

from shared.domain.features import Panel, causality_audit, default_features
from shared.domain.models.vol import (
    MIN_DAILY_VARIANCE,
    HarCoefficients,
    HarFit,
    HarModel,
    floor_variance,
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
    data_version: str | None = None  # when the model trains on other data than the history


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
    * **The paired comparison**: QLIKE of the candidate and production artifacts on the
      last ``paired_rows`` origins (see the module docstring).
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
                                  min_improvement=-0.005,  # a tie within 0.005 QLIKE
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
        rv = np.nan_to_num(floor_variance(rv), nan=MIN_DAILY_VARIANCE)
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
        """QLIKE of both artifacts on the last ``paired_rows`` origins (lower is better)."""
        rv, _ = self._series(bars)
        mine, rows = self._slice_qlike(self.load(candidate.artifact), rv)
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
    * **Paired**: Brier of both artifacts on the last ``paired_rows`` sessions.
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
                                  primary="brier", higher_is_better=False,
                                  min_improvement=-1e-4,
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
        from shared.domain.models.direction import DirectionPredictor, brier_score

        matrix, labels = self._data(bars)
        n = len(bars)
        slice_rows = np.arange(n - self.paired_rows - self.horizon, n - self.horizon)
        slice_rows = slice_rows[matrix.complete_rows[slice_rows] & labels.has_direction[slice_rows]]
        mine = _Rows(DirectionPredictor.from_bytes(candidate.artifact))
        theirs = _Rows(DirectionPredictor.from_bytes(production_artifact))
        up = labels.up[slice_rows]
        return PairedScore(
            "brier", candidate=brier_score(mine.predict(matrix.values[slice_rows]), up),
            production=brier_score(theirs.predict(matrix.values[slice_rows]), up),
            rows=int(slice_rows.size), slice_end=str(bars.dates[-1]))


@dataclass(frozen=True, slots=True)
class EventImpactTrainer:
    """The event-impact model of the news gate
    (:mod:`shared.domain.models.event_impact`): the expected move of an event's reaction
    session by event type and pre-event vol, mapped to proceed / reduce 25 % / reduce 50 %
    / blackout. It models the intraday range (Garman–Klass vol), which an options book
    feels, by default.

    * **Validation**: walk-forward by calendar year (fitted on earlier years only):
      ``rmse_gain`` = 1 - RMSE(model) / RMSE(vol only) on event sessions (the vol-only
      benchmark treats every session as ordinary), ``auc_large_move``, ``n_event``.
    * **The contract**: the event types must beat vol only (``rmse_gain > 0``).
    * **Paired**: RMSE of both artifacts on the event sessions of the last
      ``paired_years`` calendar years.
    """

    events: tuple = ()
    target: str = "gk_vol"
    paired_years: int = 3
    model_type: str = "event_impact"

    @property
    def contract(self) -> ValidationContract:
        return ValidationContract(self.model_type,
                                  (Bound("rmse_gain", "min", 0.0), Bound("n_event", "min", 100.0)),
                                  primary="event_rmse", higher_is_better=False,
                                  min_improvement=-1e-4, artifact_bytes=(128, 1_000_000))

    def _moves(self, bars: DailyBars):  # -> EventMoves
        from shared.domain.models.event_impact import event_moves

        if not self.events:
            raise TrainingDataInvalid("no event calendar to train the event-impact model on")
        return event_moves(bars.dates, bars.open, bars.high, bars.low, bars.close, self.events)

    def _model(self):  # -> EventImpactModel
        from shared.domain.models.event_impact import EventImpactModel

        return EventImpactModel(target=self.target)

    def train(self, bars: DailyBars) -> TrainedModel:
        from shared.domain.models.event_impact import evaluate_by_year

        _audit(bars, 1_000)
        moves = self._moves(bars)
        report = evaluate_by_year(moves, self._model(), scheme="walk_forward")
        fit = self._model().fit(moves)
        gain = 1.0 - report.event_model.rmse / report.event_vol_only.rmse
        metrics = {"rmse_gain": gain, "event_rmse": report.event_model.rmse,
                   "event_rmse_vol_only": report.event_vol_only.rmse,
                   "auc_large_move": report.auc_large_move_model,
                   "auc_large_move_vol_only": report.auc_large_move_vol_only,
                   "n_event": float(report.n_event), "years": float(len(report.years))}
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDataInvalid(f"non-finite metrics {metrics}")
        return TrainedModel(artifact=event_fit_to_bytes(fit),
                            feature_schema=("event_type", "pre_vol"), metrics=metrics,
                            holdout_start=date(report.years[0], 1, 1),
                            holdout_rows=report.n_event)

    def paired(self, candidate: TrainedModel, production_artifact: bytes,
               bars: DailyBars) -> PairedScore:
        moves = self._moves(bars)
        years = moves.event_year
        recent = years > int(years.max()) - self.paired_years
        test = moves.select(recent, np.zeros(len(moves.control_year), dtype=bool))
        mine = event_fit_from_bytes(candidate.artifact)
        theirs = event_fit_from_bytes(production_artifact)
        realized, _ = test.target(self.target)
        pre_vol = test.pre_vol

        def rmse(fit) -> float:  # noqa: ANN001 - EventImpactFit
            expected = np.array([fit.expected_move(t, v)
                                 for t, v in zip(test.event_type, pre_vol, strict=True)])
            return float(np.sqrt(np.mean((realized - expected) ** 2)))

        return PairedScore("event_rmse", candidate=rmse(mine), production=rmse(theirs),
                           rows=int(recent.sum()), slice_end=str(bars.dates[-1]))


def event_fit_to_bytes(fit) -> bytes:  # noqa: ANN001 - EventImpactFit
    """JSON of an :class:`~shared.domain.models.event_impact.EventImpactFit`."""
    from dataclasses import asdict

    return json.dumps({
        "kind": "event_impact", "target": fit.target,
        "types": {k: asdict(v) for k, v in fit.types.items()},
        "baseline": asdict(fit.baseline), "pooled_ratio": fit.pooled_ratio,
        "pooled_se": fit.pooled_se, "tau2": fit.tau2, "vol_elasticity": fit.vol_elasticity,
        "vol_elasticity_se": fit.vol_elasticity_se, "ref_vol": fit.ref_vol,
        "thresholds": asdict(fit.thresholds), "shrinkage": fit.shrinkage,
    }, sort_keys=True, allow_nan=True).encode()


def event_fit_from_bytes(data: bytes):  # noqa: ANN201 - EventImpactFit
    from types import MappingProxyType

    from shared.domain.models.event_impact import ActionThresholds, EventImpactFit, TypeEstimate

    try:
        d = json.loads(data)
    except ValueError as exc:
        raise TrainingDataInvalid(f"not an event-impact artifact: {exc}") from None
    if not isinstance(d, dict) or d.get("kind") != "event_impact":
        raise TrainingDataInvalid("not an event-impact artifact")
    return EventImpactFit(
        target=d["target"],
        types=MappingProxyType({k: TypeEstimate(**v) for k, v in d["types"].items()}),
        baseline=TypeEstimate(**d["baseline"]), pooled_ratio=d["pooled_ratio"],
        pooled_se=d["pooled_se"], tau2=d["tau2"], vol_elasticity=d["vol_elasticity"],
        vol_elasticity_se=d["vol_elasticity_se"], ref_vol=d["ref_vol"],
        thresholds=ActionThresholds(**d["thresholds"]), shrinkage=d["shrinkage"])


@dataclass(frozen=True, slots=True)
class _Rows:
    """Batch prediction over rows with a one-row predictor."""

    predictor: object

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.predictor.predict_one(x) for x in X])  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class WingTrainer:
    """The XGBoost wing-selection model (:mod:`shared.domain.models.wings`): the net return
    of an iron condor by wing distance, trained on condors replayed through the cost engine
    over the sessions ``sessions()`` returns (simulated and recorded; the service decides
    which) with the dated cost ``schedule``.

    * **Validation**: session-grouped out of sample (whole sessions held out):
      ``model_minus_baseline`` (mean net return of the model's pick minus always-100-points,
      per session), its standard error, ``rank_corr`` (predicted vs realised across the wings
      of a session), and the sessions and rows.
    * **The contract** asks the model to beat the fixed 100-point wing by at least two
      standard errors (``model_minus_baseline_t >= 2``) and to rank wings better than
      chance; a model that does not is refused, whatever its fit.
    * **Paired**: the mean realised net return of each artifact's pick over the sessions
      (higher is better).
    """

    sessions: Any = None  # Callable[[], tuple[tuple[ReplaySession, ...], str]]: sessions, data version
    schedule: Any = None  # CostSchedule
    model_type: str = "wing_select"

    @property
    def contract(self) -> ValidationContract:
        return ValidationContract(self.model_type,
                                  (Bound("model_minus_baseline_t", "min", 2.0),
                                   Bound("rank_corr", "min", 0.0),
                                   Bound("sessions", "min", 200.0)),
                                  primary="pick_return", min_improvement=-1e-3,
                                  artifact_bytes=(1_024, 50_000_000))

    def _dataset(self):  # -> (WingDataset, data_version)
        from shared.domain.models.wings import replay_condor_outcomes

        if self.sessions is None or self.schedule is None:
            raise TrainingDataInvalid("the wing model needs sessions and a cost schedule")
        sessions, version = self.sessions()
        return replay_condor_outcomes(sessions, schedule=self.schedule), version

    def train(self, bars: DailyBars) -> TrainedModel:
        from shared.domain.models.wings import WingModel, evaluate_wings

        data, version = self._dataset()
        fit = WingModel().fit(data.features, data.y)
        report = evaluate_wings(data.y, fit.oos_prediction, data.features.distance,
                                data.features.groups)
        metrics = {"model_minus_baseline": report.model_minus_baseline,
                   "model_minus_baseline_se": report.model_minus_baseline_se,
                   "model_minus_baseline_t": (report.model_minus_baseline
                                              / report.model_minus_baseline_se
                                              if report.model_minus_baseline_se > 0 else 0.0),
                   "rank_corr": report.rank_corr_mean, "model_mean": report.model_mean,
                   "baseline_mean": report.baseline_mean, "widest_mean": report.widest_mean,
                   "hindsight_mean": report.hindsight_mean,
                   "sessions": float(report.n_sessions), "rows": float(report.n_rows)}
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDataInvalid(f"non-finite metrics {metrics}")
        return TrainedModel(artifact=fit.to_bytes(), feature_schema=tuple(fit.feature_names),
                            metrics=metrics, holdout_start=bars.dates[0].astype(object),
                            holdout_rows=report.n_compared, data_version=version)

    def paired(self, candidate: TrainedModel, production_artifact: bytes,
               bars: DailyBars) -> PairedScore:
        from shared.domain.models.wings import WingFit, evaluate_wings

        data, _ = self._dataset()

        def pick_return(artifact: bytes) -> float:
            fit = WingFit.from_bytes(artifact)
            report = evaluate_wings(data.y, fit.predict(data.features), data.features.distance,
                                    data.features.groups)
            return report.model_mean

        return PairedScore("pick_return", candidate=pick_return(candidate.artifact),
                           production=pick_return(production_artifact),
                           rows=int(data.n_sessions), slice_end=str(bars.dates[-1]))
