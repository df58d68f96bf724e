"""chain_poll: fetch → validate → analyse → store (GCS + Postgres, one transaction) → publish.

Each scheduler firing is one *run*, identified by ``job@schedule_time``. A run ends in
exactly one ``chain_polls`` row:

``published``
    a new snapshot was stored and ``chain.snapshot`` published;
``stale``
    the provider returned a snapshot time already stored (nothing new: not republished);
    the stale-data kill switch reads the newest published row;
``bad_chain``
    stored for forensics but not published: its quotes fail the no-arbitrage checks;
``rejected``
    the payload could not be parsed, or the provider refused for good (an expired token);
    the raw bytes are kept in GCS when there were any; no snapshot rows exist;
``failed``
    the provider was unavailable after its retries (recorded, then raised so the
    scheduler's retry policy applies).

A snapshot counts as the same as a stored one when its time equals a stored one's, or its
raw bytes equal those of the symbol's most recently stored snapshot (Upstox payloads carry no time: a frozen feed repeats its
bytes). Before polling, a run first publishes any stored snapshot whose publish failed
(an outbox), so an event is never lost even when the scheduler does not retry.

Runs outside market hours are skipped without a row. The market clock is the run's
schedule time (Cloud Scheduler's ``X-CloudScheduler-ScheduleTime``), so a replay that
drives the scheduler on a session clock polls that session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
from pg8000.exceptions import DatabaseError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters import pgbinary
from shared.adapters.blobs import BlobStore
from shared.adapters.bus import Bus
from shared.adapters.db import Database, Session, sqlstate
from shared.adapters.providers.base import ChainProvider, PayloadRejected, RawPayload
from shared.adapters.providers.upstox import OI_IN_UNITS
from shared.contracts import ChainSnapshotV1
from shared.domain.analytics import AnalyticsConfig, ChainAnalytics, analyse_chain
from shared.domain.calendar import CalendarDataError, MarketCalendar
from shared.domain.chain import ChainSnapshot
from shared.errors import PermanentError, TransientError
from shared.runtime import Outcome, Runtime, ScheduledRun

logger = logging.getLogger(__name__)

CONSUMER = "chain_poll"
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9&-]{0,31}$")


class ChainPollCommand(BaseModel):
    """The scheduler job's payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=32)
    force: bool = Field(False, description="poll even outside market hours (operators, tests)")


@dataclass(frozen=True, slots=True)
class AnalysedSnapshot:
    snapshot: ChainSnapshot
    analytics: ChainAnalytics
    rate: float
    lot_sizes: dict[date, int]


def analyse_snapshot(snap: ChainSnapshot, calendar: MarketCalendar,
                     rate_on: Callable[[date], float],
                     cfg: AnalyticsConfig | None = None) -> AnalysedSnapshot:
    """Year fractions, dated lot sizes and the dated rate for ``snap``, then the analytics.

    Expiries the calendar cannot place (outside its data) are skipped with a reason by the
    analytics; lot sizes it does not know (e.g. single-stock chains) leave GEX as NaN.
    """
    t_by_expiry: dict[date, float] = {}
    lots: dict[date, int] = {}
    for expiry in snap.expiries:
        with contextlib.suppress(CalendarDataError):
            t_by_expiry[expiry] = calendar.year_fraction(snap.asof, expiry)
        with contextlib.suppress(CalendarDataError):
            lots[expiry] = calendar.lot_size(snap.symbol, expiry).value
    if OI_IN_UNITS in snap.flags:
        snap = _oi_in_contracts(snap, lots)
    rate = rate_on(snap.asof.date())
    analytics = analyse_chain(snap, t_by_expiry=t_by_expiry, rate=rate,
                              lot_size_by_expiry=lots, cfg=cfg)
    return AnalysedSnapshot(snap, analytics, rate, lots)


def _oi_in_contracts(snap: ChainSnapshot, lots: dict[date, int]) -> ChainSnapshot:
    """Open interest, its change and volume from units to contracts (NaN without a lot)."""
    lot = np.full(snap.n_legs, np.nan)
    for expiry, size in lots.items():
        lot[snap.for_expiry(expiry)] = size
    flags = tuple(f for f in snap.flags if f != OI_IN_UNITS) + ("oi_converted_from_units",)
    return dataclasses.replace(snap, oi=snap.oi / lot, oi_change=snap.oi_change / lot,
                               volume=snap.volume / lot, flags=flags)


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


