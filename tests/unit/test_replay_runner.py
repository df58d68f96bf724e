"""The in-process replay (shared.replay.runner): seeded and deterministic, the worker
process changes nothing, conservative mode never improves the P&L, recorded payloads are
grouped and skipped with reasons, bad input is refused."""

from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import pytest

from shared.replay.config import ReplayConfig, ReplayInputError, demo_tenants
from shared.replay.result import summarise
from shared.replay.runner import run_replay
from tests.conftest import KIT_FIXTURES

NSE_DIR = KIT_FIXTURES / "nse_option_chain"
TRIMMED = Path(__file__).resolve().parents[1] / "fixtures" / "chains"

# seed 7 trades in its first hour (with the vol models): credit verticals for the live desk
QUICK = ReplayConfig(seed=7, models="har", max_snapshots=45)


def _outcome(st) -> dict:
    r = summarise(st).to_json()
    for k in ("timings_s", "wall_s"):
        r.pop(k)
    r["trades"] = [(t.tenant_id, t.strategy, t.reason, t.opened_at, t.closed_at, t.pnl,
                    t.pnl_conservative) for t in st.book.trades()]
    r["curve"] = [tr.curve for tr in st.tracks.values()]
    return r


@pytest.fixture(scope="module")
def quick():
    return run_replay(QUICK, workers=0)


@pytest.mark.slow
def test_the_same_seed_replays_the_same_session(quick):
    again = run_replay(QUICK, workers=0)
    assert _outcome(again) == _outcome(quick)
    assert summarise(quick).counters["trades"] > 0  # the hour has trades to compare
    other = run_replay(ReplayConfig(seed=8, models="har", max_snapshots=45), workers=0)
    assert other.spot_path != quick.spot_path


@pytest.mark.slow
def test_a_worker_process_changes_nothing(quick):
    assert _outcome(run_replay(QUICK, workers=1)) == _outcome(quick)


@pytest.mark.slow
def test_conservative_mode_never_improves_the_pnl(quick):
    from dataclasses import replace

    cons = run_replay(replace(QUICK, conservative=True), workers=0)
    normal_r, cons_r = summarise(quick), summarise(cons)
    assert cons_r.mode == "conservative" and normal_r.mode == "normal"
    # the same decisions, trades and exits ...
    assert cons_r.counters == normal_r.counters
    assert [(t.opened_at, t.closed_at, t.reason) for t in cons.book.trades()] == \
        [(t.opened_at, t.closed_at, t.reason) for t in quick.book.trades()]
    # ... each trade, each tenant and each strategy worse off
    for t in cons.book.trades():
        assert t.pnl_conservative <= t.pnl
    assert any(t.pnl_conservative < t.pnl for t in cons.book.trades())
    for a, b in zip(normal_r.tenants, cons_r.tenants, strict=True):
        assert b.pnl <= a.pnl and b.pnl == a.pnl_conservative
    for a, b in zip(normal_r.strategies, cons_r.strategies, strict=True):
        assert a.strategy == b.strategy and b.pnl <= a.pnl


@pytest.mark.slow
def test_an_event_day_in_conservative_mode():
    # 2025-07-17: NIFTY's weekly expiry (the news gate's expiry_day event, all session)
    cfg = ReplayConfig(start=date(2025, 7, 17), seed=3, models="har", max_snapshots=90,
                       conservative=True)
    st = run_replay(cfg, workers=0)
    assert st.event_days == [date(2025, 7, 17)] and st.per_session[0]["event_day"]
    for t in st.book.trades():
        assert t.pnl_conservative <= t.pnl and t.event_penalty <= 0.0
    for tr in st.tracks.values():
        assert all(c[2] <= c[1] + 1e-9 for c in tr.curve)


