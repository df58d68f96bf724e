"""The model registry's production layer on the real Postgres and the GCS emulator."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.adapters.registry import (
    ArtifactCorrupted,
    Lineage,
    ModelRegistry,
    NoProductionModel,
    ProductionModels,
    RegistryConflict,
)
from shared.domain.registry import (
    Bound,
    Candidate,
    ModelState,
    PairedScore,
    ValidationContract,
    judge,
)
from shared.errors import DatabaseUnavailable

pytestmark = pytest.mark.integration

BUCKET = "qs-models-test"
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
SCHEMA = ("gk_vol_1d", "gk_vol_5d", "gk_vol_22d")
CONTRACT = ValidationContract("vol_har", (Bound("oos_r2", "min", 0.1),), primary="oos_r2",
                              min_improvement=0.005, artifact_bytes=(8, 1_000_000))


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from local.gcs import GcsEmulator
    from shared.adapters.blobs import GcsBlobStore

    emulator = GcsEmulator(tmp_path_factory.mktemp("gcs") / "gcs.log")
    emulator.start()
    mp = pytest.MonkeyPatch()
    mp.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    storage.Client(project="qs-test", credentials=AnonymousCredentials()).create_bucket(BUCKET)
    yield GcsBlobStore("qs-test", emulator=True)
    mp.undo()
    emulator.stop()


@pytest.fixture
def registry(app_db, blobs):
    return ModelRegistry(app_db, blobs, BUCKET)


def lineage(run: str, parent: int | None = None) -> Lineage:
    return Lineage(code_commit="abc1234", data_version="nifty-2000-2019@sha:21a6b739",
                   data_end=date(2019, 12, 2), run_id=run, parent_version=parent)


def train(registry, model_type, tenant=None, *, r2: float, payload: bytes | None = None):
    payload = payload or f"HAR params r2={r2}".encode()
    return registry.stage(model_type, tenant, payload, SCHEMA, {"oos_r2": r2},
                          lineage(f"run-{r2}"))


def decide(registry, model_type, version, tenant=None, *, paired=None, now=NOW):
    """What retrain does with a staged candidate: judge it, then promote or reject."""
    production = registry.production(model_type, tenant)
    data = registry.fetch(version.artifact_uri, version.sha256)
    import hashlib

    verdict = judge(CONTRACT, Candidate("vol_har", version.metrics, version.feature_schema,
                                        len(data), hashlib.sha256(data).hexdigest(),
                                        version.sha256),
                    production_schema=production.feature_schema if production else None,
                    paired=paired)
    numbers = dict(verdict.numbers)
    if verdict.promote:
        return registry.promote(model_type, tenant, version.version, judgement=verdict.explain(),
                                paired=numbers, now=now)
    return registry.reject(model_type, tenant, version.version, judgement=verdict.explain(),
                           paired=numbers, now=now)


def states(registry, model_type, tenant=None) -> dict[int, str]:
    out = {}
    for v in range(1, 10):
        row = registry.get(model_type, tenant, v)
        if row is None:
            break
        out[v] = row.state.value
    return out


def test_promotion_rejection_and_rollback(registry):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    v1 = train(registry, mt, r2=0.40)
    assert v1.version == 1 and v1.state is ModelState.STAGED and len(v1.sha256) == 64
    assert decide(registry, mt, v1).state is ModelState.PRODUCTION

    worse = train(registry, mt, r2=0.38)
    rejected = decide(registry, mt, worse, paired=PairedScore("oos_r2", 0.38, 0.40, 500))
    assert rejected.state is ModelState.REJECTED and "needs a gain" in rejected.judgement
    assert registry.production(mt, None).version == 1

    better = train(registry, mt, r2=0.45)
    promoted = decide(registry, mt, better, paired=PairedScore("oos_r2", 0.45, 0.40, 500),
                      now=NOW + timedelta(days=1))
    assert promoted.state is ModelState.PRODUCTION
    assert states(registry, mt) == {1: "archived", 2: "rejected", 3: "production"}
    assert registry.pointer(mt, None)[0] == 3

    restored = registry.rollback(mt, None, now=NOW + timedelta(days=2))
    assert restored.version == 1
    assert states(registry, mt) == {1: "production", 2: "rejected", 3: "archived"}
    assert registry.pointer(mt, None)[:2] == (1, v1.sha256)
    with pytest.raises(RegistryConflict, match="no earlier production version"):
        registry.rollback(mt, None, now=NOW + timedelta(days=3))


def test_a_rejected_or_archived_version_cannot_be_promoted_by_mistake(registry):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    v1 = train(registry, mt, r2=0.2)
    registry.reject(mt, None, v1.version, judgement="bad", paired=None, now=NOW)
    with pytest.raises(RegistryConflict, match="rejected: it cannot become production"):
        registry.promote(mt, None, v1.version, judgement="oops", paired=None, now=NOW)
    assert registry.production(mt, None) is None and registry.pointer(mt, None) is None


def test_a_corrupted_artifact_is_refused(registry, blobs):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    v1 = decide(registry, mt, train(registry, mt, r2=0.3))
    bucket, key = v1.artifact_uri[5:].split("/", 1)
    blobs.put(bucket, key, b"HAR params r2=0.99 (tampered)")
    with pytest.raises(ArtifactCorrupted, match="not the recorded"):
        registry.fetch(v1.artifact_uri, v1.sha256)
    serving = ProductionModels(registry, lambda b: b.decode())
    with pytest.raises(ArtifactCorrupted):
        serving.get(mt)


def test_serving_follows_the_pointer_without_a_restart(registry):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    clock = [0.0]
    loads = []
    serving = ProductionModels(registry, lambda b: loads.append(b) or b.decode(),
                               recheck_seconds=30, clock=lambda: clock[0])
    with pytest.raises(NoProductionModel):
        serving.get(mt)
    decide(registry, mt, train(registry, mt, r2=0.3))
    assert serving.get(mt) == (1, "HAR params r2=0.3")
    decide(registry, mt, train(registry, mt, r2=0.5),
           paired=PairedScore("oos_r2", 0.5, 0.3, 100), now=NOW + timedelta(hours=1))
    assert serving.get(mt)[0] == 1  # cached until the recheck
    clock[0] = 31.0
    assert serving.get(mt) == (2, "HAR params r2=0.5")
    clock[0] = 62.0
    assert serving.get(mt)[0] == 2 and len(loads) == 2  # same pointer: not reloaded


def test_concurrent_training_of_one_model_is_locked_out(registry):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    results = {}
    inside = threading.Event()
    release = threading.Event()

    def first():
        with registry.training_lock(mt, None) as taken:
            results["first"] = taken
            inside.set()
            release.wait(10)

    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(10)
    with registry.training_lock(mt, None) as second:
        results["second"] = second
    with registry.training_lock(f"{mt}_other", None) as other:
        results["other"] = other  # another model trains meanwhile
    release.set()
    t.join(10)
    assert results == {"first": True, "second": False, "other": True}
    with registry.training_lock(mt, None) as again:
        assert again  # released with the first


def test_a_failed_training_is_recorded(registry, app_db):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    attempt = registry.record_failure(mt, None, run_id="retrain-nightly@2026-11-20",
                                      reason_code="history_invalid",
                                      error="duplicate session 2019-11-29",
                                      started_at=NOW, partial_metrics={"rows": 4954.0},
                                      data_version="nifty-2000-2019@sha:21a6b739")
    with app_db.system() as s:
        row = s.execute("SELECT model_type, status, reason_code, error, partial_metrics, "
                        "data_version FROM training_attempts WHERE attempt_id = :a",
                        a=attempt).dicts()[0]
    assert row == {"model_type": mt, "status": "failed", "reason_code": "history_invalid",
                   "error": "duplicate session 2019-11-29", "partial_metrics": {"rows": 4954.0},
                   "data_version": "nifty-2000-2019@sha:21a6b739"}
    with pytest.raises(Exception, match="permission denied"), app_db.system() as s:
        s.execute("UPDATE training_attempts SET error = 'hidden' WHERE attempt_id = :a",
                  a=attempt)


def test_tenant_models_are_isolated_and_global_ones_shared(registry, make_tenant):
    a, b = make_tenant("models-a"), make_tenant("models-b")
    mt = f"direction_{uuid.uuid4().hex[:6]}"
    mine = decide(registry, mt, train(registry, mt, a, r2=0.3), a)
    assert mine.tenant_id == a and registry.production(mt, a).version == 1
    assert registry.production(mt, b) is None and registry.get(mt, b, 1) is None
    shared = decide(registry, mt, train(registry, mt, r2=0.35))
    assert shared.tenant_id is None and registry.production(mt, None).version == 1
    assert registry.pointer(mt, b) is None  # b has no model of its own


def test_a_tenant_session_cannot_write_global_models(app_db):
    from pg8000.exceptions import DatabaseError

    tenant = uuid.uuid4()
    with pytest.raises(DatabaseError), app_db.tenant(tenant) as s:
        s.execute("INSERT INTO model_versions (model_type, tenant_id, version, state, "
                  "artifact_uri, sha256, size_bytes, feature_schema, metrics, code_commit, "
                  "data_version, data_end, run_id) VALUES ('x_model', NULL, 1, 'production', "
                  "'gs://b/k', repeat('a', 64), 1, '[]', '{}', 'c', 'd', '2020-01-01', 'r')")


def test_two_promotions_racing_leave_exactly_one_production(registry):
    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    decide(registry, mt, train(registry, mt, r2=0.3))
    c2, c3 = train(registry, mt, r2=0.4), train(registry, mt, r2=0.41)
    outcomes = {}
    barrier = threading.Barrier(2)

    def promote(version):
        barrier.wait(5)
        try:
            registry.promote(mt, None, version, judgement="race", paired=None,
                             now=NOW + timedelta(minutes=version))
            outcomes[version] = "promoted"
        except (DatabaseUnavailable, RegistryConflict, Exception) as exc:  # noqa: BLE001
            outcomes[version] = type(exc).__name__

    threads = [threading.Thread(target=promote, args=(v.version,)) for v in (c2, c3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    production = [v for v, s in states(registry, mt).items() if s == "production"]
    assert len(production) == 1 and registry.pointer(mt, None)[0] == production[0]
    assert "promoted" in outcomes.values()


def test_serving_reads_artifacts_without_the_gcs_client_library(registry, app_db):
    """UrlBlobReader (standard-library HTTP against the emulator) serves the same bytes, and
    a missing object is an error, not an empty model."""
    import os

    from shared.adapters.blobs import UrlBlobReader

    mt = f"vol_har_{uuid.uuid4().hex[:6]}"
    v1 = decide(registry, mt, train(registry, mt, r2=0.3))
    reader = UrlBlobReader(emulator_host=os.environ["STORAGE_EMULATOR_HOST"])
    serving = ProductionModels(ModelRegistry(app_db, reader, BUCKET), lambda b: b.decode())
    assert serving.get(mt) == (1, "HAR params r2=0.3")
    bucket, key = v1.artifact_uri[5:].split("/", 1)
    with pytest.raises(FileNotFoundError):
        reader.get(bucket, key + ".missing")