LEG_COLUMNS = ("snapshot_id", "expiry", "strike", "option_type", "last", "bid", "ask", "volume",
               "oi", "oi_change", "vendor_iv", "price", "iv", "iv_status", "delta", "gamma",
               "vega", "theta", "missing")
EXPIRY_COLUMNS = ("snapshot_id", "expiry", "t", "forward", "forward_method", "atm_iv", "pcr_oi",
                  "pcr_volume", "max_pain", "gex_total", "gamma_flip", "density_mean",
                  "density_variance", "density_skew", "density_kurtosis", "crash_probability",
                  "arbitrage_bad", "details")


def store_snapshot(session: Session, snapshot_id: uuid.UUID, run_id: str, done: AnalysedSnapshot,
                   raw_sha256: str, raw_blob: str) -> None:
    """Insert the snapshot, its legs (binary COPY) and its per-expiry analytics (COPY)."""
    snap, an = done.snapshot, done.analytics
    session.execute(
        "INSERT INTO chain_snapshots (snapshot_id, run_id, symbol, source, asof, spot, "
        "payload_sha256, raw_blob, legs, expiries, flags, bad_chain, skipped) VALUES (:id, :run, "
        ":symbol, :source, :asof, :spot, :sha, :blob, :legs, CAST(:expiries AS date[]), "
        "CAST(:flags AS text[]), :bad, CAST(:skipped AS jsonb))",
        id=snapshot_id, run=run_id, symbol=snap.symbol, source=snap.source, asof=snap.asof,
        spot=snap.spot, sha=raw_sha256, blob=raw_blob, legs=snap.n_legs,
        expiries="{" + ",".join(e.isoformat() for e in snap.expiries) + "}",
        flags="{" + ",".join('"' + f.replace('"', "") + '"' for f in snap.flags) + "}",
        bad=an.bad, skipped=orjson.dumps({k.isoformat(): v for k, v in an.skipped.items()}).decode(),
    )
    legs = an.legs
    n = snap.n_legs
    session.copy_binary("chain_legs", LEG_COLUMNS, pgbinary.copy_binary([
        pgbinary.uuid_constant(snapshot_id, n), pgbinary.date(snap.expiry),
        pgbinary.float8(snap.strike), pgbinary.fixed_text(np.where(snap.is_call, "CE", "PE"), 2),
        pgbinary.float8(snap.last), pgbinary.float8(snap.bid), pgbinary.float8(snap.ask),
        pgbinary.float8(snap.volume), pgbinary.float8(snap.oi), pgbinary.float8(snap.oi_change),
        pgbinary.float8(snap.vendor_iv), pgbinary.float8(legs.price), pgbinary.float8(legs.iv),
        pgbinary.int2(legs.iv_status), pgbinary.float8(legs.delta), pgbinary.float8(legs.gamma),
        pgbinary.float8(legs.vega), pgbinary.float8(legs.theta), pgbinary.int2(snap.missing),
    ]))
    lines = []
    for e in an.expiries:
        d = e.density
        details = {
            "reasons": list(e.reasons),
            "smile": None if e.smile is None else {
                "coefficients": list(e.smile.coefficients), "x_min": e.smile.x_min,
                "x_max": e.smile.x_max, "points": e.smile.points},
            "strikes": e.strikes, "call_oi": e.call_oi, "put_oi": e.put_oi,
            "call_oi_change": e.call_oi_change, "put_oi_change": e.put_oi_change,
            "gex_by_strike": e.gex_by_strike,
            "arbitrage": {"strikes_checked": e.arbitrage.strikes_checked,
                          "vertical": e.arbitrage.vertical_violations,
                          "butterfly": e.arbitrage.butterfly_violations,
                          "worst": e.arbitrage.worst},
            "density": None if d is None else {
                "crash_level": d.crash_level, "clipped_negative_mass": d.clipped_negative_mass,
                "raw_integral": d.raw_integral},
        }
        values = [str(snapshot_id), e.expiry.isoformat(), e.t, e.forward, e.forward_method,
                  e.atm_iv, e.pcr_oi, e.pcr_volume, e.max_pain, e.gex_total, e.gamma_flip,
                  d.mean if d else None, d.variance if d else None, d.skew if d else None,
                  d.kurtosis if d else None, d.crash_probability if d else None,
                  "true" if e.arbitrage.bad else "false",
                  orjson.dumps(details, option=orjson.OPT_SERIALIZE_NUMPY).decode()]
        cells = []
        for v in values:
            if v is None or (isinstance(v, float) and not np.isfinite(v)):
                cells.append("\\N")
            elif isinstance(v, float):
                cells.append(repr(float(v)))
            else:
                cells.append(_copy_escape(str(v)))
        lines.append("\t".join(cells) + "\n")
    if lines:
        session.copy_rows("chain_expiry_analytics", EXPIRY_COLUMNS, "".join(lines))


