"""Helpers shared by the local-cloud tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from local.scheduler import LocalScheduler
from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, Structure
from shared.schedules import load_schedules
from tests.integration.test_local_cloud import REPO_SCHEDULES


def poll_chain_at(cloud, at: datetime, job: str = "chain-poll-nifty") -> uuid.UUID:
    """Fire chain_poll's job once through the scheduler at ``at`` (UTC, on a minute of the
    session) and return the snapshot it stored and published."""
    jobs = [j for j in load_schedules(REPO_SCHEDULES) if j.name == job]
    scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer, start=at - timedelta(seconds=30))
    try:
        firings = scheduler.tick(at)
        assert [f.status for f in firings] == [200], [f.error for f in firings]
    finally:
        scheduler.close()
    with cloud.app_db().system() as s:
        snapshot_id = s.execute(
            "SELECT snapshot_id FROM chain_polls WHERE run_id = :r AND status = 'published'",
            r=f"{job}@{at.isoformat()}").scalar()
    assert snapshot_id is not None
    return snapshot_id


def tick(price: float) -> Decimal:
    return (Decimal(str(round(price / 0.05))) * Decimal("0.05")).quantize(Decimal("0.05"))


def condor_on(cloud, tenant_id: uuid.UUID, snapshot_id: uuid.UUID, *, lots: int = 1,
              proposed_at: datetime | None = None) -> DecisionProposedV1:
    """An iron condor around the money on the snapshot's nearest analysed expiry, at mids."""
    from shared.rules import default_calendar

    with cloud.app_db().system() as s:
        spot = s.execute("SELECT spot FROM chain_snapshots WHERE snapshot_id = :i",
                         i=snapshot_id).scalar()
        expiry = s.execute("SELECT min(expiry) FROM chain_expiry_analytics WHERE snapshot_id = :i "
                           "AND t > 0.004", i=snapshot_id).scalar()
        quotes = {(float(k), t.strip()): (b + a) / 2 for k, t, b, a in s.execute(
            "SELECT strike, option_type, bid, ask FROM chain_legs WHERE snapshot_id = :i AND "
            "expiry = :e AND bid > 0 AND ask > 0", i=snapshot_id, e=expiry).rows}
    strikes = sorted({k for k, _ in quotes})
    atm = min(strikes, key=lambda k: abs(k - spot))
    step = strikes[1] - strikes[0]
    spec = ((atm + 2 * step, "CE", Side.SELL), (atm + 4 * step, "CE", Side.BUY),
            (atm - 2 * step, "PE", Side.SELL), (atm - 4 * step, "PE", Side.BUY))
    lot = default_calendar().lot_size("NIFTY", expiry).value
    legs = tuple(Leg(expiry=expiry, strike=Decimal(str(k)), option_type=OptionType(t), side=side,
                     lots=lots, price=tick(quotes[(k, t)])) for k, t, side in spec)
    credit = float(sum(g.price if g.side is Side.SELL else -g.price for g in legs)) * lot
    return DecisionProposedV1(
        proposal_id=uuid.uuid4(), tenant_id=tenant_id, snapshot_id=snapshot_id, symbol="NIFTY",
        structure=Structure.IRON_CONDOR, legs=legs, lot_size=lot, max_profit=max(credit, 0.0),
        max_loss=2 * step * lot - credit, expected_gross_edge=0.3 * abs(credit),
        win_probability=0.6, regime="range",
        proposed_at=proposed_at or datetime.now(UTC))


class WebhookReceiver:
    """A local webhook endpoint (notify's webhook channel posts to it): records the JSON
    bodies whose HMAC verifies with ``SESSION_SIGNING_KEY``."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading
        import time

        from shared.adapters.channels import verify_webhook

        received: list[dict] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if verify_webhook(SESSION_SIGNING_KEY, raw,
                                  self.headers.get("X-QS-Timestamp", ""),
                                  self.headers.get("X-QS-Signature", ""), now=time.time()):
                    received.append(json.loads(raw))
                self.send_response(204)
                self.end_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def mentioning(self, text: str) -> list[dict]:
        import json

        return [r for r in self.received if text in json.dumps(r)]

    def close(self) -> None:
        self._server.shutdown()


SESSION_SIGNING_KEY = "session-cloud-webhook-key-0123456789abcdef"
"""The webhook signing key the session's local cloud runs notify with (conftest)."""
