"""``make run``'s command end to end, shortened: ``python -m local run --minutes N`` as a
user runs it (a subprocess), through the real local cloud. The session must flow through
every function (snapshots, decisions, verdicts, notifications at the local SMTP server and
webhook receiver), the report must be written, and it must reflect the database."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KIT_FIXTURES

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    if not (KIT_FIXTURES / "index_history").is_dir():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    tmp = tmp_path_factory.mktemp("make-run")
    report = tmp / "report.html"
    # 09:15-10:00 IST on the default day: inside the RBI policy window (10:00 IST +-90 min),
    # so the news wall has work, as do the other walls
    out = subprocess.run(
        [sys.executable, "-m", "local", "run", "--minutes", "45", "--no-live", "--json",
         "--state-dir", str(tmp / "state"), "--report", str(report)],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(out.stdout[out.stdout.index("{\n"):])
    return summary, report, out.stdout


def test_a_short_session_flows_through_every_function(session):
    summary, _, stdout = session
    assert summary["minutes"] == 45 and summary["snapshots"] == 45
    assert summary["proposals"] > 0
    assert summary["approved"] + sum(summary["blocked"].values()) == summary["proposals"]
    assert summary["deliveries"].get("sent", 0) > 0
    assert summary["webhooks"] > 0 and summary["emails"] > 0
    assert summary["e2e_p50_ms"] is not None and summary["e2e_p50_ms"] > 0
    assert "warm-up: 184 snapshots" in stdout  # 23 earlier sessions, eight polls each
    assert "retrain" in stdout and "promoted" in stdout


def test_the_report_is_written_and_shows_what_the_database_holds(session):
    summary, report, _ = session
    assert Path(summary["report"]) == report.resolve()
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
    for heading in ("Spot path and signals", "IV smile", "GEX profile", "Approved signals",
                    "Gate firings by wall", "Paper P&amp;L and drawdown", "Latency per hop",
                    "Model versions used"):
        assert heading in page, heading
    assert re.search(r'src="data:image/png;base64,', page)
    assert not re.search(r'(src|href)="https?://', page)  # self-contained
    assert "vol_har_5d" in page  # the model decide served, named with its version
    assert "desk-alpha" in page and "retail-beta" in page


def test_recorded_payloads_play_as_the_session(tmp_path):
    """``--source replay:DIR``: each poll plays the next recorded payload (here the kit's real
    NSE chain of 2025-07-16), no simulated warm-up, and the event flow is the same."""
    fixture = KIT_FIXTURES / "nse_option_chain" / "nse_oc_NIFTY_2025-07-16_ethanelliott50.json"
    if not fixture.exists():
        pytest.skip("the fixture kit (../shared) is not beside the checkout")
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    (recorded / "0001.json").write_bytes(fixture.read_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "local", "run", "--source", f"replay:{recorded}", "--date",
         "2025-07-16", "--no-live", "--json", "--state-dir", str(tmp_path / "state"),
         "--report", str(tmp_path / "r.html")],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert "warm-up: none" in out.stdout
    assert summary["minutes"] == 1 and summary["snapshots"] == 1  # one file, one poll
    assert summary["proposals"] >= 1
    assert summary["approved"] + sum(summary["blocked"].values()) == summary["proposals"]
    assert summary["webhooks"] >= 1
    assert "2025-07-16" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_an_empty_recording_is_refused_with_a_reason(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "local", "run", "--source", f"replay:{tmp_path}", "--no-live"],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "no *.json payloads" in out.stderr
