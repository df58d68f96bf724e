"""A seeded, realistic :class:`~shared.report.model.SessionReport` for the report tests.

One simulated NIFTY session (09:15-15:30 IST, one spot point a minute), two tenants (one
under the dry-run lock), smiles priced with a put skew, GEX profiles from the repository's
own dealer-GEX maths, iron condors and credit spreads priced by Black-76, blocked proposals
naming walls (``news``, ``dry_run``, ``daily_loss``, ``margin``), paper P&L with a
drawdown, hop latencies and model versions (one with no production model). Everything
comes from ``np.random.default_rng(seed)``: the same seed gives the same report.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from shared.domain.analytics import dealer_gex, gamma_flip
from shared.domain.black76 import black76_price
from shared.report.model import (
    ApprovedSignal,
    GateFiring,
    GexProfile,
    HopLatency,
    LegView,
    ModelUse,
    PnlPoint,
    SessionReport,
    SignalMark,
    SmileSnapshot,
    SpotPoint,
    StrategyStats,
    TenantPnl,
)

IST = ZoneInfo("Asia/Kolkata")
SESSION = date(2026, 3, 12)  # a Thursday
EXPIRIES = (date(2026, 3, 17), date(2026, 3, 31))  # weekly and monthly (Tuesdays)
LOT_SIZE = 65  # NIFTY from January 2026 (shared/data/lot_sizes.csv)
RATE = 0.065
TENANTS = ("Alpha Capital", "Beta Desk")  # Beta Desk is under the dry-run lock
SMILE = (2.4, -0.32, 0.0)  # IV polynomial in x = ln(K/F), highest power first (+ ATM level)
ATM_IV = {EXPIRIES[0]: 0.128, EXPIRIES[1]: 0.136}


def _at(hh: int, mm: int) -> datetime:
    return datetime.combine(SESSION, time(hh, mm), tzinfo=IST)


def _years(at: datetime, expiry: date) -> float:
    close = datetime.combine(expiry, time(15, 30), tzinfo=IST)
    return (close - at).total_seconds() / (365.0 * 86400.0)


def _iv(strikes: np.ndarray, forward: float, expiry: date) -> np.ndarray:
    x = np.log(strikes / forward)
    a, b, _ = SMILE
    return ATM_IV[expiry] + b * x + a * x * x


def _price(strike: float, call: bool, spot: float, at: datetime, expiry: date) -> float:
    t = _years(at, expiry)
    fwd = spot * math.exp(RATE * t)
    vol = float(_iv(np.asarray([strike]), fwd, expiry)[0])
    px = float(np.asarray(black76_price(fwd, strike, t, RATE, vol, call)).reshape(-1)[0])
    return round(round(max(px, 0.05) / 0.05) * 0.05, 2)  # the exchange's tick


def _spot_path(rng: np.random.Generator) -> tuple[list[datetime], np.ndarray]:
    """375 one-minute points from 09:15 to 15:29 IST (+ the 15:30 close): a drift down into
    early afternoon, then a partial recovery."""
    times = [_at(9, 15) + timedelta(minutes=i) for i in range(376)]
    sigma = 0.125 / math.sqrt(252 * 375)
    drift = np.where(np.arange(376) < 230, -0.12 * sigma, 0.1 * sigma)
    steps = drift + sigma * rng.standard_normal(376)
    steps[0] = 0.0
    return times, 22_480.0 * np.exp(np.cumsum(steps))


def _legs(kind: str, spot: float, at: datetime, expiry: date, lots: int,
          rng: np.random.Generator) -> tuple[LegView, ...]:
    atm = round(spot / 50) * 50
    w = int(rng.choice([100, 150]))
    if kind == "iron_condor":
        short = int(rng.choice([200, 250, 300]))
        spec = [("BUY", "PE", atm - short - w), ("SELL", "PE", atm - short),
                ("SELL", "CE", atm + short), ("BUY", "CE", atm + short + w)]
    elif kind == "put_spread":  # a bull put credit spread
        short = int(rng.choice([100, 150]))
        spec = [("SELL", "PE", atm - short), ("BUY", "PE", atm - short - w)]
    else:  # a bear call credit spread
        short = int(rng.choice([100, 150]))
        spec = [("SELL", "CE", atm + short), ("BUY", "CE", atm + short + w)]
    return tuple(LegView(side=s, option_type=o, strike=float(k), expiry=expiry, lots=lots,
                         price=_price(float(k), o == "CE", spot, at, expiry))
                 for s, o, k in spec)


def _extremes(legs: tuple[LegView, ...], lot_size: int) -> tuple[float, float]:
    """Max profit and max loss (positive) of bounded credit structures, at the strikes."""
    grid = np.asarray(sorted({0.0, *(leg.strike for leg in legs)}) + [1e6])
    pnl = np.zeros_like(grid)
    for leg in legs:
        u = (1 if leg.side == "BUY" else -1) * leg.lots * lot_size
        intrinsic = (np.maximum(grid - leg.strike, 0) if leg.option_type == "CE"
                     else np.maximum(leg.strike - grid, 0))
        pnl += u * (intrinsic - leg.price)
    return float(pnl.max()), float(-pnl.min())


def _smiles(times: list[datetime], spots: np.ndarray, rng: np.random.Generator
            ) -> tuple[SmileSnapshot, ...]:
    out = []
    for hh, mm in ((9, 30), (12, 30), (15, 0)):
        at = _at(hh, mm)
        spot = float(spots[times.index(at)])
        for e in EXPIRIES:
            t = _years(at, e)
            fwd = spot * math.exp(RATE * t)
            centre = round(fwd / 50) * 50
            strikes = np.arange(centre - 1500, centre + 1501, 50, dtype=float)
            ivs = _iv(strikes, fwd, e) + rng.normal(0, 0.0004, strikes.size)
            # the smile lifts a little as the market falls into the afternoon
            ivs = ivs + 0.004 * (hh >= 12)
            out.append(SmileSnapshot(at=at, expiry=e, forward=round(fwd, 2),
                                     strikes=tuple(strikes.tolist()),
                                     ivs=tuple(np.round(ivs, 5).tolist())))
    return tuple(out)


def _gex(times: list[datetime], spots: np.ndarray, rng: np.random.Generator
         ) -> tuple[GexProfile, ...]:
    out = []
    for hh, mm in ((10, 0), (13, 30)):
        at = _at(hh, mm)
        spot = float(spots[times.index(at)])
        e = EXPIRIES[0]
        t = _years(at, e)
        fwd = spot * math.exp(RATE * t)
        centre = round(spot / 100) * 100
        ks = np.arange(centre - 800, centre + 801, 100, dtype=float)
        strike = np.concatenate([ks, ks])
        is_call = np.concatenate([np.ones(ks.size, bool), np.zeros(ks.size, bool)])
        near = np.exp(-0.5 * ((strike - spot) / 450.0) ** 2)
        # calls are heavier above spot, puts below: a positive-gamma pin, a put-heavy tail
        tilt = np.where(is_call, 1.0 + 0.6 * (strike > spot), 1.1 + 0.9 * (strike < spot - 200))
        oi = np.round(9e4 * (0.15 + near) * tilt * rng.uniform(0.7, 1.3, strike.size))
        iv = _iv(strike, fwd, e)
        levels = spot * np.linspace(0.92, 1.08, 61)
        by_leg, totals = dealer_gex(strike, is_call, oi, iv, fwd, spot, t, RATE, LOT_SIZE,
                                    levels)
        by_strike = by_leg[: ks.size] + by_leg[ks.size:]
        flip = gamma_flip(levels, totals, spot)
        out.append(GexProfile(at=at, spot=round(spot, 2), strikes=tuple(ks.tolist()),
                              gex=tuple(np.round(by_strike, 0).tolist()),
                              flip=None if math.isnan(flip) else round(flip, 1)))
    return tuple(out)


# (time, tenant index, structure kind, lots)
_APPROVALS = ((9, 47, 0, "iron_condor", 2), (10, 34, 1, "put_spread", 3),
              (11, 52, 0, "call_spread", 2), (12, 41, 1, "iron_condor", 2),
              (14, 18, 0, "iron_condor", 1))
# (time, tenant index, structure, wall)
_BLOCKS = ((10, 0, 0, "iron_condor", "news"), (10, 0, 1, "iron_condor", "news"),
           (10, 15, 0, "credit_vertical", "news"), (10, 15, 1, "credit_vertical", "news"),
           (11, 5, 1, "short_strangle", "dry_run"), (12, 10, 0, "iron_condor", "margin"),
           (13, 5, 1, "short_straddle", "dry_run"), (13, 20, 0, "credit_vertical", "margin"),
           (13, 45, 1, "iron_condor", "daily_loss"), (14, 0, 1, "credit_vertical",
                                                      "daily_loss"),
           (14, 30, 1, "iron_condor", "daily_loss"), (15, 0, 0, "iron_condor", "cost"))

_REASONS = {
    "iron_condor": ("vol_forecast: ATM IV {iv:.1f}% above the HAR forecast {fc:.1f}%",
                    "regime: range-bound (realised vol below implied)",
                    "wing_select: wings at about 0.15 delta, credit/width {cw:.2f}"),
    "put_spread": ("direction_model sat out (no production model): neutral-to-up prior",
                   "put skew rich: 95/105 skew {sk:.1f} vol points",
                   "cost wall: costs {c:.0f} INR < 25% of the expected gross edge"),
    "call_spread": ("spot below the morning high after the news blackout",
                    "vol_forecast: call wing IV above forecast",
                    "margin: utilisation 41% after entry"),
}


def build_session_report(seed: int = 1234) -> SessionReport:
    """A full, realistic NIFTY session report (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    times, spots = _spot_path(rng)
    spot_at = dict(zip(times, spots.tolist(), strict=True))

    approved, marks = [], []
    for hh, mm, ti, kind, lots in _APPROVALS:
        at = _at(hh, mm)
        spot = spot_at[at]
        legs = _legs(kind, spot, at, EXPIRIES[0], lots, rng)
        best, worst = _extremes(legs, LOT_SIZE)
        credit = best
        costs = round(38.0 * len(legs) * lots + 0.0006 * credit + rng.uniform(20, 60), 2)
        gross = round(credit * rng.uniform(0.08, 0.16), 2)
        structure = "iron_condor" if kind == "iron_condor" else "credit_vertical"
        width = max(abs(a.strike - b.strike) for a, b in zip(legs, legs[1:], strict=False))
        reasons = tuple(r.format(iv=13.1 + rng.normal(0, 0.3), fc=11.6 + rng.normal(0, 0.3),
                                 cw=credit / (lots * LOT_SIZE) / width, sk=4.2, c=costs)
                        for r in _REASONS[kind])
        approved.append(ApprovedSignal(
            at=at, tenant=TENANTS[ti], symbol="NIFTY", structure=structure, legs=legs,
            lot_size=LOT_SIZE, spot=round(spot, 2), max_profit=round(best, 2),
            max_loss=round(worst, 2), costs=costs, net_ev=round(gross - costs, 2),
            paper=ti == 1, reasons=reasons))
        marks.append(SignalMark(at=at, tenant=TENANTS[ti], structure=structure,
                                outcome="approved"))
    firings: dict[tuple[str, str], list[int]] = {}
    for hh, mm, ti, structure, wall in _BLOCKS:
        marks.append(SignalMark(at=_at(hh, mm), tenant=TENANTS[ti], structure=structure,
                                outcome="blocked", wall=wall))
        firings.setdefault((TENANTS[ti], wall), [0, 0])[0] += 1
    firings.setdefault((TENANTS[0], "news"), [0, 0])[1] += 3  # reduced, not blocked
    firings.setdefault((TENANTS[1], "news"), [0, 0])[1] += 2
    decided = {(m.at, m.tenant) for m in marks}
    for i in range(20, 375, 15):  # decide runs every 15 minutes; most runs find no trade
        for tenant in TENANTS:
            if (times[i], tenant) not in decided and rng.random() < 0.8:
                marks.append(SignalMark(at=times[i], tenant=tenant, structure=None,
                                        outcome="no_trade"))

    pnl = []
    minute = np.arange(len(times))  # minutes since 09:15
    # (tenant, capital, first approval minute, [(until minute, drift INR/min)], noise)
    shapes = ((TENANTS[0], 5_000_000.0, 32, ((135, 28.0), (225, -55.0), (376, 34.0)), 70.0),
              (TENANTS[1], 2_000_000.0, 79, ((105, 12.0), (270, -62.0), (376, 22.0)), 55.0))
    for tenant, capital, start, pieces, noise in shapes:
        drift = np.select([minute < until for until, _ in pieces], [d for _, d in pieces])
        steps = np.where(minute >= start, drift + noise * rng.standard_normal(minute.size), 0)
        pnl.append(TenantPnl(tenant=tenant, capital=capital, dry_run=tenant == TENANTS[1],
                             points=tuple(PnlPoint(at=t, pnl=round(float(v), 2)) for t, v
                                          in zip(times, np.cumsum(steps), strict=True))))

    blocks = sum(m.outcome == "blocked" for m in marks)
    counters = {"snapshots": len(times), "proposals": len(approved) + blocks,
                "approvals": len(approved), "blocks": blocks,
                "no_trades": sum(m.outcome == "no_trade" for m in marks),
                "deliveries": 2 * len(approved) + blocks, "news_events": 3,
                "kill_switch_trips": 0}
    return SessionReport(
        title="NIFTY session replay", symbol="NIFTY", session_date=SESSION,
        source=f"simulator:seed={seed}", generated_at=_at(15, 34),
        spot_path=tuple(SpotPoint(at=t, spot=round(float(s), 2))
                        for t, s in zip(times, spots, strict=True)),
        signals=tuple(sorted(marks, key=lambda m: (m.at, m.tenant))),
        smiles=_smiles(times, spots, rng), gex=_gex(times, spots, rng),
        approved=tuple(approved),
        gate_firings=tuple(GateFiring(tenant=t, wall=w, blocked=b, reduced=r)
                           for (t, w), (b, r) in sorted(firings.items())),
        pnl=tuple(pnl),
        latencies=(HopLatency("chain.snapshot → decision.proposed", 375, 41.8, 163.0),
                   HopLatency("decision.proposed → signal verdict", 17, 28.4, 96.5),
                   HopLatency("signal verdict → delivered", 22, 57.1, 288.0),
                   HopLatency("end to end (snapshot → delivered)", 22, 171.0, 612.0)),
        models=(ModelUse("vol_har_1d", 3), ModelUse("wing_select", 2),
                ModelUse("regime_hmm", 1, "promoted 2026-03-02"),
                ModelUse("direction_lgbm", None, "no production model: the direction "
                                                 "signal sat out")),
        strategies=(StrategyStats("iron_condor", 3, 5_830.0, 0.41, 0.83, 0.61),
                    StrategyStats("credit_vertical", 2, -1_240.0, -0.12, 0.38, 0.17)),
        counters=counters,
        notes=("Simulated session (seed 1234): the same seed gives the same day.",
               "Beta Desk is under the dry-run lock: its approvals are paper trades.",
               "News blackout 10:00-10:30 IST around the CPI release: proposals blocked "
               "or reduced.",
               "No kill switch tripped."),
    )


def empty_session_report() -> SessionReport:
    """A report with nothing in it (every section's empty state)."""
    return SessionReport(title="Empty session", symbol="NIFTY", session_date=SESSION,
                         source="simulator:seed=0", generated_at=_at(15, 34), spot_path=())
