"""The session clock make run shares with the functions (shared.adapters.replay_clock)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.adapters.replay_clock import ClockAnchor, FileClock, write_anchor
from shared.config import load_settings

SECRET = "x" * 40
T0 = datetime(2026, 4, 8, 3, 45, tzinfo=UTC)


def test_the_anchor_runs_at_its_rate_from_the_wall_time_it_was_set():
    anchor = ClockAnchor(T0, wall=1000.0, rate=60.0)
    assert anchor.at(1000.0) == T0
    assert anchor.at(1001.5) == T0 + timedelta(seconds=90)


def test_a_process_reads_the_anchor_written_by_another_and_sees_it_move(tmp_path):
    path = tmp_path / "clock.json"
    write_anchor(path, T0, wall=time.time() - 2.0)  # set two wall seconds ago, rate 1
    clock = FileClock(path)
    now = clock.now()
    assert T0 + timedelta(seconds=1.9) <= now <= T0 + timedelta(seconds=10)
    later = T0 + timedelta(minutes=1)
    write_anchor(path, later.astimezone(timezone(timedelta(hours=5, minutes=30))))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # coarse file clocks
    assert later <= clock.now() < later + timedelta(seconds=5)
    assert clock.anchor().session.tzinfo is not None


def test_bad_anchors_and_a_missing_file_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        write_anchor(tmp_path / "c.json", datetime(2026, 4, 8, 9, 15))
    with pytest.raises(ValueError, match="positive"):
        write_anchor(tmp_path / "c.json", T0, rate=0.0)
    with pytest.raises(RuntimeError, match="replay driver"):
        FileClock(tmp_path / "absent.json").now()


def test_a_deployed_function_refuses_the_replay_clock(tmp_path):
    assert load_settings(local_auth_secret=SECRET, clock_file=tmp_path / "c").clock_file
    with pytest.raises(ValueError, match="QS_CLOCK_FILE"):
        load_settings(environment="production", auth_mode="google",
                      allowed_invokers=["a@b.iam.gserviceaccount.com"],
                      auth_audience="https://x", database_url="postgresql://u@h/db",
                      clock_file=tmp_path / "c")


def test_the_runtime_clock_follows_the_file(tmp_path):
    from shared.runtime import Runtime

    path = tmp_path / "clock.json"
    write_anchor(path, T0)
    rt = Runtime("decide", load_settings(local_auth_secret=SECRET, clock_file=path))
    assert T0 <= rt.now() < T0 + timedelta(seconds=5)
