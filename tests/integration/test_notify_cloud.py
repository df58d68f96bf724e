"""notify through a local cloud of its own (every push delivered three times), with real
local parts: an SMTP server (aiosmtpd), a server speaking the Telegram Bot API's JSON, and
a webhook receiver that verifies the HMAC."""

from __future__ import annotations

import http.server
import json
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from local.cloud import CloudConfig, LocalCloud
from shared.contracts import SignalApprovedV1, SignalBlockedV1, WallVerdict
from tests.integration.conftest import FAST_RETRY
from tests.integration.test_local_cloud import wait_for

pytestmark = pytest.mark.integration

TOKEN = "123456:TEST-token-never-logged"
SIGNING_KEY = "webhook-signing-key-for-the-test-0123456789"
STALLING_CHAT = 555
GROUP_CHAT = -100123


class Telegram(http.server.BaseHTTPRequestHandler):
    """The Bot API's JSON shapes: getChat (private for positive ids, a supergroup for
    negative ones), sendMessage and sendPhoto (recorded); chat 555 stalls."""

    sent: list[tuple[float, int, str]] = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        method = self.path.rsplit("/", 1)[-1]
        ctype = self.headers.get("Content-Type", "")
        chat = None
        if "json" in ctype:
            chat = int(json.loads(raw or b"{}").get("chat_id", 0))
        elif b'name="chat_id"' in raw:
            chat = int(raw.split(b'name="chat_id"')[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n")[0])
        else:
            from urllib.parse import parse_qs
            chat = int(parse_qs(raw.decode()).get("chat_id", ["0"])[0])
        if chat == STALLING_CHAT:
            time.sleep(8)
        if method == "getChat":
            kind = "private" if chat > 0 else "supergroup"
            body = {"ok": True, "result": {"id": chat, "type": kind}}
        else:
            Telegram.sent.append((time.time(), chat, method))
            body = {"ok": True, "result": {"message_id": len(Telegram.sent)}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Hooks(http.server.BaseHTTPRequestHandler):
    received: list[tuple[float, dict, bool]] = []

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        from shared.adapters.channels import verify_webhook

        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = verify_webhook(SIGNING_KEY, raw, self.headers.get("X-QS-Timestamp", ""),
                            self.headers.get("X-QS-Signature", ""), now=time.time())
        if self.path == "/fail":
            self.send_response(500)
            self.end_headers()
            return
        Hooks.received.append((time.time(), json.loads(raw), ok))
        self.send_response(204)
        self.end_headers()


def _serve(handler) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[float, str, bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        for rcpt in envelope.rcpt_tos:
            self.messages.append((time.time(), rcpt, envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[tuple[float, str, bytes]]:
        return [m for m in self.messages if m[1] == address]


@pytest.fixture(scope="module")
def notify_cloud(tmp_path_factory):
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd's start() checks its own port: pick one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    tg, tg_url = _serve(Telegram)
    hooks, hooks_url = _serve(Hooks)
    config = CloudConfig(
        state_dir=tmp_path_factory.mktemp("notify-cloud"), fresh=True, retry=FAST_RETRY,
        duplicate_deliveries=3,
        extra_env={"QS_TELEGRAM_BOT_TOKEN": TOKEN, "QS_TELEGRAM_BASE_URL": tg_url,
                   "QS_SMTP_HOST": "127.0.0.1", "QS_SMTP_PORT": str(port),
                   "QS_SMTP_SECURITY": "none", "QS_EMAIL_SENDER": "alerts@qs.test",
                   "QS_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "QS_WEBHOOK_ALLOW_PRIVATE": "true",
                   "QS_OPERATOR_EMAIL": "ops@qs.test", "QS_NOTIFY_TIMEOUT_S": "2",
                   "QS_NOTIFY_MAX_ATTEMPTS": "3"})
    try:
        with LocalCloud(config) as cloud:
            yield cloud, mailbox, hooks_url
    finally:
        smtp.stop()
        tg.shutdown()
        hooks.shutdown()


def _tenant(cloud, notify: dict) -> uuid.UUID:
    tenant = uuid.uuid4()
    with cloud.owner_db().system() as s:
        s.execute("SELECT provision_tenant(:t, 'notify', 'standard', CAST(:s AS jsonb))",
                  t=tenant, s=json.dumps({"notify": notify}))
    return tenant


def _approved(tenant: uuid.UUID, verdict: uuid.UUID | None = None) -> SignalApprovedV1:
    return SignalApprovedV1(
        verdict_id=verdict or uuid.uuid4(), proposal_id=uuid.uuid4(), tenant_id=tenant,
        dry_run=True, decided_at=datetime.now(UTC), net_ev=1250.0, total_costs=180.0,
        size_multiplier=1.0,
        verdicts=(WallVerdict(wall="cost", blocked=False, reason_code="cost_ok",
                              reason="net EV ₹1,250 after ₹180 of costs"),))


def _ledger(cloud, tenant):
    with cloud.app_db().tenant(tenant) as s:
        return s.execute("SELECT channel, status, attempts, last_error FROM notify_deliveries "
                         "ORDER BY channel").dicts()


def test_a_signal_reaches_every_channel_exactly_once(notify_cloud):
    cloud, mailbox, hooks = notify_cloud
    tenant = _tenant(cloud, {"telegram": {"chat_id": 4242}, "email": {"to": "desk@qs.test"},
                             "webhook": {"url": f"{hooks}/desk"}})
    signal = _approved(tenant)
    cloud.publish(signal)
    wait_for(lambda: len(mailbox.to("desk@qs.test")) == 1 and any(
        c == 4242 for _, c, _ in Telegram.sent) and any(
        h["data"].get("verdict_id") == str(signal.verdict_id) or
        str(signal.verdict_id) in json.dumps(h) for _, h, _ in Hooks.received), timeout=30)
    time.sleep(2.0)  # the two redeliveries have come and gone
    assert len(mailbox.to("desk@qs.test")) == 1
    assert len([1 for _, c, m in Telegram.sent if c == 4242 and m == "sendMessage"]) == 1
    mine = [(h, ok) for _, h, ok in Hooks.received if str(signal.verdict_id) in json.dumps(h)]
    assert len(mine) == 1 and mine[0][1] is True  # the HMAC verifies
    assert b"paper" in mailbox.to("desk@qs.test")[0][2].lower()
    assert TOKEN not in json.dumps(_ledger(cloud, tenant))
    assert [(r["channel"], r["status"]) for r in _ledger(cloud, tenant)] == [
        ("email", "sent"), ("telegram", "sent"), ("webhook", "sent")]


def test_a_stalled_telegram_does_not_delay_email(notify_cloud):
    cloud, mailbox, _ = notify_cloud
    tenant = _tenant(cloud, {"telegram": {"chat_id": STALLING_CHAT},
                             "email": {"to": "stall@qs.test"}})
    t0 = time.time()
    cloud.publish(_approved(tenant))
    wait_for(lambda: mailbox.to("stall@qs.test"), timeout=20)
    first_mail = mailbox.to("stall@qs.test")[0][0]
    assert first_mail - t0 < 2.0 + 1.5  # within the channel timeout, not the 8 s stall


def test_a_group_chat_is_refused_and_the_operator_is_told(notify_cloud):
    cloud, mailbox, _ = notify_cloud
    tenant = _tenant(cloud, {"telegram": {"chat_id": GROUP_CHAT}})
    cloud.publish(_approved(tenant))
    rows = wait_for(lambda: [r for r in _ledger(cloud, tenant) if r["status"] == "dead"],
                    timeout=30)
    assert "group" in rows[0]["last_error"] and rows[0]["attempts"] == 1
    assert not [1 for _, c, m in Telegram.sent if c == GROUP_CHAT and m != "getChat"]
    wait_for(lambda: mailbox.to("ops@qs.test"), timeout=30)  # notify.dead → the operator


def test_dead_deliveries_surface_to_the_operator(notify_cloud):
    cloud, mailbox, hooks = notify_cloud
    tenant = _tenant(cloud, {"webhook": {"url": f"{hooks}/fail"}})
    before = len(mailbox.to("ops@qs.test"))
    cloud.publish(_approved(tenant))
    rows = wait_for(lambda: [r for r in _ledger(cloud, tenant) if r["status"] == "dead"],
                    timeout=60)
    assert rows[0]["attempts"] == 3 and "500" in rows[0]["last_error"]
    wait_for(lambda: len(mailbox.to("ops@qs.test")) > before, timeout=30)


def test_cross_tenant_delivery_hard_errors(notify_cloud):
    from pg8000.exceptions import DatabaseError

    from shared.adapters.db import sqlstate

    cloud, mailbox, _ = notify_cloud
    a = _tenant(cloud, {"email": {"to": "a@qs.test"}})
    b = _tenant(cloud, {"email": {"to": "b@qs.test"}})
    verdict = uuid.uuid4()
    cloud.publish(_approved(a, verdict))
    wait_for(lambda: mailbox.to("a@qs.test"), timeout=30)
    # the database: the same signal recorded for tenant b is refused by the trigger
    with pytest.raises(DatabaseError) as err, cloud.app_db().tenant(b) as s:
        s.execute("INSERT INTO notify_deliveries (delivery_id, dedup_key, event_id, kind, "
                  "subject, tenant_id, channel, target, status, created_at, updated_at) "
                  "VALUES (:i, :k, 'x', 'signal.approved', :v, :t, 'email', 'b', 'pending', "
                  "now(), now())", i=uuid.uuid4(), k=f"signal.approved:{verdict}",
                  v=str(verdict), t=b)
    assert sqlstate(err.value) == "23000"
    # the function: the same signal for tenant b is rejected, and b is sent nothing
    event_id = cloud.publish(_approved(b, verdict))

    def rejected():
        with cloud.owner_db().system() as s:
            return s.execute("SELECT reason_code FROM rejections WHERE consumer = 'notify' "
                             "AND event_id = :e", e=event_id).rows

    assert wait_for(rejected, timeout=30)[0][0] == "cross_tenant"
    time.sleep(1.0)
    assert mailbox.to("b@qs.test") == []


def test_blocked_signals_name_the_wall_and_latency_is_measured(notify_cloud, capsys):
    cloud, mailbox, _ = notify_cloud
    tenant = _tenant(cloud, {"email": {"to": "lat@qs.test"},
                             "routes": {"signal.blocked": ["email"]}, "max_per_hour": 1000})
    blocked = SignalBlockedV1(
        verdict_id=uuid.uuid4(), proposal_id=uuid.uuid4(), tenant_id=tenant, dry_run=True,
        decided_at=datetime.now(UTC), blocked_by="cost", reason_code="cost_ratio",
        reason="cost ratio 0.52 > 0.40",
        verdicts=(WallVerdict(wall="cost", blocked=True, reason_code="cost_ratio",
                              reason="cost ratio 0.52 > 0.40"),))
    cloud.publish(blocked)
    wait_for(lambda: mailbox.to("lat@qs.test"), timeout=30)
    assert b"cost ratio 0.52" in mailbox.to("lat@qs.test")[0][2]
    latencies = []
    for _ in range(20):
        n = len(mailbox.to("lat@qs.test"))
        t0 = time.time()
        cloud.publish(_approved(tenant))
        wait_for(lambda n=n: len(mailbox.to("lat@qs.test")) > n, timeout=30, every=0.005)
        latencies.append(mailbox.to("lat@qs.test")[-1][0] - t0)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[-1]
    with capsys.disabled():
        print(f"\nnotify: publish -> SMTP receipt over {len(latencies)} signals: "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    assert p99 < 10.0


def test_an_event_for_an_unknown_tenant_is_recorded_and_sends_nothing(notify_cloud):
    cloud, mailbox, _ = notify_cloud
    before = len(mailbox.messages)
    event_id = cloud.publish(_approved(uuid.uuid4()))

    def rejected():
        with cloud.owner_db().system() as s:
            return s.execute("SELECT reason_code FROM rejections WHERE consumer = 'notify' "
                             "AND event_id = :e", e=event_id).rows

    assert wait_for(rejected, timeout=30)[0][0] == "unknown_tenant"
    assert len(mailbox.messages) == before


def test_the_daily_digest_summarises_the_day_once(notify_cloud):
    """The scheduled digest: a tenant with a blocked and an approved verdict today gets one
    email (fired twice: still one); a tenant with a quiet day gets none."""
    from datetime import timedelta

    from local.scheduler import LocalScheduler
    from shared.schedules import load_schedules
    from tests.integration.test_local_cloud import REPO_SCHEDULES

    cloud, mailbox, _ = notify_cloud
    busy = _tenant(cloud, {"email": {"to": "digest@qs.test"}})
    _tenant(cloud, {"email": {"to": "quiet@qs.test"}})  # a quiet day: no digest
    now = datetime.now(UTC)
    with cloud.app_db().tenant(busy) as s:
        for approved, wall in ((True, None), (False, "cost")):
            s.execute(
                "INSERT INTO risk_verdicts (verdict_id, tenant_id, proposal_id, event_id, "
                "symbol, structure, approved, blocked_by, reason_code, reason, "
                "size_multiplier, net_ev, dry_run, verdicts, decided_at, published_at) VALUES "
                "(:v, :t, :p, 'e', 'NIFTY', 'iron_condor', :ok, :wall, 'x', 'x', 1, 900, "
                "true, '[]'::jsonb, :at, :at)", v=uuid.uuid4(), t=busy, p=uuid.uuid4(),
                ok=approved, wall=wall, at=now)
    jobs = [j for j in load_schedules(REPO_SCHEDULES) if j.name == "notify-digest"]
    for _ in range(2):  # a retry of the same firing, and the firing again
        scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer,
                                   start=now - timedelta(days=1))
        try:
            firings = scheduler.fire("notify-digest")
        finally:
            scheduler.close()
        assert firings.status == 200, firings.error
    wait_for(lambda: mailbox.to("digest@qs.test"), timeout=20)
    time.sleep(1.0)
    (mail,) = mailbox.to("digest@qs.test")
    assert b"1 approved, 1 blocked" in mail[2] and b"cost 1" in mail[2]
    assert mailbox.to("quiet@qs.test") == []
