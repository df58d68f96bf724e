"""The canary service: one idempotent write per ping, and on-demand failures.

It exercises the whole path a real function uses (auth, contract, claim and write in one
transaction), so the local cloud's health check and the integration tests can prove
publish → push → function → Postgres, dead-lettering and rejection, end to end.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from shared.adapters.db import Database
from shared.contracts import ProbePingV1
from shared.errors import PermanentError, TransientError
from shared.runtime import EventContext, Outcome, Runtime, ScheduledRun

CONSUMER = "probe"


class ProbeService:
    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> ProbeService:
        return cls(runtime.database)

    def __call__(self, ping: ProbePingV1, ctx: EventContext) -> Outcome:
        if ping.behaviour == "transient":
            raise TransientError("probe asked to fail transiently", reason_code="probe_transient")
        if ping.behaviour == "permanent":
            raise PermanentError("probe asked to be rejected", reason_code="probe_rejected")
        with self._db.system() as session:
            if not session.claim_event(CONSUMER, ctx.event_id, topic=ctx.topic):
                return Outcome.duplicate(probe_id=str(ping.probe_id))
            session.execute(
                "INSERT INTO heartbeats (event_id, probe_id, source, sent_at) "
                "VALUES (:event_id, :probe_id, :source, :sent_at)",
                event_id=ctx.event_id, probe_id=ping.probe_id, source=CONSUMER, sent_at=ping.sent_at,
            )
        return Outcome.done(probe_id=str(ping.probe_id))

    def scheduled(self, run: ScheduledRun, now: datetime) -> Outcome:
        """A scheduler firing: one heartbeat per (job, schedule time), however often it fires."""
        with self._db.system() as session:
            if not session.claim_event(CONSUMER, run.run_id, topic="schedule"):
                return Outcome.duplicate(run_id=run.run_id)
            session.execute(
                "INSERT INTO heartbeats (event_id, probe_id, source, sent_at) "
                "VALUES (:event_id, :probe_id, 'scheduler', :sent_at)",
                event_id=run.run_id, probe_id=uuid5(NAMESPACE_URL, run.run_id), sent_at=run.scheduled_for,
            )
        return Outcome.done(run_id=run.run_id)
