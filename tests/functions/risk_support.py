"""Shared by the risk_check function tests: a real NIFTY chain stored the way chain_poll
stores it, proposals on its legs, a client with a fixed decision clock, and signal pulls."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, Structure

ROOT = Path(__file__).resolve().parents[2]
NIFTY_2025 = ROOT / "tests" / "fixtures" / "chains" / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json"
IST = ZoneInfo("Asia/Kolkata")
# The stored snapshot's time, later than any snapshot other tests store, so it is the
# newest published NIFTY snapshot; the decision is made 20 s after it, in market hours.
ASOF = datetime(2025, 7, 17, 10, 0, tzinfo=IST)
NOW = ASOF + timedelta(seconds=20)
PREVIOUS_CLOSE = datetime(2025, 7, 16, 15, 29, tzinfo=IST)
EXPIRY = date(2025, 7, 24)


def store_chain(pg, stamp: str, asof: datetime) -> tuple[uuid.UUID, dict]:
    """The replayed chain re-stamped ``stamp`` (NSE's format), analysed and stored like
    chain_poll does, and published: (snapshot id, mids by (expiry, strike, type))."""
    from shared.adapters.db import Database, DirectConnector
    from shared.adapters.providers import parse_payload
    from shared.rules import default_calendar, risk_free_rate
    from shared.services.chain_poll import analyse_snapshot, store_snapshot

    raw = NIFTY_2025.read_text().replace("16-Jul-2025 15:30:00", stamp)
    done = analyse_snapshot(parse_payload(raw.encode(), symbol="NIFTY"), default_calendar(),
                            risk_free_rate)
    assert done.snapshot.asof == asof and not done.analytics.bad
    snapshot_id = uuid.uuid4()
    run_id = f"risk-check-test@{snapshot_id}"
    db = Database(DirectConnector(pg.app))
    with db.system() as s:
        s.execute("INSERT INTO chain_polls (run_id, symbol, source, status, snapshot_id, asof, "
                  "polled_at) VALUES (:r, 'NIFTY', :src, 'published', :i, :a, :a)",
                  r=run_id, src=done.snapshot.source, i=snapshot_id, a=asof)
        store_snapshot(s, snapshot_id, run_id, done, "0" * 64, "gs://test/raw.json.gz")
        s.execute("UPDATE chain_snapshots SET published_at = now() WHERE snapshot_id = :i",
                  i=snapshot_id)
        mids = {(e, float(k), t): (b + a) / 2 for e, k, t, b, a in s.execute(
            "SELECT expiry, strike, option_type, bid, ask FROM chain_legs WHERE snapshot_id = :i "
            "AND bid IS NOT NULL AND ask IS NOT NULL",
            i=snapshot_id).rows}
    db.close()
    return snapshot_id, mids


@pytest.fixture(scope="session")
def snapshot(pg):
    """The newest published NIFTY snapshot (10:00 IST on the decision day)."""
    return store_chain(pg, "17-Jul-2025 10:00:00", ASOF)


@pytest.fixture(scope="session")
def previous_snapshot(pg, snapshot):
    """The previous session's last NIFTY snapshot (15:29 IST the day before), same prices."""
    return store_chain(pg, "16-Jul-2025 15:29:00", PREVIOUS_CLOSE)


def mid(mids, strike: int, option_type: str) -> Decimal:
    value = mids[(EXPIRY, float(strike), option_type)]
    return (Decimal(str(round(value / 0.05))) * Decimal("0.05")).quantize(Decimal("0.05"))


def condor(tenant_id, snapshot, *, short_call=25300, long_call=25400, short_put=25150,
           long_put=25050, lots=1, **over) -> DecisionProposedV1:
    """An iron condor on legs of the stored chain, priced at the chain's mids."""
    snapshot_id, mids = snapshot
    spec = ((short_call, "CE", Side.SELL), (long_call, "CE", Side.BUY),
            (short_put, "PE", Side.SELL), (long_put, "PE", Side.BUY))
    legs = tuple(Leg(expiry=EXPIRY, strike=Decimal(k), option_type=OptionType(t), side=side,
                     lots=lots, price=mid(mids, k, t) if (EXPIRY, float(k), t) in mids else
                     Decimal("10")) for k, t, side in spec)
    credit = float(sum(leg.price if leg.side is Side.SELL else -leg.price for leg in legs)) * 75 * lots
    width = float(max(long_call - short_call, short_put - long_put)) * 75 * lots
    base = dict(proposal_id=uuid.uuid4(), tenant_id=tenant_id, snapshot_id=snapshot_id,
                symbol="NIFTY", structure=Structure.IRON_CONDOR, legs=legs, lot_size=75,
                max_profit=credit, max_loss=width - credit, expected_gross_edge=0.3 * credit,
                win_probability=0.65, regime="range", explanation={"strategy": "test_condor"},
                proposed_at=ASOF)
    base.update(over)
    return DecisionProposedV1(**base)


@pytest.fixture
def risk_check(client_for, monkeypatch, snapshot):
    from shared.runtime import Runtime

    monkeypatch.setattr(Runtime, "now", lambda self: NOW)  # the decision clock
    return client_for("functions/risk_check")


@pytest.fixture
def signals(pubsub):
    """Pull subscriptions on the signal and kill-switch topics risk_check publishes to."""
    from tests.functions.conftest import topic_listener  # conftest imports this module

    with topic_listener(pubsub, ("signal.approved", "signal.blocked", "killswitch.tripped",
                                 "killswitch.reset"), "risk-test") as pull:
        yield pull


def post(client, auth, message=None, **kwargs):
    from tests.functions.conftest import cloudevent  # conftest imports this module

    headers, body = cloudevent(message, published=NOW, **kwargs)
    return client.post("/", headers={**headers, **auth}, data=body), headers["ce-id"]


def tenant_rows(db, tenant_id, sql, **params):
    with db.tenant(tenant_id) as s:
        return s.execute(sql, **params).dicts()
