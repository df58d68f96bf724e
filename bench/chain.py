"""Chain benchmarks: a full real NSE payload parsed and analysed (target <= 25 ms), and one
analysed snapshot written to PostgreSQL (target <= 20 ms), on the embedded server.

``python -m bench.chain`` prints a table; :func:`run` returns the rows for ``python -m bench``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT.parent / "shared" / "fixtures" / "nse_option_chain" / "nse_oc_NIFTY_2019-08-23_aadityatamrakar.json"
TRIMMED = ROOT / "tests" / "fixtures" / "chains" / "nse_oc_NIFTY_2019-08-23_aadityatamrakar_trim.json"


def _stats(samples: list[float], **extra: object) -> dict:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples),
            **extra}


def run(runs: int = 5) -> dict[str, dict]:
    from shared.adapters.providers import parse_payload
    from shared.rules import default_calendar, risk_free_rate
    from shared.services.chain_poll import analyse_snapshot

    path = KIT if KIT.exists() else TRIMMED
    body = path.read_bytes()
    calendar = default_calendar()
    done = analyse_snapshot(parse_payload(body), calendar, risk_free_rate)  # warm caches
    samples = []
    for _ in range(max(runs, 20)):
        t0 = time.perf_counter()
        done = analyse_snapshot(parse_payload(body), calendar, risk_free_rate)
        samples.append(time.perf_counter() - t0)
    results = {"chain: parse+analyse full NSE payload": _stats(
        samples, legs=done.snapshot.n_legs, expiries=len(done.analytics.expiries), file=path.name)}
    results["chain: snapshot write to Postgres"] = _write_bench(done, max(runs, 20))
    return results


def _write_bench(done, runs: int) -> dict:
    import logging

    from local.postgres import start_database
    from shared.adapters.db import Database, DirectConnector
    from shared.services.chain_poll import ChainPollService, store_snapshot

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        database, server = start_database(Path(tmp) / "pg", fresh=True)
        db = Database(DirectConnector(database.app))
        try:
            samples = []
            now = datetime.now(UTC)
            for i in range(runs + 1):
                run_id = f"bench@{i}"
                sid = uuid.uuid4()
                asof = done.snapshot.asof + timedelta(minutes=i)
                snap = type(done.snapshot)(**{**{f: getattr(done.snapshot, f)
                                                 for f in done.snapshot.__dataclass_fields__},
                                              "asof": asof})
                item = type(done)(snap, done.analytics, done.rate, done.lot_sizes)
                t0 = time.perf_counter()
                with db.system() as s:
                    s.claim_event("chain_poll", run_id, topic="schedule")
                    ChainPollService._insert_poll(s, run_id, snap.symbol, snap.source, "published",
                                                  now, asof=asof, snapshot_id=sid)
                    store_snapshot(s, sid, run_id, item, "0" * 64, "gs://bench/raw")
                if i:  # the first one warms the connection and the plans
                    samples.append(time.perf_counter() - t0)
        finally:
            db.close()
            if server is not None:
                server.stop()
    return _stats(samples, legs=done.snapshot.n_legs)


if __name__ == "__main__":
    from bench.report import table

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(table(run(runs), runs))
