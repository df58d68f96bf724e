"""``MarketSimulator.snapshot_at(i)`` is exactly the NSE parser's snapshot of
``payload_at(i)`` (``SimulatorProvider.parse(SimulatorProvider.fetch(...))``): every array,
its order, dtype and NaN placement, the spot, the time and its zone, the expiries, the flags,
the symbol and the source label. ``qs replay`` uses it to skip the JSON round trip, so any
change to the payload or to the parser must keep this identity."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from shared.adapters.providers import simulator
from shared.adapters.providers.simulator import MarketSimulator, SimulatorProvider
from shared.domain.chain import ChainSnapshot, Missing
from shared.replay.sources import simulated_sessions
from shared.rules import default_calendar

ARRAYS = ("expiry", "strike", "is_call", "last", "bid", "ask", "volume", "oi", "oi_change",
          "vendor_iv", "missing")
SCALARS = ("symbol", "asof", "spot", "source", "expiries", "flags")
REPLAY_DAY = date(2026, 4, 8)  # qs replay's default day (a Wednesday)
REGULAR_DAY = date(2025, 7, 16)
NIFTY_EXPIRY = date(2025, 7, 17)  # a NIFTY weekly expiry
BANKNIFTY_EXPIRY = date(2025, 7, 31)  # a BANKNIFTY monthly expiry

# the NaNs every session has: never-traded legs, no vendor IV, yesterday's close as last
COMMON = Missing.LAST_PRICE | Missing.VENDOR_IV | Missing.STALE_PRICE
ALL = COMMON | Missing.BID | Missing.ASK  # and legs with no bid, no ask
# (symbol, day, seed, every minute?, jumps?, expiry day?, NaNs covered): two seeds of each
# symbol (every minute), qs replay's default session among them (seed 1234: one jump),
# expiry days with jumps (first, last, 50 random minutes and the jumps)
SESSIONS = [
    ("NIFTY", REPLAY_DAY, 1234, True, True, False, COMMON | Missing.BID),
    ("NIFTY", REPLAY_DAY, 7, True, False, False, ALL),
    ("BANKNIFTY", REGULAR_DAY, 0, True, True, False, COMMON),
    ("BANKNIFTY", REGULAR_DAY, 5, True, False, False, COMMON),
    ("NIFTY", NIFTY_EXPIRY, 2, False, True, True, ALL),
    ("BANKNIFTY", BANKNIFTY_EXPIRY, 3, False, True, True, ALL),
]


@pytest.fixture(scope="module")
def cal():
    return default_calendar()


def via_json(sim: MarketSimulator, i: int) -> ChainSnapshot:
    provider = SimulatorProvider(sim)
    return provider.parse(provider.fetch(sim.symbol, sim.time_at(i)))


def assert_identical(direct: ChainSnapshot, parsed: ChainSnapshot, where: str) -> None:
    for name in ARRAYS:
        a, b = getattr(direct, name), getattr(parsed, name)
        assert a.dtype == b.dtype, f"{where}: {name} dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=f"{where}: {name}", strict=True)
        assert not a.flags.writeable, f"{where}: {name} is writeable"
    for name in SCALARS:
        a, b = getattr(direct, name), getattr(parsed, name)
        assert a == b, f"{where}: {name} {a!r} != {b!r}"
        assert type(a) is type(b), f"{where}: {name} type {type(a)} != {type(b)}"
    assert direct.asof.tzinfo is parsed.asof.tzinfo
    assert direct.asof.isoformat() == parsed.asof.isoformat()


def minutes_to_check(sim: MarketSimulator, every: bool) -> list[int]:
    n = sim.minutes()
    if every:
        return list(range(n))
    picked = {0, n - 1}
    picked.update(np.random.default_rng(1234).choice(n, size=50, replace=False).tolist())
    for i, _ in sim.jumps():  # the jump minute and the one after
        picked.update(j for j in (i, i + 1) if j < n)
    return sorted(picked)


@pytest.mark.parametrize(("symbol", "day", "seed", "every", "jumps", "expiry_day", "nans"),
                         SESSIONS, ids=[f"{s}-{d}-seed{k}" for s, d, k, *_ in SESSIONS])
def test_snapshot_at_is_the_parsed_payload(cal, symbol, day, seed, every, jumps, expiry_day,
                                           nans) -> None:
    sim = MarketSimulator(symbol, day, seed=seed, calendar=cal)
    assert bool(sim.jumps()) is jumps
    assert (sim.expiries[0] == day) is expiry_day
    # asked first, before payload_at built anything: the same result
    assert_identical(sim.snapshot_at(sim.minutes() - 1), via_json(sim, sim.minutes() - 1),
                     "first call")
    seen_missing = 0
    for i in minutes_to_check(sim, every):
        direct = sim.snapshot_at(i)
        assert_identical(direct, via_json(sim, i), f"{symbol} {day} seed={seed} minute {i}")
        seen_missing |= int(np.bitwise_or.reduce(direct.missing))
    # the comparison covered NaNs of these kinds (all the simulator makes, over the list)
    assert seen_missing & nans == nans


def test_snapshot_at_with_a_given_spot_and_fewer_expiries(cal) -> None:
    sim = MarketSimulator("NIFTY", date(2023, 11, 30), seed=8, calendar=cal, spot0=20100.0,
                          n_expiries=2)
    for i in minutes_to_check(sim, every=False):
        assert_identical(sim.snapshot_at(i), via_json(sim, i), f"minute {i}")


def test_snapshot_at_rejects_minutes_outside_the_session(cal) -> None:
    sim = MarketSimulator("NIFTY", REPLAY_DAY, seed=1, calendar=cal)
    for i in (-1, sim.minutes()):
        with pytest.raises(IndexError):
            sim.snapshot_at(i)


def test_the_replay_plays_the_parsed_payloads(cal, monkeypatch) -> None:
    """``simulated_sessions`` (two chained days) yields the snapshots the JSON path gives."""
    made: list[MarketSimulator] = []

    class Recording(MarketSimulator):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(simulator, "MarketSimulator", Recording)
    plans = simulated_sessions("NIFTY", REPLAY_DAY, 2, seed=1234, calendar=cal)
    assert len(made) == len(plans) == 2
    for k, (plan, sim) in enumerate(zip(plans, made, strict=True)):
        assert plan.minute is not None
        assert sim.session_date == plan.day
        assert plan.size == sim.minutes()
        for i in (0, 1, 119, 120, plan.size - 1):
            assert_identical(plan.minute(i), via_json(sim, i), f"day {k} minute {i}")
        played = list(plan.snapshots())
        assert len(played) == plan.size
        for i in (0, 200, plan.size - 1):
            assert_identical(played[i], via_json(sim, i), f"day {k} played minute {i}")
