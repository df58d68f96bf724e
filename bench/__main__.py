"""``python -m bench``: run the benchmarks and print a table (and JSON with ``--json``).

Benchmarks:

* implied vol for 1,000 options vs a QuantLib loop and py_vollib; greeks for 10,000
  options (``bench/options.py``);
* a full real NSE payload parsed and analysed; one snapshot written to Postgres
  (``bench/chain.py``);
* kill switches plus the seven walls per proposal, p99 over 10,000 (``bench/risk.py``);
* the full retrain of the global models, the cold load of a production model from the
  registry, and one direction prediction (``bench/retrain.py``);
* decide: the per-tenant part (layers 3-4 and the explanation, p50 and p99 over 2,000
  tenants), one snapshot for 1,000 tenants end to end (Postgres and the Pub/Sub emulator)
  with its market / tenant / publish split, and the cold import of its entry point
  (``bench/decide.py``);
* news: parse (feedparser), dedup and classify 1,000 items of the kit's real feed
  (``bench/news.py``);
* replay: one full simulated session in process, as ``qs replay`` runs it
  (``bench/replay.py``);
* session: the same session through the local cloud at max speed, as ``make run`` plays
  it, with the snapshot-to-notification latency (``bench/session.py``);
* cold import time of each function's entry module (fresh interpreter, median of N), the
  number that dominates a Cloud Function's cold start;
* local cloud start time (Postgres, emulators, seven functions, topology), median of N.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_SNIPPET = """
import time, runpy, sys
t0 = time.perf_counter()
runpy.run_path({path!r}, run_name="bench_entry")
print(time.perf_counter() - t0)
"""


def import_time(source: str, runs: int) -> list[float]:
    path = str(ROOT / source / "main.py")
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "frozen_modules=on", "-c", IMPORT_SNIPPET.format(path=path)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return samples


def cloud_start(runs: int) -> list[float]:
    from local.cloud import CloudConfig, LocalCloud

    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            cloud = LocalCloud(CloudConfig(state_dir=Path(tmp), fresh=True))
            t0 = time.perf_counter()
            cloud.start()
            samples.append(time.perf_counter() - t0)
            ok = cloud.health().ok
            cloud.stop()
            if not ok:
                raise SystemExit("local cloud came up unhealthy")
    return samples


def main(argv: list[str] | None = None) -> int:
    from shared.topology import FUNCTIONS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="samples per measurement (default 5)")
    parser.add_argument("--skip-cloud", action="store_true", help="skip the local cloud start benchmark")
    parser.add_argument("--skip-session", action="store_true",
                        help="skip the full session through the local cloud (about 2 min)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    results: dict[str, dict[str, float]] = {}
    for spec in FUNCTIONS:
        print(f"import {spec.name} ...", file=sys.stderr, flush=True)
        s = import_time(spec.source, args.runs)
        results[f"import functions/{spec.name}/main.py"] = {
            "median_s": statistics.median(s), "min_s": min(s), "max_s": max(s)}
    print("options: IV and greeks vs QuantLib and py_vollib ...", file=sys.stderr, flush=True)
    from bench import options

    results.update(options.run(args.runs))
    print("chain: parse+analyse a full payload, write a snapshot ...", file=sys.stderr, flush=True)
    from bench import chain

    results.update(chain.run(args.runs))
    print("risk: kill switches + seven walls over 10,000 proposals ...", file=sys.stderr, flush=True)
    from bench import risk

    results.update(risk.run(args.runs))
    print("retrain: all global models, cold model load, one prediction ...", file=sys.stderr,
          flush=True)
    from bench import retrain

    results.update(retrain.run(min(args.runs, 3)))
    print("decide: per tenant, 1 snapshot x 1,000 tenants, cold import ...", file=sys.stderr,
          flush=True)
    from bench import decide

    results.update(decide.run(min(args.runs, 3)))
    print("news: parse + dedup + classify 1,000 items ...", file=sys.stderr, flush=True)
    from bench import news

    results.update(news.run(args.runs))
    print("replay: one session in process (qs replay) ...", file=sys.stderr, flush=True)
    from bench import replay

    results.update(replay.run(min(args.runs, 3)))
    if not args.skip_session:
        print("session: make run's full session through the local cloud (about 2 min) ...",
              file=sys.stderr, flush=True)
        from bench import session

        results.update(session.run())
    if not args.skip_cloud:
        print("local cloud start ...", file=sys.stderr, flush=True)
        s = cloud_start(args.runs)
        results["local cloud start"] = {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s)}

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        from bench.report import table

        print(table(results, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
