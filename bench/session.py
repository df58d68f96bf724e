"""The main job's benchmark (``python -m bench.session``), issue #10.

One full simulated NIFTY session (375 one-minute snapshots, every listed expiry analysed,
two demo tenants) through the local cloud at max speed: real functions on
functions-framework, embedded Postgres, the Pub/Sub and GCS emulators, notify delivering to
a local SMTP server and a signed-webhook receiver. This is ``make run`` without the live
view. Targets: the session in <= 120 s; snapshot stored → notification received p50 <= 300
ms and p99 <= 1 s (the webhook receiver's arrival time against the snapshot row's
``created_at``: the same machine clock).

The warm-up (23 earlier sessions stored so decide's HAR forecast has its bars), the model
training and the cloud's start are timed separately and not counted in the session. Every
function is warmed first (``GET /warmup``: imports and services built, as a startup probe
or min instances would): without it, the first signal pays two cold starts, about 1.2 s in
risk_check and 1.2 s in notify (matplotlib), which alone would be this short sample's p99.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def run(runs: int = 1) -> dict[str, dict[str, float]]:
    from local.session import SessionOptions, SessionRun
    from local.session_report import percentile_ms

    with tempfile.TemporaryDirectory() as tmp:
        options = SessionOptions(state_dir=Path(tmp) / "session", live=False)
        t0 = time.perf_counter()
        with SessionRun(options) as run:
            started = time.perf_counter() - t0
            run.train_models()
            t1 = time.perf_counter()
            run.warm_up()
            warm = time.perf_counter() - t1
            run.seed_tenants()
            run.warm()
            run.play()
            tally = run.poll()
            e2e = run.end_to_end_ms()
            play = run.play_s
    p50, p99 = percentile_ms(e2e, 50) / 1e3, percentile_ms(e2e, 99) / 1e3
    ok = play <= 120 and p50 <= 0.300 and p99 <= 1.0
    return {
        "session: 375 snapshots x 2 tenants through the local cloud": {
            "median_s": play, "min_s": play, "max_s": play, "snapshots": float(tally.snapshots),
            "proposals": float(tally.proposals), "approved": float(tally.approved),
            "blocked": float(sum(tally.blocked.values())), "webhooks": float(tally.webhooks),
            "emails": float(tally.emails), "target_s": 120.0, "meets_target": float(ok)},
        "session:   snapshot stored → notification received": {
            "median_s": p50, "min_s": min(e2e) / 1e3, "max_s": max(e2e) / 1e3, "p99_s": p99,
            "n": float(len(e2e)), "target_p50_s": 0.3, "target_p99_s": 1.0},
        "session:   (not counted) cloud start, warm-up of 23 sessions": {
            "median_s": started + warm, "min_s": started, "max_s": warm},
    }


if __name__ == "__main__":
    from bench.report import table

    print(table(run(), 1))
    sys.exit(0)
