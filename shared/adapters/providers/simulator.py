"""A seeded intraday market simulator that speaks the NSE option-chain wire format.

:class:`MarketSimulator` simulates one trading session of an index, minute by minute, and
renders the option chain of any minute as an NSE ``/api/option-chain-indices`` JSON body
(:meth:`MarketSimulator.payload_at`), which :func:`shared.adapters.providers.parse_payload`
parses like a live payload; :meth:`MarketSimulator.snapshot_at` is that parsed snapshot
built without the JSON (identical, as tested; ``qs replay`` plays it).
:class:`SimulatorProvider` wraps it as a
:class:`~shared.adapters.providers.base.ChainProvider`; :func:`record_session` writes a
session to files that :class:`~shared.adapters.providers.replay.ReplayProvider` plays back.

Everything is a pure function of ``(symbol, session_date, seed)`` and the constructor's
other arguments: the same inputs give byte-identical payloads, whatever order the minutes
are asked for in (every random stream is keyed by seed, symbol, date and purpose).

Model
-----
*Spot* (one bar per session minute, ``dt = 1 / (252 * 375)`` trading years):

* ``d ln S = -v dt / 2 + sqrt(v dt) Z_S + J`` with instantaneous variance
  ``v = V * exp(2 h - 2 SD_h^2) * season(minute)``;
* ``V`` is a Heston variance (``kappa = 4 / yr``, long-run vol ``theta`` per symbol,
  vol-of-vol ``xi = 0.25``, ``corr(Z_S, Z_V) = -0.7``: the leverage effect), started at a
  seeded level drawn log-normally around ``theta`` and clipped to the calibrated range
  (``xi`` gives the vol a daily sd of ~6 %, India VIX's typical daily change);
* ``h`` is a fast log-vol factor (Ornstein-Uhlenbeck, half-life 30 minutes, stationary sd
  0.25, ``corr(Z_S, Z_h) = -0.5``): intraday volatility clustering;
* ``season`` is the intraday U-shape of variance (high after the open, a smaller rise into
  the close), normalised to mean 1 over the session;
* ``J`` is compound Poisson (0.3 jumps per session on average, 75 % of them down, size
  5 + Exp(5) local minute standard deviations); a jump lifts ``h`` (more after a fall) and
  ``V`` (after a fall), so volatility clusters after it.

*Implied volatility* per expiry. Two clocks run to each expiry's close: ``T`` = ACT/365
years (the calendar's ``year_fraction``: nights, weekends and holidays included), on which
NSE and the analytics quote IV and on which forwards and discounting run; and ``tau`` =
trading years, ``MINUTE_YEARS`` per session minute (the minutes left in today's session plus
every minute of the later trading sessions, special hours and breaks as the calendar has
them, up to the expiry close), on which the spot's variance accrues. The model is built on
``tau`` and quoted on ``T`` with the same total variance, so the prices agree with the
simulated path: ``sigma_iv(x)^2 T = w(x)``, ``w`` the model's total variance.

* ATM, trading clock: ``sigma_m^2 = VRP^2 * [theta + (V - theta) phi(kappa tau)
  + 0.5 V (exp(2 h - 2 SD_h^2) - 1) phi(kappa_iv tau)]`` with ``phi(y) = (1 - e^-y) / y``,
  ``VRP = 1.08`` (implied over realised) and ``kappa_iv = ln 2 / 2 sessions``: the expected
  average variance to expiry, so short expiries react most to the current volatility,
  long ones revert to ``theta`` (the term structure slopes up in calm markets, down in
  stressed ones); quoted: ``sigma_atm = sigma_m sqrt(tau / T)``, i.e.
  ``sigma_atm^2 T = sigma_m^2 tau``. For tenors of weeks ``tau ~ T``; an expiring contract
  has ``tau / T = 365 * 24 * 60 / (252 * 375) = 5.56`` (every minute left is a session
  minute), so its quoted IV is 2.36 times ``sigma_m``, and the day before ~1.2-1.5 times
  (the 2025-07-16 one-day IV below, 11.78 %, is 1.24 times the 8-day one);
* smile: raw SVI in total variance ``w(x) = a + b (rho x + sqrt(x^2 + s^2))``,
  ``x = ln(K / F)``, built on the trading clock, with the width ``s`` = 4 ATM standard
  deviations (``4 sigma_m sqrt(tau)``; the real short-dated smiles stay convex that far out:
  the 2025 one-day smile is at 27-35 % IV at +-5 %) and ``a, b, rho`` solved so that at the
  money ``sqrt(w / tau)`` is ``sigma_m`` with slope ``-gamma sigma_m (tau / 30d)^-0.35``
  (steeper for short tenors) and curvature ``0.5 (vol_ref / sigma_m)^1.5 / tau`` (relatively
  more convex in calm markets); ``rho`` is capped at -0.9 (narrowing ``s``) and ``s`` so that
  the smallest total variance is at least half the ATM one. The quoted IV is
  ``sqrt(w(x) / T)``: the same smile in standardised moneyness, with quoted slope
  ``-gamma sigma_atm (tau / 30d)^-0.35``. SVI wings grow linearly in total variance (Lee's bound) and this family
  passes Durrleman's butterfly condition on a fine grid for every ATM vol from 7 to 60 % and
  tenor from one minute to 120 days, so the model prices are free of static arbitrage; the
  quotes straddle them.
* forward ``F = S exp((r - q) T)`` with dividend yield ``q = 1.2 %``.

Over 2000 seeds (NIFTY, 10:15 entry) the realised variance of ``ln S`` to the last bar of
the expiry day is 0.94 times the expiring contract's quoted ``sigma_atm^2 T`` when entered on
the expiry day, 1.03 when entered the session before (the next session simulated from the
last bar, as ``shared.domain.models.wings`` chains them; 1.12 with its 0.4 % overnight gap,
which ``tau`` leaves out). The ``VRP`` of 1.08 is mostly offset by the jumps (~10 % of the
variance), which the expected variance leaves out. Before the two clocks were reconciled
(trading-clock vols quoted on ``T``) these ratios were 5.2 and 2.2-2.5.

*Quotes*: Black-76 prices (:func:`~shared.domain.black76.black76_price`); the spread is
``max(min_ticks * 0.05, r_e (1 + 0.35 z^2) tv + c_e sqrt(tv * 0.05) + q_e (1 + 0.5 z_itm^2)
intrinsic)`` with ``tv`` the time value and ``z = x / (sigma_m sqrt(max(tau, 1 / 252)))``
the standardised moneyness; ``r_e``, ``c_e``, ``q_e`` and ``min_ticks`` grow as the
expiry's liquidity falls. The square-root
term makes the absolute spread shrink much more slowly than the price away from the money,
as in the real chains, so relative spreads widen in the wings (and deep ITM spreads widen
in rupees), and far expiries are wider throughout. Bid is the model price minus half the spread rounded *down* to the 0.05 tick,
ask plus half rounded *up*: the bid never exceeds, the ask never undercuts the model price,
and a bid below one tick is "no bid" (0, as NSE sends it). Deep in-the-money legs far from
the money are randomly unlisted (rows with only a CE or only a PE, as in real payloads).

*Open interest and volume*: the previous close's OI per leg peaks slightly out of the money,
decays away from it (fast on the ITM side), is multiplied by a round-strike factor
(NIFTY: 3.5 on multiples of 500, 2.0 on multiples of 100; BANKNIFTY: on multiples of 1000
and 500) and by log-normal noise. Volume arrives per minute (Poisson) with an intensity that
follows the current moneyness, the intraday U-shape and the size of the spot move; OI drifts
with that volume (writers add OTM, ITM positions close), so ``changeinOpenInterest`` evolves
through the day. The last price is the price of the last simulated trade (inside that
minute's quote); a leg not traded today shows yesterday's close (or 0) and 0 volume.

Calibration (``analyse_chain`` on the real payloads in ``shared/fixtures/nse_option_chain``,
``rate = 6.5 %``, year fractions from the packaged calendar; ``RR`` is
``IV(x = +0.675 sd) - IV(x = -0.675 sd)``, vol points, from the fitted smile)::

    NIFTY 2025-07-16 15:30 (ethanelliott50), spot 25212.05
      T(days)   1      8      15     22     29     43     71
      ATM IV  11.78   9.52   9.87  10.30  10.57  10.77  11.50   %
      dIV/dx  -0.73  -0.40  -0.31  -0.26  -0.24  -0.25  -0.19
      d2IV/dx2 154    40     24     15     12.5    7.2    3.8
      RR      -0.61  -0.75  -0.83  -0.86  -0.95  -1.20  -1.30
    NIFTY 2022-03-24 15:30 (lakk1), spot 17222.75
      T(days)   7      14     20     28     35
      ATM IV  21.67  23.68  24.65  23.62  23.12   %
      dIV/dx  -0.56  -0.49  -0.49  -0.45  -0.48
      d2IV/dx2 17.5    3.6    2.4    3.9    1.8
      RR      -2.25  -3.07  -3.76  -3.82  -4.53
    NIFTY 2019-08-23 15:30 (aadityatamrakar), spot 10829.35
      T(days)   6      13     34
      ATM IV  17.88  16.17  15.86   %
      dIV/dx  -0.19  -0.44  -0.34
      d2IV/dx2 25.7   23.4    6.3
    BANKNIFTY 2022-03-28 15:30 (lakk1), spot 35710.5
      T(days)   3      10     16     24     31     59
      ATM IV  32.16  30.76  30.96  29.31  28.70  28.88   %
      dIV/dx  -0.53  -0.57  -0.58  -0.59  -0.38  -0.27

From these: NIFTY ATM IV spans 9.5-24.7 % (so ``theta`` = 13 %, starting vol clipped to
9-24 %), BANKNIFTY 28.7-32.2 % in a stressed month (``theta`` = 16 %, start clipped to
11-32 %); ``dIV/dx`` scales like ``sigma_atm T^-0.35`` (a power-law fit of the 2025 term
structure gives exponent 0.32-0.34) with ``gamma`` = 2.2 for NIFTY (2025: 2.0-2.5, 2022:
2.0-2.2, 2019 34d: 2.2) and 1.4 for BANKNIFTY; ``d2IV/dx2 * T`` is 0.75-0.99 in calm 2025,
0.13-0.34 in 2022, 0.1-0.25 for BANKNIFTY, hence ``0.5 (vol_ref / sigma_atm)^1.5``. The
parity-implied forwards of 2025 give a carry ``r - q`` of 3-6 % (``q`` = 1.2 %). Spreads:
nearest weekly ATM 0.2-1.5 rupees (~1 %), OTM wings 10-35 % of the mid, ITM legs 3-120
rupees wide; the second expiry ~0.7-4 % at the money; illiquid far expiries 4-8 % at the
money and 50-100 % in the wings. OI: the top strikes of the 2025 weekly are
25500/25300/25200/25800/25400/26000 (CE) and 25000/25200/25100/25150/24500/24800 (PE),
mostly multiples of 100 and 500, 0-3 % out of the money. Rows without a CE / PE: 147 / 71
of 778 (2025), 720 / 69 of 1298 (2019).
"""

