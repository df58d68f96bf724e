"""notify through functions-framework against the real Postgres and the Pub/Sub emulator:
a failure after the claim gives the claim back; a dead delivery whose announcement could
not be published is announced on the redelivery; a global event reaches every tenant even
when one tenant's settings are broken; the cross-tenant trigger holds under concurrency."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import uuid
from datetime import UTC, datetime

import pytest

from shared.contracts import KillSwitchTrippedV1, SignalApprovedV1
from tests.functions.conftest import cloudevent

pytestmark = pytest.mark.integration
KEY = "functions-notify-signing-key-0123456789abcdef"


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = 500 if self.path == "/fail" else 204
            if status == 204:
                got.append(json.loads(raw))
            self.send_response(status)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()


@pytest.fixture
def notify(client_for, monkeypatch, pubsub):
    monkeypatch.setenv("QS_WEBHOOK_SIGNING_KEY", KEY)
    monkeypatch.setenv("QS_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("QS_NOTIFY_TIMEOUT_S", "2")
    return client_for("functions/notify")


def provision(owner_db, notify_settings) -> uuid.UUID:
    tenant = uuid.uuid4()
    with owner_db.system() as s:
        s.execute("SELECT provision_tenant(:t, 'notify-fn', 'standard', CAST(:s AS jsonb))",
                  t=tenant, s=json.dumps({"notify": notify_settings}))
    return tenant


def signal(tenant) -> SignalApprovedV1:
    return SignalApprovedV1(verdict_id=uuid.uuid4(), proposal_id=uuid.uuid4(), tenant_id=tenant,
                            dry_run=True, verdicts=(), decided_at=datetime.now(UTC), net_ev=10.0,
                            total_costs=1.0, size_multiplier=1.0)


def ledger(app_db, tenant):
    with app_db.tenant(tenant) as s:
        return s.execute("SELECT status, attempts, announced_at FROM notify_deliveries").dicts()


def test_a_dead_delivery_is_announced_even_when_the_first_publish_fails(
        notify, auth, app_db, owner_db, receiver, pubsub, monkeypatch):
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    url, _ = receiver
    project = f"qs-notify-{uuid.uuid4().hex[:6]}"  # no notify.dead topic there yet
    monkeypatch.setenv("QS_PROJECT_ID", project)
    tenant = provision(owner_db, {"webhook": {"url": f"{url}/fail"}})
    message = signal(tenant)
    headers, body = cloudevent(message)
    headers = {**headers, "ce-id": "dead-1"}
    # one attempt allowed: the failure is final, and the announcement fails (no topic)
    monkeypatch.setenv("QS_NOTIFY_MAX_ATTEMPTS", "1")
    first = notify.post("/", headers={**headers, **auth}, data=body)
    assert first.status_code == 503 and "not announced" in first.json["reason"]
    assert [(r["status"], r["announced_at"]) for r in ledger(app_db, tenant)] == [("dead", None)]
    with contextlib.suppress(AlreadyExists):
        pubsub_v1.PublisherClient().create_topic(name=f"projects/{project}/topics/notify.dead")
    _, subscriber = pubsub
    sub = f"projects/{project}/subscriptions/dead-{uuid.uuid4().hex[:6]}"
    subscriber.create_subscription(name=sub, topic=f"projects/{project}/topics/notify.dead")
    again = notify.post("/", headers={**headers, **auth}, data=body)
    assert again.status_code == 200, again.json
    (row,) = ledger(app_db, tenant)
    assert row["status"] == "dead" and row["announced_at"] is not None
    got = subscriber.pull(subscription=sub, max_messages=5, timeout=5).received_messages
    assert len(got) == 1 and str(tenant) in got[0].message.data.decode()
    subscriber.delete_subscription(subscription=sub)


def test_a_failure_after_the_claim_gives_the_claim_back(notify, auth, app_db, owner_db,
                                                        receiver, monkeypatch):
    url, got = receiver
    tenant = provision(owner_db, {"webhook": {"url": f"{url}/ok"}})
    message = signal(tenant)
    headers, body = cloudevent(message)
    from shared.services.notify import NotifyService

    real = NotifyService._send_all

    def crash(self, pending):
        raise RuntimeError("the instance died mid-send")

    monkeypatch.setattr(NotifyService, "_send_all", crash)
    crashed = notify.post("/", headers={**headers, **auth}, data=body)
    assert crashed.status_code >= 500
    assert [r["status"] for r in ledger(app_db, tenant)] == ["pending"]  # released
    monkeypatch.setattr(NotifyService, "_send_all", real)
    retried = notify.post("/", headers={**headers, **auth}, data=body)
    assert retried.status_code == 200, retried.json
    assert [r["status"] for r in ledger(app_db, tenant)] == ["sent"]
    assert len([c for c in got if str(message.verdict_id) in json.dumps(c)]) == 1


def test_a_global_event_reaches_every_tenant_despite_one_broken_tenant(
        notify, auth, app_db, owner_db, receiver, pubsub):
    url, got = receiver
    good = provision(owner_db, {"webhook": {"url": f"{url}/ok"}})
    bad = provision(owner_db, {"routes": {"killswitch.tripped": ["pager"]}})
    trip = KillSwitchTrippedV1(switch="master", scope="global", scope_key=None, tenant_id=None,
                               reason=f"desk halt {uuid.uuid4().hex[:6]}", actor="ops@qs.test",
                               at=datetime.now(UTC))
    headers, body = cloudevent(trip)
    response = notify.post("/", headers={**headers, **auth}, data=body)
    # every active tenant of this test database gets it; other tests' tenants may have
    # webhooks on servers long gone (their failures ask for a retry): not this test's business
    assert response.status_code in (200, 503), response.json
    assert [c["kind"] for c in got if trip.reason in json.dumps(c)] == ["killswitch.tripped"]
    assert [r["status"] for r in ledger(app_db, good)] == ["sent"]
    assert ledger(app_db, bad) == []


def test_the_cross_tenant_trigger_holds_under_concurrency(app_db, owner_db):
    from pg8000.exceptions import DatabaseError

    from shared.adapters.db import sqlstate

    a, b = provision(owner_db, {}), provision(owner_db, {})
    key = f"signal.approved:{uuid.uuid4()}"
    barrier = threading.Barrier(2)
    errors = []

    def record(tenant):
        try:
            with app_db.tenant(tenant) as s:
                barrier.wait(timeout=10)
                s.execute(
                    "INSERT INTO notify_deliveries (delivery_id, dedup_key, event_id, kind, "
                    "subject, tenant_id, channel, target, status, created_at, updated_at) "
                    "VALUES (:i, :k, 'e', 'signal.approved', 'x', :t, 'email', 'x', "
                    "'pending', now(), now())", i=uuid.uuid4(), k=key, t=tenant)
                import time

                time.sleep(0.3)  # hold the transaction open while the other inserts
        except DatabaseError as exc:
            errors.append(sqlstate(exc))

    threads = [threading.Thread(target=record, args=(t,)) for t in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == ["23000"]  # exactly one of the two is refused
