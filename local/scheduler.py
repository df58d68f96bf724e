"""A local Cloud Scheduler: fires ``schedules/*.yaml`` jobs at ``<function URL>/run``.

Like Cloud Scheduler's HTTP targets it POSTs the job's JSON payload with an OIDC-style
bearer token (the harness's signed token), ``User-Agent: Google-Cloud-Scheduler`` and the
``X-CloudScheduler*`` headers, and retries a failed attempt ``retry_count`` times.

The clock is injected: :meth:`LocalScheduler.tick` fires what fell due between the last
tick and ``now``, so a replay can drive it on a session clock and tests can drive it by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from shared.auth import LocalTokenIssuer
from shared.schedules import Schedule

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Firing:
    """One attempt to run one job."""

    job: str
    target: str
    scheduled_for: datetime
    status: int | None
    elapsed_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class LocalScheduler:
    def __init__(self, jobs: Sequence[Schedule], targets: Mapping[str, str], issuer: LocalTokenIssuer,
                 *, start: datetime | None = None) -> None:
        missing = sorted({j.target for j in jobs} - set(targets))
        if missing:
            raise ValueError(f"schedules target functions that are not running: {missing}")
        self.jobs = {j.name: j for j in jobs}
        self._targets = dict(targets)
        self._issuer = issuer
        self._last = start or datetime.now(UTC)
        self.history: list[Firing] = []
        self.retry_backoff = 1.0  # seconds before the first retry, doubling
        self._lock = threading.Lock()
        self._session = requests.Session()

    def fire(self, name: str, scheduled_for: datetime | None = None) -> Firing:
        """Run job ``name`` now (``gcloud scheduler jobs run``), with its retries."""
        job = self.jobs[name]
        when = scheduled_for or datetime.now(UTC)
        url = self._targets[job.target].rstrip("/") + "/run"
        firing: Firing | None = None
        for attempt in range(job.retry_count + 1):
            if attempt:  # Cloud Scheduler backs off between attempts too
                time.sleep(min(self.retry_backoff * 2 ** (attempt - 1), 60.0))
            headers = {
                "Authorization": self._issuer.header(url, "scheduler@quantsentinel.local"),
                "User-Agent": "Google-Cloud-Scheduler",
                "X-CloudScheduler": "true",
                "X-CloudScheduler-JobName": job.name,
                "X-CloudScheduler-ScheduleTime": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "Content-Type": "application/json",
            }
            t0 = time.perf_counter()
            try:
                response = self._session.post(url, json=job.payload, headers=headers,
                                              timeout=job.attempt_deadline_s)
                firing = Firing(job.name, job.target, when, response.status_code,
                                (time.perf_counter() - t0) * 1e3,
                                None if response.ok else response.text[:300])
            except requests.RequestException as exc:
                firing = Firing(job.name, job.target, when, None, (time.perf_counter() - t0) * 1e3, str(exc))
            log = logger.info if firing.ok else logger.warning
            log("scheduler fired %s -> %s: %s", job.name, job.target, firing.status,
                extra={"attempt": attempt + 1, "elapsed_ms": round(firing.elapsed_ms, 1)})
            if firing.ok:
                break
        assert firing is not None
        with self._lock:
            self.history.append(firing)
        return firing

    def tick(self, now: datetime) -> list[Firing]:
        """Fire every job due in ``(last tick, now]``, in time order.

        The clock advances past each firing as it happens, so an error part-way through a
        tick leaves the remaining firings due for the next tick.
        """
        with self._lock:
            start = self._last
        due = sorted(
            ((t, name) for name, job in self.jobs.items() for t in job.fire_times(start, now)),
        )
        firings = []
        for when, name in due:
            firings.append(self.fire(name, when))
            with self._lock:
                self._last = max(self._last, when)
        with self._lock:
            self._last = max(self._last, now)
        return firings

    def run(self, stop: threading.Event, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
            interval: float = 1.0) -> None:
        """Tick on ``clock`` until ``stop`` is set (for a background thread)."""
        while not stop.wait(interval):
            try:
                self.tick(clock())
            except Exception:  # a scheduler that dies silently is worse than a logged error
                logger.exception("scheduler tick failed")

    def close(self) -> None:
        self._session.close()
