"""Fixtures of the deployment checks: the bundles, built once per session, and a timing
record printed at the end of the run (bundle build, venv installs, import times, scans)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.deploy.deploy_support import TIMINGS, record


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every function's bundle, built by the bundler into a temporary directory."""
    from deploy.bundle import build_all

    out = tmp_path_factory.mktemp("bundles")
    started = time.perf_counter()
    built = build_all(out)
    record("bundle build, 6 functions", time.perf_counter() - started)
    yield {b.function: b for b in built}


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001, ARG001
    if not TIMINGS:
        return
    terminalreporter.section("deployment checks: timings")
    for name, value in TIMINGS.items():
        shown = f"{value:7.2f} s" if isinstance(value, float) else value
        terminalreporter.write_line(f"  {name:<52} {shown}")
