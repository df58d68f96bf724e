"""MLflow tracking on the real Postgres (its own database, through pg8000) and the GCS
emulator: runs, params, metrics, artifacts, failures, and the error taxonomy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from shared.adapters.tracking import (
    MlflowTracker,
    NullTracker,
    TrackedRun,
    TrackingMisconfigured,
    TrackingRejected,
    TrackingUnavailable,
    sqlalchemy_tracking_uri,
    tracker_from_settings,
)
from shared.errors import PermanentError, TransientError
from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.integration,
    # mlflow 3.17's SqlAlchemyStore on SQLAlchemy 2.1 (its ORM mappers use ``noload``)
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

BUCKET = "qs-mlflow-test"
ROOT = f"gs://{BUCKET}/mlflow"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """The GCS emulator with the artifact bucket; MLflow's GCS repository finds it through
    ``STORAGE_EMULATOR_HOST`` (anonymous credentials, no project needed)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from local.gcs import GcsEmulator

    emulator = GcsEmulator(tmp_path_factory.mktemp("gcs") / "gcs.log")
    emulator.start()
    mp = pytest.MonkeyPatch()
    mp.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    client = storage.Client(project="qs-test", credentials=AnonymousCredentials())
    client.create_bucket(BUCKET)
    yield client
    mp.undo()
    emulator.stop()