from __future__ import annotations

import functools
import inspect
import math
import zlib
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from shared.adapters.providers.base import IST, RawPayload, RequestRejected
from shared.domain.black76 import NSE_TICK, black76_price
from shared.domain.calendar import CalendarDataError, MarketCalendar, Session
from shared.domain.chain import ChainSnapshot

__all__ = [
    "MarketSimulator",
    "SimulatorProvider",
    "SymbolNotSimulated",
    "record_session",
]

Floats = npt.NDArray[np.float64]

# ----------------------------------------------------------------------------- constants

TICK: Final = NSE_TICK
REGULAR_MINUTES: Final = 375  # 09:15-15:30
MINUTE_YEARS: Final = 1.0 / (252 * REGULAR_MINUTES)  # trading-time year per minute
SESSION_YEARS: Final = REGULAR_MINUTES * MINUTE_YEARS  # one regular session, 1 / 252
YEAR_SECONDS: Final = 365 * 24 * 3600  # ACT/365, as MarketCalendar.year_fraction
DIV_YIELD: Final = 0.012

# spot / variance dynamics
KAPPA_SLOW: Final = 4.0  # per year
VOL_OF_VAR: Final = 0.25
RHO_SLOW: Final = -0.7
FAST_HALF_LIFE_MIN: Final = 30.0
FAST_SD: Final = 0.25
RHO_FAST: Final = -0.5
START_VOL_SD: Final = 0.25  # log-sd of the starting vol around theta
JUMPS_PER_SESSION: Final = 0.3
JUMP_DOWN_PROB: Final = 0.75
JUMP_MIN_SD: Final = 5.0
JUMP_MEAN_EXTRA_SD: Final = 5.0

# implied volatility surface
VRP: Final = 1.08
KAPPA_IV_FAST: Final = math.log(2.0) / (2.0 / 252.0)  # per trading year: 2-session half-life
SVI_WIDTH_SD: Final = 4.0  # SVI s in ATM standard deviations sigma sqrt(T)
SVI_RHO_MAX: Final = 0.9
IV_FAST_WEIGHT: Final = 0.5
SKEW_POWER: Final = 0.35
SKEW_TREF: Final = 30.0 / 365.0
CURV_C0: Final = 0.5
MIN_ATM_VOL: Final = 0.05
MAX_ATM_VOL: Final = 0.60


@dataclass(frozen=True, slots=True)
class _Spec:
    """Per-underlying constants (see the module docstring for where they come from)."""

    step: int  # strike grid
    tiers: tuple[tuple[int, float], ...]  # (multiple, OI factor), roundest first
    base_spot: float
    vol_ref: float  # long-run vol theta
    vol_lo: float
    vol_hi: float
    skew_gamma: float
    atm_volume: float  # contracts per day, ATM leg of the nearest expiry
    atm_oi: float  # contracts, ATM leg of the nearest expiry
    lot: int  # fallback when the calendar has no lot size
    index_name: str


