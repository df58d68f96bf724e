"""``qs replay`` benchmark (``python -m bench.replay [runs]``), issue #10.

**One full session in process**: :func:`shared.replay.runner.run_replay` on the default
simulated NIFTY session (2026-04-08, seed 1234: 375 one-minute snapshots, 4 expiries) for
the two demo tenants; every snapshot simulated as an NSE payload, parsed, analysed as
chain_poll analyses it, decided (market stage and both tenants), every proposal through
the castle with the Indian cost engine, the paper book marked. Target: <= 5 s. Timed from
the call to its return (imports and the first, unmeasured session excluded: a warm
interpreter), median of ``runs``; the rows give the breakdown by stage in CPU seconds
(``simulate``, ``analyse``, ``decide``, ``risk``, ``book``; see
:data:`shared.replay.runner.STAGES`), the process's CPU time and its children's (the
worker), and the 1-minute load average (the dev VM is shared: a busy machine stretches
the wall time, not the CPU times).

Rows: the default (the vol models of ``make run``, fitted once per process, and a
25-session simulated warm-up; one forked worker simulates and analyses ahead while the
replay decides), the same in line (``workers=0``), and without models (``--models none``:
no forecast, every proposal blocked by the cost wall).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

CASES: tuple[tuple[str, dict[str, Any], int | None], ...] = (
    ("replay: 1 session x 375 snapshots x 2 tenants", {}, None),
    ("replay: the same, in line (no worker)", {}, 0),
    ("replay: the same, --models none", {"models": "none"}, None),
)
TARGET_S = 5.0


def _one(config: Any, workers: int | None) -> tuple[float, dict[str, float], dict[str, Any]]:
    from shared.replay.result import summarise
    from shared.replay.runner import run_replay

    before = os.times()
    t0 = time.perf_counter()
    st = run_replay(config, workers=workers)
    wall = time.perf_counter() - t0
    after = os.times()
    r = summarise(st)
    cpu = {"process_cpu_s": (after.user + after.system) - (before.user + before.system),
           "children_cpu_s": (after.children_user + after.children_system)
           - (before.children_user + before.children_system)}
    info = {"snapshots": r.counters.get("snapshots", 0),
            "proposals": r.counters.get("proposals", 0), "trades": r.counters.get("trades", 0)}
    return wall, {**{k: float(v) for k, v in r.timings.items()}, **cpu}, info


def run(runs: int = 3) -> dict[str, dict[str, Any]]:
    from dataclasses import replace

    from shared.replay.config import ReplayConfig
    from shared.replay.runner import _workers

    base = ReplayConfig()
    _one(base, None)  # warm: imports, the calendar, the cost schedule, numpy's first calls
    results: dict[str, dict[str, Any]] = {}
    for name, change, workers in CASES:
        config = replace(base, **change)
        walls, parts, info = [], [], {}
        for _ in range(runs):
            wall, part, info = _one(config, workers)
            walls.append(wall)
            parts.append(part)
        med = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
        results[name] = {
            "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "target_s": TARGET_S, "workers": _workers(workers),
            **{f"{k}_s" if not k.endswith("_s") else k: round(v, 3) for k, v in med.items()},
            **info, "loadavg_1m": round(os.getloadavg()[0], 2)}
    return results


if __name__ == "__main__":
    from bench.report import table

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(table(run(n), n))
