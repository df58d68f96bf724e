import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.migrations import MigrationError, load_migrations
from shared.contracts import TOPICS
from shared.schedules import ScheduleError, load_schedules
from shared.topology import FUNCTIONS, PROBE

ROOT = Path(__file__).resolve().parents[2]


def test_repository_schedules_are_valid_and_target_functions():
    jobs = load_schedules(ROOT / "schedules")
    assert {j.name for j in jobs} >= {"chain-poll-nifty", "news-ingest", "retrain-nightly"}
    names = {f.name for f in FUNCTIONS}
    assert all(j.target in names for j in jobs)
    assert all(j.time_zone == "Asia/Kolkata" for j in jobs)


def test_cron_is_evaluated_in_ist():
    job = next(j for j in load_schedules(ROOT / "schedules") if j.name == "chain-poll-nifty")
    # Friday 2026-11-20 03:44 UTC is 09:14 IST: the first firing is 09:15 IST = 03:45 UTC.
    times = job.fire_times(datetime(2026, 11, 20, 3, 44, tzinfo=UTC), datetime(2026, 11, 20, 3, 46, tzinfo=UTC))
    assert [t.astimezone(UTC).strftime("%H:%M") for t in times] == ["03:45", "03:46"]
    # Saturday: nothing.
    assert job.fire_times(datetime(2026, 11, 21, 3, 0, tzinfo=UTC), datetime(2026, 11, 21, 10, 0, tzinfo=UTC)) == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: a\nschedule: 'every minute'\ntarget: decide\n", "cron"),
        ("name: a\nschedule: '* * * * *'\ntime_zone: Mars/Olympus\ntarget: decide\n", "time zone"),
        ("name: 'bad name!'\nschedule: '* * * * *'\ntarget: decide\n", "letters"),
        ("name: a\nschedule: '* * * * *'\ntarget: decide\nsurprise: 1\n", "surprise"),
        (": : :", "a.yaml"),
    ],
)
def test_bad_schedule_files_are_refused_with_the_file_name(tmp_path, text, match):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ScheduleError, match=match):
        load_schedules(tmp_path)


def test_duplicate_job_names_are_refused(tmp_path):
    for f in ("a.yaml", "b.yaml"):
        (tmp_path / f).write_text("name: same\nschedule: '* * * * *'\ntarget: decide\n")
    with pytest.raises(ScheduleError, match="duplicate"):
        load_schedules(tmp_path)


def test_every_function_has_a_thin_main_with_an_entry_point():
    for spec in (*FUNCTIONS, PROBE):
        main = ROOT / spec.source / "main.py"
        tree = ast.parse(main.read_text())
        assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
        assert spec.entry_point in assigned, main
        code_lines = [line for line in main.read_text().splitlines() if line.strip() and not line.strip().startswith("#")]
        assert len(code_lines) < 40, f"{main} is not thin"
        # handlers hold no SQL
        assert "SELECT" not in main.read_text() and "INSERT" not in main.read_text()


def test_every_consumed_topic_has_a_contract():
    for spec in FUNCTIONS:
        assert set(spec.consumes) <= set(TOPICS)
    consumed = {t for spec in FUNCTIONS for t in spec.consumes}
    # every product topic has a consuming function, except news.event (the news wall reads
    # events from Postgres) and the local canary's topic (consumed by the probe)
    assert set(TOPICS) - consumed == {"local.probe", "news.event"}
    assert PROBE.consumes == ("local.probe",)


def test_migrations_are_contiguous_and_named(tmp_path):
    assert [m.version for m in load_migrations()][0] == 1
    (tmp_path / "0001_a.sql").write_text("select 1")
    (tmp_path / "0003_c.sql").write_text("select 1")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(tmp_path)
    (tmp_path / "0002-b.sql").write_text("select 1")
    with pytest.raises(MigrationError, match="NNNN_snake_name"):
        load_migrations(tmp_path)


def test_the_staleness_cadence_is_the_nightly_schedules_longest_gap():
    from datetime import UTC, datetime, timedelta

    from shared.domain.registry import NIGHTLY_CADENCE
    from shared.schedules import load_schedules

    (nightly,) = [s for s in load_schedules(Path(__file__).resolve().parents[2] / "schedules")
                  if s.name == "retrain-nightly"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = nightly.fire_times(start, start + timedelta(days=60))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) == NIGHTLY_CADENCE
