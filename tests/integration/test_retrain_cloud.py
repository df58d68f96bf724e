"""retrain in the local cloud: the served function trains on the seeded history in the GCS
emulator, stores the artifact there, and promotes through Postgres; notify tells a tenant
who asked for model news."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.integration.test_local_cloud import wait_for

pytestmark = [
    pytest.mark.integration,
    # mlflow 3.17's SqlAlchemyStore on SQLAlchemy 2.1 (its ORM mappers use ``noload``)
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

KIT_DAILY = (Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
             / "index_history" / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv")


def test_a_scheduled_retrain_promotes_and_announces(cloud):
    if not KIT_DAILY.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    import json
    import uuid

    from tests.integration.cloud_support import WebhookReceiver

    hook = WebhookReceiver()  # a tenant who wants model news on its webhook
    with cloud.owner_db().system() as s:
        s.execute("SELECT provision_tenant(:t, 'model-news', 'standard', CAST(:s AS jsonb))",
                  t=uuid.uuid4(), s=json.dumps({"notify": {
                      "webhook": {"url": hook.url},
                      "routes": {"model.promoted": ["webhook"], "model.rejected": ["webhook"]}}}))
    url = f"{cloud.urls['retrain']}/run"
    response = requests.post(url, json={"scope": "global", "models": ["vol_har_22d"]},
                             timeout=120, headers={
                                 "Authorization": cloud.issuer.header(url, "scheduler@local"),
                                 "X-CloudScheduler-JobName": "retrain-nightly"})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] in ("promoted", "rejected"), result
    with cloud.app_db().system() as s:
        row = s.execute("SELECT state, artifact_uri, data_version, tracking_run_id FROM "
                        "model_versions WHERE model_type = 'vol_har_22d' AND version = :v",
                        v=result["version"]).dicts()[0]
    assert row["artifact_uri"].startswith("gs://qs-model-artifacts/models/vol_har_22d/global/")
    assert row["data_version"].startswith("daily/NIFTY.csv@sha256:")
    # the training was tracked in MLflow (its own database in the same Postgres)
    from mlflow.tracking import MlflowClient

    from shared.adapters.tracking import sqlalchemy_tracking_uri

    run = MlflowClient(sqlalchemy_tracking_uri(cloud.database.mlflow_url)).get_run(
        row["tracking_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["qlike"] == pytest.approx(result["metrics"]["qlike"], rel=1e-5)
    assert run.data.tags["registry_version"] == str(result["version"])
    topic = "model.promoted" if result["status"] == "promoted" else "model.rejected"

    try:  # notify heard of it and told the tenant, once
        got = wait_for(lambda: [c for c in hook.received if c["kind"] == topic
                                and "vol_har_22d" in json.dumps(c)], timeout=20, every=0.2)
        assert len(got) == 1
    finally:
        hook.close()
