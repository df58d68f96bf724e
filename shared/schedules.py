"""Cloud Scheduler jobs as data: ``schedules/*.yaml``, read by the local scheduler and by
terraform (``yamldecode``), so both fire the same jobs.

A file holds one job::

    name: chain-poll-nifty          # Cloud Scheduler job id
    description: ...
    schedule: "* 9-15 * * 1-5"      # unix cron, evaluated in time_zone
    time_zone: Asia/Kolkata
    target: chain_poll              # function name (see shared.topology.FUNCTIONS)
    payload: {symbol: NIFTY}        # JSON body of the POST
    attempt_deadline_s: 60
    retry_count: 0
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

_JOB_ID = re.compile(r"^[a-zA-Z0-9_-]{1,500}$")


class ScheduleError(ValueError):
    """A schedule file is malformed."""


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    schedule: str
    time_zone: str = "Asia/Kolkata"
    target: str
    payload: dict[str, Any] = Field(default_factory=dict)
    attempt_deadline_s: int = Field(60, ge=15, le=1800)
    retry_count: int = Field(0, ge=0, le=5)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _JOB_ID.match(v):
            raise ValueError("job names use letters, digits, '-' and '_' only")
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not croniter.is_valid(v) or len(v.split()) != 5:
            raise ValueError(f"not a 5-field unix cron expression: {v!r}")
        return v

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    def fire_times(self, after: datetime, until: datetime) -> list[datetime]:
        """Fire times in ``(after, until]``, timezone-aware, computed in ``time_zone``."""
        if after.tzinfo is None or until.tzinfo is None:
            raise ValueError("fire_times needs timezone-aware datetimes")
        tz = ZoneInfo(self.time_zone)
        it = croniter(self.schedule, after.astimezone(tz))
        times = []
        while True:
            nxt: datetime = it.get_next(datetime)
            if nxt > until:
                return times
            times.append(nxt)


def load_schedules(directory: Path) -> list[Schedule]:
    """Read every ``*.yaml`` in ``directory``; names must be unique."""
    jobs: list[Schedule] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text())
            jobs.append(Schedule.model_validate(raw))
        except (yaml.YAMLError, ValueError) as exc:
            raise ScheduleError(f"{path.name}: {exc}") from None
    names = [j.name for j in jobs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ScheduleError(f"duplicate job names: {sorted(dupes)}")
    return jobs
