"""Real CloudEvents through functions-framework: auth, idempotency, rejection, retry, age."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts import ProbePingV1
from tests.functions.conftest import cloudevent, pull_dead_letters

pytestmark = pytest.mark.integration


def ping(behaviour: str = "ok") -> ProbePingV1:
    return ProbePingV1(probe_id=uuid.uuid4(), sent_at=datetime.now(UTC), behaviour=behaviour)


def count(db, table: str, event_id: str) -> int:
    """Rows for ``event_id``; pass ``owner_db`` for operator tables (the app cannot read them)."""
    with db.system() as s:
        return s.execute(f"SELECT count(*) FROM {table} WHERE event_id = :e", e=event_id).scalar()


def test_health_needs_no_token_and_names_the_function(client_for):
    response = client_for("local/probe").get("/health")
    assert response.status_code == 200
    assert response.json == {"function": "probe", "status": "ok", "topics": ["local.probe"], "scheduled": True}


def test_warmup_builds_every_service_and_imports_the_declared_modules(client_for):
    import sys

    response = client_for("functions/notify").get("/warmup")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["function"] == "notify" and "shared.domain.notify.render:prime_renderer" in body["modules"]
    assert {"signal.approved", "killswitch.tripped", "/run"} <= set(body["built"])
    assert "matplotlib.backends.backend_agg" in sys.modules
    again = client_for("functions/risk_check").get("/warmup")
    assert again.status_code == 200 and {"decision.proposed", "/check"} <= set(again.json["built"])


def test_a_failing_warmup_is_reported_and_the_instance_stays_up(function_env):
    import flask

    from shared.runtime import FunctionApp

    app = FunctionApp("probe", warmup=("no_such_module_for_qs",))
    with flask.Flask(__name__).test_request_context("/warmup", method="GET") as ctx:
        response = app.handle(ctx.request)
    assert response.status_code == 503 and b"warmup_failed" in response.get_data()
    with flask.Flask(__name__).test_request_context("/health", method="GET") as ctx:
        assert app.handle(ctx.request).status_code == 200


def test_an_event_is_written_once_however_often_it_is_delivered(client_for, auth, app_db):
    client = client_for("local/probe")
    headers, body = cloudevent(ping())
    statuses = [client.post("/", headers={**headers, **auth}, data=body).json["status"] for _ in range(3)]
    assert statuses == ["done", "duplicate", "duplicate"]
    assert count(app_db, "heartbeats", headers["ce-id"]) == 1


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer garbage", 401), ("Basic dXNlcjpwYXNz", 401)],
)
def test_unauthenticated_calls_are_refused_without_side_effects(client_for, app_db, owner_db, header,
                                                                status):
    client = client_for("local/probe")
    headers, body = cloudevent(ping())
    if header:
        headers["Authorization"] = header
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == status
    assert response.json["error"] == "unauthenticated"
    assert count(app_db, "heartbeats", headers["ce-id"]) == 0
    assert count(owner_db, "rejections", headers["ce-id"]) == 0


def test_a_caller_outside_the_allow_list_gets_403(client_for, auth, app_db, monkeypatch):
    monkeypatch.setenv("QS_ALLOWED_INVOKERS", '["scheduler@qs.local"]')
    headers, body = cloudevent(ping())
    response = client_for("local/probe").post("/", headers={**headers, **auth}, data=body)
    assert response.status_code == 403
    assert count(app_db, "heartbeats", headers["ce-id"]) == 0


def test_bad_input_is_acked_recorded_and_dead_lettered(client_for, auth, app_db, owner_db, pubsub):
    client = client_for("local/probe")
    pull_dead_letters(pubsub[1])  # start from an empty dead-letter queue
    cases = {
        "contract_violation": cloudevent(data=b'{"probe_id": "nope"}',
                                         attributes={"contract": "local.probe", "contract_version": "1"}),
        "unknown_topic": cloudevent(data=b"{}", attributes={"contract": "chain.snapshot"}),
        "probe_rejected": cloudevent(ping("permanent")),
    }
    for code, (headers, body) in cases.items():
        response = client.post("/", headers={**headers, **auth}, data=body)
        assert response.status_code == 200, code  # acked: never retried
        assert response.json["status"] == "rejected" and response.json["error"] == code
        with owner_db.system() as s:
            row = s.execute("SELECT reason_code, reason FROM rejections WHERE event_id = :e",
                            e=headers["ce-id"]).rows
        assert row and row[0][0] == code and row[0][1]
        assert count(app_db, "heartbeats", headers["ce-id"]) == 0
    dead = pull_dead_letters(pubsub[1])
    assert sorted(m.attributes["qs_reason_code"] for m in dead) == sorted(cases)
    assert all(m.attributes["qs_rejected_by"] == "probe" for m in dead)


def test_a_malformed_cloudevent_is_acked_with_a_reason(client_for, auth, app_db, pubsub):
    pull_dead_letters(pubsub[1])
    response = client_for("local/probe").post(
        "/", headers={**auth, "Content-Type": "application/json"}, data=b'{"not": "an envelope"}')
    assert response.status_code == 200
    assert response.json["error"] == "malformed_event"
    dead = pull_dead_letters(pubsub[1])
    assert [m.attributes["qs_reason_code"] for m in dead] == ["malformed_event"]
    assert dead[0].data == b'{"not": "an envelope"}'


def test_transient_failures_ask_for_a_retry_and_write_nothing(client_for, auth, app_db, owner_db):
    headers, body = cloudevent(ping("transient"))
    response = client_for("local/probe").post("/", headers={**headers, **auth}, data=body)
    assert response.status_code == 503
    assert count(owner_db, "rejections", headers["ce-id"]) == 0
    assert count(app_db, "processed_events", headers["ce-id"]) == 0


def test_events_older_than_max_age_are_dropped(client_for, auth, app_db, owner_db):
    headers, body = cloudevent(ping(), published=datetime.now(UTC) - timedelta(hours=1))
    response = client_for("local/probe").post("/", headers={**headers, **auth}, data=body)
    assert response.status_code == 200 and response.json["status"] == "dropped"
    assert count(app_db, "heartbeats", headers["ce-id"]) == 0
    with owner_db.system() as s:
        assert s.execute("SELECT reason_code FROM rejections WHERE event_id = :e",
                         e=headers["ce-id"]).scalar() == "stale_event"


def test_scheduled_runs_are_idempotent_per_firing(client_for, auth, app_db):
    client = client_for("local/probe")
    headers = {**auth, "X-CloudScheduler": "true", "X-CloudScheduler-JobName": "probe-tick",
               "X-CloudScheduler-ScheduleTime": "2026-11-20T03:45:00Z"}
    first = client.post("/run", headers=headers, json={})
    again = client.post("/run", headers=headers, json={})
    assert (first.json["status"], again.json["status"]) == ("done", "duplicate")
    assert count(app_db, "heartbeats", "probe-tick@2026-11-20T03:45:00+00:00") == 1
    assert client.post("/run", headers=headers, data=b"[1, 2]").status_code == 400


def test_unknown_routes_and_methods(client_for, auth):
    client = client_for("functions/retrain")
    assert client.post("/", headers=auth, json={}).status_code == 404  # retrain takes no events
    assert client.get("/run").status_code == 405
    assert client.get("/nope").status_code == 404


def test_decide_acks_a_snapshot_it_cannot_find_with_a_reason(client_for, auth, app_db):
    """A snapshot event naming no stored snapshot is bad input: acked (200, never retried
    into a loop) with the reason, and recorded in ``rejections``."""
    from shared.contracts import ChainSnapshotV1

    message = ChainSnapshotV1(
        snapshot_id=uuid.uuid4(), symbol="NIFTY", asof=datetime.now(UTC), spot=26000.0,
        source="sim", expiries=(), legs=0, raw_blob="gs://b/k")
    headers, body = cloudevent(message)
    response = client_for("functions/decide").post("/", headers={**headers, **auth}, data=body)
    assert response.status_code == 200
    assert response.json["error"] == "snapshot_unusable"
    assert str(message.snapshot_id) in response.json["reason"]


def test_query_tokens_are_accepted_in_local_mode_only(client_for, app_db, monkeypatch):
    from shared.auth import LocalTokenIssuer
    from tests.functions.conftest import SECRET

    token = LocalTokenIssuer(SECRET).token("http://localhost/", "push@qs.local")
    headers, body = cloudevent(ping())
    assert client_for("local/probe").post(f"/?token={token}", headers=headers, data=body).status_code == 200
    monkeypatch.setenv("QS_AUTH_MODE", "google")
    monkeypatch.setenv("QS_ALLOWED_INVOKERS", '["push@proj.iam.gserviceaccount.com"]')
    headers, body = cloudevent(ping())
    monkeypatch.setenv("QS_AUTH_AUDIENCE", "http://localhost/")
    response = client_for("local/probe").post(f"/?token={token}", headers=headers, data=body)
    assert response.status_code == 401
    assert "missing Authorization header" in response.json["reason"]  # the query was ignored
    assert count(app_db, "heartbeats", headers["ce-id"]) == 0
