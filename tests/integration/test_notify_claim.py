"""Two deliveries of one event at the same moment: the ledger's claim lets only one of them
send each delivery (real Postgres, a real webhook receiver)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from shared.contracts import SignalApprovedV1
from shared.runtime import EventContext

pytestmark = pytest.mark.integration


def test_concurrent_deliveries_of_one_event_send_once(app_db, owner_db):
    from shared.adapters.bus import PubSubBus
    from shared.adapters.channels import WebhookChannel
    from shared.services.notify import NotifyService
    from tests.integration.cloud_support import SESSION_SIGNING_KEY, WebhookReceiver

    hook = WebhookReceiver()
    tenant = uuid.uuid4()
    with owner_db.system() as s:
        s.execute("SELECT provision_tenant(:t, 'claim', 'standard', CAST(:s AS jsonb))",
                  t=tenant, s=json.dumps({"notify": {"webhook": {"url": hook.url}}}))

    class SlowWebhook(WebhookChannel):  # the real channel, slowed: both deliveries overlap
        def send(self, *args, **kwargs):
            time.sleep(0.3)
            return super().send(*args, **kwargs)

    service = NotifyService(db=app_db, bus=PubSubBus("qs-claim-test"),
                            channels={"webhook": SlowWebhook(signing_key=SESSION_SIGNING_KEY,
                                                             allow_private=True)},
                            timeout=5.0)
    signal = SignalApprovedV1(verdict_id=uuid.uuid4(), proposal_id=uuid.uuid4(),
                              tenant_id=tenant, dry_run=True, verdicts=(),
                              decided_at=datetime.now(UTC), net_ev=10.0, total_costs=1.0,
                              size_multiplier=1.0)
    outcomes, retried = [], []

    def deliver():
        from shared.errors import TransientError

        ctx = EventContext(event_id="same-event", topic="signal.approved", attributes={},
                           published_at=None, delivery_attempt=None,
                           received_at=datetime.now(UTC))
        try:
            outcomes.append(service(signal, ctx))
        except TransientError as exc:  # another instance is sending it: retried later
            retried.append(exc.reason)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        time.sleep(0.5)
        assert len(hook.mentioning(str(signal.verdict_id))) == 1
        # one delivery sent it; the two others found it in flight and asked for a retry
        assert [o.detail["sent"] for o in outcomes] == [1]
        assert len(retried) == 2 and all("in flight" in r for r in retried)
        # the retry (after the send) finds it sent and sends nothing
        ctx = EventContext(event_id="same-event", topic="signal.approved", attributes={},
                           published_at=None, delivery_attempt=2, received_at=datetime.now(UTC))
        assert service(signal, ctx).detail["sent"] == 0
        assert len(hook.mentioning(str(signal.verdict_id))) == 1
    finally:
        hook.close()
