"""``make run``'s command: replay a session (:mod:`local.session`), show it live, write the
report (:mod:`local.session_report`, :mod:`shared.report.html`) and print its path."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local.session import (
    DEFAULT_DATE,
    DEMO_TENANTS,
    IST,
    WARMUP_SESSIONS,
    SessionOptions,
    SessionRun,
    render_tally,
)

logger = logging.getLogger(__name__)


def options_from_args(args: argparse.Namespace) -> SessionOptions:
    return SessionOptions(
        symbol=args.symbol, session_date=args.date or DEFAULT_DATE, source=args.source,
        seed=args.seed, speed=args.speed, every_minutes=max(1, args.every),
        state_dir=args.state_dir, report_path=args.report,
        live=not args.no_live and sys.stdout.isatty(), max_minutes=args.minutes)


def run_session(args: argparse.Namespace) -> int:
    from shared.logs import configure_logging

    configure_logging("make-run", level="DEBUG" if args.verbose else "WARNING")
    options = options_from_args(args)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # a supervisor, `kill`, a closed terminal
        signal.signal(signum, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    t0 = time.monotonic()
    print(f"make run: replaying the {options.symbol} session of "
          f"{options.session_date.isoformat()} ({options.source}, seed {options.seed}) through "
          "the local cloud", flush=True)
    try:
        from local.session import session_minutes

        minutes = session_minutes(options)
    except ValueError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    interrupted = False
    poll_ms: list[float] = []
    try:
        with SessionRun(options) as run:
            print(f"  local cloud up in {run.cloud.started_in_s:.1f} s (state in "
                  f"{options.state_dir})", flush=True)
            print("  training the production HAR vol models from the NIFTY daily history ...",
                  flush=True)
            print(f"  retrain: {_describe_training(run.train_models())}", flush=True)
            t_warm = time.monotonic()

            def warm_progress(i: int, d: Any) -> None:
                if options.live:  # a terminal: one line, rewritten
                    print(f"\r  warm-up: {i}/{WARMUP_SESSIONS} earlier sessions stored "
                          f"({d.isoformat()})", end="", flush=True)
                elif i % 8 == 0:  # a log: a line now and then
                    print(f"  warm-up: {i}/{WARMUP_SESSIONS} earlier sessions stored",
                          flush=True)

            stored = run.warm_up(on_session=warm_progress)
            if run.recorded:
                print("  warm-up: none (recorded payloads are the session; without 22 earlier "
                      "sessions stored, decide's HAR forecast sits out)", flush=True)
            else:
                print(f"\r  warm-up: {stored} snapshots of the {WARMUP_SESSIONS} earlier "
                      f"sessions stored in {time.monotonic() - t_warm:.1f} s (decide's daily "
                      "bars)", flush=True)
            run.seed_tenants()
            print("  demo tenants: " + ", ".join(
                f"{spec['label']}" for spec in DEMO_TENANTS) + "; both paper-only (dry-run lock)",
                flush=True)
            warmed = run.warm()
            print("  functions warmed (GET /warmup, as a startup probe would): " + ", ".join(
                f"{n} {w.get('ms', '?')} ms" for n, w in warmed.items()), flush=True)
            print(f"  playing {len(minutes)} session minutes"
                  + (f" at {options.speed:g}x" if options.speed else " as fast as the pipeline goes")
                  + " (Ctrl-C stops and still writes the report) ...", flush=True)
            try:
                _play(run, options, stop, poll_ms)
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
                print("\ninterrupted: writing the report of what was played ...", flush=True)
            tally = run.poll()
            tally.e2e_ms = run.end_to_end_ms()
            play_s = run.play_s
            t_report = time.monotonic()
            report_path = _write_report(run, options, tally, poll_ms)
            print(f"  report written in {time.monotonic() - t_report:.1f} s", flush=True)
    except KeyboardInterrupt:
        print("\nstopped before the session started.", flush=True)
        return 130
    elapsed = time.monotonic() - t0
    _summary(tally, report_path, elapsed, play_s, options, args.json)
    return 130 if interrupted else 0


def _describe_training(body: dict[str, Any]) -> str:
    """retrain's answer in one line: each model's outcome and version."""
    results = [r for r in body.get("results") or () if isinstance(r, dict)]
    if "error" in body or "text" in body or not results:
        why = body.get("reason") or body.get("text") or body.get("error") or json.dumps(body)
        return f"not trained ({why}); decide's vol signal will sit out"
    return ", ".join(f"{r.get('model_type')} {r.get('status')}"
                     + (f" (v{r['version']})" if r.get("version") is not None else "")
                     for r in results)


def _play(run: SessionRun, options: SessionOptions, stop: threading.Event,
          poll_ms: list[float]) -> None:
    if options.live:
        from rich.console import Console
        from rich.live import Live

        console = Console()
        done = threading.Event()
        worker_error: list[BaseException] = []

        def worker() -> None:
            try:
                run.play(stop=stop)
            except BaseException as exc:  # surfaced in the main thread
                worker_error.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=worker, name="session", daemon=True)
        with Live(render_tally(run.tally, options), console=console, refresh_per_second=4,
                  transient=False) as live:
            thread.start()
            try:
                while not done.wait(0.5):
                    _refresh(run)
                    live.update(render_tally(run.tally, options))
            except KeyboardInterrupt:
                stop.set()
                thread.join(timeout=60)
                raise
            _refresh(run)
            live.update(render_tally(run.tally, options))
        if worker_error:
            raise worker_error[0]
    else:
        last = [0]

        def report_progress(tally: Any) -> None:
            if tally.minutes_done - last[0] >= 25 or tally.minutes_done == tally.minutes_total:
                last[0] = tally.minutes_done
                _refresh(run)
                t = tally
                print(f"  {t.clock.astimezone(IST):%H:%M} IST  minute {t.minutes_done}/{t.minutes_total}  "
                      f"snapshots {t.snapshots}  proposals {t.proposals}  approved {t.approved}  "
                      f"blocked {sum(t.blocked.values())}  e-mails {t.emails}  "
                      f"webhooks {t.webhooks}", flush=True)

        run.play(report_progress, stop)
    poll_ms.extend(f.elapsed_ms for f in run.scheduler_firings or ()
                   if f.job.startswith("chain-poll") and f.ok)


def _refresh(run: SessionRun) -> None:
    try:
        run.poll()
        run.tally.e2e_ms = run.end_to_end_ms()
    except Exception:  # the view must never kill the session
        logger.debug("tally refresh failed", exc_info=True)


def _write_report(run: SessionRun, options: SessionOptions, tally: Any,
                  poll_ms: list[float]) -> Path:
    from local.session_report import build_report
    from shared.report.html import write_report

    counters = {
        "snapshots": tally.snapshots, "proposals": tally.proposals, "no-trade": tally.no_trade,
        "approved": tally.approved, "blocked": sum(tally.blocked.values()),
        "notifications sent": tally.deliveries.get("sent", 0), "e-mails": tally.emails,
        "webhooks": tally.webhooks, "kill switches tripped": len(tally.kill_switches),
    }
    labels = {spec["name"]: spec["label"] for spec in DEMO_TENANTS}
    report = build_report(run.cloud, symbol=options.symbol, session_date=options.session_date,
                          source=f"{options.source}:seed={options.seed}"
                          if options.source == "simulator" else options.source,
                          tenants=run.tenants, labels=labels, deliveries=run.deliveries(),
                          poll_ms=poll_ms, counters=counters)
    path = options.report_path or options.state_dir.parent / \
        f"report-{options.symbol}-{options.session_date.isoformat()}.html"
    return write_report(report, path)


def _summary(tally: Any, report: Path, elapsed: float, play_s: float,
             options: SessionOptions, as_json: bool) -> None:
    from local.session_report import percentile_ms

    e2e = tally.e2e_ms
    p50 = percentile_ms(e2e, 50) if e2e else None
    p99 = percentile_ms(e2e, 99) if e2e else None
    summary = {
        "session": options.session_date.isoformat(), "symbol": options.symbol,
        "minutes": tally.minutes_done, "snapshots": tally.snapshots,
        "proposals": tally.proposals, "approved": tally.approved, "blocked": tally.blocked,
        "deliveries": tally.deliveries, "emails": tally.emails, "webhooks": tally.webhooks,
        "kill_switches": tally.kill_switches, "e2e_p50_ms": p50, "e2e_p99_ms": p99,
        "session_s": round(play_s, 1), "elapsed_s": round(elapsed, 1),
        "report": str(report.resolve()),
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"\nsession played in {play_s:.0f} s ({elapsed:.0f} s in all): {tally.snapshots} snapshots, {tally.proposals} "
          f"proposals, {tally.approved} approved, {sum(tally.blocked.values())} blocked, "
          f"{tally.emails} e-mails and {tally.webhooks} webhooks delivered"
          + (f"; snapshot → notification p50 {p50:.0f} ms, p99 {p99:.0f} ms" if e2e else ""))
    print(f"report: {report.resolve()}")