_SPECS: Final = {
    "NIFTY": _Spec(50, ((500, 3.5), (100, 2.0)), 25000.0, 0.13, 0.09, 0.24, 2.2, 1.5e6, 1.2e5,
                   75, "NIFTY 50"),
    "BANKNIFTY": _Spec(100, ((1000, 3.5), (500, 2.0)), 55000.0, 0.16, 0.11, 0.32, 1.4, 4.0e5,
                       4.0e4, 35, "NIFTY BANK"),
    "FINNIFTY": _Spec(50, ((500, 3.5), (100, 2.0)), 26000.0, 0.15, 0.10, 0.28, 1.8, 1.0e5,
                      1.5e4, 65, "NIFTY FIN SERVICE"),
    "MIDCPNIFTY": _Spec(25, ((500, 3.5), (100, 2.0)), 13000.0, 0.17, 0.11, 0.32, 1.6, 8.0e4,
                        1.2e4, 140, "NIFTY MID SELECT"),
}

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec")

# random stream ids (one independent stream per purpose)
_S_PATH, _S_START, _S_LEGS, _S_FLOW, _S_MINUTE = 1, 2, 3, 4, 5


def _dmy(d: date) -> str:
    return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year}"


def _minute_bars(session: Session) -> list[datetime]:
    """The one-minute bars of ``session``: from the open, every minute before the close that
    is not inside a break."""
    times: list[datetime] = []
    t = session.open
    while t < session.close:
        if not any(b0 <= t < b1 for b0, b1 in session.breaks):
            times.append(t)
        t += timedelta(minutes=1)
    return times


def _quoted(model: Floats, tt: Floats, t: Floats) -> Floats:
    """The ACT/365 IV with the same total variance as ``model`` over ``tt`` trading years:
    ``sigma^2 t = model^2 tt`` (``t`` calendar years)."""
    return model * np.sqrt(tt / np.maximum(t, 1e-12))


def _count_bars(session: Session, end: datetime) -> int:
    """``len([t for t in _minute_bars(session) if t < end])`` without building the list."""
    def before(x: datetime) -> int:  # bars at open + k minutes, k >= 0, strictly before x
        x = min(x, end, session.close)
        return max(0, math.ceil((x - session.open).total_seconds() / 60.0))

    return before(session.close) - sum(max(0, before(b1) - before(b0))
                                       for b0, b1 in session.breaks)


def _phi(y: Floats) -> Floats:
    """``(1 - exp(-y)) / y``, 1 at 0."""
    y = np.asarray(y, dtype=float)
    small = y < 1e-8
    safe = np.where(small, 1.0, y)
    return np.where(small, 1.0 - 0.5 * y, -np.expm1(-safe) / safe)


class SymbolNotSimulated(RequestRejected):
    """A simulator provider was asked for an underlying it does not simulate."""

    reason_code = "simulator_symbol_mismatch"


@dataclass(frozen=True, slots=True)
class _Chain:
    """The listed legs and their per-minute quotes (computed once, lazily)."""

    leg_expiry: npt.NDArray[np.intp]  # (n_legs,) index into expiries
    leg_strike: Floats
    leg_call: npt.NDArray[np.bool_]
    rows: tuple[tuple[float, int, int, int], ...]  # (strike, expiry idx, CE leg, PE leg)
    strike_out: tuple[int | float, ...]  # per leg, as serialised
    identifier: tuple[str, ...]
    iv: Floats  # (n_min, n_legs) model IV, decimal
    price: Floats  # (n_min, n_legs) model price
    bid: npt.NDArray[np.int64]  # ticks, 0 = no bid
    ask: npt.NDArray[np.int64]  # ticks, 0 = no ask
    last: npt.NDArray[np.int64]  # ticks, 0 = never traded
    volume: npt.NDArray[np.int64]  # cumulative contracts
    oi: npt.NDArray[np.int64]  # contracts
    oi_prev: npt.NDArray[np.int64]  # (n_legs,)
    prev_close: npt.NDArray[np.int64]  # (n_legs,) ticks
    show_iv: npt.NDArray[np.bool_]  # (n_min, n_legs): the vendor would quote an IV
    depth: Floats  # (n_legs,) order-book depth scale, lots
    lot: npt.NDArray[np.int64]  # (n_legs,) units per contract
    strike_prices: tuple[int | float, ...]


@dataclass(frozen=True, slots=True)
class _Layout:
    """What a payload's structure alone gives the NSE parser, the same every minute: each
    leg's expiry (days since 1970-01-01) and strike as serialised, and the flags counting
    rows without a CE or a PE (see :meth:`MarketSimulator.snapshot_at`). Read-only."""

    exp_days: npt.NDArray[np.int64]
    strike: Floats
    flags: tuple[str, ...]


