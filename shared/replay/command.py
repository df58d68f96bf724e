"""``qs replay``: run a replay from the command line and print what happened.

A table per strategy (trades, P&L after costs, per-trade Sharpe, PSR, DSR) and per tenant
(P&L, max drawdown, proposals, approvals, blocks by wall) on stdout, or ``--json``; a
progress bar on stderr (rich) unless ``--no-progress`` or stderr is not a terminal; with
``--report PATH`` the HTML report (when :mod:`shared.report.html` is installed) and its
path. Bad input exits with code 2 (:class:`~shared.replay.config.ReplayInputError`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["config_from_args", "format_summary", "main"]


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~shared.replay.config.ReplayConfig` of parsed ``qs replay`` arguments."""
    from shared.replay.config import ReplayConfig, ReplayInputError, demo_tenants

    source = args.source
    if source != "simulator":
        if not source.startswith("replay:") or not source.removeprefix("replay:"):
            raise ReplayInputError(f"--source must be 'simulator' or 'replay:DIR', not "
                                   f"{source!r}")
        source = Path(source.removeprefix("replay:")).expanduser()
    if args.days is not None and args.days < 1:
        raise ReplayInputError(f"--days must be at least 1, got {args.days}")
    return ReplayConfig(symbol=args.symbol.strip().upper(), start=args.date, days=args.days,
                        source=source, seed=args.seed, tenants=demo_tenants(args.tenants),
                        conservative=args.conservative,
                        models=getattr(args, "models", "auto"))


@contextmanager
def _progress(enabled: bool, stream: TextIO) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=stream)
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("snapshots"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("replay", total=None)

        def update(done: int, total: int) -> None:
            if done == 1 or done == total or done % 5 == 0:
                bar.update(task, completed=done, total=total)

        yield update


def _money(x: float) -> str:
    return f"{x:,.0f}" if math.isfinite(x) else "-"


def _ratio(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "n/a"


def format_summary(result: Any) -> str:
    """The human summary of a :class:`~shared.replay.result.ReplayResult`."""
    c = result.counters
    days = ", ".join(f"{s['symbol']} {s['date']}" for s in result.sessions)
    lines = [
        f"qs replay: {days} [{result.source}], models {result.models}, {result.mode} P&L",
        f"{c.get('snapshots', 0)} snapshots published ({c.get('stale', 0)} stale, "
        f"{c.get('bad_chain', 0)} bad chains); {c.get('proposals', 0)} proposals: "
        f"{c.get('approved', 0)} approved, {c.get('blocked', 0)} blocked, "
        f"{c.get('rejected', 0)} rejected; {c.get('trades', 0)} trades; "
        f"{result.wall_s:.2f} s",
        "",
        f"{'strategy':<18}{'trades':>7}{'P&L after costs':>17}{'Sharpe':>9}{'PSR':>8}{'DSR':>8}",
    ]
    if not result.strategies:
        lines.append("  (no trades: every proposal was blocked, rejected or none was made)")
    for s in result.strategies:
        lines.append(f"{s.strategy:<18}{s.trades:>7}{_money(s.pnl):>17}{_ratio(s.sharpe):>9}"
                     f"{_ratio(s.psr):>8}{_ratio(s.dsr):>8}"
                     + (f"  ({s.reason})" if s.reason else ""))
    lines += ["", f"{'tenant':<14}{'lock':<7}{'capital':>12}{'P&L':>11}{'max DD':>10}"
                  f"{'trades':>7}{'proposed':>9}{'approved':>9}  blocks by wall"]
    for t in result.tenants:
        walls = {**t.blocked_by, **{f"rejected:{k}": v for k, v in t.rejected_by.items()}}
        blocks = ", ".join(f"{w} {n}" for w, n in sorted(walls.items(), key=lambda x: -x[1]))
        lines.append(f"{t.name:<14}{'paper' if t.dry_run else 'live':<7}{_money(t.capital):>12}"
                     f"{_money(t.pnl):>11}{_money(t.max_drawdown):>10}{t.trades:>7}"
                     f"{t.proposals:>9}{t.approved:>9}  {blocks or '-'}")
    lines += ["", *(f"note: {n}" for n in result.notes)]
    return "\n".join(lines)


def _write_report(st: Any, result: Any, path: Path) -> str | None:
    """Write the HTML report; returns why not when the renderer is missing."""
    try:
        from shared.report import html as renderer
    except ImportError as exc:
        return f"the HTML renderer (shared.report.html) is not available: {exc}"
    write = getattr(renderer, "write_report", None)
    if write is None:
        return "shared.report.html has no write_report(report, path)"
    from shared.replay.result import session_report

    write(session_report(st, result, generated_at=datetime.now(UTC)), path)
    return None


def main(args: argparse.Namespace) -> int:
    """Run ``qs replay`` (see the module docstring); returns the exit code."""
    from shared.replay.result import summarise
    from shared.replay.runner import run_replay

    config = config_from_args(args)
    show = not args.no_progress and sys.stderr.isatty()
    try:
        with _progress(show, sys.stderr) as progress:
            st = run_replay(config, progress=progress)
    except KeyboardInterrupt:
        print("qs replay: interrupted", file=sys.stderr)
        return 130
    result = summarise(st)
    for item, reason in result.skipped:
        print(f"qs replay: skipped {item}: {reason}", file=sys.stderr)
    report_path: str | None = None
    if args.report:
        path = Path(args.report).expanduser()
        why = _write_report(st, result, path)
        if why is not None:
            print(f"qs replay: no report written: {why}", file=sys.stderr)
        else:
            report_path = str(path.resolve())
    if args.json:
        out = result.to_json()
        out["report"] = report_path
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(format_summary(result))
        if report_path:
            print(f"\nreport: {report_path}")
    return 0
