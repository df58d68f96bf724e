"""``make run``: one market session replayed through the local cloud, end to end.

The driver brings up the local cloud (embedded Postgres, GCS and Pub/Sub emulators, every
function on functions-framework), seeds two demo tenants, and plays one trading session on
a **session clock**: for each minute of the session it steps the shared clock
(:mod:`shared.adapters.replay_clock`, read by every function through ``QS_CLOCK_FILE``) and
lets the local scheduler fire what falls due, exactly as Cloud Scheduler would: chain_poll
for the session's index every minute and news_ingest every few minutes. Everything after
that is the product's own event flow: ``chain.snapshot`` → decide → ``decision.proposed``
→ risk_check → ``signal.*`` → notify → e-mail (a local SMTP server) and a signed webhook
(a local receiver). At 16:00 the daily digest fires.

Pacing: ``speed=None`` (the default) steps as fast as the pipeline goes: the next minute
starts when every subscription is idle. ``speed=S`` plays ``S`` market seconds per wall
second (``S=60``: a minute a second), never faster than the pipeline.

Nothing here decides or computes risk: the driver only sets clocks, fires schedules,
waits, and counts. The report is read back from the database afterwards
(:mod:`local.session_report`).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path
from typing import Any

from local.cloud import REPO_ROOT, CloudConfig, LocalCloud
from shared.adapters.replay_clock import write_anchor
from shared.domain.calendar import IST
from shared.replay.config import DEFAULT_DATE  # the same day as `qs replay`'s
from shared.topology import RetryPolicy

logger = logging.getLogger(__name__)

KIT = REPO_ROOT.parent / "shared" / "fixtures"

WARMUP_SESSIONS = 23
# IST: eight polls a session, so each stored day's bar (open, high, low, close of its
# snapshots) has a range close to the minute-by-minute one decide sees in production; two
# polls would understate the Garman-Klass variance, and the HAR forecast with it
WARMUP_TIMES = tuple(dtime(h, m) for h, m in ((9, 16), (10, 10), (11, 5), (12, 0), (12, 55),
                                              (13, 50), (14, 45), (15, 29)))
SIGNING_KEY = "make-run-local-webhook-signing-key-0123456789"
# a replay retries fast: a transient failure must not stall the session clock for 10 s
REPLAY_RETRY = RetryPolicy(minimum_backoff=timedelta(seconds=1),
                           maximum_backoff=timedelta(seconds=5), max_delivery_attempts=5)

DEMO_TENANTS: tuple[dict[str, Any], ...] = (
    {"name": "desk-alpha", "label": "desk-alpha (₹50 L, broad limits)",
     "settings": {"risk": {"capital": 5_000_000, "max_open_positions": 6},
                  "decide": {"appetite": {"target_annual_vol": 0.5, "confidence_power": 0.5}},
                  "notify": {"email": {"to": "desk@alpha.local"}, "max_per_hour": 120}}},
    {"name": "retail-beta", "label": "retail-beta (₹3 L, tight limits)",
     "settings": {"risk": {"capital": 300_000, "max_open_positions": 2,
                           "daily_loss_limit_pct": 0.02},
                  "notify": {"email": {"to": "me@beta.local"}, "max_per_hour": 60}}},
)


@dataclass(frozen=True)
class SessionOptions:
    """What ``make run`` / ``python -m local session`` plays (defaults: ``make run``'s)."""

    symbol: str = "NIFTY"
    session_date: date = DEFAULT_DATE
    source: str = "simulator"
    seed: int = 1234
    speed: float | None = None  # market seconds per wall second; None: as fast as it goes
    every_minutes: int = 1
    state_dir: Path = REPO_ROOT / ".local" / "session"
    report_path: Path | None = None  # default: <state_dir>/report-<date>.html
    live: bool = True
    max_minutes: int | None = None  # stop after this many session minutes (tests)
    idle_timeout_s: float = 30.0


@dataclass
class Tally:
    """What the live view shows; filled from the database by :meth:`SessionRun.poll`."""

    clock: datetime | None = None
    minutes_done: int = 0
    minutes_total: int = 0
    snapshots: int = 0
    proposals: int = 0
    no_trade: int = 0
    approved: int = 0
    blocked: dict[str, int] = field(default_factory=dict)
    kill_switches: list[str] = field(default_factory=list)
    deliveries: dict[str, int] = field(default_factory=dict)
    webhooks: int = 0
    emails: int = 0
    backlog: int = 0
    e2e_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class SessionResult:
    report_path: Path
    tally: Tally
    elapsed_s: float
    tenants: dict[str, uuid.UUID]
    deliveries: list[Delivery]


# ------------------------------------------------------------------------- local peers


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification that reached a local peer, with the wall time it arrived."""

    channel: str  # "webhook" | "email"
    received_at: float  # Unix seconds
    tenant: str | None
    kind: str | None
    subject: str | None  # the verdict or signal id the notification is about


class WebhookSink:
    """A local webhook endpoint: verifies notify's HMAC and records what arrives."""

    def __init__(self) -> None:
        from shared.adapters.channels import verify_webhook

        self.received: list[Delivery] = []
        self.rejected = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                if verify_webhook(SIGNING_KEY, raw, self.headers.get("X-QS-Timestamp", ""),
                                  self.headers.get("X-QS-Signature", ""), now=now):
                    body = json.loads(raw)
                    data = body.get("data") or {}
                    sink.received.append(Delivery(
                        "webhook", now, data.get("tenant_id"), body.get("kind"),
                        data.get("verdict_id") or data.get("proposal_id")))
                else:
                    sink.rejected += 1
                self.send_response(204)
                self.end_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="webhook-sink").start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MailSink:
    """A local SMTP server (aiosmtpd): counts the e-mails notify sends."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[Delivery] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.received.append(Delivery("email", time.time(), None, None,
                                              ",".join(envelope.rcpt_tos)))
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd checks its own port: pick a free one
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def close(self) -> None:
        self._controller.stop()


class FeedServer:
    """Serves the kit's recorded RSS feed on loopback, so news_ingest has a real feed to
    fetch without the internet (skipped when the kit is not beside the checkout)."""

    def __init__(self, root: Path) -> None:
        feed = KIT / "rss_feeds" / "thehindu_business_economy_rss_2025-04-03_media-mosaic.xml"
        self.url: str | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        if not feed.is_file():
            return
        root.mkdir(parents=True, exist_ok=True)
        (root / "economy.rss").write_bytes(feed.read_bytes())

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Quiet, directory=str(root)))
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="feed-server").start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/economy.rss"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# ------------------------------------------------------------------------------- driver


def session_minutes(options: SessionOptions) -> list[datetime]:
    """The session's poll times (aware, UTC): every ``every_minutes`` from the open to the
    last minute before the close, from the dated market-hours data; with recorded payloads
    (``replay:DIR``), one poll per file (each poll plays the next file)."""
    from shared.rules import default_calendar

    session = default_calendar().session(options.session_date)
    if session is None or not session.is_trading_day:
        raise ValueError(f"{options.session_date.isoformat()} is not an NSE trading day "
                         "(weekend or holiday in the dated calendar): choose another --date")
    start, close = session.open, session.close
    out, at = [], start
    while at < close:
        out.append(at.astimezone(UTC))
        at += timedelta(minutes=options.every_minutes)
    if options.source.startswith("replay:"):
        directory = Path(options.source.removeprefix("replay:"))
        files = sorted(directory.glob("*.json")) if directory.is_dir() else []
        if not files:
            raise ValueError(f"--source {options.source}: no *.json payloads in {directory}")
        out = out[:len(files)]
    return out[:options.max_minutes] if options.max_minutes else out


class SessionRun:
    """One replayed session through a running local cloud (see the module docstring)."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.clock_file = options.state_dir / "clock.json"
        self.tally = Tally()
        self.tenants: dict[str, uuid.UUID] = {}
        self.cloud: LocalCloud | None = None
        self.webhooks: WebhookSink | None = None
        self.mail: MailSink | None = None
        self.feeds: FeedServer | None = None
        self._stack = contextlib.ExitStack()
        self.scheduler_firings: list[Any] | None = None
        self.play_s = 0.0  # wall seconds the session itself took (after warm-up)

    # lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> SessionRun:
        try:
            self.start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start(self) -> None:
        opts = self.options
        opts.state_dir.mkdir(parents=True, exist_ok=True)
        minutes = session_minutes(opts)
        self.tally.minutes_total = len(minutes)
        first = minutes[0]
        write_anchor(self.clock_file, first - timedelta(minutes=30))  # pre-open
        self.webhooks = self._stack.enter_context(_closing(WebhookSink()))
        self.mail = self._stack.enter_context(_closing(MailSink()))
        self.feeds = self._stack.enter_context(_closing(FeedServer(opts.state_dir / "feeds")))
        env = {
            "QS_CLOCK_FILE": str(self.clock_file),
            "QS_CHAIN_SOURCE": opts.source, "QS_SIMULATOR_SEED": str(opts.seed),
            "QS_SMTP_HOST": "127.0.0.1", "QS_SMTP_PORT": str(self.mail.port),
            "QS_SMTP_SECURITY": "none", "QS_EMAIL_SENDER": "signals@quantsentinel.local",
            "QS_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "QS_WEBHOOK_ALLOW_PRIVATE": "true",
            "QS_NOTIFY_TIMEOUT_S": "2",
            "QS_NEWS_FEEDS": json.dumps(
                [{"name": "thehindu-economy", "url": self.feeds.url}] if self.feeds.url else []),
            "QS_NEWS_ALLOWED_HOSTS": json.dumps(["127.0.0.1"]),
        }
        config = CloudConfig(state_dir=opts.state_dir, fresh=True, retry=REPLAY_RETRY,
                             extra_env=env, log_level="WARNING")
        self.cloud = self._stack.enter_context(LocalCloud(config))

    def warm(self) -> dict[str, Any]:
        """Warm every function (``GET /warmup``) so the session measures warm instances."""
        assert self.cloud is not None
        return self.cloud.warm()

    def seed_tenants(self) -> None:
        """Provision the demo tenants (each starts in the 14-day dry-run lock)."""
        assert self.cloud is not None and self.webhooks is not None
        owner = self.cloud.owner_db()
        try:
            with owner.system() as s:
                for spec in DEMO_TENANTS:
                    tenant = uuid.uuid4()
                    settings = json.loads(json.dumps(spec["settings"]))
                    settings["notify"]["webhook"] = {"url": f"{self.webhooks.url}/{spec['name']}"}
                    s.execute("SELECT provision_tenant(:t, :n, 'standard', CAST(:s AS jsonb))",
                              t=tenant, n=spec["name"], s=json.dumps(settings))
                    self.tenants[spec["name"]] = tenant
        finally:
            owner.close()

    # the session --------------------------------------------------------------------------
    def train_models(self) -> dict[str, Any]:
        """Fit the production HAR vol models from the NIFTY daily history (retrain's own
        endpoint, as its nightly job would), so decide's vol signal has a model to serve."""
        import requests

        assert self.cloud is not None
        url = self.cloud.urls["retrain"] + "/run"
        response = requests.post(
            url, json={"scope": "global", "models": ["vol_har_5d", "vol_har_22d"]},
            headers={"Authorization": self.cloud.issuer.header(url, "scheduler@quantsentinel.local"),
                     "X-CloudScheduler-JobName": "retrain-nightly"}, timeout=300)
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {"text": response.text[:300]}
        if response.status_code != 200:
            logger.warning("retrain returned %s: %s", response.status_code, body)
        return body

    def warm_up(self, sessions: int = WARMUP_SESSIONS,
                on_session: Callable[[int, date], None] | None = None) -> int:
        """Store the chains of the ``sessions`` trading days before the session (eight polls
        each, :data:`WARMUP_TIMES`), so decide's models have the daily bars they need: the
        HAR vol forecast reads 22 completed sessions. Run before the tenants exist, as the market's
        history exists before a client signs up: decide records market runs, proposes
        nothing. Returns the number of snapshots stored."""
        from local.scheduler import LocalScheduler
        from shared.rules import default_calendar
        from shared.schedules import load_schedules

        cloud = self.cloud
        assert cloud is not None and cloud.pubsub is not None
        opts = self.options
        name = f"chain-poll-{opts.symbol.lower()}"
        jobs = [j for j in load_schedules(cloud.config.schedules_dir) if j.name == name]
        calendar = default_calendar()
        days = [opts.session_date]
        while len(days) <= sessions:
            days.insert(0, calendar.previous_trading_day(days[0]))
        if self.recorded:  # a recording is the session itself: no history to poll
            return 0
        scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer)
        try:
            for i, day in enumerate(days[:-1]):
                for t in WARMUP_TIMES:
                    at = datetime.combine(day, t, IST).astimezone(UTC)
                    write_anchor(self.clock_file, at)
                    scheduler.fire(name, at)
                    cloud.pubsub.wait_idle(opts.idle_timeout_s)
                if on_session is not None:
                    on_session(i + 1, day)
        finally:
            scheduler.close()
        with cloud.app_db().system() as s:
            return s.execute("SELECT count(*) FROM chain_snapshots WHERE symbol = :s AND "
                             "published_at IS NOT NULL", s=opts.symbol).scalar()

    @property
    def recorded(self) -> bool:
        """The session plays recorded payloads (``replay:DIR``), not the simulator."""
        return self.options.source.startswith("replay:")

    def play(self, on_minute: Callable[[Tally], None] | None = None,
             stop: threading.Event | None = None) -> None:
        """Step the session clock minute by minute, firing the schedules due."""
        from local.scheduler import LocalScheduler
        from shared.schedules import load_schedules

        cloud = self.cloud
        assert cloud is not None and cloud.pubsub is not None
        opts = self.options
        wanted = {f"chain-poll-{opts.symbol.lower()}", "news-ingest", "notify-digest"}
        jobs = [j for j in load_schedules(cloud.config.schedules_dir) if j.name in wanted]
        minutes = session_minutes(opts)
        scheduler = LocalScheduler(jobs, cloud.urls, cloud.issuer,
                                   start=minutes[0] - timedelta(seconds=1))
        # every push subscription (the operator's dead-letter inbox is drained by nobody)
        t_play = time.monotonic()
        idle_subs = [name for name in cloud.pubsub.stats()["backlog"]
                     if not name.endswith("--operator")]
        try:
            digest_at = datetime.combine(opts.session_date, dtime(16, 0), IST).astimezone(UTC)
            for at in [*minutes, digest_at]:
                if stop is not None and stop.is_set():
                    break
                step_started = time.monotonic()
                write_anchor(self.clock_file, at)
                self.tally.clock = at
                # the digest is fired on its own: a tick to 16:00 after a shortened session
                # (max_minutes) would fire every poll of the skipped minutes
                firings = ([scheduler.fire("notify-digest", at)] if at == digest_at
                           else scheduler.tick(at))
                for f in firings:
                    if not f.ok:
                        logger.warning("%s at %s: %s %s", f.job, at, f.status, f.error)
                if not cloud.pubsub.wait_idle(opts.idle_timeout_s, subscriptions=idle_subs):
                    logger.warning("the pipeline was still busy %.0f s after %s",
                                   opts.idle_timeout_s, at.isoformat())
                if at != digest_at:
                    self.tally.minutes_done += 1
                if opts.speed:
                    pause = opts.every_minutes * 60 / opts.speed - (time.monotonic() - step_started)
                    if pause > 0 and stop is not None:
                        stop.wait(pause)
                    elif pause > 0:
                        time.sleep(pause)
                if on_minute is not None:
                    on_minute(self.tally)
        finally:
            self.play_s = time.monotonic() - t_play
            self.scheduler_firings = list(scheduler.history)
            scheduler.close()

    # counting -----------------------------------------------------------------------------
    def poll(self) -> Tally:
        """Refresh the tally from the database and the local peers."""
        cloud = self.cloud
        assert cloud is not None and self.webhooks is not None and self.mail is not None
        t = self.tally
        db = cloud.app_db()
        with db.system() as s:
            day = datetime.combine(self.options.session_date, dtime(0, 0), IST)
            t.snapshots = s.execute(
                "SELECT count(*) FROM chain_snapshots WHERE symbol = :s AND published_at IS NOT "
                "NULL AND asof >= :d AND asof < :e", s=self.options.symbol, d=day,
                e=day + timedelta(days=1)).scalar()
            t.kill_switches = [f"{r[0]}:{r[1]}" for r in s.execute(
                "SELECT switch, scope FROM kill_switches WHERE tripped").rows]
        proposals = no_trade = approved = 0
        blocked: dict[str, int] = {}
        deliveries: dict[str, int] = {}
        for tenant in self.tenants.values():
            with db.tenant(tenant) as s:
                for outcome, n in s.execute("SELECT outcome, count(*) FROM decisions GROUP BY 1").rows:
                    if outcome == "proposed":
                        proposals += n
                    else:
                        no_trade += n
                for wall, n in s.execute("SELECT blocked_by, count(*) FROM risk_verdicts "
                                         "GROUP BY 1").rows:
                    if wall is None:
                        approved += n
                    else:
                        blocked[wall] = blocked.get(wall, 0) + n
                for status, n in s.execute("SELECT status, count(*) FROM notify_deliveries "
                                           "GROUP BY 1").rows:
                    deliveries[status] = deliveries.get(status, 0) + n
        t.proposals, t.no_trade, t.approved = proposals, no_trade, approved
        t.blocked, t.deliveries = blocked, deliveries
        t.webhooks, t.emails = len(self.webhooks.received), len(self.mail.received)
        assert cloud.pubsub is not None
        t.backlog = sum(n for name, n in cloud.pubsub.stats()["backlog"].items()
                        if not name.endswith("--operator"))
        return t

    def end_to_end_ms(self) -> list[float]:
        """Snapshot stored → webhook received, ms, for every verdict delivered so far: the
        webhook receiver's arrival time against the snapshot row's ``created_at`` (the same
        machine clock). The live view's lag, the summary's p50/p99 and the benchmark."""
        assert self.cloud is not None and self.webhooks is not None
        arrived = {d.subject: d.received_at for d in self.webhooks.received if d.subject}
        if not arrived:
            return []
        out = []
        db = self.cloud.app_db()
        for tenant in self.tenants.values():
            with db.tenant(tenant) as s:
                for verdict_id, stored in s.execute(
                        "SELECT v.verdict_id, c.created_at FROM risk_verdicts v JOIN "
                        "chain_snapshots c ON c.snapshot_id = v.snapshot_id").rows:
                    got = arrived.get(str(verdict_id))
                    if got is not None:
                        out.append((got - stored.timestamp()) * 1e3)
        return out

    def deliveries(self) -> list[Delivery]:
        assert self.webhooks is not None and self.mail is not None
        return [*self.webhooks.received, *self.mail.received]


