"""A replayed simulated market through the real functions: chain_poll (simulator source,
fired on session clocks) stores 24 earlier sessions (three snapshots each) and a session of today, retrain
promotes the production HAR models from the real NIFTY history, and decide handles every
``chain.snapshot`` as a CloudEvent. The proposals' explanations must reference the real
inputs: the stored snapshot and analytics, the stored spot history, the production model's
version and its forecast, the IV history; the learning state must have scored the runs a
day old."""

from __future__ import annotations

import contextlib
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from shared.contracts import ChainSnapshotV1
from tests.functions.conftest import cloudevent
from tests.functions.test_chain_poll import fire
from tests.functions.test_decide import GENEROUS, provision

pytestmark = pytest.mark.integration

IST = ZoneInfo("Asia/Kolkata")
TODAY = date(2026, 10, 29)  # a Thursday; the 24 sessions before it are replayed first
# BANKNIFTY: the risk_check tests in this session rely on their NIFTY snapshot being the
# newest NIFTY one
SYMBOL = "BANKNIFTY"
HISTORY_SESSIONS = 24


def _sessions() -> tuple[list[date], list[datetime]]:
    from shared.rules import default_calendar

    cal = default_calendar()
    days = [TODAY]
    while len(days) <= HISTORY_SESSIONS:
        days.insert(0, cal.previous_trading_day(days[0]))
    # three snapshots a session: a day's bar needs a range (one spot a day has none, and
    # the HAR model's log realised variance would be undefined)
    history = [datetime.combine(d, t, IST) for d in days[:-1]
               for t in (time(10, 0), time(12, 30), time(15, 0))]
    today = [datetime.combine(TODAY, time(9, 30), IST) + timedelta(minutes=30 * i)
             for i in range(12)]  # 09:30 .. 15:00 IST
    return days, history + today


@pytest.fixture
def replayed(client_for, auth, gcs, pubsub, monkeypatch, app_db, owner_db, tmp_path):
    """Every snapshot stored by chain_poll and decided by decide, for two tenants."""
    import shutil

    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    from tests.conftest import KIT_FIXTURES
    from tests.functions.conftest import PROJECT

    daily = KIT_FIXTURES / "index_history" / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv"
    if not daily.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    publisher = pubsub_v1.PublisherClient()
    for topic in ("chain.snapshot", "decision.proposed", "model.promoted", "model.rejected",
                  "retrain.failed"):
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=f"projects/{PROJECT}/topics/{topic}")
    bucket = f"qs-models-{uuid.uuid4().hex[:8]}"
    gcs[1].create_bucket(bucket)
    (tmp_path / "daily").mkdir()
    shutil.copy(daily, tmp_path / "daily" / "NIFTY.csv")
    monkeypatch.setenv("QS_MODELS_BUCKET", bucket)
    monkeypatch.setenv("QS_HISTORY_URI", f"file:{tmp_path}")
    monkeypatch.setenv("QS_CHAIN_SOURCE", "simulator")
    trained = client_for("functions/retrain").post(
        "/run", headers={**auth, "X-CloudScheduler-JobName": "retrain-nightly"},
        json={"scope": "global", "models": ["vol_har_5d", "vol_har_22d"]})
    assert trained.status_code == 200, trained.json
    with app_db.system() as s:
        har = dict(s.execute("SELECT model_type, version FROM model_pointers WHERE model_type "
                             "LIKE 'vol_har_%' AND tenant_id IS NULL").rows)
    assert {"vol_har_5d", "vol_har_22d"} <= set(har), trained.json

    rich, plain = provision(owner_db, GENEROUS), provision(owner_db)
    poll, decide = client_for("functions/chain_poll"), client_for("functions/decide")
    days, stamps = _sessions()
    snapshots = []
    for at in stamps:
        response = fire(poll, auth, at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                        job="chain-poll-banknifty", symbol=SYMBOL)
        assert response.json["status"] in ("done", "duplicate"), response.json
        with app_db.system() as s:
            row = s.execute(
                "SELECT snapshot_id, symbol, asof, spot, source, expiries, legs, raw_blob FROM "
                "chain_snapshots WHERE symbol = :s AND asof = :a AND published_at IS NOT "
                "NULL", s=SYMBOL, a=at).dicts()
        assert row, f"no snapshot stored for {at}"
        snap = ChainSnapshotV1(**{**row[0], "expiries": tuple(row[0]["expiries"])})
        headers, body = cloudevent(snap)
        decided = decide.post("/", headers={**headers, **auth}, data=body)
        assert decided.status_code == 200 and decided.json["status"] == "done", decided.json
        snapshots.append(snap)
    return {"rich": rich, "plain": plain, "snapshots": snapshots, "har": har,
            "days": days}


def _rows(db, tenant, sql, **params):
    with db.tenant(tenant) as s:
        return s.execute(sql, **params).dicts()


