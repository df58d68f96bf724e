"""``python -m local``: the local cloud from the command line.

    python -m local run      replay one market session end to end and write the report
                             (what `make run` does; --help for --date, --speed, --source)
    python -m local check    start, print health, shut down (exit 1 if unhealthy)
    python -m local up       start and keep running until Ctrl-C; the scheduler fires on the wall clock
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import date
from pathlib import Path

from local.cloud import REPO_ROOT, CloudConfig, LocalCloud


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="The Quantsentinel local cloud: embedded PostgreSQL 16, GCS and Pub/Sub "
                    "emulators, the scheduler, and all functions on 127.0.0.1.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local",
                        help="where the database and logs live (default: .local)")
    common.add_argument("--fresh", action="store_true",
                        help="start from an empty database and delete it on exit")
    common.add_argument("--json", action="store_true", help="print health as JSON")
    common.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub.add_parser("check", parents=[common],
                   help="start the local cloud, print its health, shut it down (exit 1 if unhealthy)")
    run = sub.add_parser(
        "run", help="replay one market session through the local cloud and write the report",
        description="Replay one trading session end to end: the local cloud comes up, two demo "
                    "tenants are seeded, the scheduler fires chain_poll and news_ingest on the "
                    "session clock, and every event flows through decide, risk_check and notify "
                    "(to a local SMTP server and a signed-webhook receiver). A live view shows "
                    "progress; at the end a self-contained HTML report is written and its path "
                    "printed. Ctrl-C stops cleanly and still writes the report so far.")
    run.add_argument("--date", type=date.fromisoformat, default=None,
                     help="session date YYYY-MM-DD (default: 2026-04-08, an RBI policy day)")
    run.add_argument("--symbol", default="NIFTY", choices=("NIFTY", "BANKNIFTY"),
                     help="the index whose chain is polled (default: NIFTY)")
    run.add_argument("--source", default="simulator",
                     help="simulator (seeded, deterministic; default) or replay:DIR of one "
                          "recorded session's NSE/Upstox payloads, one per poll in file-name "
                          "order (no simulated warm-up; pass the session's --date)")
    run.add_argument("--seed", type=int, default=1234, help="the simulator's seed (default 1234)")
    run.add_argument("--speed", type=float, default=None,
                     help="market seconds per wall second (60: a minute a second); default: "
                          "as fast as the pipeline goes")
    run.add_argument("--every", type=int, default=1, metavar="MIN",
                     help="poll every MIN minutes of the session (default 1: 375 snapshots)")
    run.add_argument("--minutes", type=int, default=None,
                     help="stop after this many session minutes (a quick look)")
    run.add_argument("--report", type=Path, default=None,
                     help="where to write the HTML report (default: .local/session/report-DATE.html)")
    run.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local" / "session",
                     help="where this run's database, logs and report live (recreated each run)")
    run.add_argument("--no-live", action="store_true",
                     help="print a line per 25 minutes instead of the live view")
    run.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    run.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    up = sub.add_parser("up", parents=[common],
                        help="start the local cloud and keep it up until Ctrl-C")
    up.add_argument("--no-scheduler", action="store_true",
                    help="do not fire schedules on the wall clock")
    return parser


def _print_health(cloud: LocalCloud, as_json: bool) -> bool:
    health = cloud.health()
    print(json.dumps(health.as_dict(), indent=2) if as_json else health.render(), flush=True)
    return health.ok


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from local.run import run_session

        return run_session(args)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM and SIGHUP shut down as cleanly as Ctrl-C.
    for signum in (signal.SIGTERM, signal.SIGHUP):  # a supervisor, `kill`, a closed terminal
        signal.signal(signum, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    external = os.environ.get("PUBSUB_EMULATOR_HOST")  # an official emulator already running
    config = CloudConfig(state_dir=args.state_dir, fresh=args.fresh, external_pubsub=external,
                         scheduler_clock=args.command == "up" and not args.no_scheduler)
    if external:
        print(f"using the Pub/Sub emulator at {external} (PUBSUB_EMULATOR_HOST)", flush=True)
    print(f"starting the local cloud (state in {config.state_dir}) ...", flush=True)
    try:
        with LocalCloud(config) as cloud:
            healthy = _print_health(cloud, args.json)
            if args.command == "check":
                print("shutting down ...", flush=True)
                return 0 if healthy else 1
            print("\nto use the emulators from another shell (unset them before `make test`):")
            for key in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
                print(f"  export {key}={os.environ[key]}")
            print(f"app role database URL (RLS applies): {cloud.database.app_url}")
            print(f"logs: {config.state_dir / 'logs'}\nCtrl-C to stop.", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
