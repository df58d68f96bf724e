"""notify: signals, kill switches and model events → each tenant's channels, exactly once in
effect, never across tenants, never blocking.

For one event:

1. **Who**: a signal's tenant; a kill-switch or model event's tenant, or every active
   tenant when it is global. ``notify.dead`` goes to the operator (``QS_OPERATOR_EMAIL``).
2. **What**: the card (:mod:`shared.domain.notify.render`): a signal's card carries its
   proposal (from decide's decisions, read in the tenant's session) and the payoff diagram.
3. **Where and when**: the tenant's preferences (:mod:`shared.domain.notify.routing`):
   routes, quiet hours, rate limit. Each (what, tenant, channel) is a row of the ledger
   (``notify_deliveries``, unique on ``dedup_key`` = kind and subject): a redelivered or
   republished event finds its rows and sends nothing twice; a row is claimed ('sending')
   in a transaction before it is sent, so two deliveries of one event at the same moment
   never both send it; a delivery another instance is sending makes the event retry
   later rather than ack it, and any failure before the outcome is recorded gives the
   claim back. A crash between a provider accepting a message and the ledger update can
   send it again on the redelivery: webhook receivers dedupe on ``X-QS-Idempotency-Key``
   and mail clients on the Message-ID; Telegram has no idempotency key, so that window
   can show a chat message twice. A database trigger refuses a
   signal recorded for a second tenant; before sending, the function checks again that the
   row's tenant is the event's.
4. **Send**: every pending delivery at once, each channel on its own thread pool (up to
   :data:`MAX_SENDS_PER_CHANNEL` at a time) with the send timeout (``QS_NOTIFY_TIMEOUT_S``):
   a stalled channel delays no other channel; a send its pool never started in time is
   not counted as an attempt. A success is
   stamped *sent*; a permanent failure (a group chat, a bad address, a 4xx) is *dead* at
   once; a transient one is *failed* and the event is retried (Pub/Sub's backoff) until its
   ``QS_NOTIFY_MAX_ATTEMPTS``-th attempt (or Pub/Sub's last delivery), then *dead*. Every
   dead delivery publishes ``notify.dead`` for the operator, stamped ``announced_at``; one
   whose announcement failed is announced on the redelivery. A global event reaches every
   tenant even when one tenant's settings are broken (that tenant is logged and skipped).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.adapters.bus import Bus
from shared.adapters.db import Database, Session
from shared.adapters.risk_state import load_tenant
from shared.contracts import (
    Message,
    NotifyDeadV1,
    RetrainFailedV1,
    SignalApprovedV1,
    SignalBlockedV1,
)
from shared.domain.notify.cards import Card, SendResult
from shared.domain.notify.routing import Planned, masked, plan, prefs_from_settings
from shared.errors import PermanentError, TransientError
from shared.runtime import EventContext, Outcome, Runtime, ScheduledRun

logger = logging.getLogger(__name__)


class Channel(Protocol):
    name: str

    def send(self, target: dict, card: Card, *, idempotency_key: str,
             timeout: float) -> SendResult: ...


MAX_SENDS_PER_CHANNEL = 16  # concurrent sends per channel and event
PUBSUB_MAX_DELIVERIES = 5  # the push subscriptions' max delivery attempts (shared/topology.py)


@dataclass
class _Claims:
    """What the claims of one event found besides its own rows."""

    in_flight: int = 0
    unannounced: list = field(default_factory=list)


class CrossTenantDelivery(PermanentError):
    reason_code = "cross_tenant"


class BadNotifySettings(PermanentError):
    reason_code = "bad_notify_settings"


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: uuid.UUID
    tenant_id: uuid.UUID | None
    channel: str
    target: dict
    attempts: int
    card: Card
    dedup_key: str


def subject_of(message: Message) -> str:
    """What an event is about (the ledger's dedup key is the kind and this)."""
    if isinstance(message, SignalApprovedV1 | SignalBlockedV1):
        return str(message.verdict_id)
    kind = message.topic
    if kind.startswith("killswitch."):
        m: Any = message
        return f"{m.switch}:{m.scope}:{m.scope_key or ''}:{m.tenant_id or ''}:{m.at.isoformat()}"
    if kind.startswith("model."):
        m = message
        return f"{m.model_type}:{m.tenant_id or ''}:v{m.model_version}"
    if kind == "retrain.failed":
        m = message
        return f"{m.model_type}:{m.tenant_id or ''}:{m.at.isoformat()}"
    if isinstance(message, NotifyDeadV1):
        return str(message.delivery_id)
    raise PermanentError(f"notify does not handle {kind}", reason_code="unexpected_event")


def channels_from_settings(settings: Any) -> dict[str, Channel]:
    """The channels this deployment has credentials for (a channel without them is not
    offered: its deliveries are not recorded)."""
    from shared.adapters.channels import (
        EmailChannel,
        SesSender,
        SmtpSender,
        TelegramChannel,
        WebhookChannel,
    )

    out: dict[str, Channel] = {}
    if settings.telegram_bot_token is not None:
        out["telegram"] = TelegramChannel(settings.telegram_bot_token.get_secret_value(),
                                          base_url=settings.telegram_base_url)
    if settings.email_backend == "ses":
        out["email"] = EmailChannel(SesSender(settings.ses_region, settings.email_sender))
    elif settings.smtp_host:
        out["email"] = EmailChannel(SmtpSender(
            settings.smtp_host, settings.smtp_port, security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value()
            if settings.smtp_password else None, sender=settings.email_sender))
    if settings.webhook_signing_key is not None:
        out["webhook"] = WebhookChannel(
            signing_key=settings.webhook_signing_key.get_secret_value(),
            allow_private=settings.webhook_allow_private)
    return out


class NotifyService:
    """One event → the ledger → the channels (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus, channels: Mapping[str, Channel],
                 timeout: float = 10.0, max_attempts: int = 4,
                 operator_email: str | None = None,
                 render_signal: Callable[..., Card] | None = None,
                 render_event: Callable[..., Card] | None = None) -> None:
        self._db = db
        self._bus = bus
        self._channels = dict(channels)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._operator = operator_email
        if render_signal is None or render_event is None:
            from shared.domain.notify.render import render_event as re_
            from shared.domain.notify.render import render_signal as rs_

            render_signal, render_event = render_signal or rs_, render_event or re_
        self._render_signal = render_signal
        self._render_event = render_event
        # what one event's claims found, per request thread (gen2 serves requests on threads)
        self._local = threading.local()

    @classmethod
    def from_runtime(cls, rt: Runtime) -> NotifyService:
        s = rt.settings
        return cls(db=rt.database, bus=rt.bus, channels=channels_from_settings(s),
                   timeout=s.notify_timeout_s, max_attempts=s.notify_max_attempts,
                   operator_email=s.operator_email)

    # ------------------------------------------------------------------------------------
    def __call__(self, message: Message, ctx: EventContext) -> Outcome:
        now = ctx.received_at
        kind = message.topic
        dedup = f"{kind}:{subject_of(message)}"
        self._local.claims = _Claims()
        if isinstance(message, NotifyDeadV1):
            pending = self._operator_rows(message, ctx, dedup, now)
        else:
            tenant = getattr(message, "tenant_id", None)
            fan_out = tenant is None
            tenants = [tenant] if not fan_out else self._db.active_tenants()
            pending = []
            for tenant_id in tenants:
                try:
                    pending += self._tenant_rows(message, ctx, dedup, tenant_id, now)
                except PermanentError as exc:
                    if not fan_out:  # the event's own tenant: acked and recorded
                        raise
                    logger.warning("%s for tenant %s not delivered: %s", kind, tenant_id,
                                   exc.reason)
        return self._deliver(pending, now, ctx.delivery_attempt, kind=kind)

    def _deliver(self, pending: list[Delivery], now: datetime, delivery_attempt: int | None,
                 **detail: Any) -> Outcome:
        """Send the claimed deliveries and record the outcome; whatever goes wrong, a claim
        is never left behind (it goes back to pending for the redelivery)."""
        claims = self._local.claims
        try:
            results = self._send_all(pending)
            sent, failed, dead, unsent = self._record(pending, results, now, delivery_attempt)
        except BaseException:
            self._release([d for d in pending], now)
            raise
        unannounced = self._announce(claims.unannounced, now)
        if failed or unsent or claims.in_flight or unannounced:
            raise TransientError(
                f"{failed} deliver(ies) failed, {unsent} not tried, {claims.in_flight} in "
                f"flight elsewhere, {unannounced} dead not announced: retried "
                f"({sent} sent, {dead} dead)", reason_code="delivery_failed")
        return Outcome.done(deliveries=len(pending), sent=sent, dead=dead, **detail)

    # ------------------------------------------------------------------------------------
    def _tenant_rows(self, message: Message, ctx: EventContext, dedup: str,
                     tenant_id: uuid.UUID, now: datetime) -> list[Delivery]:
        """Record this tenant's deliveries of an event (once); those still to send."""
        return self._record_for(
            kind=message.topic, dedup=dedup, event_id=ctx.event_id, tenant_id=tenant_id,
            event_tenant=getattr(message, "tenant_id", None), now=now,
            card_for=lambda s, tenant: self._card(s, message, dry_run=tenant.in_dry_run(now)))

    def _record_for(self, *, kind: str, dedup: str, event_id: str, tenant_id: uuid.UUID,
                    event_tenant: uuid.UUID | None, now: datetime,
                    card_for: Callable[[Session, Any], Card | None]) -> list[Delivery]:
        """Plan, record (once) and return the tenant's deliveries still to send."""
        with self._db.tenant(tenant_id) as s:
            tenant = load_tenant(s)  # unknown tenant: a permanent error, acked and recorded
            if not tenant.active:
                return []
            try:
                prefs = prefs_from_settings(tenant.settings)
            except ValueError as exc:
                raise BadNotifySettings(str(exc)) from None
            sent_last_hour = s.execute(
                "SELECT count(*) FROM notify_deliveries WHERE status = 'sent' AND sent_at > :t",
                t=now - timedelta(hours=1)).scalar()
            planned = tuple(
                p if p.skip_reason or p.channel in self._channels else
                Planned(p.channel, p.target, f"this deployment has no {p.channel} channel "
                                             "configured")
                for p in plan(kind, prefs, now=now, sent_last_hour=int(sent_last_hour)))
            if not planned:
                return []
            card = card_for(s, tenant)
            if card is None:
                return []
            for p in planned:
                self._insert(s, 
                    "INSERT INTO notify_deliveries (delivery_id, dedup_key, event_id, kind, "
                    "subject, tenant_id, channel, target, status, last_error, created_at, "
                    "updated_at) VALUES (:id, :k, :e, :kind, :subj, :t, :ch, :tg, :st, :err, "
                    ":now, :now) ON CONFLICT (dedup_key, tenant_key, channel) DO NOTHING",
                    id=uuid.uuid4(), k=dedup, e=event_id, kind=kind,
                    subj=dedup.split(":", 1)[1], t=tenant_id, ch=p.channel,
                    tg=masked(p.channel, p.target),
                    st="skipped" if p.skip_reason else "pending", err=p.skip_reason, now=now)
            rows = self._claim(s, dedup, now, "tenant_id = :t", t=tenant_id)
        targets = {p.channel: p.target for p in planned}
        out = []
        for delivery_id, row_tenant, channel, attempts in rows:
            if row_tenant != tenant_id or event_tenant not in (None, tenant_id):
                raise CrossTenantDelivery(f"delivery {delivery_id} of tenant {row_tenant} "
                                          f"for an event of tenant {tenant_id}")
            if channel in targets and channel in self._channels:
                out.append(Delivery(delivery_id, tenant_id, channel, targets[channel],
                                    attempts, card, dedup))
        return out

    # ------------------------------------------------------------------------------------
    def digest(self, run: ScheduledRun, now: datetime) -> Outcome:
        """The scheduled daily digest: each active tenant's IST session (verdicts and the
        paper book) to the channels its routes give ``daily.digest``; a quiet day sends
        nothing. Once per tenant and day (the ledger), whatever the retries."""
        from shared.domain.calendar import ist_day_start
        from shared.domain.notify.digest import DayActivity, render_digest

        start = ist_day_start(run.scheduled_for)
        day = start.date()

        def card_for(s: Session, tenant: Any) -> Card | None:
            approved = s.execute(
                "SELECT symbol, structure, coalesce(net_ev, 0) FROM risk_verdicts WHERE "
                "approved AND origin = 'proposal' AND decided_at >= :a AND decided_at < :b "
                "ORDER BY decided_at", a=start, b=start + timedelta(days=1)).rows
            blocked = s.execute(
                "SELECT blocked_by FROM risk_verdicts WHERE NOT approved AND origin = "
                "'proposal' AND decided_at >= :a AND decided_at < :b ORDER BY decided_at",
                a=start, b=start + timedelta(days=1)).rows
            book = s.execute(
                "SELECT count(*) FILTER (WHERE status = 'open'), coalesce(sum(realized_pnl) "
                "FILTER (WHERE status = 'closed' AND closed_at >= :a AND closed_at < :b), 0) "
                "FROM paper_positions", a=start, b=start + timedelta(days=1)).rows[0]
            activity = DayActivity(
                day=day, approved=tuple((a, b, float(c)) for a, b, c in approved),
                blocked_by=tuple(b for (b,) in blocked), open_positions=int(book[0]),
                realized_pnl=float(book[1]), dry_run=tenant.in_dry_run(now))
            return None if activity.empty else render_digest(activity)

        self._local.claims = _Claims()
        pending: list[Delivery] = []
        for tenant_id in self._db.active_tenants():
            try:
                pending += self._record_for(
                    kind="daily.digest", dedup=f"daily.digest:{day.isoformat()}",
                    event_id=run.run_id, tenant_id=tenant_id, event_tenant=None, now=now,
                    card_for=card_for)
            except PermanentError as exc:  # one tenant's bad settings never stop the rest
                logger.warning("digest for %s not sent: %s", tenant_id, exc.reason)
        return self._deliver(pending, now, None, day=day.isoformat())

    def _claim(self, s: Session, dedup: str, now: datetime, who: str,
               **params: Any) -> tuple[tuple[Any, ...], ...]:
        """Move this event's deliveries that are due (pending, failed, or left 'sending' by
        an instance that died: older than the send timeout) to 'sending', and return them:
        of two deliveries of one event at the same moment, only one gets each row. Rows
        another instance is sending right now are counted (the event is then retried), and
        dead rows whose ``notify.dead`` was never published are collected to announce."""
        stale = now - timedelta(seconds=self._timeout + 60.0)
        where = f"dedup_key = :k AND {who}"  # constants of this module, never input
        self._local.claims.in_flight += int(s.execute(
            f"SELECT count(*) FROM notify_deliveries WHERE {where} "  # noqa: S608
            "AND status = 'sending' AND updated_at >= :stale", k=dedup, stale=stale,
            **params).scalar())
        self._local.claims.unannounced += [tuple(r) for r in s.execute(
            "SELECT delivery_id, tenant_id, channel, attempts, last_error, dedup_key FROM "
            f"notify_deliveries WHERE {where} AND status = 'dead' "  # noqa: S608
            "AND announced_at IS NULL AND tenant_id IS NOT NULL", k=dedup, **params).rows]
        return s.execute(
            "UPDATE notify_deliveries SET status = 'sending', updated_at = :now "
            f"WHERE {where} AND (status IN ('pending', 'failed') "  # noqa: S608
            "OR (status = 'sending' AND updated_at < :stale)) "
            "RETURNING delivery_id, tenant_id, channel, attempts",
            k=dedup, now=now, stale=stale, **params).rows

    def _release(self, deliveries: list[Delivery], now: datetime) -> None:
        """Give claims back (status pending) after a failure before they were recorded."""
        for d in deliveries:
            try:
                session = self._db.tenant(d.tenant_id) if d.tenant_id else self._db.system()
                with session as s:
                    s.execute("UPDATE notify_deliveries SET status = 'pending', updated_at = "
                              ":now WHERE delivery_id = :i AND status = 'sending'",
                              now=now, i=d.delivery_id)
            except Exception:  # noqa: BLE001 - best effort: the stale-claim rule takes over
                logger.warning("claim of %s not released", d.delivery_id)

    @staticmethod
    def _insert(s: Session, sql: str, **params: Any) -> None:
        """Record a delivery; the one-tenant-per-signal trigger's refusal is permanent."""
        from pg8000.exceptions import DatabaseError

        from shared.adapters.db import sqlstate

        try:
            s.execute(sql, **params)
        except DatabaseError as exc:
            if sqlstate(exc) == "23000":
                info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                raise CrossTenantDelivery(f"refused by the database: {info.get('M', exc)}"
                                          ) from None
            raise

    def _operator_rows(self, message: NotifyDeadV1, ctx: EventContext, dedup: str,
                       now: datetime) -> list[Delivery]:
        if not self._operator or "email" not in self._channels:
            logger.error("dead delivery %s (%s, tenant %s): %s; no operator email configured",
                         message.delivery_id, message.channel, message.tenant_id, message.error)
            return []
        card = self._render_event(message)
        with self._db.system() as s:
            s.execute(
                "INSERT INTO notify_deliveries (delivery_id, dedup_key, event_id, kind, subject, "
                "tenant_id, channel, target, status, created_at, updated_at) VALUES (:id, :k, "
                ":e, 'notify.dead', :subj, NULL, 'email', :tg, 'pending', :now, :now) "
                "ON CONFLICT (dedup_key, tenant_key, channel) DO NOTHING",
                id=uuid.uuid4(), k=dedup, e=ctx.event_id, subj=str(message.delivery_id),
                tg=masked("email", {"to": self._operator}), now=now)
            rows = self._claim(s, dedup, now, "tenant_id IS NULL")
        return [Delivery(i, None, "email", {"to": self._operator}, a, card, dedup)
                for i, _, _, a in rows]

    def _card(self, s: Session, message: Message, *, dry_run: bool) -> Card:
        if isinstance(message, SignalApprovedV1 | SignalBlockedV1):
            proposal = None
            row = s.execute("SELECT proposal, explanation FROM decisions WHERE proposal_id = :p",
                            p=message.proposal_id).dicts()
            if row:
                from shared.adapters.decide_state import proposal_of

                proposal = proposal_of(row[0])
            return self._render_signal(message, proposal)
        if isinstance(message, RetrainFailedV1):
            import html

            text = (f"Retraining {message.model_type} failed: {message.error}"
                    + (f" (data {message.data_version})" if message.data_version else "")
                    + ". Production stays as it was.")
            return Card(kind=message.topic, title=f"{message.model_type}: retraining failed",
                        text=text, html=f"<p>{html.escape(text)}</p>",
                        data={"model_type": message.model_type, "error": message.error,
                              "data_version": message.data_version,
                              "at": message.at.isoformat()}, dry_run=dry_run)
        return self._render_event(message, dry_run=dry_run)

    # ------------------------------------------------------------------------------------
    def _send_all(self, pending: list[Delivery]) -> dict[uuid.UUID, SendResult | None]:
        """Every delivery on a thread of its channel's own pool (a stalled channel delays no
        other channel), each within the channel timeout. A delivery its pool never started
        in time maps to None (not tried: it is released, not counted as an attempt)."""
        if not pending:
            return {}
        pools: dict[str, ThreadPoolExecutor] = {}
        futures = {}
        try:
            for d in pending:
                pool = pools.get(d.channel)
                if pool is None:
                    n = sum(1 for x in pending if x.channel == d.channel)
                    pool = pools[d.channel] = ThreadPoolExecutor(
                        max_workers=min(MAX_SENDS_PER_CHANNEL, n),
                        thread_name_prefix=f"send-{d.channel}")
                futures[d.delivery_id] = pool.submit(
                    self._channels[d.channel].send, d.target, d.card,
                    idempotency_key=_idempotency_key(d), timeout=self._timeout)
            wait(futures.values(), timeout=self._timeout + 2.0)
            out: dict[uuid.UUID, SendResult | None] = {}
            for i, f in futures.items():
                if f.cancel():
                    out[i] = None  # never started: not an attempt
                elif not f.done():
                    out[i] = SendResult(False, False, f"no answer within {self._timeout:g} s")
                elif f.exception() is not None:
                    out[i] = SendResult(False, False, f"channel error: {f.exception()!r}")
                else:
                    out[i] = f.result()
            return out
        finally:
            for pool in pools.values():
                pool.shutdown(wait=False, cancel_futures=True)

    def _record(self, pending: list[Delivery], results: Mapping[uuid.UUID, SendResult | None],
                now: datetime, delivery_attempt: int | None) -> tuple[int, int, int, int]:
        """Stamp each claimed delivery with its outcome (only if still claimed by us), then
        announce the dead ones. The last attempt is the ledger's ``max_attempts`` or Pub/Sub's
        last delivery (``delivery_attempt`` >= :data:`PUBSUB_MAX_DELIVERIES`)."""
        sent = failed = dead = unsent = 0
        last_delivery = (delivery_attempt or 0) >= PUBSUB_MAX_DELIVERIES
        newly_dead: list[tuple[Any, ...]] = []
        for d in pending:
            r = results.get(d.delivery_id)
            if r is None:
                unsent += 1
                self._release([d], now)
                continue
            attempts = d.attempts + 1
            if r.ok:
                status, sent = "sent", sent + 1
            elif r.permanent or attempts >= self._max_attempts or last_delivery:
                status, dead = "dead", dead + 1
                if d.tenant_id is not None:
                    newly_dead.append((d.delivery_id, d.tenant_id, d.channel, attempts,
                                       r.detail[:2000] or "failed", d.dedup_key))
            else:
                status, failed = "failed", failed + 1
            session = self._db.tenant(d.tenant_id) if d.tenant_id else self._db.system()
            with session as s:
                s.execute("UPDATE notify_deliveries SET status = :st, attempts = :a, "
                          "last_error = :err, provider_id = :pid, updated_at = :now, "
                          "sent_at = CASE WHEN :st = 'sent' THEN CAST(:now AS timestamptz) END "
                          "WHERE delivery_id = :id AND status = 'sending'", st=status,
                          a=attempts, err=None if r.ok else r.detail[:2000], pid=r.provider_id,
                          now=now, id=d.delivery_id)
            if status != "sent":
                logger.warning("%s delivery %s %s: %s", d.channel, d.delivery_id, status,
                               r.detail)
        self._local.claims.unannounced += newly_dead
        return sent, failed, dead, unsent

    def _announce(self, rows: list[tuple[Any, ...]], now: datetime) -> int:
        """Publish ``notify.dead`` for each dead delivery and stamp it announced; returns how
        many could not be published (the event is then retried, and they are again)."""
        missed = 0
        for delivery_id, tenant_id, channel, attempts, error, dedup_key in rows:
            try:
                self._bus.publish(NotifyDeadV1(
                    delivery_id=delivery_id, tenant_id=tenant_id, channel=channel,
                    source_event_id=dedup_key, attempts=max(int(attempts), 1),
                    error=(error or "failed")[:2000], at=now))
            except TransientError as exc:
                missed += 1
                logger.error("notify.dead for %s not published: %s", delivery_id, exc.reason)
                continue
            with self._db.tenant(tenant_id) as s:
                s.execute("UPDATE notify_deliveries SET announced_at = :now "
                          "WHERE delivery_id = :i", now=now, i=delivery_id)
        return missed


def _idempotency_key(d: Delivery) -> str:
    """A stable, short, ASCII key per (what, tenant, channel) that receivers dedupe on."""
    import hashlib

    raw = f"{d.dedup_key}|{d.channel}|{d.tenant_id or 'operator'}".encode()
    return "qs-" + hashlib.sha256(raw).hexdigest()[:40]