class MarketSimulator:
    """One simulated session of ``symbol`` on ``session_date`` (see the module docstring).

    Parameters
    ----------
    symbol
        An index the calendar knows and the simulator has constants for (NIFTY, BANKNIFTY,
        FINNIFTY, MIDCPNIFTY).
    session_date
        A date with a session in ``calendar``.
    seed
        Non-negative integer; with the symbol and date it determines everything.
    calendar
        The market calendar (sessions, expiries, lot sizes, year fractions).
    spot0
        The index at the first minute; default: the symbol's base level times a seeded
        log-normal factor.
    rate
        Continuously compounded rate used for discounting and forwards.
    n_expiries
        How many of the nearest listed expiries (from the calendar) the chain carries.
    """

    def __init__(self, symbol: str, session_date: date, *, seed: int,
                 calendar: MarketCalendar, spot0: float | None = None, rate: float = 0.065,
                 n_expiries: int = 4) -> None:
        sym = symbol.strip().upper()
        if sym not in _SPECS:
            raise ValueError(f"the simulator has no constants for {symbol!r}: "
                             f"simulated symbols are {', '.join(sorted(_SPECS))}")
        if isinstance(session_date, datetime) or not isinstance(session_date, date):
            raise TypeError(f"session_date must be a date, not {type(session_date).__name__}")
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
        if n_expiries < 1:
            raise ValueError("n_expiries must be at least 1")
        if spot0 is not None and not (math.isfinite(spot0) and spot0 > 0):
            raise ValueError(f"spot0 must be a positive number, not {spot0!r}")
        self.symbol = sym
        self.session_date = session_date
        self.seed = int(seed)
        self.calendar = calendar
        self.rate = float(rate)
        self.spec = _SPECS[sym]
        self._key = (self.seed, zlib.crc32(sym.encode()), session_date.toordinal())

        session = calendar.session(session_date)
        if session is None:
            raise ValueError(f"{session_date.isoformat()} has no NSE session (weekend or "
                             f"holiday): nothing to simulate")
        self.session = session
        times = _minute_bars(session)
        if not times:
            raise ValueError(f"the session of {session_date.isoformat()} has no minute")
        self._times = tuple(times)
        self._epoch = np.array([x.timestamp() for x in times])

        # expiries: the nearest n listed by the calendar still trading at the last minute
        last = times[-1]
        end = min(session_date + timedelta(days=400), calendar.coverage[1])
        listed = [e for e in calendar.expiries(sym, session_date, end)
                  if calendar.expiry_close(e) > last]
        if not listed:
            raise ValueError(f"the calendar lists no {sym} expiry after {last.isoformat()}")
        self._expiry_objs = tuple(listed[:n_expiries])
        self.expiries: tuple[date, ...] = tuple(e.date for e in self._expiry_objs)
        lots = []
        for e in self._expiry_objs:
            try:
                lots.append(calendar.lot_size(sym, e).value)
            except CalendarDataError:
                lots.append(self.spec.lot)
        self.lot_sizes: dict[date, int] = dict(zip(self.expiries, lots, strict=True))
        close_dts = [calendar.expiry_close(e) for e in self._expiry_objs]
        closes = np.array([c.timestamp() for c in close_dts])
        # (n_min, n_exp) ACT/365 year fractions, exactly as calendar.year_fraction: the
        # clock the quoted IVs, forwards and discounting use
        self._t = np.maximum(closes[None, :] - self._epoch[:, None], 0.0) / YEAR_SECONDS
        # (n_min, n_exp) trading years to each expiry's close: the clock the spot's variance
        # accrues on (the session minutes left today, then every later trading session's)
        left_today = np.searchsorted(self._epoch, closes, side="left")[None, :] \
            - np.arange(len(times))[:, None]
        later = np.array([self._later_session_minutes(c) for c in close_dts], dtype=float)
        self._tt = (np.maximum(left_today, 0) + later[None, :]) * MINUTE_YEARS

        self._simulate_path(spot0)
        self._chain_cache: _Chain | None = None
        self._layout_cache: _Layout | None = None

    def _later_session_minutes(self, close: datetime) -> int:
        """Session minutes of the trading days after the session date up to ``close``."""
        cal = self.calendar
        total = 0
        d = self.session_date + timedelta(days=1)
        while d <= close.date():
            try:
                sess = cal.session(d)
            except CalendarDataError:  # beyond the holiday data: weekdays are regular
                total += REGULAR_MINUTES if d.weekday() < 5 else 0
            else:
                if sess is not None and sess.is_trading_day:
                    total += _count_bars(sess, close)
            d += timedelta(days=1)
        return total

    # ------------------------------------------------------------------ randomness

    def _rng(self, stream: int, *extra: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([*self._key, stream, *extra]))

    # ------------------------------------------------------------------ the path

    def _simulate_path(self, spot0: float | None) -> None:
        spec = self.spec
        n = len(self._times)
        start = self._rng(_S_START)
        level = round(spec.base_spot * math.exp(0.04 * start.standard_normal()), 2)
        if spot0 is None:
            spot0 = level
        gap = 0.004 * start.standard_normal()
        vol0 = float(np.clip(spec.vol_ref * math.exp(START_VOL_SD * start.standard_normal()),
                             spec.vol_lo, spec.vol_hi))
        h0 = FAST_SD * float(start.standard_normal())
        self.theta = spec.vol_ref ** 2
        self.prev_close = round(float(spot0) * math.exp(-gap), 2)

        k = np.arange(n, dtype=float)
        season = 1.0 + 1.6 * np.exp(-k / 18.0) + 0.6 * np.exp(-(n - 1 - k) / 25.0)
        season /= season.mean()
        self._season = season

        rng = self._rng(_S_PATH)
        z = rng.standard_normal((n, 3))
        zs = z[:, 0]
        zv = RHO_SLOW * zs + math.sqrt(1 - RHO_SLOW ** 2) * z[:, 1]
        zh = RHO_FAST * zs + math.sqrt(1 - RHO_FAST ** 2) * z[:, 2]
        jump_at = rng.random(n) < JUMPS_PER_SESSION / REGULAR_MINUTES
        jump_at[0] = False  # the first bar is the open: no return into it
        jump_down = rng.random(n) < JUMP_DOWN_PROB
        jump_sd = JUMP_MIN_SD + rng.exponential(JUMP_MEAN_EXTRA_SD, n)

        dt = MINUTE_YEARS
        phi_h = math.exp(-math.log(2.0) / FAST_HALF_LIFE_MIN)
        h_noise = FAST_SD * math.sqrt(1 - phi_h ** 2)
        norm = math.exp(-2 * FAST_SD ** 2)
        slow = np.empty(n)
        fast = np.empty(n)
        inst = np.empty(n)
        logret = np.zeros(n)
        jumps: list[tuple[int, float]] = []
        v, h = vol0 ** 2, h0
        v_floor = (0.5 * spec.vol_lo) ** 2
        for i in range(n):
            if i:
                var = inst[i - 1]
                sd = math.sqrt(var * dt)
                r = -0.5 * var * dt + sd * zs[i]
                # the factors move with the same shocks (leverage) ...
                v = max(v_floor, v + KAPPA_SLOW * (self.theta - v) * dt
                        + VOL_OF_VAR * math.sqrt(v * dt) * zv[i])
                h = h * phi_h + h_noise * zh[i]
                if jump_at[i]:  # ... and jump after a jump
                    size = float(jump_sd[i]) * sd * (-1.0 if jump_down[i] else 1.0)
                    r += size
                    jumps.append((i, size))
                    h += min(0.8, 0.06 * abs(size) / sd) * (1.0 if size < 0 else 0.5)
                    if size < 0:
                        v *= 1.1
                logret[i] = r
            slow[i], fast[i] = v, h
            inst[i] = v * math.exp(2 * h) * norm * season[i]
        self._slow, self._fast, self._inst = slow, fast, inst
        self._jumps = tuple(jumps)
        path = float(spot0) * np.exp(np.cumsum(logret))
        path.setflags(write=False)
        self._path = path

    # ------------------------------------------------------------------ time

    def minutes(self) -> int:
        """Number of one-minute bars in the session (375 on a regular day)."""
        return len(self._times)

    def time_at(self, i: int) -> datetime:
        """The (aware, IST) time of minute ``i``: the session open plus ``i`` minutes."""
        if not 0 <= i < len(self._times):
            raise IndexError(f"minute {i} is outside 0..{len(self._times) - 1}")
        return self._times[i]

    def index_at(self, now: datetime) -> int:
        """The minute at or just before ``now`` (aware), clamped to the session."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        i = int(np.searchsorted(self._epoch, now.timestamp(), side="right")) - 1
        return min(max(i, 0), len(self._times) - 1)

    # ------------------------------------------------------------------ model state

    def spot_path(self) -> Floats:
        """The index level at every minute, shape ``(minutes(),)`` (read-only)."""
        return self._path

    def variance_path(self) -> Floats:
        """Instantaneous annualised variance of the spot at every minute (copy)."""
        return self._inst.copy()

    def jumps(self) -> tuple[tuple[int, float], ...]:
        """``(minute, log-return jump)`` of every simulated jump."""
        return self._jumps

    def year_fractions(self, i: int) -> Floats:
        """ACT/365 years from minute ``i`` to each expiry's close, shape ``(n_expiries,)``:
        the time the quoted IVs (and forwards, discounting) are on."""
        self.time_at(i)
        return self._t[i].copy()

    def trading_year_fractions(self, i: int) -> Floats:
        """Trading years (``MINUTE_YEARS`` per session minute) from minute ``i`` to each
        expiry's close, shape ``(n_expiries,)``: the time the spot's variance accrues on.
        ``atm_iv(i)**2 * year_fractions(i)`` is ``model_vol(i)**2 *
        trading_year_fractions(i)``."""
        self.time_at(i)
        return self._tt[i].copy()

    def forwards(self, i: int) -> Floats:
        """The model forward of each expiry at minute ``i``."""
        self.time_at(i)
        return self._forward_rows(np.array([i]))[0]

    def atm_iv(self, i: int) -> Floats:
        """The model ATM (at-the-forward) implied volatility of each expiry at minute ``i``,
        quoted on ACT/365 time (:meth:`year_fractions`), as the market and the analytics
        quote it."""
        self.time_at(i)
        return self._atm_rows(np.array([i]))[0]

    def model_vol(self, i: int) -> Floats:
        """The ATM volatility of each expiry at minute ``i`` on the simulator's own trading
        clock (:meth:`trading_year_fractions`): ``VRP`` times the root of the expected
        average instantaneous variance to the expiry close."""
        self.time_at(i)
        return self._model_rows(np.array([i]))[0]

    def _forward_rows(self, idx: npt.NDArray[np.intp]) -> Floats:
        return self._path[idx, None] * np.exp((self.rate - DIV_YIELD) * self._t[idx])

    def _atm(self, slow: Floats, fast: Floats, tt: Floats) -> Floats:
        """Trading-clock ATM vol for slow variance ``slow``, fast factor ``fast`` (column
        vectors) and ``tt`` trading years to expiry."""
        excess = np.exp(2 * fast - 2 * FAST_SD ** 2) - 1.0
        var = (self.theta + (slow - self.theta) * _phi(KAPPA_SLOW * tt)
               + IV_FAST_WEIGHT * slow * excess * _phi(KAPPA_IV_FAST * tt))
        return np.clip(VRP * np.sqrt(np.maximum(var, 0.0)), MIN_ATM_VOL, MAX_ATM_VOL)

    def _model_rows(self, idx: npt.NDArray[np.intp]) -> Floats:
        return self._atm(self._slow[idx, None], self._fast[idx, None], self._tt[idx])

    def _atm_rows(self, idx: npt.NDArray[np.intp]) -> Floats:
        return _quoted(self._model_rows(idx), self._tt[idx], self._t[idx])

    def _svi(self, atm: Floats, t: Floats) -> tuple[Floats, Floats, Floats, Floats]:
        """Raw SVI ``(a, b, s, rho)`` (``m = 0``) of the total variance ``w(x)`` matching the
        ATM vol, skew and curvature targets (see the module docstring) on one clock: called
        with the trading-clock vol and trading years, so ``w`` is the model's total
        variance; shapes broadcast."""
        t = np.maximum(t, 1e-9)
        sqrt_t = np.sqrt(t)
        skew_k = -self.spec.skew_gamma * atm * (t / SKEW_TREF) ** -SKEW_POWER * sqrt_t
        curv_k = CURV_C0 * (self.spec.vol_ref / atm) ** 1.5
        w0 = atm * atm * t  # w(0), w'(0), w''(0) of the target smile
        w1 = 2 * atm * skew_k * sqrt_t
        w2 = 2 * (skew_k * skew_k + atm * curv_k)
        s = SVI_WIDTH_SD * atm * sqrt_t
        b = w2 * s
        rho = w1 / b
        steep = rho < -SVI_RHO_MAX  # too much skew for that width: narrow the smile
        rho = np.where(steep, -SVI_RHO_MAX, rho)
        b = np.where(steep, w1 / -SVI_RHO_MAX, b)
        s = b / w2
        # keep the minimum total variance at least half the ATM one
        s = np.minimum(s, 0.5 * w0 / (b * (1 - np.sqrt(1 - rho * rho))))
        return w0 - b * s, b, s, rho

    def smile_iv(self, i: int, strikes: npt.ArrayLike, expiry_index: int = 0) -> Floats:
        """Model implied vols (ACT/365, as :meth:`atm_iv`) at minute ``i`` for ``strikes``
        of one expiry."""
        self.time_at(i)
        k = np.asarray(strikes, dtype=float)
        t = self._t[i, expiry_index]
        tt = self._tt[i, expiry_index]
        fwd = self.forwards(i)[expiry_index]
        a, b, s, rho = self._svi(self.model_vol(i)[expiry_index], tt)
        x = np.log(k / fwd)
        w = a + b * (rho * x + np.sqrt(x * x + s * s))  # total variance
        return np.sqrt(w / max(t, 1e-12))

    # ------------------------------------------------------------------ the chain

    def _chain(self) -> _Chain:
        if self._chain_cache is None:
            self._chain_cache = self._build_chain()
        return self._chain_cache

    def _build_chain(self) -> _Chain:
        spec = self.spec
        n = len(self._times)
        n_exp = len(self.expiries)
        legs_rng = self._rng(_S_LEGS)

        # liquidity by expiry rank: the nearest is the most liquid, monthlies have a bonus
        liq = np.array([(0.2 ** r) * (2.5 if (r and e.kind == "monthly") else 1.0)
                        for r, e in enumerate(self._expiry_objs)])
        liq *= np.array([3.0 if d == self.session_date else 1.0 for d in self.expiries])
        liq = np.minimum(liq, 3.0)

        # previous close: spot, forwards, vols
        prev_t = self._previous_close_t()
        prev_tt = self._tt[0]  # no session minute between the previous close and the open
        prev_fwd = self.prev_close * np.exp((self.rate - DIV_YIELD) * prev_t)
        prev_model = self._atm(np.array([self._slow[0]]), np.array([0.0]), prev_tt)

        # strikes per expiry around the previous close's forward
        step = spec.step
        coarse = spec.tiers[-1][0]
        leg_e: list[int] = []
        leg_k: list[float] = []
        leg_c: list[bool] = []
        rows: list[tuple[float, int, int, int]] = []
        row_keys: list[tuple[float, int, bool, bool]] = []
        for e in range(n_exp):
            t0 = max(self._t[0, e], 1.0 / 365.0)
            half = float(np.clip(4.0 * spec.vol_ref * math.sqrt(t0), 0.10, 0.30))
            lo = math.ceil(prev_fwd[e] * math.exp(-half) / step) * step
            hi = math.floor(prev_fwd[e] * math.exp(half) / step) * step
            ks = np.arange(lo, hi + step, step, dtype=float)
            x = np.log(ks / prev_fwd[e])
            if e >= 2:  # far expiries list only round strikes away from the money
                ks = ks[(np.abs(x) <= 0.04) | (ks % coarse == 0)]
                x = np.log(ks / prev_fwd[e])
            # deep ITM legs are often not listed: drop the ITM side at random
            p_drop = np.clip((np.abs(x) - 0.04) * 8.0, 0.0, 0.7)
            drop = legs_rng.random(ks.shape) < p_drop
            for kk, xx, dd in zip(ks.tolist(), x.tolist(), drop.tolist(), strict=True):
                has_ce = not (dd and xx < 0)
                has_pe = not (dd and xx > 0)
                row_keys.append((kk, e, has_ce, has_pe))
        row_keys.sort(key=lambda r: (r[0], r[1]))
        for kk, e, has_ce, has_pe in row_keys:
            ce = pe = -1
            if has_ce:
                ce = len(leg_k)
                leg_e.append(e)
                leg_k.append(kk)
                leg_c.append(True)
            if has_pe:
                pe = len(leg_k)
                leg_e.append(e)
                leg_k.append(kk)
                leg_c.append(False)
            rows.append((kk, e, ce, pe))
        e_idx = np.array(leg_e, dtype=np.intp)
        strike = np.array(leg_k)
        call = np.array(leg_c, dtype=np.bool_)
        n_legs = strike.shape[0]

        # per-minute model: forwards, vols, prices
        # the smile is built in total variance on the trading clock (model vol, trading
        # years) and quoted on ACT/365: iv = sqrt(w / t), so sigma_iv^2 t = w
        all_min = np.arange(n)
        t_e, tt_e = self._t, self._tt  # (n, n_exp)
        fwd_e = self._forward_rows(all_min)
        model_e = self._model_rows(all_min)
        a_e, b_e, s_e, rho_e = self._svi(model_e, tt_e)
        tm, fm, model = t_e[:, e_idx], fwd_e[:, e_idx], model_e[:, e_idx]
        x = np.log(strike[None, :] / fm)
        s = s_e[:, e_idx]
        w = a_e[:, e_idx] + b_e[:, e_idx] * (rho_e[:, e_idx] * x + np.sqrt(x * x + s * s))
        iv = np.sqrt(w / np.maximum(tm, 1e-12))
        price = black76_price(fm, strike[None, :], tm, self.rate, iv, call[None, :])
        df = np.exp(-self.rate * tm)
        intrinsic = df * np.maximum(np.where(call, fm - strike, strike - fm), 0.0)
        time_value = np.maximum(price - intrinsic, 0.0)
        # standardised moneyness: x in ATM standard deviations to expiry (at least a session)
        z = x / (model * np.sqrt(np.maximum(tt_e[:, e_idx], SESSION_YEARS)))
        otm = np.where(call, z, -z)  # > 0 out of the money

        # quotes: symmetric spread around the model price, bid rounded down, ask up
        leg_liq = liq[e_idx]
        rel = 0.004 * leg_liq ** -0.4
        root = 0.15 * leg_liq ** -0.5
        rel_itm = 0.003 * leg_liq ** -0.4
        min_ticks = np.where(leg_liq >= 0.5, 1.0, np.where(leg_liq >= 0.05, 2.0, 4.0))
        itm_z = np.maximum(-otm, 0.0)
        spread = np.maximum(
            min_ticks * TICK,
            rel * (1.0 + 0.35 * otm * otm) * time_value + root * np.sqrt(time_value * TICK)
            + rel_itm * (1.0 + 0.5 * itm_z * itm_z) * intrinsic)
        spread = np.minimum(spread, np.maximum(2 * TICK, 1.5 * price))
        half = 0.5 * spread
        bid = np.floor((price - half) / TICK + 1e-9).astype(np.int64)
        ask = np.ceil((price + half) / TICK - 1e-9).astype(np.int64)
        ask = np.maximum(ask, np.maximum(bid, 0) + 1)
        bid[bid < 1] = 0
        ask[price < 0.001] = 0  # nobody offers the deepest wings

        # previous close of each leg
        prev_x = np.log(strike / prev_fwd[e_idx])
        pa, pb, ps, prho = self._svi(prev_model, prev_tt)
        prev_w = pa[e_idx] + pb[e_idx] * (prho[e_idx] * prev_x
                                          + np.sqrt(prev_x ** 2 + ps[e_idx] ** 2))
        prev_iv = np.sqrt(prev_w / np.maximum(prev_t[e_idx], 1e-12))
        prev_price = black76_price(prev_fwd[e_idx], strike, prev_t[e_idx], self.rate,
                                   prev_iv, call)
        prev_close = np.rint(prev_price / TICK).astype(np.int64)
        prev_z = prev_x / (prev_model[e_idx]
                           * np.sqrt(np.maximum(prev_tt[e_idx], SESSION_YEARS)))
        prev_otm = np.where(call, prev_z, -prev_z)

        # round strikes attract open interest and volume
        round_mult = np.ones(n_legs)
        for multiple, factor in reversed(spec.tiers):
            round_mult[strike % multiple == 0] = factor

        # open interest at the previous close
        width = np.where(prev_otm >= 0.5, 1.4, 0.6)
        oi_shape = np.exp(-0.5 * ((prev_otm - 0.5) / width) ** 2) + 0.002
        oi_noise = np.exp(0.3 * legs_rng.standard_normal(n_legs))
        oi_scale = spec.atm_oi * np.sqrt(np.minimum(liq, 1.0))[e_idx]
        oi_prev = np.rint(oi_scale * oi_shape * round_mult * oi_noise).astype(np.int64)

        # volume: Poisson arrivals following moneyness, the U-shape and the spot moves
        flow = self._rng(_S_FLOW)
        width_now = np.where(otm >= 0.3, 1.3, 0.6)
        vol_shape = np.exp(-0.5 * ((otm - 0.3) / width_now) ** 2) + 0.002
        vol_noise = np.exp(0.4 * legs_rng.standard_normal(n_legs))
        daily = spec.atm_volume * leg_liq * round_mult ** 0.6 * vol_noise  # (n_legs,)
        ret = np.zeros(n)
        ret[1:] = np.diff(np.log(self._path))
        sd = np.sqrt(self._inst * MINUTE_YEARS)
        activity = 1.0 + np.minimum(1.5 * np.abs(ret) / sd, 6.0)
        u_shape = self._season ** 1.5
        u_shape /= u_shape.mean()
        per_minute = (u_shape * activity / activity.mean())[:, None] / REGULAR_MINUTES
        lam = daily[None, :] * vol_shape * per_minute
        dvol = flow.poisson(lam)
        volume = np.cumsum(dvol, axis=0)

        # OI drifts with the volume: writers add OTM, ITM positions close
        expected = np.maximum(lam.sum(axis=0), 1.0)
        target = np.where(prev_otm > 0.3, 0.08, -0.05) + 0.12 * legs_rng.standard_normal(n_legs)
        base = np.maximum(oi_prev, 0.02 * expected)
        kappa = base * target / expected
        d_oi = dvol * kappa[None, :] * (1.0 + flow.standard_normal(dvol.shape))
        oi = np.maximum(np.rint(oi_prev[None, :] + np.cumsum(d_oi, axis=0)), 0).astype(np.int64)

        # last traded price: the trade price of the last minute with volume
        u = flow.uniform(-1.0, 1.0, dvol.shape)
        trade = np.maximum(np.rint((price + u * half) / TICK), 1).astype(np.int64)
        traded = dvol > 0
        last_minute = np.maximum.accumulate(np.where(traded, all_min[:, None], -1), axis=0)
        last = np.take_along_axis(trade, np.maximum(last_minute, 0), axis=0)
        stale = np.where(legs_rng.random(n_legs) < 0.7, prev_close, 0)
        last = np.where(last_minute >= 0, last, stale[None, :])

        show_iv = (volume > 0) & (otm > -2.0) & (price >= TICK)
        depth = np.maximum(1.0, 0.02 * daily * vol_shape.mean(axis=0))
        lot = np.array([self.lot_sizes[d] for d in self.expiries])[e_idx]
        strike_out = tuple(int(k) if float(k).is_integer() else float(k) for k in leg_k)
        identifier = tuple(
            f"OPTIDX{self.symbol}{self.expiries[e].strftime('%d-%m-%Y')}"
            f"{'CE' if c else 'PE'}{k:.2f}" for e, k, c in zip(leg_e, leg_k, leg_c, strict=True))
        uniq = sorted({r[0] for r in rows})
        return _Chain(
            leg_expiry=e_idx, leg_strike=strike, leg_call=call, rows=tuple(rows),
            strike_out=strike_out, identifier=identifier, iv=iv, price=price, bid=bid,
            ask=ask, last=last, volume=volume, oi=oi, oi_prev=oi_prev, prev_close=prev_close,
            show_iv=show_iv, depth=depth, lot=lot,
            strike_prices=tuple(int(k) if float(k).is_integer() else k for k in uniq))

    def _previous_close_t(self) -> Floats:
        """Year fractions from the previous session's close to each expiry."""
        try:
            prev_day = self.calendar.previous_trading_day(self.session_date)
            prev = self.calendar.session(prev_day)
            close = prev.close if prev is not None else self._times[0] - timedelta(hours=18)
        except CalendarDataError:
            close = self._times[0] - timedelta(hours=18)
        return np.array([self.calendar.year_fraction(close, e) for e in self._expiry_objs])

    def quotes(self, i: int) -> dict[str, Floats]:
        """The model's view of minute ``i`` per leg (strike, expiry index, is_call, model
        price and IV, bid and ask in rupees with NaN for no quote)."""
        self.time_at(i)
        ch = self._chain()
        bid = ch.bid[i] * TICK
        ask = ch.ask[i] * TICK
        return {
            "strike": ch.leg_strike.copy(), "expiry_index": ch.leg_expiry.copy(),
            "is_call": ch.leg_call.copy(), "price": ch.price[i].copy(), "iv": ch.iv[i].copy(),
            "bid": np.where(ch.bid[i] > 0, bid, np.nan),
            "ask": np.where(ch.ask[i] > 0, ask, np.nan),
        }

    # ------------------------------------------------------------------ the snapshot

    def _layout(self) -> _Layout:
        if self._layout_cache is None:
            self._layout_cache = self._build_layout()
        return self._layout_cache

    def _build_layout(self) -> _Layout:
        """The structural part of ``parse_nse_obj`` on the payload's rows: leg keys and the
        absent-leg flags, in the order the parser appends them."""
        ch = self._chain()
        epoch = date(1970, 1, 1).toordinal()
        days = np.array([d.toordinal() - epoch for d in self.expiries], dtype=np.int64)
        exp = days[ch.leg_expiry]
        strike = np.array(ch.strike_out, dtype=np.float64)  # as serialised, as to_floats
        from shared.adapters.providers.nse import absence_flags

        flags = absence_flags(sum(1 for _, _, ce, _ in ch.rows if ce < 0),
                              sum(1 for _, _, ce, pe in ch.rows if ce >= 0 and pe < 0),
                              sum(1 for _, _, ce, pe in ch.rows if ce < 0 and pe < 0))
        for arr in (exp, strike):
            arr.setflags(write=False)
        return _Layout(exp_days=exp, strike=strike, flags=tuple(flags))

    def snapshot_at(self, i: int) -> ChainSnapshot:
        """The snapshot of minute ``i``: exactly what the NSE parser makes of
        :meth:`payload_at` (``SimulatorProvider.parse(SimulatorProvider.fetch(...))``,
        labelled ``"simulator"``), built from the simulator's arrays without the JSON.

        Every value is the payload's (prices and the percent IV rounded to 2 dp as
        serialised, the time to the second) put through what the parser does to it: zero
        or non-finite prices and IVs become NaN with their :class:`Missing` flag, the IV
        is divided by 100, OI, its change and volume are contracts as floats, a leg with a
        last price and no volume today is ``STALE_PRICE``, the legs are sorted by expiry,
        strike, CE before PE, and the flags count the rows without a CE or a PE. The
        identity is tested minute by minute (``tests/unit/test_simulator_snapshot.py``);
        a change to the payload or to the parser must keep it.
        """
        from shared.adapters.providers.base import assemble_arrays

        when = self.time_at(i)
        ch = self._chain()
        lay = self._layout()

        def wire(x: Floats) -> Floats:  # JSON has no NaN or infinity: null, read as NaN
            return np.where(np.isfinite(x), x, np.nan)

        iv_pct = np.where(ch.show_iv[i], np.round(100.0 * ch.iv[i], 2), 0.0)
        oi_now = ch.oi[i]
        # the payload's "DD-Mon-YYYY HH:MM:SS" stamp, read back as IST
        asof = datetime(when.year, when.month, when.day, when.hour, when.minute, when.second,
                        tzinfo=IST)
        return assemble_arrays(
            lay.exp_days, lay.strike.copy(), ch.leg_call.copy(),
            last=wire(np.round(ch.last[i] * TICK, 2)), bid=wire(np.round(ch.bid[i] * TICK, 2)),
            ask=wire(np.round(ch.ask[i] * TICK, 2)), iv_percent=wire(iv_pct),
            volume=ch.volume[i].astype(np.float64), oi=oi_now.astype(np.float64),
            oi_change=(oi_now - ch.oi_prev).astype(np.float64), symbol=self.symbol,
            asof=asof, spot=round(float(self._path[i]), 2), source=SimulatorProvider.name,
            flags=lay.flags)

    # ------------------------------------------------------------------ the payload

    def payload_at(self, i: int) -> bytes:
        """The NSE ``option-chain-indices`` JSON body of minute ``i``."""
        when = self.time_at(i)
        ch = self._chain()
        spot = round(float(self._path[i]), 2)
        n_legs = ch.leg_strike.shape[0]
        rng = self._rng(_S_MINUTE, i)
        lot = ch.lot

        bid_t, ask_t, last_t = ch.bid[i], ch.ask[i], ch.last[i]
        has_bid, has_ask = bid_t > 0, ask_t > 0
        oi = ch.oi[i]
        doi = oi - ch.oi_prev
        with np.errstate(divide="ignore", invalid="ignore"):
            pdoi = np.where(ch.oi_prev > 0, 100.0 * doi / ch.oi_prev, 0.0)
            change = np.where(last_t > 0, (last_t - ch.prev_close) * TICK, 0.0)
            pchange = np.where((last_t > 0) & (ch.prev_close > 0),
                               100.0 * (last_t - ch.prev_close) / ch.prev_close, 0.0)
        iv_pct = np.where(ch.show_iv[i], np.round(100.0 * ch.iv[i], 2), 0.0)
        bid_qty = np.where(has_bid, rng.integers(1, 40, n_legs), 0) * lot
        ask_qty = np.where(has_ask, rng.integers(1, 40, n_legs), 0) * lot
        scale = ch.depth * rng.uniform(0.3, 1.7, (2, n_legs))
        buy_qty = np.where(has_bid, np.rint(scale[0]), 0).astype(np.int64) * lot + bid_qty
        sell_qty = np.where(has_ask, np.rint(scale[1]), 0).astype(np.int64) * lot + ask_qty

        exp_str = [_dmy(d) for d in self.expiries]
        sym = self.symbol
        cols = zip(
            ch.strike_out, ch.leg_expiry.tolist(), ch.identifier, oi.tolist(), doi.tolist(),
            np.round(pdoi, 4).tolist(), ch.volume[i].tolist(), iv_pct.tolist(),
            np.round(last_t * TICK, 2).tolist(), np.round(change, 2).tolist(),
            np.round(pchange, 4).tolist(), buy_qty.tolist(), sell_qty.tolist(),
            bid_qty.tolist(), np.round(bid_t * TICK, 2).tolist(), ask_qty.tolist(),
            np.round(ask_t * TICK, 2).tolist(), strict=True)
        legs = [
            {"strikePrice": k, "expiryDate": exp_str[e], "underlying": sym, "identifier": ident,
             "openInterest": o, "changeinOpenInterest": d, "pchangeinOpenInterest": pd,
             "totalTradedVolume": v, "impliedVolatility": ivp, "lastPrice": lp, "change": c,
             "pChange": pc, "totalBuyQuantity": tb, "totalSellQuantity": ts, "bidQty": bq,
             "bidprice": b, "askQty": aq, "askPrice": a, "underlyingValue": spot}
            for (k, e, ident, o, d, pd, v, ivp, lp, c, pc, tb, ts, bq, b, aq, a) in cols]

        data = []
        nearest = []
        for k, e, ce, pe in ch.rows:
            kk = int(k) if float(k).is_integer() else k
            row: dict[str, object] = {"strikePrice": kk, "expiryDate": exp_str[e]}
            if ce >= 0:
                row["CE"] = legs[ce]
            if pe >= 0:
                row["PE"] = legs[pe]
            data.append(row)
            if e == 0:
                nearest.append(row)
        near = ch.leg_expiry == 0
        tot = {
            side: {"totOI": int(oi[near & mask].sum()),
                   "totVol": int(ch.volume[i][near & mask].sum())}
            for side, mask in (("CE", ch.leg_call), ("PE", ~ch.leg_call))}
        path = self._path[: i + 1]
        prev = self.prev_close
        index = {
            "key": "INDICES ELIGIBLE IN DERIVATIVES", "index": self.spec.index_name,
            "indexSymbol": self.spec.index_name, "last": spot,
            "variation": round(spot - prev, 2), "percentChange": round(100 * (spot / prev - 1), 2),
            "open": round(float(path[0]), 2), "high": round(float(path.max()), 2),
            "low": round(float(path.min()), 2), "previousClose": prev,
        }
        body = {
            "records": {
                "expiryDates": exp_str, "data": data,
                "timestamp": f"{_dmy(when.date())} {when:%H:%M:%S}",
                "underlyingValue": spot, "strikePrices": list(ch.strike_prices),
                "index": index,
            },
            "filtered": {"data": nearest, **tot},
        }
        return orjson.dumps(body)