def test_a_replayed_session_is_decided_from_real_inputs(replayed, app_db):
    snaps = replayed["snapshots"]
    rich = replayed["rich"]
    decisions = _rows(app_db, rich, "SELECT d.snapshot_id, d.outcome, d.structure, d.lots, "
                      "d.explanation, d.proposal, d.reason FROM decisions d ORDER BY decided_at")
    assert [d["snapshot_id"] for d in decisions] == [s.snapshot_id for s in snaps]
    assert all(len(_rows(app_db, replayed["plain"], "SELECT 1 FROM decisions WHERE "
                                                    "snapshot_id = :i", i=s.snapshot_id)) == 1
               for s in snaps[-3:])
    today = [d for d in decisions if d["snapshot_id"] in {s.snapshot_id for s in snaps[-12:]}]
    proposed = [d for d in today if d["outcome"] == "proposed"]
    assert proposed, [d["reason"] for d in today]

    with app_db.system() as s:
        for d in today:
            x = d["explanation"]
            sid = d["snapshot_id"]
            snap = s.execute("SELECT spot, asof FROM chain_snapshots WHERE snapshot_id = :i",
                             i=sid).dicts()[0]
            assert x["snapshot"]["spot"] == pytest.approx(snap["spot"])
            # the expiry and its ATM IV are the stored analytics' (decide re-analysed the
            # stored legs and found the same numbers)
            stored_iv = s.execute("SELECT atm_iv FROM chain_expiry_analytics WHERE "
                                  "snapshot_id = :i AND expiry = :e", i=sid,
                                  e=date.fromisoformat(x["expiry"]["expiry"])).scalar()
            assert x["expiry"]["atm_iv"] == pytest.approx(stored_iv, rel=1e-12)
            # the production HAR model of the horizon nearest the option's (monthly
            # BANKNIFTY: 22 days), fed by 24 earlier sessions + today
            (name,) = x["models"]
            assert name.startswith("vol_har_"), x["excluded"]
            assert x["model_versions"] == {name: replayed["har"][name]}
            # the regime's realised vol is that of the stored daily closes
            closes = [r[0] for r in s.execute(
                "SELECT (array_agg(spot ORDER BY asof DESC))[1], min(asof) AS first FROM "
                "chain_snapshots WHERE symbol = :s AND published_at IS NOT NULL "
                "AND NOT bad_chain AND asof <= :a "
                "GROUP BY (asof AT TIME ZONE 'Asia/Kolkata')::date ORDER BY first",
                s=SYMBOL, a=snap["asof"]).rows]
            r = np.diff(np.log(closes))[-22:]
            assert x["regime"]["inputs"]["rv"] == pytest.approx(
                float(np.std(r, ddof=1)) * math.sqrt(252), rel=1e-9)
            assert "rv" not in x["regime"]["assumed"]
            # the signals list their inputs; the vol forecast reading compares the stored
            # ATM IV with the model's forecast
            by_name = {sig["name"]: sig for sig in x["signals"]}
            vol = by_name.get("vol_forecast")
            if vol is not None:
                assert vol["inputs"]["atm_iv"] == pytest.approx(stored_iv, rel=1e-12)
                assert 0.01 < vol["inputs"]["vol_forecast"] < 2.0
            excluded = {e["name"]: e["reason"] for e in x["excluded"]}
            assert excluded["news_event"] == "news_ingest not present"  # flagged, not silent
            assert "no production direction_lgbm_5d" in excluded["direction_model"]
    for d in proposed:
        legs = d["proposal"]["legs"]
        with app_db.system() as s:
            for leg in legs:
                q = s.execute("SELECT bid, ask FROM chain_legs WHERE snapshot_id = :i AND "
                              "expiry = :e AND strike = :k AND option_type = :t",
                              i=d["snapshot_id"], e=date.fromisoformat(leg["expiry"]),
                              k=float(leg["strike"]), t=leg["option_type"]).rows
                assert q and q[0][0] > 0 and q[0][1] > 0, leg
        assert all(leg["lots"] % d["lots"] == 0 for leg in legs)
    # one replay (about 30 s) serves these checks too
    _runs_a_day_old_are_scored_into_the_learning_state(replayed, app_db)
    _served_forecasts_are_recorded_for_the_live_ic(replayed, app_db)


def _runs_a_day_old_are_scored_into_the_learning_state(replayed, app_db):
    from shared.domain.decide.learning import SignalState

    snaps = replayed["snapshots"]
    with app_db.system() as s:
        runs = s.execute("SELECT snapshot_id, asof, scored_at, readings FROM decide_market_runs "
                         "WHERE snapshot_id = ANY(CAST(:ids AS uuid[])) ORDER BY asof",
                         ids="{" + ",".join(str(x.snapshot_id) for x in snaps) + "}").dicts()
        state = SignalState.from_json(s.execute(
            "SELECT state FROM decide_signal_state WHERE symbol = :s", s=SYMBOL).scalar())
    assert len(runs) == len(snaps)
    last = runs[-1]["asof"]
    for run in runs[:-1]:
        old_enough = run["asof"] <= last - timedelta(days=1)
        if old_enough:
            assert run["scored_at"] is not None
    assert runs[-1]["scored_at"] is None
    # scoring moved the weights off the prior for the signals that read something
    assert state.weights.posteriors
    assert all(a + b > 4.0 for a, b in state.weights.posteriors.values())


def _served_forecasts_are_recorded_for_the_live_ic(replayed, app_db):
    """What each model forecast is kept with the market run, and retrain's health check
    reads it back per underlying (too few sessions yet to judge decay: said so)."""
    from shared.adapters.decide_state import served_forecasts
    from shared.services.retrain import live_ic_of

    last = replayed["snapshots"][-1]
    with app_db.system() as s:
        summary = s.execute("SELECT summary FROM decide_market_runs WHERE snapshot_id = :i",
                            i=last.snapshot_id).scalar()
    ((name, served),) = summary["forecasts"].items()
    assert served["version"] == replayed["har"][name] and 0.01 < served["value"] < 2.0
    with app_db.system() as s:
        days, values = served_forecasts(s, name, served["version"])[SYMBOL]
    assert days[-1] == TODAY and values[-1] == pytest.approx(served["value"])
    verdict, record = live_ic_of(app_db, name, served["version"],
                                 datetime.combine(TODAY, time(15, 30), IST))
    assert verdict is None  # no decay verdict on one session of forecasts
    assert record[SYMBOL]["pairs"] == 0 and "needs" in record[SYMBOL]["reason"]