def test_results_carry_tenants_strategies_and_the_report(quick):
    from datetime import UTC, datetime

    from shared.replay.result import session_report

    r = summarise(quick)
    assert [t.name for t in r.tenants] == ["paper-desk", "live-desk"]
    assert r.counters["snapshots"] == 45 and r.counters["trades"] == len(list(quick.book.trades()))
    assert sum(t.trades for t in r.tenants) == r.counters["trades"]
    for t in r.tenants:
        assert t.decisions == 45 and t.proposals == t.approved + t.blocked + t.rejected
        assert t.max_drawdown >= 0
    for s in r.strategies:
        assert s.trades >= 1 and (math.isfinite(s.psr) or s.reason)
    report = session_report(quick, r, generated_at=datetime(2025, 7, 16, tzinfo=UTC))
    assert len(report.spot_path) == 45 and report.strategies and report.pnl
    assert {m.model_type: m.version for m in report.models}["vol_har_5d"] == 0
    assert report.smiles and report.gex and len(report.approved) == r.counters["approved"]


def test_recorded_payloads_are_grouped_by_day_and_skipped_with_reasons(tmp_path):
    src = NSE_DIR if NSE_DIR.is_dir() else TRIMMED
    st = run_replay(ReplayConfig(source=src), workers=0)
    days = [s["date"] for s in st.per_session]
    assert days == sorted(days) and {"2019-08-23", "2022-03-24", "2025-07-16"} <= set(days)
    why = {item: reason for item, reason in ((s.item, s.reason) for s in st.skipped)}
    assert any("RELIANCE" in k and "equity" in v for k, v in why.items())
    assert any("BANKNIFTY" in k and "--symbol BANKNIFTY" in v for k, v in why.items())
    # no cost data before 2021: the 2019 proposals are rejected, not costed
    rejected = {code for tr in st.tracks.values() for code in tr.rejected_by}
    assert rejected <= {"cost_no_data"}
    # one day only; an Upstox payload (no time of its own) plays on that day's clock
    up = KIT_FIXTURES / "upstox_option_chain" / "upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade.json"
    if up.is_file():
        d = tmp_path / "upstox"
        d.mkdir()
        shutil.copy(up, d / up.name)
        with pytest.raises(ReplayInputError, match="carries no time"):
            run_replay(ReplayConfig(source=d), workers=0)
        st = run_replay(ReplayConfig(source=d, start=date(2024, 6, 19)), workers=0)
        assert st.per_session[0]["date"] == "2024-06-19" and st.counters["snapshots"] == 1


@pytest.mark.parametrize("config, message", [
    (ReplayConfig(symbol="RELIANCE"), "unknown symbol"),
    (ReplayConfig(start=date(2025, 8, 15)), "no NSE session"),  # Independence Day
    (ReplayConfig(start=date(2025, 7, 19)), "no NSE session"),  # a Saturday
    (ReplayConfig(start=date(2030, 1, 2)), "calendar covers"),
    (ReplayConfig(models="magic"), "--models"),
])
def test_bad_input_is_refused(config, message):
    with pytest.raises(ReplayInputError, match=message):
        run_replay(config, workers=0)


def test_an_empty_or_missing_directory_is_refused(tmp_path):
    with pytest.raises(ReplayInputError, match="no \\*.json files"):
        run_replay(ReplayConfig(source=tmp_path), workers=0)
    with pytest.raises(ReplayInputError, match="does not exist"):
        run_replay(ReplayConfig(source=tmp_path / "nope"), workers=0)
    (tmp_path / "junk.json").write_text("{\"hello\": 1}")
    with pytest.raises(ReplayInputError, match="nothing to replay.*junk.json"):
        run_replay(ReplayConfig(source=tmp_path), workers=0)


def test_demo_tenants_differ_and_are_stable():
    a, b = demo_tenants(2)
    assert a.dry_run and not b.dry_run and a.policy.capital < b.policy.capital
    assert a.policy.max_open_positions != b.policy.max_open_positions
    assert demo_tenants(2) == (a, b) and len({t.tenant_id for t in demo_tenants(5)}) == 5
    with pytest.raises(ReplayInputError):
        demo_tenants(0)
