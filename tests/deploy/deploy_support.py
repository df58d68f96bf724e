"""Helpers of tests/deploy: the timing record, and the fitted models and messages the
bundle probes load in each function's own venv."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMINGS: dict[str, float | str] = {}


def record(name: str, value: float | str) -> None:
    """Keep a measurement for the end-of-run summary (tests/deploy/conftest.py)."""
    TIMINGS[name] = value


def decide_artifacts(directory: Path) -> None:
    """A direction (lightgbm), a wing (xgboost) and a HAR-RV (statsmodels) model, fitted
    here, as retrain stores them, with predictions to compare against after loading."""
    import numpy as np

    from shared.domain.models.direction import DirectionModel
    from shared.domain.models.trainers import HarVolTrainer
    from shared.domain.models.vol import HarModel, har_features
    from shared.domain.models.wings import WingModel

    rng = np.random.default_rng(7)
    X = rng.normal(size=(1_500, 4))
    up = X[:, 0] + 0.5 * rng.normal(size=1_500) > 0
    direction = DirectionModel(num_boost_round=20).fit(X, up)
    Xw = rng.normal(size=(200, 3))
    yw = 0.01 * Xw[:, 0] + 0.001 * rng.normal(size=200)
    wing = WingModel(num_boost_round=10, n_splits=2).fit(
        Xw, yw, groups=np.repeat(np.arange(20), 10), feature_names=("a", "b", "c"))
    rv = np.exp(rng.normal(-9.0, 0.3, size=400))
    har = HarModel(log=True).fit(rv, 1)
    har_artifact = json.dumps({  # HarVolTrainer.train's artifact
        "kind": "har_rv", "horizon": 1, "log": True, "params": list(har.params.as_array()),
        "resid_var": har.resid_var, "n_obs": har.n_obs, "in_sample_r2": har.r2,
    }, sort_keys=True).encode()
    direction_row, wing_row = [0.3, -0.1, 0.2, 0.0], [0.5, -0.2, 0.1]
    har_row = har_features(rv).X[-1].tolist()
    (directory / "direction.bin").write_bytes(direction.to_bytes())
    (directory / "wing.bin").write_bytes(wing.to_bytes())
    (directory / "har.json").write_bytes(har_artifact)
    (directory / "expected.json").write_text(json.dumps({
        "direction_row": direction_row, "wing_row": wing_row, "har_row": har_row,
        "direction": direction.predict_one(np.array(direction_row)),
        "wing": float(wing.predict(np.array([wing_row]))[0]),
        "har": float(HarVolTrainer.load(har_artifact).predict(np.array(har_row))[0]),
    }))


def notify_artifacts(directory: Path) -> None:
    """An iron condor proposal, as decide publishes it, for notify's payoff chart."""
    import numpy as np

    from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, Structure
    from shared.domain.decide.structures import payoff_profile

    spec = [(24500, OptionType.CE, Side.SELL, 85.40), (24700, OptionType.CE, Side.BUY, 40.10),
            (23500, OptionType.PE, Side.SELL, 70.00), (23300, OptionType.PE, Side.BUY, 30.30)]
    legs = tuple(Leg(expiry=date(2026, 11, 24), strike=Decimal(k), option_type=t, side=s, lots=1,
                     price=Decimal(str(p))) for k, t, s, p in spec)
    lot = 75
    units = np.array([(1 if leg.side == Side.BUY else -1) * lot for leg in legs], dtype=float)
    strikes = np.array([float(leg.strike) for leg in legs])
    calls = np.array([leg.option_type == OptionType.CE for leg in legs])
    net = float(np.sum(units * np.array([float(leg.price) for leg in legs])))
    profile = payoff_profile(units, strikes, calls, net)
    proposal = DecisionProposedV1(
        proposal_id=uuid.UUID(int=3), tenant_id=uuid.UUID(int=1), snapshot_id=uuid.UUID(int=7),
        symbol="NIFTY", structure=Structure.IRON_CONDOR, legs=legs, lot_size=lot,
        max_profit=profile.max_profit, max_loss=profile.max_loss, expected_gross_edge=900.0,
        win_probability=0.62, regime="range_low_vol",
        explanation={"regime": {"label": "range_low_vol", "reason": "probe"},
                     "expiry": {"forward": 24010.0}},
        proposed_at=datetime(2026, 11, 20, 6, 31, tzinfo=UTC))
    (directory / "proposal.json").write_text(proposal.model_dump_json())


ARTIFACTS = {"decide": decide_artifacts, "notify": notify_artifacts}
