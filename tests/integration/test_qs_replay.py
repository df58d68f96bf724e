"""``qs replay`` as a user runs it: a subprocess over the kit's recorded payloads and over
one simulated day; the exit code, the JSON summary and the text table; bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KIT_FIXTURES, REPO_ROOT

pytestmark = pytest.mark.integration

NSE_DIR = KIT_FIXTURES / "nse_option_chain"
TRIMMED = REPO_ROOT / "tests" / "fixtures" / "chains"
RECORDED = NSE_DIR if NSE_DIR.is_dir() else TRIMMED


def qs(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", "replay", *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)


def test_help_explains_the_options():
    out = qs("--help")
    assert out.returncode == 0
    for flag in ("--symbol", "--date", "--days", "--source", "--seed", "--tenants",
                 "--conservative", "--report", "--json", "--no-progress", "replay:DIR"):
        assert flag in out.stdout


def test_replay_over_the_recorded_fixtures_runs():
    out = qs("--source", f"replay:{RECORDED}", "--json", "--no-progress")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["mode"] == "normal" and summary["symbol"] == "NIFTY"
    assert summary["source"] == f"replay:{RECORDED}"
    assert [s["date"] for s in summary["sessions"]] == ["2019-08-23", "2022-03-24",
                                                        "2025-07-16"]
    assert summary["counters"]["snapshots"] == 3
    assert [t["name"] for t in summary["tenants"]] == ["paper-desk", "live-desk"]
    for t in summary["tenants"]:
        assert t["decisions"] == 3 and {"pnl", "max_drawdown", "blocked_by"} <= set(t)
        assert t["proposals"] == t["approved"] + t["blocked"] + t["rejected"]
    assert isinstance(summary["strategies"], list)
    skipped = {s["item"]: s["reason"] for s in summary["skipped"]}
    assert any("RELIANCE" in k for k in skipped) and any("BANKNIFTY" in k for k in skipped)
    assert "skipped" in out.stderr and "RELIANCE" in out.stderr  # said, not only listed
    assert set(summary["timings_s"]) >= {"simulate", "analyse", "decide", "risk", "book"}


def test_the_text_summary_and_another_symbol():
    out = qs("--source", f"replay:{RECORDED}", "--symbol", "BANKNIFTY", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "BANKNIFTY 2022-03-28" in out.stdout
    for heading in ("strategy", "trades", "P&L after costs", "PSR", "DSR", "tenant",
                    "max DD", "blocks by wall", "paper-desk", "live-desk"):
        assert heading in out.stdout
    assert "NIFTY payload: replaying BANKNIFTY" in out.stderr


@pytest.mark.slow
def test_one_simulated_day_with_the_vol_models_conservative_and_a_report(tmp_path):
    report = tmp_path / "replay.html"
    out = qs("--seed", "7", "--models", "har", "--conservative", "--json", "--no-progress",
             "--report", str(report))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["mode"] == "conservative"
    (session,) = summary["sessions"]
    assert session["date"] == "2026-04-08" and session["published"] == 375
    assert summary["counters"]["trades"] > 0 and summary["strategies"]
    for s in summary["strategies"]:
        assert s["trades"] > 0 and {"pnl", "sharpe", "psr", "dsr"} <= set(s)
        assert s["psr"] is None or 0.0 <= s["psr"] <= 1.0
    for t in summary["tenants"]:
        assert t["pnl"] == t["pnl_conservative"] <= t["pnl_normal"]
    try:
        from shared.report.html import write_report  # noqa: F401
    except ImportError:
        assert summary["report"] is None and "no report written" in out.stderr
    else:
        assert summary["report"] == str(report.resolve()) and report.stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (("--symbol", "RELIANCE"), "unknown symbol"),
    (("--date", "2025-08-15"), "no NSE session"),
    (("--source", "ftp://somewhere"), "--source"),
    (("--date", "2025-13-01"), "not an ISO date"),
    (("--tenants", "0"), "--tenants"),
])
def test_bad_input_exits_2(args, message):
    out = qs(*args, "--no-progress")
    assert out.returncode == 2
    assert message in out.stderr


def test_an_empty_directory_exits_2(tmp_path: Path):
    out = qs("--source", f"replay:{tmp_path}", "--no-progress")
    assert out.returncode == 2 and "no *.json files" in out.stderr