# ----------------------------------------------------------------------------- provider


@functools.cache
def _parse_payload_takes_label() -> bool:
    from shared.adapters.providers import parse_payload

    return "snapshot_source" in inspect.signature(parse_payload).parameters


class SimulatorProvider:
    """A :class:`~shared.adapters.providers.base.ChainProvider` over a :class:`MarketSimulator`.

    ``fetch`` returns the payload of the minute at or just before ``now`` (clamped to the
    session); the payloads are NSE-format, so ``parse`` is the NSE parser, labelled
    ``"simulator"``.
    """

    name = "simulator"

    def __init__(self, simulator: MarketSimulator) -> None:
        self.simulator = simulator

    def __repr__(self) -> str:
        s = self.simulator
        return f"SimulatorProvider({s.symbol} {s.session_date.isoformat()} seed={s.seed})"

    def fetch(self, symbol: str, now: datetime) -> RawPayload:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        sim = self.simulator
        wanted = symbol.strip().upper()
        if wanted != sim.symbol:
            raise SymbolNotSimulated(
                f"the simulator provider simulates {sim.symbol}, not {wanted or symbol!r}")
        i = sim.index_at(now)
        return RawPayload(
            source="nse", symbol=sim.symbol, body=sim.payload_at(i), fetched_at=now,
            url=f"simulator://{sim.symbol}/{sim.session_date.isoformat()}/{sim.seed}/{i}")

    def parse(self, raw: RawPayload) -> ChainSnapshot:
        from shared.adapters.providers import parse_payload

        if _parse_payload_takes_label():
            return parse_payload(raw.body, source="nse", symbol=raw.symbol,
                                 snapshot_source=self.name)
        return replace(parse_payload(raw.body, source="nse", symbol=raw.symbol),
                       source=self.name)


def record_session(simulator: MarketSimulator, directory: str | Path,
                   every: int = 1) -> list[Path]:
    """Write every ``every``-th minute's payload to ``directory`` as
    ``<SYMBOL>_<YYYYMMDD>_<HHMM>.json`` (name order is time order); returns the paths."""
    if every < 1:
        raise ValueError("every must be at least 1")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(0, simulator.minutes(), every):
        when = simulator.time_at(i).astimezone(IST)
        path = out / f"{simulator.symbol}_{when:%Y%m%d_%H%M}.json"
        path.write_bytes(simulator.payload_at(i))
        paths.append(path)
    return paths