class ChainPollService:
    """One scheduler firing of chain_poll (see the module docstring)."""

    def __init__(self, *, db: Database, blobs: BlobStore, bus: Bus,
                 provider_for: Callable[[str, datetime], ChainProvider],
                 calendar: MarketCalendar, rate_on: Callable[[date], float], raw_bucket: str,
                 cfg: AnalyticsConfig | None = None) -> None:
        self._db = db
        self._blobs = blobs
        self._bus = bus
        self._provider_for = provider_for
        self._calendar = calendar
        self._rate_on = rate_on
        self._bucket = raw_bucket
        self._cfg = cfg

    @classmethod
    def from_runtime(cls, rt: Runtime) -> ChainPollService:
        from shared.adapters.blobs import GcsBlobStore
        from shared.adapters.providers.factory import provider_factory
        from shared.rules import default_calendar, risk_free_rate

        settings = rt.settings
        calendar = default_calendar()
        return cls(
            db=rt.database, bus=rt.bus,
            blobs=GcsBlobStore(settings.project_id, emulator=settings.storage_emulator_host is not None),
            provider_for=provider_factory(settings, calendar), calendar=calendar,
            rate_on=risk_free_rate, raw_bucket=settings.raw_bucket,
        )

    # ------------------------------------------------------------------------------------
    def __call__(self, run: ScheduledRun, now: datetime) -> Outcome:
        try:
            cmd = ChainPollCommand.model_validate(run.payload)
        except ValidationError as exc:
            raise PermanentError(f"chain_poll payload: {exc.errors()[0]['msg']} "
                                 f"at {exc.errors()[0]['loc']}", reason_code="bad_command") from None
        symbol = cmd.symbol.upper()
        if not _SYMBOL.match(symbol):
            raise PermanentError(f"not a symbol: {cmd.symbol!r}", reason_code="bad_command")
        market_time = run.scheduled_for
        if not cmd.force and not self._calendar.is_market_open(market_time):
            return Outcome.skipped(reason="market closed", at=market_time.isoformat())

        existing = self._existing_run(run.run_id)
        if existing is not None:
            return self._resume(existing)

        self._publish_pending(symbol)
        provider = self._provider_for(symbol, market_time)
        try:
            raw = provider.fetch(symbol, market_time)
        except PermanentError as exc:  # an HTML block page, an expired token, ...
            self._record(run.run_id, symbol, provider.name, "rejected", now,
                         reason_code=exc.reason_code, reason=exc.reason)
            logger.warning("fetch refused: %s", exc.reason, extra={"reason_code": exc.reason_code})
            return Outcome.rejected(reason_code=exc.reason_code, reason=exc.reason)
        except TransientError as exc:  # recorded, then retried by the scheduler's policy
            self._record(run.run_id, symbol, provider.name, "failed", now,
                         reason_code=exc.reason_code, reason=exc.reason, claim=False)
            raise
        digest = hashlib.sha256(raw.body).hexdigest()
        blob = self._store_raw(raw, digest)
        try:
            snap = provider.parse(raw)
        except PayloadRejected as exc:
            self._record(run.run_id, symbol, raw.source, "rejected", now, reason_code=exc.reason_code,
                         reason=f"{exc.reason} (raw: {blob})")
            logger.warning("payload rejected: %s", exc.reason, extra={"reason_code": exc.reason_code})
            return Outcome.rejected(reason_code=exc.reason_code, reason=exc.reason, raw=blob)

        stale = self._stale_reason(snap, digest)
        if stale is not None:
            self._record(run.run_id, snap.symbol, snap.source, "stale", now, asof=snap.asof,
                         reason_code="stale_payload", reason=stale)
            return Outcome.skipped(reason="stale payload", asof=snap.asof.isoformat())

        done = analyse_snapshot(snap, self._calendar, self._rate_on, self._cfg)
        snapshot_id = uuid.uuid4()
        status = "bad_chain" if done.analytics.bad else "published"
        try:
            with self._db.system() as s:
                if not s.claim_event(CONSUMER, run.run_id, topic="schedule"):
                    return Outcome.duplicate(run_id=run.run_id)
                self._insert_poll(s, run.run_id, snap.symbol, snap.source, status, now,
                                  asof=snap.asof, snapshot_id=snapshot_id,
                                  reason_code=None if status == "published" else "arbitrage",
                                  reason=None if status == "published" else self._why_bad(done))
                store_snapshot(s, snapshot_id, run.run_id, done, digest, blob)
        except DatabaseError as exc:
            if sqlstate(exc) != "23505":
                raise
            # Another run stored the same snapshot time between our stale check and our
            # insert (two firings at once): the whole transaction rolled back; this run is
            # stale, like any other repeat of a stored snapshot.
            self._record(run.run_id, snap.symbol, snap.source, "stale", now, asof=snap.asof,
                         reason_code="stale_payload",
                         reason=f"snapshot time {snap.asof.isoformat()} stored concurrently")
            return Outcome.skipped(reason="stale payload", asof=snap.asof.isoformat())
        if status == "bad_chain":
            logger.warning("bad chain stored, not published: %s", self._why_bad(done))
            return Outcome.rejected(reason_code="arbitrage", reason=self._why_bad(done),
                                    snapshot_id=str(snapshot_id))
        self._publish(snapshot_id, done, blob)
        return Outcome.done(snapshot_id=str(snapshot_id), legs=snap.n_legs,
                            expiries=len(done.analytics.expiries), asof=snap.asof.isoformat())

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _why_bad(done: AnalysedSnapshot) -> str:
        bad = [e for e in done.analytics.expiries if e.arbitrage.bad]
        return "; ".join(f"{e.expiry}: {e.arbitrage.vertical_violations} vertical, "
                         f"{e.arbitrage.butterfly_violations} butterfly of "
                         f"{e.arbitrage.strikes_checked} strikes ({e.arbitrage.worst})" for e in bad)

    def _store_raw(self, raw: RawPayload, digest: str) -> str:
        key = f"raw/{raw.source}/{raw.symbol}/{digest}.json.gz"
        return self._blobs.put(self._bucket, key, gzip.compress(raw.body, mtime=0),
                               content_type="application/gzip")

    def _existing_run(self, run_id: str) -> dict[str, Any] | None:
        with self._db.system() as s:
            rows = s.execute(
                "SELECT p.status, p.snapshot_id, s.published_at FROM chain_polls p "
                "LEFT JOIN chain_snapshots s ON s.snapshot_id = p.snapshot_id "
                "WHERE p.run_id = :r AND p.status <> 'failed'", r=run_id).dicts()
        return rows[0] if rows else None

    def _resume(self, existing: dict[str, Any]) -> Outcome:
        """A retried run: publish a stored snapshot whose publish failed, else nothing."""
        if existing["status"] == "published" and existing["published_at"] is None:
            done = self._load_for_publish(existing["snapshot_id"])
            self._bus.publish(done)
            self._mark_published(existing["snapshot_id"])
            return Outcome.done(snapshot_id=str(existing["snapshot_id"]), resumed=True)
        return Outcome.duplicate(recorded=existing["status"])

    def _stale_reason(self, snap: ChainSnapshot, digest: str) -> str | None:
        """Why ``snap`` repeats a stored snapshot (its time, or the last stored one's bytes)."""
        with self._db.system() as s:
            if s.execute("SELECT 1 FROM chain_snapshots WHERE symbol = :s AND source = :src "
                         "AND asof = :a", s=snap.symbol, src=snap.source, a=snap.asof).rows:
                return f"snapshot time {snap.asof.isoformat()} is already stored"
            newest = s.execute(
                "SELECT payload_sha256, asof FROM chain_snapshots WHERE symbol = :s AND source = :src "
                "ORDER BY created_at DESC LIMIT 1", s=snap.symbol, src=snap.source).rows
        if newest and newest[0][0] == digest:
            return f"the payload repeats the bytes of the snapshot of {newest[0][1].isoformat()}"
        return None

    def _record(self, run_id: str, symbol: str, source: str, status: str, now: datetime, *,
                asof: datetime | None = None, reason_code: str | None = None,
                reason: str | None = None, claim: bool = True) -> None:
        """Record how a run ended. ``claim=False`` (a failure to be retried) leaves the run
        open: a retry replaces the row with its own outcome."""
        with self._db.system() as s:
            if not claim or s.claim_event(CONSUMER, run_id, topic="schedule"):
                self._insert_poll(s, run_id, symbol, source, status, now, asof=asof,
                                  reason_code=reason_code, reason=reason)

    @staticmethod
    def _insert_poll(s: Session, run_id: str, symbol: str, source: str, status: str,
                     now: datetime, *, asof: datetime | None = None,
                     snapshot_id: uuid.UUID | None = None, reason_code: str | None = None,
                     reason: str | None = None) -> None:
        # a 'failed' row (a fetch to be retried) is the only one a later outcome replaces
        s.execute(
            "INSERT INTO chain_polls (run_id, symbol, source, status, reason_code, reason, "
            "snapshot_id, asof, polled_at) VALUES (:run, :symbol, :source, :status, :code, "
            ":reason, :sid, :asof, :now) ON CONFLICT (run_id) DO UPDATE SET "
            "status = EXCLUDED.status, reason_code = EXCLUDED.reason_code, "
            "reason = EXCLUDED.reason, snapshot_id = EXCLUDED.snapshot_id, asof = EXCLUDED.asof, "
            "polled_at = EXCLUDED.polled_at WHERE chain_polls.status = 'failed'",
            run=run_id, symbol=symbol, source=source, status=status, code=reason_code,
            reason=reason[:2000] if reason else None, sid=snapshot_id, asof=asof, now=now,
        )

    def _publish(self, snapshot_id: uuid.UUID, done: AnalysedSnapshot, blob: str) -> None:
        snap = done.snapshot
        message = ChainSnapshotV1(
            snapshot_id=snapshot_id, symbol=snap.symbol, asof=snap.asof, spot=snap.spot,
            source=snap.source, expiries=tuple(e.expiry for e in done.analytics.expiries),
            legs=snap.n_legs, raw_blob=blob, flags=snap.flags,
        )
        self._bus.publish(message)  # a failure here is retried; _resume publishes then
        self._mark_published(snapshot_id)

    def _publish_pending(self, symbol: str) -> int:
        """Publish stored, good snapshots of ``symbol`` whose publish failed (the outbox).

        Rows are locked with ``SKIP LOCKED`` so concurrent runs never publish one twice.
        """
        published = 0
        with self._db.system() as s:
            pending = s.execute(
                "SELECT snapshot_id FROM chain_snapshots WHERE symbol = :s AND published_at IS NULL "
                "AND NOT bad_chain ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED",
                s=symbol).rows
            for (snapshot_id,) in pending:
                self._bus.publish(self._load_for_publish(snapshot_id, s))
                s.execute("UPDATE chain_snapshots SET published_at = now() WHERE snapshot_id = :i",
                          i=snapshot_id)
                published += 1
        if published:
            logger.info("published %d snapshot(s) left unpublished by earlier runs", published)
        return published

    def _load_for_publish(self, snapshot_id: uuid.UUID, session: Session | None = None
                          ) -> ChainSnapshotV1:
        if session is None:
            with self._db.system() as s:
                return self._load_for_publish(snapshot_id, s)
        return self._message_from_row(snapshot_id, session)

    @staticmethod
    def _message_from_row(snapshot_id: uuid.UUID, s: Session) -> ChainSnapshotV1:
        row = s.execute(
            "SELECT s.symbol, s.asof, s.spot, s.source, s.legs, s.raw_blob, s.flags, "
            "ARRAY(SELECT expiry FROM chain_expiry_analytics a WHERE a.snapshot_id = s.snapshot_id "
            "ORDER BY expiry) AS expiries FROM chain_snapshots s WHERE s.snapshot_id = :i",
            i=snapshot_id).dicts()[0]
        return ChainSnapshotV1(snapshot_id=snapshot_id, symbol=row["symbol"], asof=row["asof"],
                               spot=row["spot"], source=row["source"],
                               expiries=tuple(row["expiries"]), legs=row["legs"],
                               raw_blob=row["raw_blob"], flags=tuple(row["flags"]))

    def _mark_published(self, snapshot_id: uuid.UUID) -> None:
        with self._db.system() as s:
            s.execute("UPDATE chain_snapshots SET published_at = now() WHERE snapshot_id = :i",
                      i=snapshot_id)