@pytest.fixture(scope="module")
def tracking_url(pg):
    """A database of MLflow's own, owned by a role that may create tables in it (the app
    role cannot create in quantsentinel's public schema); dropped afterwards."""
    from local.postgres import OWNER_ROLE
    from shared.adapters.db import DirectConnector

    name = f"mlflow_test_{uuid.uuid4().hex[:12]}"
    conn = DirectConnector(pg.admin)()
    try:
        conn.execute_simple(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    finally:
        conn.close()
    yield pg.owner.with_database(name).url()  # libpq style: the tracker rewrites it
    conn = DirectConnector(pg.admin)()
    try:  # MLflow's cached engine still holds pooled connections
        conn.execute_simple(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def first_connect(tracking_url, gcs) -> tuple[MlflowTracker, float]:
    tracker = MlflowTracker(tracking_url, ROOT)
    return tracker, tracker.prepare()


@pytest.fixture
def tracker(first_connect) -> MlflowTracker:
    return first_connect[0]


@pytest.fixture
def client(tracker):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracker.tracking_uri)


def test_first_connect_migrates_mlflow_schema_in_its_own_database(first_connect, tracking_url,
                                                                  owner_db):
    from mlflow.store.db.utils import _get_latest_schema_revision

    from shared.adapters.db import DirectConnector, parse_database_url

    tracker, seconds = first_connect
    assert tracker.tracking_uri.startswith("postgresql+pg8000://")
    assert seconds < 60, f"first connect (schema + migrations) took {seconds:.1f}s"
    conn = DirectConnector(parse_database_url(tracking_url))()
    try:
        head = conn.execute_unnamed("SELECT version_num FROM alembic_version").rows
        tables = {r[0] for r in conn.execute_unnamed(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").rows}
    finally:
        conn.close()
    assert head == [[_get_latest_schema_revision()]]
    assert {"experiments", "runs", "metrics", "params", "tags"} <= tables
    with owner_db.system() as s:  # nothing of MLflow's in the application database
        assert s.execute("SELECT to_regclass('public.experiments') IS NULL AND "
                         "to_regclass('public.alembic_version') IS NULL").scalar()
    # a second tracker on the migrated database: no migration, the same store
    again = MlflowTracker(tracking_url, ROOT).prepare()
    assert again < seconds + 5


def test_run_logs_params_metrics_and_artifacts(tracker, client, gcs, tmp_path, rng):
    payload = rng.bytes(1_500_000)  # larger than one resumable-upload request
    with tracker.run("vol_har_1d", "nightly-2026-11-20",
                     tags={"model_type": "vol_har_1d", "tenant": "global"}) as run:
        assert isinstance(run, TrackedRun)
        run.log_params({"horizon": 1, "window": 22, "estimator": "log-HAR"})
        run.log_metrics({"oos_r2": 0.31, "qlike": 0.92})
        run.log_metrics({"fold_r2": 0.20}, step=0)
        run.log_metrics({"fold_r2": 0.40}, step=1)
        uri = run.log_artifact_bytes("model.bin", payload)
        run.log_artifact_bytes("reports/judgement.json", json.dumps({"promote": True}).encode())
        run.set_tags({"registry_version": "3"})
        run_id = run.run_id

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.run_name == "nightly-2026-11-20"
    assert got.data.params == {"horizon": "1", "window": "22", "estimator": "log-HAR"}
    assert got.data.metrics == {"oos_r2": 0.31, "qlike": 0.92, "fold_r2": 0.40}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "fold_r2")] == [
        (0, 0.20), (1, 0.40)]
    assert {"model_type": "vol_har_1d", "tenant": "global",
            "registry_version": "3"}.items() <= got.data.tags.items()

    experiment = client.get_experiment(got.info.experiment_id)
    assert experiment.name == "vol_har_1d"
    assert experiment.artifact_location == f"{ROOT}/vol_har_1d"
    assert uri == f"{ROOT}/vol_har_1d/{run_id}/artifacts/model.bin"
    assert got.info.artifact_uri == f"{ROOT}/vol_har_1d/{run_id}/artifacts"

    assert {a.path for a in client.list_artifacts(run_id)} == {"model.bin", "reports"}
    local = client.download_artifacts(run_id, "model.bin", str(tmp_path))
    with open(local, "rb") as f:
        assert f.read() == payload
    key = uri.removeprefix(f"gs://{BUCKET}/")
    assert gcs.bucket(BUCKET).blob(key).download_as_bytes() == payload
    report = gcs.bucket(BUCKET).blob(key.replace("model.bin", "reports/judgement.json"))
    assert json.loads(report.download_as_bytes()) == {"promote": True}


def test_an_exception_marks_the_run_failed_and_propagates(tracker, client):
    class TrainingBlewUp(RuntimeError):
        pass

    with pytest.raises(TrainingBlewUp, match="singular"), \
            tracker.run("vol_har_5d", "nightly", tags={"tenant": "global"}) as run:
        run.log_metrics({"fold_r2": 0.12}, step=0)
        raise TrainingBlewUp("singular design matrix")
    failed = client.get_run(run.run_id)
    assert failed.info.status == "FAILED" and failed.info.end_time is not None
    assert failed.data.metrics == {"fold_r2": 0.12}  # partial metrics are kept

    with pytest.raises(SystemExit), tracker.run("vol_har_5d", "interrupted") as run:
        raise SystemExit(1)
    assert client.get_run(run.run_id).info.status == "KILLED"


def test_experiments_are_created_once_and_keep_their_location(tracker, tracking_url, client):
    with tracker.run("vol_har_22d", "first") as first:
        pass
    # another process (another tracker, another artifact root) finds the experiment
    other = MlflowTracker(tracking_url, "gs://somewhere-else/mlflow")
    with other.run("vol_har_22d", "second") as second:
        pass
    a, b = client.get_run(first.run_id), client.get_run(second.run_id)
    assert a.info.experiment_id == b.info.experiment_id
    assert b.info.artifact_uri.startswith(f"{ROOT}/vol_har_22d/")
    assert [e.name for e in client.search_experiments(filter_string="name = 'vol_har_22d'")
            ] == ["vol_har_22d"]


def test_a_refused_call_is_permanent_and_fails_the_run(tracker, client):
    with pytest.raises(TrackingRejected) as caught, tracker.run("direction_1d", "params") as run:
        run.log_params({"learning_rate": 0.05})
        run.log_params({"learning_rate": 0.05})  # the same value again is fine
        run.log_params({"learning_rate": 0.10})
    assert isinstance(caught.value, PermanentError)
    assert "learning_rate" in str(caught.value)
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_a_missing_bucket_is_a_configuration_error(tracking_url, gcs, client):
    tracker = MlflowTracker(tracking_url, f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/mlflow")
    with pytest.raises(TrackingMisconfigured, match="uploading artifact 'model.bin'"), \
            tracker.run("missing_bucket", "r") as run:
        run.log_artifact_bytes("model.bin", b"weights")
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_the_app_role_cannot_host_mlflow_in_the_application_database(pg, gcs):
    """Why MLflow gets a database of its own: its first connect creates tables."""
    tracker = MlflowTracker(pg.app_url, ROOT)
    with pytest.raises(TrackingMisconfigured, match="permission denied for schema public"):
        tracker.prepare()


def test_a_missing_database_is_a_configuration_error_and_fails_fast(pg):
    tracker = MlflowTracker(pg.owner.with_database(f"mlflow_absent_{uuid.uuid4().hex[:8]}")
                            .url(), ROOT)
    started = time.perf_counter()
    with pytest.raises(TrackingMisconfigured, match="does not exist"):
        tracker.prepare()
    assert time.perf_counter() - started < 10  # not MLflow's ~100 s of retries


def test_an_unreachable_database_is_transient_and_fails_fast():
    from local.processes import free_port

    tracker = MlflowTracker(f"postgresql://mlflow:secret@127.0.0.1:{free_port()}/mlflow", ROOT,
                            connect_timeout=2)
    started = time.perf_counter()
    with pytest.raises(TrackingUnavailable) as caught, tracker.run("vol_har_1d", "r"):
        pass
    assert time.perf_counter() - started < 10
    assert isinstance(caught.value, TransientError)
    assert "secret" not in str(caught.value) and "***" in str(caught.value)


def test_the_null_tracker_records_nothing_but_gives_run_ids():
    tracker = tracker_from_settings(None, ROOT)
    assert isinstance(tracker, NullTracker)
    assert isinstance(tracker_from_settings("  ", ROOT), NullTracker)
    with tracker.run("vol_har_1d", "nightly", tags={"tenant": "global"}) as run:
        assert isinstance(run, TrackedRun)
        run.log_params({"horizon": 1})
        run.log_metrics({"oos_r2": 0.3}, step=2)
        run.set_tags({"x": "y"})
        assert run.log_artifact_bytes("model.bin", b"weights") is None
    with pytest.raises(KeyError), tracker.run("vol_har_1d", "failing") as failing:
        raise KeyError("boom")
    assert len(run.run_id) == 32 and int(run.run_id, 16) >= 0
    assert failing.run_id != run.run_id


def test_names_are_checked_before_anything_is_recorded(tracker):
    for t in (tracker, NullTracker()):
        with pytest.raises(ValueError, match="experiment name"), t.run("../etc", "r"):
            pass
        with pytest.raises(ValueError, match="artifact name"), t.run("names", "r") as run:
            run.log_artifact_bytes("../model.bin", b"x")


def test_tracking_uris_are_rewritten_for_pg8000():
    assert (sqlalchemy_tracking_uri("postgresql://u:p%40ss@db.internal:6543/mlflow")
            == "postgresql+pg8000://u:p%40ss@db.internal:6543/mlflow")
    assert (sqlalchemy_tracking_uri("postgres://u:pw@/mlflow?host=/cloudsql/p:r:i")
            == "postgresql+pg8000://u:pw@/mlflow?unix_sock=/cloudsql/p:r:i/.s.PGSQL.5432")
    ready = "postgresql+pg8000://u:pw@/mlflow?unix_sock=/tmp/.s.PGSQL.5432"
    assert sqlalchemy_tracking_uri(ready) == ready
    assert sqlalchemy_tracking_uri("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    with pytest.raises(TrackingMisconfigured, match="sslmode"):
        sqlalchemy_tracking_uri("postgresql://u:pw@10.0.0.3/mlflow?sslmode=require")
    assert "pw" not in repr(MlflowTracker("postgresql://u:pw@10.0.0.3/mlflow", ROOT))
    with pytest.raises(ValueError, match="artifact_root"):
        MlflowTracker("postgresql://u:pw@10.0.0.3/mlflow", "")


def test_importing_and_configuring_tracking_does_not_import_mlflow():
    code = (
        "import sys\n"
        "from shared.adapters.tracking import MlflowTracker, tracker_from_settings\n"
        "t = tracker_from_settings('postgresql://u:p@/mlflow?host=/tmp/s&port=5433', "
        "'gs://b/mlflow')\n"
        "assert isinstance(t, MlflowTracker), t\n"
        "assert t.tracking_uri == 'postgresql+pg8000://u:p@/mlflow?unix_sock=/tmp/s/.s.PGSQL.5433'\n"
        "heavy = ('mlflow', 'sqlalchemy', 'alembic', 'google.cloud.storage')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
