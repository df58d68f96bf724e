"""retrain through functions-framework: the scheduled run and the operator API on the real
Postgres, Pub/Sub and GCS emulators, training on real NIFTY history (2000-2019)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

from shared.auth import LocalTokenIssuer
from tests.functions.conftest import PROJECT, SECRET, topic_listener

pytestmark = pytest.mark.integration

KIT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "index_history"
NIFTY = KIT / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv"
MODEL = "vol_har_5d"


def bearer(email: str) -> dict[str, str]:
    return {"Authorization": LocalTokenIssuer(SECRET).header("http://localhost/", email)}


@pytest.fixture
def history(tmp_path):
    if not NIFTY.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    (tmp_path / "daily").mkdir()
    shutil.copy(NIFTY, tmp_path / "daily" / "NIFTY.csv")
    return tmp_path / "daily" / "NIFTY.csv"


@pytest.fixture
def retrain(client_for, monkeypatch, gcs, history):
    _, storage_client = gcs
    bucket = f"qs-models-{uuid.uuid4().hex[:8]}"
    storage_client.create_bucket(bucket)
    monkeypatch.setenv("QS_MODELS_BUCKET", bucket)
    monkeypatch.setenv("QS_HISTORY_URI", f"file:{history.parent.parent}")
    return client_for("functions/retrain")


@pytest.fixture
def events(pubsub):
    with topic_listener(pubsub, ("model.promoted", "model.rejected", "retrain.failed"),
                        "retrain") as pull:
        yield pull


def nightly(client, auth, model=MODEL):
    response = client.post("/run", headers={**auth, "X-CloudScheduler-JobName": "retrain-nightly"},
                           json={"scope": "global", "models": [model]})
    assert response.status_code == 200, response.json
    (result,) = response.json["results"]
    return result


def production(app_db, model=MODEL):
    with app_db.system() as s:
        return s.execute("SELECT version, state, judgement, data_version, code_commit FROM "
                         "model_versions WHERE model_type = :m AND tenant_id IS NULL "
                         "ORDER BY version", m=model).dicts()


def reset_models(owner_db):
    with owner_db.system() as s:  # each test starts from an empty registry for the model
        s.execute("DELETE FROM model_pointers WHERE model_type = :m", m=MODEL)
        s.execute("DELETE FROM model_versions WHERE model_type = :m", m=MODEL)


def test_the_first_model_is_promoted_and_announced(retrain, auth, app_db, owner_db, events):
    reset_models(owner_db)
    result = nightly(retrain, auth)
    assert result["status"] == "promoted" and result["version"] == 1, result
    assert 0.0 < result["metrics"]["qlike"] < 0.6 and result["metrics"]["r2_os"] > 0
    health = result["health"]  # checked right after: fresh, inputs judged for drift
    assert health["stale"] is False and health["version"] == 1
    with app_db.system() as s:
        stored = s.execute("SELECT flagged, health, health_checked_at FROM model_pointers "
                           "WHERE model_type = :m AND tenant_id IS NULL", m=MODEL).dicts()[0]
    assert stored["flagged"] == health["flagged"] and stored["health_checked_at"] is not None
    assert stored["health"]["drifted_features"] == health["drifted_features"]
    rows = production(app_db)
    assert rows[0]["state"] == "production" and rows[0]["data_version"].startswith(
        "daily/NIFTY.csv@sha256:")
    promoted = [m for m in events("model.promoted") if m.model_type == MODEL]
    assert [(m.model_version, m.previous_model_version) for m in promoted] == [(1, None)]


def test_a_worse_candidate_is_rejected_and_production_stays(retrain, auth, app_db, owner_db,
                                                            events, history):
    reset_models(owner_db)
    assert nightly(retrain, auth)["status"] == "promoted"
    # Corrupt all but the last year: random high/low ranges teach the model noise. Its own
    # walk-forward metrics (on the same noisy data) still pass the contract; the paired
    # comparison on the clean last year does not.
    lines = history.read_text().splitlines()
    rng = np.random.default_rng(1234)
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        idx, day, o, h, lo, c, v = line.split(",")
        if i < len(lines) - 1 - 260:
            wide = float(rng.uniform(1.0, 1.02))
            h = f"{max(float(o), float(c)) * wide:.2f}"
            lo = f"{min(float(o), float(c)) / wide:.2f}"
        out.append(",".join((idx, day, o, h, lo, c, v)))
    history.write_text("\n".join(out) + "\n")
    result = nightly(retrain, auth)
    assert result["status"] == "rejected" and result["version"] == 2, result
    assert "paired qlike" in result["reason"]
    assert [(r["version"], r["state"]) for r in production(app_db)] == [
        (1, "production"), (2, "rejected")]
    rejected = [m for m in events("model.rejected") if m.model_type == MODEL]
    assert rejected and rejected[-1].model_version == 2 and "paired" in rejected[-1].reason


def test_a_better_candidate_is_promoted_and_rollback_restores_the_previous(
        retrain, auth, app_db, owner_db, events, history):
    reset_models(owner_db)
    full = history.read_text()
    lines = full.splitlines()
    history.write_text("\n".join(lines[:-750]) + "\n")  # three years less data
    assert nightly(retrain, auth)["status"] == "promoted"
    history.write_text(full)  # the candidate knows the last three years
    result = nightly(retrain, auth)
    assert result["status"] == "promoted" and result["version"] == 2, result
    assert [(r["version"], r["state"]) for r in production(app_db)] == [
        (1, "archived"), (2, "production")]

    with owner_db.system() as s:
        from shared.adapters.principals import grant

        grant(s, "mlops@quantsentinel.example", None, "operator")
    refused = retrain.post("/rollback", headers=bearer("trader@desk.example"),
                           json={"model_type": MODEL, "reason": "looks off"})
    assert refused.status_code == 403
    back = retrain.post("/rollback", headers=bearer("mlops@quantsentinel.example"),
                        json={"model_type": MODEL, "reason": "vol forecasts jumped"})
    assert back.status_code == 200 and back.json == {
        "model_type": MODEL, "restored_version": 1, "rolled_back_version": 2}
    assert [(r["version"], r["state"]) for r in production(app_db)] == [
        (1, "production"), (2, "archived")]
    announced = [m for m in events("model.promoted") if m.model_type == MODEL]
    assert [(m.model_version, m.previous_model_version) for m in announced][-1] == (1, 2)


def test_bad_training_data_is_recorded_as_a_failed_attempt(retrain, auth, app_db, owner_db,
                                                           events, history):
    reset_models(owner_db)
    assert nightly(retrain, auth)["status"] == "promoted"
    lines = history.read_text().splitlines()
    lines.insert(2000, lines[2000])  # a duplicated session
    history.write_text("\n".join(lines) + "\n")
    result = nightly(retrain, auth)
    assert result["status"] == "failed" and "duplicate" in result["reason"], result
    with app_db.system() as s:
        attempt = s.execute("SELECT status, reason_code, error, data_version FROM "
                            "training_attempts WHERE model_type = :m ORDER BY attempt_id DESC "
                            "LIMIT 1", m=MODEL).dicts()[0]
    assert attempt["status"] == "failed" and attempt["reason_code"] == "history_invalid"
    assert [(r["version"], r["state"]) for r in production(app_db)] == [(1, "production")]
    failed = [m for m in events("retrain.failed") if m.model_type == MODEL]
    assert failed and "duplicate" in failed[-1].error


def test_a_corrupted_production_artifact_fails_the_retrain_loudly(retrain, auth, app_db, events,
                                                                  owner_db, gcs):
    reset_models(owner_db)
    assert nightly(retrain, auth)["status"] == "promoted"
    with app_db.system() as s:
        uri = s.execute("SELECT artifact_uri FROM model_versions WHERE model_type = :m AND "
                        "version = 1", m=MODEL).scalar()
    bucket, key = uri[5:].split("/", 1)
    gcs[1].bucket(bucket).blob(key).upload_from_string(b'{"kind": "har_rv", "tampered": 1}')
    result = nightly(retrain, auth)
    assert result["status"] == "failed" and "ArtifactCorrupted" in result["reason"], result
    rows = production(app_db)
    assert [r["state"] for r in rows] == ["production", "rejected"]
    assert rows[1]["judgement"].startswith("not judged: ArtifactCorrupted")


def test_a_retrain_finding_the_lock_held_stands_aside(retrain, auth, app_db, owner_db, events):
    from shared.adapters.blobs import GcsBlobStore
    from shared.adapters.registry import ModelRegistry

    reset_models(owner_db)
    registry = ModelRegistry(app_db, GcsBlobStore(PROJECT, emulator=True), "unused")
    with registry.training_lock(MODEL, None) as held:
        assert held
        result = nightly(retrain, auth)
    assert result["status"] == "locked_out" and "training lock" in result["reason"]
    assert production(app_db) == []
    with app_db.system() as s:
        assert s.execute("SELECT status FROM training_attempts WHERE model_type = :m ORDER BY "
                         "attempt_id DESC LIMIT 1", m=MODEL).scalar() == "locked_out"


def test_an_unknown_model_and_a_bad_payload_are_refused(retrain, auth):
    response = retrain.post("/run", headers=auth, json={"models": ["crystal_ball"]})
    assert response.status_code == 404 and response.json["error"] == "unknown_model"
    response = retrain.post("/run", headers=auth, json={"scope": "tenant"})
    assert response.status_code == 422 and response.json["error"] == "bad_payload"
