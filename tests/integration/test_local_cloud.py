"""The local cloud end to end, through the real client libraries and wire protocols."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from local.cloud import OPERATOR_DLQ_SUBSCRIPTION, CloudConfig, LocalCloud
from local.scheduler import LocalScheduler
from shared.contracts import ProbePingV1
from shared.schedules import load_schedules
from shared.topology import FUNCTIONS, PROBE, subscription_id

pytestmark = pytest.mark.integration

REPO_SCHEDULES = Path(__file__).resolve().parents[2] / "schedules"


def wait_for(predicate, timeout: float = 20.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def rows(cloud, sql: str, **params):
    with cloud.app_db().system() as s:
        return s.execute(sql, **params).rows


def test_health_is_green_and_every_function_serves(cloud):
    health = cloud.health()
    assert health.ok, health.render()
    names = {c.name for c in health.components}
    assert {f"function {f.name}" for f in (*FUNCTIONS, PROBE)} <= names
    assert {"postgres", "gcs", "pubsub", "scheduler", "canary"} <= names


def test_nothing_listens_beyond_loopback(cloud):
    pids = set()
    for proc in cloud.functions.values():
        parent = psutil.Process(proc.proc.pid)
        pids |= {parent.pid, *(c.pid for c in parent.children(recursive=True))}
    pids.add(cloud.gcs.process.proc.pid)
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening, "expected the functions and GCS emulator to listen"
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_pushed_message_is_written_once_despite_three_deliveries(cloud):
    before = cloud.pubsub.stats()["delivered"]
    event_id = cloud.publish(ProbePingV1(probe_id=uuid.uuid4(), sent_at=datetime.now(UTC)))
    wait_for(lambda: rows(cloud, "SELECT 1 FROM heartbeats WHERE event_id = :e", e=event_id))
    probe_sub = cloud.subscription_path(subscription_id("local.probe", "probe"))
    assert cloud.pubsub.wait_idle(timeout=10, subscriptions=[probe_sub])
    assert cloud.pubsub.stats()["delivered"] - before >= 3
    assert rows(cloud, "SELECT count(*) FROM heartbeats WHERE event_id = :e", e=event_id) == ((1,),)
    assert rows(cloud, "SELECT count(*) FROM processed_events WHERE event_id = :e", e=event_id) == ((1,),)


def _dead_letters(cloud, subscriber) -> list:
    response = subscriber.pull(subscription=cloud.subscription_path(OPERATOR_DLQ_SUBSCRIPTION),
                               max_messages=100, timeout=5)
    if response.received_messages:
        subscriber.acknowledge(subscription=cloud.subscription_path(OPERATOR_DLQ_SUBSCRIPTION),
                               ack_ids=[m.ack_id for m in response.received_messages])
    return [m.message for m in response.received_messages]


def test_a_function_that_keeps_failing_dead_letters_after_max_attempts(cloud):
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    try:
        ping = ProbePingV1(probe_id=uuid.uuid4(), sent_at=datetime.now(UTC), behaviour="transient")
        event_id = cloud.publish(ping)
        seen: list = []

        def arrived():  # dead-lettering republishes: same data and attributes, a new id
            seen.extend(_dead_letters(cloud, subscriber))
            return [m for m in seen if str(ping.probe_id).encode() in m.data]

        dead = wait_for(arrived, timeout=30, every=0.2)
    finally:
        subscriber.close()
    attrs = dead[0].attributes
    assert attrs["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert attrs["CloudPubSubDeadLetterSourceSubscription"].endswith("local.probe--probe")
    assert attrs["contract"] == "local.probe" and "qs_reason_code" not in attrs  # not our rejection
    assert rows(cloud, "SELECT count(*) FROM heartbeats WHERE event_id = :e", e=event_id) == ((0,),)
    with cloud.owner_db().system() as s:  # operators read rejections; the app role cannot
        assert s.execute("SELECT count(*) FROM rejections WHERE event_id = :e", e=event_id).scalar() == 0


def test_a_permanently_bad_message_is_acked_once_and_dead_lettered_with_its_reason(cloud):
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    try:
        event_id = cloud.publish(ProbePingV1(probe_id=uuid.uuid4(), sent_at=datetime.now(UTC),
                                             behaviour="permanent"))
        found: list = []
        wait_for(lambda: found.extend(m for m in _dead_letters(cloud, subscriber)
                                      if m.attributes.get("qs_source_event_id") == event_id) or found,
                 timeout=20, every=0.2)
    finally:
        subscriber.close()
    assert found[0].attributes["qs_reason_code"] == "probe_rejected"
    with cloud.owner_db().system() as s:
        assert s.execute("SELECT reason_code FROM rejections WHERE event_id = :e",
                         e=event_id).scalar() == "probe_rejected"


def test_a_schedule_fires_on_its_cron_in_ist(cloud, tmp_path):
    (tmp_path / "probe.yaml").write_text(
        "name: probe-tick\nschedule: '15-17 9 * * 1-5'\ntime_zone: Asia/Kolkata\ntarget: probe\n")
    scheduler = LocalScheduler(load_schedules(tmp_path), cloud.urls, cloud.issuer,
                               start=datetime(2026, 11, 20, 3, 40, tzinfo=UTC))  # 09:10 IST, a Friday
    try:
        firings = scheduler.tick(datetime(2026, 11, 20, 3, 50, tzinfo=UTC))
        assert [(f.scheduled_for.strftime("%H:%M"), f.status) for f in firings] == [
            ("09:15", 200), ("09:16", 200), ("09:17", 200)]
        assert scheduler.tick(datetime(2026, 11, 20, 3, 50, tzinfo=UTC)) == []  # nothing twice
        again = scheduler.fire("probe-tick", firings[0].scheduled_for)  # a manual re-run of one firing
        assert again.ok
    finally:
        scheduler.close()
    beats = rows(cloud, "SELECT event_id FROM heartbeats WHERE source = 'scheduler' ORDER BY event_id")
    assert [b[0] for b in beats] == [f"probe-tick@2026-11-20T03:{m}:00+00:00" for m in (45, 46, 47)]


def test_the_repository_schedules_reach_their_functions(cloud):
    firing = cloud.scheduler.fire("news-ingest")
    # authenticated, routed and run (offline, the packaged feed's fetch is a recorded error)
    assert firing.status == 200, firing.error


def test_stop_leaves_no_process_or_port_behind(tmp_path):
    config = CloudConfig(state_dir=tmp_path, fresh=True, functions=(PROBE,))
    cloud = LocalCloud(config)
    try:
        cloud.start()
        pids = [cloud.functions["probe"].proc.pid, cloud.gcs.process.proc.pid, cloud._pg.postmaster_pid()]
        ports = [int(cloud.urls["probe"].rsplit(":", 1)[1]), cloud.gcs.port, cloud.pubsub.port]
        assert cloud.canary().ok
    finally:
        cloud.stop()
    time.sleep(0.2)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    listening = {c.laddr.port for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert not set(ports) & listening
    assert not list(tmp_path.glob("pgdata*"))  # fresh=True deletes its throwaway database
    cloud.stop()  # idempotent


def test_an_external_emulator_is_used_when_one_is_given(tmp_path):
    from local.pubsub_emulator import PubSubEmulator

    # Stands in for Google's emulator: it pushes without any Authorization header.
    with PubSubEmulator(push_token=None) as external:
        config = CloudConfig(state_dir=tmp_path, fresh=True, functions=(PROBE,),
                             external_pubsub=external.address)
        with LocalCloud(config) as cloud:
            assert cloud.pubsub is None
            health = cloud.health()
            assert health.ok, health.render()
            assert "external emulator" in next(c.detail for c in health.components if c.name == "pubsub")
        assert external.stats()["acked"] >= 1  # the canary went through the external emulator