@contextlib.contextmanager
def _closing(thing: Any) -> Iterator[Any]:
    try:
        yield thing
    finally:
        thing.close()


# ----------------------------------------------------------------------------- live view


def render_tally(t: Tally, options: SessionOptions) -> Any:
    """The live view: a rich renderable (a panel with a table)."""
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    clock = t.clock.astimezone(IST).strftime("%Y-%m-%d %H:%M IST") if t.clock else "pre-open"
    table.add_row("session clock", f"{clock}   minute {t.minutes_done}/{t.minutes_total}")
    table.add_row("snapshots", f"{t.snapshots} {options.symbol} chains stored and published")
    table.add_row("proposals", f"{t.proposals} proposed, {t.no_trade} no-trade decisions")
    blocks = ", ".join(f"{w} {n}" for w, n in sorted(t.blocked.items(), key=lambda x: -x[1]))
    table.add_row("risk_check", f"[green]{t.approved} approved[/green]   "
                                f"[red]{sum(t.blocked.values())} blocked[/red]"
                                + (f" ({blocks})" if blocks else ""))
    table.add_row("kill switches", ", ".join(t.kill_switches) or "[green]none tripped[/green]")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(t.deliveries.items()))
    table.add_row("deliveries", f"{statuses or 'none yet'}   (inbox {t.emails} e-mails, "
                                f"{t.webhooks} webhooks)")
    lag = (f"p50 {statistics.median(t.e2e_ms):.0f} ms" if t.e2e_ms else "-")
    table.add_row("lag", f"backlog {t.backlog} messages; snapshot → notification {lag}")
    elapsed = time.monotonic() - t.started
    table.add_row("wall time", f"{elapsed:.0f} s")
    return Panel(table, title=f"Quantsentinel · {options.symbol} session "
                              f"{options.session_date.isoformat()} · {options.source}",
                 border_style="cyan")
