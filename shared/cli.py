"""``qs``: the command line for people and tests (the same services the functions use).

    qs db migrate [--url URL]      apply pending migrations as the owner role
    qs tenants add NAME [--url URL]   provision a tenant (paper-only for 14 days)
    qs principals grant EMAIL [--tenant ID] [--role trader|operator]
                                   let an identity call risk_check's API
    qs models list | history MODEL  the model registry (versions, production, health)
    qs chain analyze FILE [--source nse|upstox|auto] [--asof T]   full-chain analytics as JSON
    qs costs quote --date D --instrument option|future --side buy|sell --price P --qty Q
                   [--exercise --intrinsic X] [--plan standard]   dated Indian charges as JSON
    qs calendar expiries SYMBOL --from D --to D   expiries (weekly/monthly, holiday-shifted)
    qs calendar lot-size SYMBOL --expiry D        the dated lot size of a contract
    qs replay [--symbol S] [--date D | --days N] [--source simulator|replay:DIR] [--seed N]
              [--tenants N] [--conservative] [--models auto|har|none] [--report PATH.html]
              [--json] [--no-progress]
                                   replay sessions in process: decisions, paper P&L, PSR/DSR
    qs contracts                   list every topic and its contract versions
    qs contracts TOPIC             print a contract's newest JSON schema
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date


def _owner_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("QS_OWNER_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("qs: give --url or set QS_OWNER_DATABASE_URL (the owner role's URL)")
    return url


def _db_migrate(args: argparse.Namespace) -> int:
    from shared.adapters.db import DirectConnector, parse_database_url
    from shared.adapters.migrations import apply_migrations

    applied = apply_migrations(DirectConnector(parse_database_url(_owner_url(args))))
    print(json.dumps({"applied": [f"{m.version:04d}_{m.name}" for m in applied]}))
    return 0


def _tenants_add(args: argparse.Namespace) -> int:
    from shared.adapters.db import Database, DirectConnector, parse_database_url

    db = Database(DirectConnector(parse_database_url(_owner_url(args))))
    tenant_id = uuid.uuid4()
    with db.system() as s:
        until = s.execute("SELECT provision_tenant(:t, :n, :p)", t=tenant_id, n=args.name,
                          p=args.plan).scalar()
    print(json.dumps({"tenant_id": str(tenant_id), "name": args.name, "dry_run_until": until.isoformat()}))
    return 0


def _owner_db(args: argparse.Namespace):  # noqa: ANN202 - Database, imported lazily
    from shared.adapters.db import Database, DirectConnector, parse_database_url

    return Database(DirectConnector(parse_database_url(_owner_url(args))))


def _tenant_arg(text: str | None) -> uuid.UUID | None:
    if text in (None, "", "platform"):
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise SystemExit(f"qs: --tenant must be a tenant id or 'platform', got {text!r}") from None


def _principals(args: argparse.Namespace) -> int:
    from shared.adapters import principals

    tenant = _tenant_arg(getattr(args, "tenant", None))
    if args.action == "grant" and tenant is None and args.role != "operator":
        raise SystemExit("qs: a platform grant (no --tenant) must be --role operator")
    db = _owner_db(args)
    try:
        with db.system() as s:
            if args.action == "grant":
                if tenant is not None and not s.execute(
                        "SELECT 1 FROM tenants WHERE tenant_id = :t", t=tenant).rows:
                    raise SystemExit(f"qs: no tenant {tenant}")
                principals.grant(s, args.email, tenant, args.role)
                out: object = {"granted": args.role, "email": args.email.lower(),
                               "tenant_id": str(tenant) if tenant else "platform"}
            elif args.action == "revoke":
                out = {"revoked": principals.revoke(s, args.email, tenant),
                       "email": args.email.lower(),
                       "tenant_id": str(tenant) if tenant else "platform"}
            else:
                out = [{**row, "tenant_id": str(row["tenant_id"]) if row["tenant_id"]
                        else "platform", "granted_at": row["granted_at"].isoformat()}
                       for row in principals.list_grants(s)]
    finally:
        db.close()
    print(json.dumps(out, indent=None if args.action != "list" else 2))
    return 0


def _models(args: argparse.Namespace) -> int:
    db = _owner_db(args)
    try:
        with db.system() as s:
            if args.action == "list":
                rows = s.execute(
                    "SELECT v.model_type, coalesce(v.tenant_id::text, 'global') AS tenant, "
                    "count(*) AS versions, max(v.version) FILTER (WHERE v.state = 'production') "
                    "AS production, max(v.created_at) AS last_trained, bool_or(p.flagged) AS "
                    "flagged, max(p.health_checked_at) AS health_checked_at FROM model_versions v "
                    "LEFT JOIN model_pointers p ON p.model_type = v.model_type AND "
                    "p.tenant_key = v.tenant_key GROUP BY 1, 2 ORDER BY 1, 2").dicts()
            else:
                rows = s.execute(
                    "SELECT version, coalesce(tenant_id::text, 'global') AS tenant, state, "
                    "metrics, judgement, code_commit, data_version, data_end, parent_version, "
                    "tracking_run_id, created_at, promoted_at FROM model_versions "
                    "WHERE model_type = :m ORDER BY tenant_key, version", m=args.model).dicts()
                if not rows:
                    raise SystemExit(f"qs: no versions of {args.model!r}")
    finally:
        db.close()
    print(json.dumps(rows, indent=2, default=str))
    return 0


def _contracts(args: argparse.Namespace) -> int:
    from shared.contracts import CONTRACTS

    if args.topic:
        if args.topic not in CONTRACTS:
            print(f"qs: unknown topic {args.topic!r}; known: {', '.join(sorted(CONTRACTS))}", file=sys.stderr)
            return 2
        versions = CONTRACTS[args.topic]
        print(json.dumps(versions[max(versions)].model_json_schema(), indent=2))
        return 0
    print(json.dumps({topic: sorted(v) for topic, v in sorted(CONTRACTS.items())}, indent=2))
    return 0


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _chain_analyze(args: argparse.Namespace) -> int:
    from datetime import datetime
    from pathlib import Path

    import numpy as np

    from shared.adapters.providers import parse_payload
    from shared.domain.black76 import IVStatus
    from shared.rules import default_calendar, risk_free_rate
    from shared.services.chain_poll import analyse_snapshot

    body = Path(args.file).read_bytes()
    asof = datetime.fromisoformat(args.asof) if args.asof else None
    if asof is not None and asof.tzinfo is None:
        raise ValueError("--asof needs a time zone, e.g. 2024-06-20T15:00+05:30")
    if asof is not None and args.source == "nse":
        raise ValueError("--asof is for Upstox payloads; NSE payloads carry their own time")
    from shared.adapters.providers import detect_source

    if asof is None and (args.source == "upstox" or (args.source == "auto"
                                                    and detect_source(body) == "upstox")):
        raise ValueError("Upstox payloads carry no timestamp: pass --asof "
                         "(ISO with zone, e.g. 2024-06-20T11:00+05:30)")
    snap = parse_payload(body, source=args.source, asof=asof)
    done = analyse_snapshot(snap, default_calendar(), risk_free_rate)
    snap, an = done.snapshot, done.analytics

    def num(x: float) -> float:
        return float(x)  # NaN stays NaN (printed as NaN), with a reason alongside

    expiries = []
    for e in an.expiries:
        mask = snap.for_expiry(e.expiry)
        idx = np.flatnonzero(mask)
        d = e.density
        legs = [{
            "strike": float(snap.strike[i]), "type": "CE" if snap.is_call[i] else "PE",
            "price": num(an.legs.price[i]), "iv": num(an.legs.iv[i]),
            **({} if np.isfinite(an.legs.iv[i]) else
               {"iv_reason": IVStatus(int(an.legs.iv_status[i])).name.lower()}),
            "delta": num(an.legs.delta[i]), "gamma": num(an.legs.gamma[i]),
            "vega": num(an.legs.vega[i]), "theta": num(an.legs.theta[i]), "oi": num(snap.oi[i]),
        } for i in idx]
        expiries.append({
            "expiry": e.expiry.isoformat(), "t": e.t, "forward": e.forward,
            "forward_method": e.forward_method, "atm_iv": num(e.atm_iv), "max_pain": e.max_pain,
            "pcr_oi": num(e.pcr_oi), "pcr_volume": num(e.pcr_volume), "gex_total": num(e.gex_total),
            "gamma_flip": num(e.gamma_flip),
            "density": None if d is None else {
                "mean": d.mean, "variance": d.variance, "skew": d.skew, "kurtosis": d.kurtosis,
                "crash_probability": d.crash_probability, "crash_level": d.crash_level},
            "arbitrage_bad": e.arbitrage.bad, "reasons": list(e.reasons), "legs": legs,
        })
    out = {"symbol": snap.symbol, "asof": snap.asof.isoformat(), "spot": snap.spot,
           "source": snap.source, "rate": done.rate, "flags": list(snap.flags),
           "skipped": {k.isoformat(): v for k, v in an.skipped.items()}, "expiries": expiries}
    print(json.dumps(out, indent=None if args.compact else 2))
    return 0


def _costs_quote(args: argparse.Namespace) -> int:
    from shared.costs import default_cost_schedule
    from shared.domain.costs import quote, quote_json

    if args.exercise and args.intrinsic is None:
        raise ValueError("--exercise needs --intrinsic (intrinsic value per unit, rupees)")
    breakdown = quote(default_cost_schedule(), trade_date=args.date, instrument=args.instrument,
                      side=args.side, price=args.price, qty=args.qty, exercise=args.exercise,
                      intrinsic=args.intrinsic, plan=args.plan)
    print(json.dumps(quote_json(breakdown), indent=2))
    return 0


def _calendar_expiries(args: argparse.Namespace) -> int:
    from shared.rules import default_calendar

    expiries = default_calendar().expiries(args.symbol.upper(), args.start, args.end)
    print(json.dumps([
        {"date": e.date.isoformat(), "kind": str(e.kind), "weekday": e.date.strftime("%A"),
         "shifted_from": e.shifted_from.isoformat() if e.shifted_from else None, "source": e.source}
        for e in expiries
    ], indent=2))
    return 0


def _calendar_lot_size(args: argparse.Namespace) -> int:
    from shared.rules import default_calendar

    lot = default_calendar().lot_size(args.symbol.upper(), args.expiry)
    print(json.dumps({"symbol": lot.symbol, "expiry": args.expiry.isoformat(), "lot_size": lot.value,
                      "effective_from": lot.effective_from.isoformat(), "source": lot.source}, indent=2))
    return 0


def _news_parse(args: argparse.Namespace) -> int:
    """Parse, dedup and classify a feed file; print the items as JSON."""
    from datetime import UTC, datetime
    from pathlib import Path

    from shared.domain.news.classify import classify
    from shared.domain.news.dedup import StoryIndex
    from shared.domain.news.feeds import parse_feed

    path = Path(args.file)
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("--now needs a time zone, e.g. 2025-04-03T23:00+05:30")
    parsed = parse_feed(path.read_bytes(), source=args.source or path.stem, now=now)
    index = StoryIndex()
    out = []
    for item in parsed.items:
        story, _ = index.assign(item)
        c = classify(item.title, item.summary)
        out.append({"title": item.title,
                    "published": item.published.isoformat() if item.published else None,
                    "link": item.link, "story": story, "event_type": c.event_type,
                    "symbols": list(c.symbols), "sectors": list(c.sectors),
                    "sentiment": round(c.sentiment, 4), "impact": round(c.impact, 4),
                    "why": list(c.why), "ruleset": c.ruleset})
    print(json.dumps({"items": out, "rejected": [
        {"guid": r.guid, "title": r.title, "reason_code": r.reason_code, "reason": r.reason}
        for r in parsed.rejected]}, indent=2, ensure_ascii=False))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from shared.replay.command import main as replay_main

    return replay_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qs", description="Quantsentinel command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database administration").add_subparsers(dest="action", required=True)
    migrate = db.add_parser("migrate", help="apply pending migrations (as the owner role)")
    migrate.add_argument("--url", help="owner role URL (default: $QS_OWNER_DATABASE_URL)")
    migrate.set_defaults(func=_db_migrate)

    tenants = sub.add_parser("tenants", help="tenant provisioning").add_subparsers(dest="action", required=True)
    add = tenants.add_parser("add", help="provision a tenant; it is paper-only for 14 days")
    add.add_argument("name")
    add.add_argument("--plan", default="standard", help="brokerage/limits plan (default: standard)")
    add.add_argument("--url", help="owner role URL (default: $QS_OWNER_DATABASE_URL)")
    add.set_defaults(func=_tenants_add)

    models = sub.add_parser(
        "models", help="the model registry: versions, production, health",
        description="Read-only views of the registry (retrain writes it; POST /train and "
                    "/rollback on the retrain function change it).").add_subparsers(
        dest="action", required=True)
    mlist = models.add_parser("list", help="every model: versions, production, flagged")
    mlist.add_argument("--url", help="owner role URL (default: $QS_OWNER_DATABASE_URL)")
    mlist.set_defaults(func=_models)
    history = models.add_parser("history", help="one model's versions with their metrics, "
                                                "judgement and lineage")
    history.add_argument("model", help="a model type, e.g. vol_har_5d")
    history.add_argument("--url", help="owner role URL (default: $QS_OWNER_DATABASE_URL)")
    history.set_defaults(func=_models)

    principals = sub.add_parser(
        "principals", help="who may call risk_check's API (/check, /killswitch)",
        description="Grants of verified identities (Google accounts or service accounts): "
                    "'trader' checks trade ideas for a tenant; 'operator' also trips and "
                    "resets its kill switches; an operator without --tenant is a platform "
                    "operator (any tenant, global switches).").add_subparsers(
        dest="action", required=True)
    for name, text in (("grant", "give an identity a role"), ("revoke", "remove a grant")):
        p = principals.add_parser(name, help=text)
        p.add_argument("email", help="the caller's verified email")
        p.add_argument("--tenant", help="tenant id (omit, or 'platform', for the platform)")
        if name == "grant":
            p.add_argument("--role", choices=("trader", "operator"), default="trader",
                           help="default: trader")
        p.add_argument("--url", help="owner role URL (default: $QS_OWNER_DATABASE_URL)")
        p.set_defaults(func=_principals)
    listing = principals.add_parser("list", help="every grant, as JSON")
    listing.add_argument("--url", help="owner role URL (default: $QS_OWNER_DATABASE_URL)")
    listing.set_defaults(func=_principals)

    chain = sub.add_parser("chain", help="option-chain analytics").add_subparsers(
        dest="action", required=True)
    analyze = chain.add_parser(
        "analyze", help="parse a saved NSE/Upstox payload and print its analytics as JSON",
        description="IVs are decimals; NaN (printed as NaN) comes with an iv_reason.")
    analyze.add_argument("file", help="a saved option-chain JSON payload")
    analyze.add_argument("--source", choices=("auto", "nse", "upstox"), default="auto",
                         help="payload format (default: detect)")
    analyze.add_argument("--asof", help="snapshot time for Upstox payloads, which carry none "
                                        "(ISO with zone, e.g. 2024-06-20T15:00+05:30)")
    analyze.add_argument("--compact", action="store_true", help="one line of JSON")
    analyze.set_defaults(func=_chain_analyze)

    costs = sub.add_parser("costs", help="Indian trading costs (dated charges)").add_subparsers(
        dest="action", required=True)
    q = costs.add_parser(
        "quote", help="STT, exchange, SEBI, IPFT, stamp, GST and brokerage of one fill",
        description="Rates are the ones in force on --date (shared/data/charges.csv). An "
                    "exercise is quoted as --side sell --exercise --intrinsic X (STT on "
                    "intrinsic value; --price is then ignored).")
    q.add_argument("--date", type=_iso_date, required=True, help="trade date (ISO)")
    q.add_argument("--instrument", choices=("option", "future"), required=True)
    q.add_argument("--side", choices=("buy", "sell"), required=True)
    q.add_argument("--price", type=float, required=True, help="price per unit, rupees")
    q.add_argument("--qty", type=int, required=True, help="quantity in units (lots x lot size)")
    q.add_argument("--exercise", action="store_true", help="an option exercised at expiry")
    q.add_argument("--intrinsic", type=float, help="intrinsic value per unit on exercise")
    q.add_argument("--plan", default="standard", help="brokerage plan (default: standard)")
    q.set_defaults(func=_costs_quote)

    cal = sub.add_parser("calendar", help="NSE expiries and lot sizes (dated data)").add_subparsers(
        dest="action", required=True)
    exp = cal.add_parser("expiries", help="expiries of SYMBOL between two dates")
    exp.add_argument("symbol", help="NIFTY, BANKNIFTY, FINNIFTY or MIDCPNIFTY")
    exp.add_argument("--from", dest="start", type=_iso_date, required=True, help="first date (ISO)")
    exp.add_argument("--to", dest="end", type=_iso_date, required=True, help="last date (ISO)")
    exp.set_defaults(func=_calendar_expiries)
    lot = cal.add_parser("lot-size", help="the lot size of SYMBOL's contract expiring on a date")
    lot.add_argument("symbol")
    lot.add_argument("--expiry", type=_iso_date, required=True, help="the contract's expiry (ISO)")
    lot.set_defaults(func=_calendar_lot_size)

    news = sub.add_parser("news", help="news feeds: parse and classify offline").add_subparsers(
        dest="action", required=True)
    nparse = news.add_parser(
        "parse", help="parse, dedup and classify an RSS/Atom file; print JSON items (title, "
                      "published with its time zone, link, story, event_type, symbols, "
                      "sentiment, impact, why) and the entries left out with the reason")
    nparse.add_argument("file", help="an RSS or Atom file")
    nparse.add_argument("--source", help="the feed's name (default: the file's name)")
    nparse.add_argument("--now", help="the clock for future-date checks (ISO with zone; "
                                      "default: now)")
    nparse.set_defaults(func=_news_parse)

    replay = sub.add_parser(
        "replay", help="replay sessions in process: decisions, risk, paper P&L, PSR/DSR",
        description="Plays market sessions through chain_poll's analysis, decide, the risk "
                    "castle and a paper book, in process (no database, no emulators). By "
                    "default one simulated NIFTY session (2026-04-08, an RBI policy day as in make run; seed 1234: 375 "
                    "one-minute snapshots, 4 expiries) for two demo tenants (paper-desk: "
                    "in the dry-run lock, 10 lakh; live-desk: 50 lakh, looser limits). "
                    "Paper P&L is after the Indian cost engine's charges and slippage; "
                    "Sharpe is per trade (return on the capital the trade tied up), PSR "
                    "against zero, DSR deflated for the strategies tried.",
        epilog="examples: qs replay --days 5 --no-progress | qs replay --source "
               "replay:../shared/fixtures/nse_option_chain --json | qs replay "
               "--conservative --report /tmp/replay.html")
    replay.add_argument("--symbol", default="NIFTY",
                        help="index to replay: NIFTY, BANKNIFTY, FINNIFTY or MIDCPNIFTY "
                             "(default NIFTY); recorded payloads of other symbols are skipped")
    when = replay.add_mutually_exclusive_group()
    when.add_argument("--date", type=_iso_date,
                      help="session date (ISO; default 2026-04-08 simulated, every date "
                           "found when replaying files)")
    when.add_argument("--days", type=int,
                      help="number of sessions: consecutive trading days from 2026-04-08 "
                           "(simulator; decide's learning and the bandits carry over), or the "
                           "first N dates found (files)")
    replay.add_argument("--source", default="simulator",
                        help="'simulator' (default) or 'replay:DIR' (recorded NSE/Upstox "
                             "payloads, one snapshot per file, grouped by their own date)")
    replay.add_argument("--seed", type=int, default=1234,
                        help="simulator seed (default 1234): the same seed, the same session")
    replay.add_argument("--tenants", type=int, default=2,
                        help="demo tenants (default 2: paper-desk and live-desk; more are "
                             "variants with more capital)")
    replay.add_argument("--conservative", action="store_true",
                        help="report the conservative P&L: slippage x2 and, on scheduled-"
                             "event days, adverse index moves x1.5 (same decisions)")
    replay.add_argument("--models", choices=("auto", "har", "none"), default="auto",
                        help="decide's models: har (the nightly log-HAR vol models fitted in "
                             "process on the kit's NIFTY daily history, after 25 simulated "
                             "warm-up sessions, as make run trains them), none (an empty "
                             "registry: no forecast, so the cost wall blocks every proposal), "
                             "or auto (default: har when the kit's history is there)")
    replay.add_argument("--report", metavar="PATH.html",
                        help="write the HTML session report there and print its path")
    replay.add_argument("--json", action="store_true", help="print a JSON summary instead")
    replay.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is shown only when stderr is a terminal)")
    replay.set_defaults(func=_replay)

    contracts = sub.add_parser("contracts", help="message contracts per topic")
    contracts.add_argument("topic", nargs="?", help="print this topic's newest JSON schema")
    contracts.set_defaults(func=_contracts)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from shared.errors import QuantsentinelError

    try:
        return args.func(args)
    except (ValueError, QuantsentinelError, OSError) as exc:
        # unknown symbol, a date outside the data, a rejected payload, a missing file, ...
        print(f"qs: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
