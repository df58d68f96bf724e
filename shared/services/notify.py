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
   never both send it. A crash between a provider accepting a message and the ledger
   update can send it again on the redelivery: receivers dedupe on the idempotency key
   (webhooks' ``X-QS-Idempotency-Key``, email's Message-ID). A database trigger refuses a
   signal recorded for a second tenant; before sending, the function checks again that the
   row's tenant is the event's.
4. **Send**: every pending delivery at once, each channel on its own thread with its own
   timeout (``QS_NOTIFY_TIMEOUT_S``): a stalled channel delays nothing else. A success is
   stamped *sent*; a permanent failure (a group chat, a bad address, a 4xx) is *dead* at
   once; a transient one is *failed* and the event is retried (Pub/Sub's backoff) until its
   ``QS_NOTIFY_MAX_ATTEMPTS``-th attempt, then *dead*. Every dead delivery publishes
   ``notify.dead`` once, for the operator.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
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
        if isinstance(message, NotifyDeadV1):
            pending = self._operator_rows(message, ctx, dedup, now)
        else:
            tenant = getattr(message, "tenant_id", None)
            tenants = [tenant] if tenant is not None else self._db.active_tenants()
            pending = []
            for tenant_id in tenants:
                pending += self._tenant_rows(message, ctx, dedup, tenant_id, now)
        results = self._send_all(pending)
        sent, failed, dead = self._record(pending, results, now)
        if failed:
            raise TransientError(f"{failed} deliver(ies) failed and will be retried "
                                 f"({sent} sent, {dead} dead)", reason_code="delivery_failed")
        return Outcome.done(kind=kind, deliveries=len(pending), sent=sent, dead=dead)

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

        pending: list[Delivery] = []
        for tenant_id in self._db.active_tenants():
            try:
                pending += self._record_for(
                    kind="daily.digest", dedup=f"daily.digest:{day.isoformat()}",
                    event_id=run.run_id, tenant_id=tenant_id, event_tenant=None, now=now,
                    card_for=card_for)
            except PermanentError as exc:  # one tenant's bad settings never stop the rest
                logger.warning("digest for %s not sent: %s", tenant_id, exc.reason)
        results = self._send_all(pending)
        sent, failed, dead = self._record(pending, results, now)
        if failed:
            raise TransientError(f"{failed} digest deliver(ies) failed and will be retried",
                                 reason_code="delivery_failed")
        return Outcome.done(day=day.isoformat(), deliveries=len(pending), sent=sent, dead=dead)

    def _claim(self, s: Session, dedup: str, now: datetime, who: str,
               **params: Any) -> tuple[tuple[Any, ...], ...]:
        """Move this event's deliveries that are due (pending, failed, or left 'sending' by
        an instance that died: older than the send timeout) to 'sending', and return them:
        of two deliveries of one event at the same moment, only one gets each row."""
        stale = now - timedelta(seconds=self._timeout + 60.0)
        return s.execute(
            "UPDATE notify_deliveries SET status = 'sending', updated_at = :now "
            f"WHERE dedup_key = :k AND {who} AND (status IN ('pending', 'failed') "  # noqa: S608 - constant
            "OR (status = 'sending' AND updated_at < :stale)) "
            "RETURNING delivery_id, tenant_id, channel, attempts",
            k=dedup, now=now, stale=stale, **params).rows

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
    def _send_all(self, pending: list[Delivery]) -> dict[uuid.UUID, SendResult]:
        """Every delivery on its own thread, each within the channel timeout."""
        if not pending:
            return {}
        pool = ThreadPoolExecutor(max_workers=min(16, len(pending)), thread_name_prefix="send")
        try:
            futures = {d.delivery_id: pool.submit(
                self._channels[d.channel].send, d.target, d.card,
                idempotency_key=_idempotency_key(d),
                timeout=self._timeout) for d in pending}
            wait(futures.values(), timeout=self._timeout + 2.0)
            out = {}
            for i, f in futures.items():
                if not f.done():
                    out[i] = SendResult(False, False, f"no answer within {self._timeout:g} s")
                elif f.exception() is not None:
                    out[i] = SendResult(False, False, f"channel error: {f.exception()!r}")
                else:
                    out[i] = f.result()
            return out
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _record(self, pending: list[Delivery], results: Mapping[uuid.UUID, SendResult],
                now: datetime) -> tuple[int, int, int]:
        sent = failed = dead = 0
        dead_events: list[NotifyDeadV1] = []
        for d in pending:
            r = results[d.delivery_id]
            attempts = d.attempts + 1
            if r.ok:
                status, sent = "sent", sent + 1
            elif r.permanent or attempts >= self._max_attempts:
                status, dead = "dead", dead + 1
                if d.tenant_id is not None:
                    dead_events.append(NotifyDeadV1(
                        delivery_id=d.delivery_id, tenant_id=d.tenant_id, channel=d.channel,
                        source_event_id=d.dedup_key, attempts=attempts,
                        error=r.detail[:2000] or "failed", at=now))
            else:
                status, failed = "failed", failed + 1
            session = self._db.tenant(d.tenant_id) if d.tenant_id else self._db.system()
            with session as s:
                s.execute("UPDATE notify_deliveries SET status = :st, attempts = :a, "
                          "last_error = :err, provider_id = :pid, updated_at = :now, "
                          "sent_at = CASE WHEN :st = 'sent' THEN CAST(:now AS timestamptz) END "
                          "WHERE delivery_id = :id", st=status, a=attempts,
                          err=None if r.ok else r.detail[:2000], pid=r.provider_id, now=now,
                          id=d.delivery_id)
            if status != "sent":
                logger.warning("%s delivery %s %s: %s", d.channel, d.delivery_id, status,
                               r.detail)
        for event in dead_events:
            try:
                self._bus.publish(event)
            except TransientError as exc:  # the dead row stays; the operator sees it there
                logger.error("notify.dead for %s not published: %s", event.delivery_id,
                             exc.reason)
        return sent, failed, dead


def _idempotency_key(d: Delivery) -> str:
    """A stable, short, ASCII key per (what, tenant, channel) that receivers dedupe on."""
    import hashlib

    raw = f"{d.dedup_key}|{d.channel}|{d.tenant_id or 'operator'}".encode()
    return "qs-" + hashlib.sha256(raw).hexdigest()[:40]
