"""Trainers on real NIFTY history: metrics, artifacts and the contracts' verdicts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from shared.domain.models.trainers import (
    CausalityAuditFailed,
    DirectionTrainer,
    EventImpactTrainer,
    HarVolTrainer,
    TrainingDataInvalid,
    event_fit_from_bytes,
)
from shared.domain.registry import Candidate, judge
from shared.marketdata import DailyBars, HistoryFormat, read_history

NIFTY = (Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "index_history"
         / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv")


@pytest.fixture(scope="module")
def bars() -> DailyBars:
    if not NIFTY.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    return read_history(NIFTY, HistoryFormat.YAHOO_PANDAS, symbol="NIFTY")


def verdict(trainer, trained, **kw):
    sha = hashlib.sha256(trained.artifact).hexdigest()
    return judge(trainer.contract, Candidate(trainer.model_type, trained.metrics,
                                             trained.feature_schema, len(trained.artifact),
                                             sha, sha), **kw)


def test_the_har_model_passes_its_contract_and_round_trips(bars):
    trainer = HarVolTrainer(horizon=5)
    trained = trainer.train(bars)
    m = trained.metrics
    assert 0 < m["qlike"] < 0.6 and m["r2_os"] > 0 and m["oos_origins"] > 300
    assert verdict(trainer, trained).promote
    fit = trainer.load(trained.artifact)
    assert fit.horizon == 5 and fit.log and fit.n_obs == int(m["n_obs"])
    paired = trainer.paired(trained, trained.artifact, bars)
    assert paired.rows == 250 and paired.candidate == paired.production  # same artifact


def test_a_direction_model_without_skill_is_refused(bars):
    trainer = DirectionTrainer()
    trained = trainer.train(bars)
    m = trained.metrics
    assert m["ece"] < 0.05 and abs(m["accuracy"] - m["base_rate"]) < 0.03
    refused = verdict(trainer, trained)
    assert not refused.promote and "brier_skill" in refused.explain()


def test_too_little_history_and_a_foreign_artifact_are_refused(bars):
    short = DailyBars(symbol="NIFTY", source=bars.source, dates=bars.dates[:300],
                      open=bars.open[:300], high=bars.high[:300], low=bars.low[:300],
                      close=bars.close[:300], volume=bars.volume[:300])
    with pytest.raises(TrainingDataInvalid, match="need at least"):
        HarVolTrainer().train(short)
    with pytest.raises(TrainingDataInvalid, match="not a HAR-RV artifact"):
        HarVolTrainer.load(b"not json")
    with pytest.raises(TrainingDataInvalid, match="not a HAR-RV artifact"):
        HarVolTrainer.load(b'{"kind": "lightgbm"}')


def test_the_audit_guards_training(bars, monkeypatch):
    from shared.domain import features as feats
    from shared.domain.features import Feature

    def leaky() -> tuple[Feature, ...]:
        def tomorrow(p):
            out = np.full(len(p), np.nan)
            out[:-1] = p["close"][1:]
            return out

        return (Feature("tomorrow_close", 1, 0, tomorrow, ("close",)),)

    monkeypatch.setattr("shared.domain.models.trainers.default_features", leaky)
    assert feats.default_features is not leaky
    with pytest.raises(CausalityAuditFailed, match="tomorrow_close"):
        HarVolTrainer().train(bars)


def test_the_event_impact_model_beats_vol_only_and_gates_budgets(bars):
    from shared.rules import scheduled_events

    trainer = EventImpactTrainer(events=scheduled_events())
    trained = trainer.train(bars)
    m = trained.metrics
    assert m["rmse_gain"] > 0.1 and m["n_event"] > 200  # walk-forward by year
    assert verdict(trainer, trained).promote
    fit = event_fit_from_bytes(trained.artifact)
    assert fit.action("union_budget", 0.17) in ("reduce_25", "reduce_50", "blackout")
    assert fit.action("fomc", 0.17) == "proceed"
    assert event_fit_from_bytes(trained.artifact).types.keys() == fit.types.keys()
    with pytest.raises(TrainingDataInvalid, match="no event calendar"):
        EventImpactTrainer().train(bars)


def test_the_wing_model_must_beat_the_fixed_wing_significantly(bars):
    """Trained on simulated sessions replayed through the cost engine (fewer sessions here
    than nightly, for speed): the contract asks for a significant edge over 100 points."""
    import numpy as np

    from shared.adapters.providers import parse_payload
    from shared.adapters.providers.simulator import MarketSimulator
    from shared.costs import default_cost_schedule
    from shared.domain.models.trainers import WingTrainer
    from shared.domain.models.wings import sample_session_specs, simulate_sessions
    from shared.rules import default_calendar

    calendar = default_calendar()
    specs = sample_session_specs(np.random.default_rng(1234), 60, calendar=calendar)
    sessions = tuple(simulate_sessions(specs, calendar=calendar, simulator=MarketSimulator,
                                       parse=parse_payload))
    trainer = WingTrainer(sessions=lambda: (sessions, "simulated:test"),
                          schedule=default_cost_schedule())
    trained = trainer.train(bars)
    m = trained.metrics
    assert trained.data_version == "simulated:test" and m["sessions"] == 60
    assert m["hindsight_mean"] >= max(m["model_mean"], m["baseline_mean"], m["widest_mean"])
    refused = verdict(trainer, trained)
    assert not refused.promote and "sessions" in refused.explain()  # 60 < 200 sessions
    paired = trainer.paired(trained, trained.artifact, bars)
    assert paired.candidate == paired.production and paired.rows == 60
