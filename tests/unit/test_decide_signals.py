"""decide layer 1: each signal's blocking/neutral/extreme cases against hand-computed scores,
bounds, missing inputs, determinism and read_all isolation."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from shared.domain.analytics import analyse_chain
from shared.domain.decide.readings import Axis, SignalReading
from shared.domain.decide.signals import (
    DensitySkew,
    DirectionModelSignal,
    GexPositioning,
    IvMeanReversion,
    MarketInputs,
    NewsEvent,
    NewsInput,
    OiFlow,
    Trend,
    VolForecastSpread,
    default_signals,
    market_inputs_from,
    read_all,
)
from shared.domain.risk import NewsItem, NewsState
from tests.builders import SyntheticExpiry, synthetic_chain

IST = timezone(timedelta(hours=5, minutes=30))
NOW = datetime(2026, 11, 20, 11, 0, tzinfo=IST)


def bare(**kw) -> MarketInputs:
    return MarketInputs(symbol="NIFTY", asof=NOW, **kw)


def full(rng: np.random.Generator | None = None) -> MarketInputs:
    rng = rng or np.random.default_rng(1234)
    daily = 24_000 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 120)))
    intraday = daily[-1] * np.exp(np.cumsum(rng.normal(0.0, 0.001, 40)))
    return bare(spot=24_000.0, forward=24_020.0, atm_iv=0.15, t_years=7 / 365,
                iv_history=rng.uniform(0.10, 0.25, 250), vol_forecast=0.13, rn_skew=-0.8,
                left_tail=0.04, right_tail=0.015, pcr_oi=1.1, pcr_change=1.4, gex=2e9,
                gamma_flip=23_700.0, closes_intraday=intraday, closes_daily=daily,
                news=(NewsInput(NOW + timedelta(hours=5), 30, "reduce_50", 0.7, ("NIFTY",),
                                "RBI policy"),),
                p_up=0.58, p_up_confidence=0.4)


# --------------------------------------------------------------------------- inputs


def test_inputs_need_an_aware_time_and_are_frozen():
    with pytest.raises(ValueError, match="aware"):
        MarketInputs(symbol="NIFTY", asof=datetime(2026, 11, 20, 11, 0))
    m = bare(iv_history=np.array([0.1, 0.2]))
    assert m.iv_history == (0.1, 0.2)
    with pytest.raises(FrozenInstanceError):
        m.spot = 1.0  # type: ignore[misc]


def test_absent_repeats_the_analytics_reason():
    m = bare(gamma_flip=float("nan"), reasons={"gamma_flip": "total GEX keeps its sign"})
    assert m.absent("gamma_flip") == "gamma_flip missing (total GEX keeps its sign)"
    assert m.absent("spot") == "spot missing"


# --------------------------------------------------------------------------- vol forecast


@pytest.mark.parametrize(("iv", "fc", "expected"), [
    (0.20, 0.16, -0.5),   # (0.16 - 0.20) / 0.20 = -0.2; 2.5 * -0.2
    (0.15, 0.15, 0.0),    # fair
    (0.10, 0.13, 0.75),   # +0.3 * 2.5
    (0.10, 0.30, 1.0),    # +2.0 * 2.5 = 5 -> clipped
    (0.40, 0.05, -1.0),   # -0.875 * 2.5 -> clipped
])
def test_vol_forecast_spread(iv, fc, expected):
    r = VolForecastSpread().read(bare(atm_iv=iv, vol_forecast=fc))
    assert r.available and r.axis is Axis.VOLATILITY
    assert r.score == pytest.approx(expected)
    assert r.confidence == 0.6
    assert r.inputs["spread"] == pytest.approx((fc - iv) / iv)


@pytest.mark.parametrize("kw", [{}, {"atm_iv": 0.15}, {"vol_forecast": 0.1},
                                {"atm_iv": float("nan"), "vol_forecast": 0.1},
                                {"atm_iv": 0.0, "vol_forecast": 0.1}])
def test_vol_forecast_missing(kw):
    r = VolForecastSpread().read(bare(**kw))
    assert not r.available and r.score == 0 and r.confidence == 0 and r.reason


# --------------------------------------------------------------------------- density


def test_density_skew_both_terms():
    # skew term: (-0.8 + 0.5) / 1 = -0.3; tail term: (0.01 - 0.04) / 0.05 = -0.6
    r = DensitySkew().read(bare(rn_skew=-0.8, left_tail=0.04, right_tail=0.01))
    assert r.score == pytest.approx(-0.45)
    assert r.confidence == 0.4 and r.axis is Axis.DIRECTION


def test_density_skew_neutral_extreme_and_single():
    s = DensitySkew()
    assert s.read(bare(rn_skew=-0.5, left_tail=0.02, right_tail=0.02)).score == pytest.approx(0)
    assert s.read(bare(rn_skew=2.0, left_tail=0.0, right_tail=0.05)).score == pytest.approx(1.0)
    assert s.read(bare(rn_skew=-4.0, left_tail=0.3, right_tail=0.0)).score == pytest.approx(-1.0)
    one = s.read(bare(rn_skew=-0.2))
    assert one.score == pytest.approx(0.3) and one.confidence == 0.25


def test_density_skew_missing_repeats_the_reason():
    r = DensitySkew().read(bare(reasons={"rn_skew": "no smile"}))
    assert not r.available and "no smile" in r.reason
    assert not DensitySkew().read(bare(left_tail=0.0, right_tail=0.0)).available


# --------------------------------------------------------------------------- IV mean reversion


def test_iv_mean_reversion_hand_computed():
    hist = [0.10, 0.12, 0.14, 0.16, 0.18]  # mean 0.14, sd (ddof 1) = sqrt(0.004 / 4)
    s = IvMeanReversion(min_history=5)
    r = s.read(bare(atm_iv=0.17, iv_history=hist))
    p = 4 / 5
    z = (0.17 - 0.14) / math.sqrt(0.004 / 4)  # = 0.9487
    assert r.inputs["percentile"] == pytest.approx(p)
    assert r.inputs["z"] == pytest.approx(z)
    assert r.score == pytest.approx(-(0.5 * (2 * p - 1) + 0.5 * z / 2))
    assert r.score == pytest.approx(-0.5371708, abs=1e-7)
    assert r.confidence == pytest.approx(0.5 * 5 / 250)


def test_iv_mean_reversion_neutral_ties_and_extremes():
    s = IvMeanReversion(min_history=5)
    hist = [0.10, 0.12, 0.14, 0.16, 0.18]
    mid = s.read(bare(atm_iv=0.14, iv_history=hist))  # p = (2 + 0.5) / 5 = 0.5, z = 0
    assert mid.score == pytest.approx(0.0) and mid.inputs["percentile"] == pytest.approx(0.5)
    assert s.read(bare(atm_iv=0.50, iv_history=hist)).score == pytest.approx(-1.0)
    assert s.read(bare(atm_iv=0.01, iv_history=hist)).score == pytest.approx(1.0)
    flat = s.read(bare(atm_iv=0.20, iv_history=[0.15] * 5))  # sd 0: z 0, p 1
    assert flat.inputs["z"] == 0 and flat.score == pytest.approx(-0.5)


def test_iv_mean_reversion_full_history_confidence(rng):
    r = IvMeanReversion().read(bare(atm_iv=0.15, iv_history=rng.uniform(0.1, 0.2, 300)))
    assert r.confidence == pytest.approx(0.5)


def test_iv_mean_reversion_missing():
    s = IvMeanReversion()
    assert "atm_iv" in s.read(bare(iv_history=[0.1] * 30)).reason
    short = s.read(bare(atm_iv=0.15, iv_history=[0.1] * 10 + [float("nan")] * 20))
    assert not short.available and "10 values" in short.reason


# --------------------------------------------------------------------------- OI flow


def test_oi_flow_hand_computed():
    # level (1.2 - 1) / 0.5 = 0.4; change (1.5 - 1) / 1 = 0.5; 0.6 * 0.4 + 0.4 * 0.5
    r = OiFlow().read(bare(pcr_oi=1.2, pcr_change=1.5))
    assert r.score == pytest.approx(0.44) and r.confidence == 0.35


def test_oi_flow_neutral_extreme_and_single_terms():
    s = OiFlow()
    assert s.read(bare(pcr_oi=1.0, pcr_change=1.0)).score == pytest.approx(0.0)
    assert s.read(bare(pcr_oi=3.0, pcr_change=9.0)).score == pytest.approx(1.0)
    assert s.read(bare(pcr_oi=0.2, pcr_change=0.01)).score == pytest.approx(-0.996)  # 0.6*-1 + 0.4*-0.99
    assert s.read(bare(pcr_oi=0.2, pcr_change=0.001)).score > -1.0
    lvl = s.read(bare(pcr_oi=0.8, pcr_change=-2.0))  # a negative change ratio is ignored
    assert lvl.score == pytest.approx(-0.4) and lvl.confidence == 0.25
    chg = s.read(bare(pcr_change=0.5))
    assert chg.score == pytest.approx(-0.5) and "pcr_oi" not in chg.inputs


def test_oi_flow_missing():
    r = OiFlow().read(bare(pcr_oi=float("nan"), reasons={"pcr_oi": "no put legs"}))
    assert not r.available and "no put legs" in r.reason


# --------------------------------------------------------------------------- GEX


def test_gex_above_the_flip_is_short_vol():
    sd = 0.15 * math.sqrt(7 / 365)
    r = GexPositioning().read(bare(spot=24_000.0, gamma_flip=23_800.0, atm_iv=0.15,
                                   t_years=7 / 365, gex=1e9))
    d = math.log(24_000 / 23_800) / sd
    assert r.inputs["distance_sd"] == pytest.approx(d)
    assert r.score == pytest.approx(-d) and -1 < r.score < 0 and r.confidence == 0.45


def test_gex_below_at_far_and_conflicting():
    s = GexPositioning()
    base = {"atm_iv": 0.15, "t_years": 7 / 365}
    assert s.read(bare(spot=23_000.0, gamma_flip=24_000.0, **base)).score == pytest.approx(1.0)
    assert s.read(bare(spot=25_000.0, gamma_flip=24_000.0, **base)).score == pytest.approx(-1.0)
    assert s.read(bare(spot=24_000.0, gamma_flip=24_000.0, **base)).score == pytest.approx(0.0)
    conflict = s.read(bare(spot=24_100.0, gamma_flip=24_000.0, gex=-5e8, **base))
    assert conflict.confidence == 0.15 and "disagrees" in conflict.reason


def test_gex_falls_back_to_the_sign_without_a_flip():
    r = GexPositioning().read(bare(spot=24_000.0, gex=-3e9, gamma_flip=float("nan"),
                                   reasons={"gamma_flip": "total GEX keeps its sign"}))
    assert r.available and r.score == pytest.approx(0.25) and r.confidence == 0.15
    assert "keeps its sign" in r.reason
    gone = GexPositioning().read(bare(spot=24_000.0))
    assert not gone.available and "gamma_flip missing" in gone.reason


# --------------------------------------------------------------------------- trend


def _alternating_daily(n_returns: int, up: float, flat: float = 0.0) -> np.ndarray:
    r = np.where(np.arange(n_returns) % 2 == 0, up, flat)
    return 20_000 * np.exp(np.concatenate(([0.0], np.cumsum(r))))


def test_trend_daily_and_weekly_hand_computed():
    closes = _alternating_daily(60, 0.002)  # returns alternate 0.002, 0 (mean 0.001)
    sigma = math.sqrt(20 * 0.001**2 / 19)  # last 20 returns, ddof 1
    z_daily = (10 * 0.002) / (sigma * math.sqrt(20))
    z_weekly = (30 * 0.002) / (sigma * math.sqrt(60))
    r = Trend().read(bare(closes_daily=closes))
    assert r.inputs["z_daily"] == pytest.approx(z_daily)
    assert r.inputs["z_weekly"] == pytest.approx(z_weekly)
    legs = [min(1.0, z_daily / 2), min(1.0, z_weekly / 2)]
    assert r.score == pytest.approx(sum(legs) / 2)
    assert r.inputs["agreement"] == pytest.approx(1.0)
    assert r.confidence == pytest.approx(0.5 * 2 / 3)


def test_trend_intraday_and_disagreement():
    # intraday: 6 bars, returns [+0.001]*3 + [-0.001]*2 -> r = 0.001
    rr = np.array([0.001, 0.001, 0.001, -0.001, -0.001])
    intraday = 24_000 * np.exp(np.concatenate(([0.0], np.cumsum(rr))))
    z_i = 0.001 / (np.std(rr, ddof=1) * math.sqrt(5))
    daily = _alternating_daily(60, -0.002)  # down: both daily legs negative
    r = Trend().read(bare(closes_intraday=intraday, closes_daily=daily))
    assert r.inputs["z_intraday"] == pytest.approx(z_i)
    s_i = z_i / 2
    s_d = max(-1.0, r.inputs["z_daily"] / 2)
    s_w = max(-1.0, r.inputs["z_weekly"] / 2)
    assert r.score == pytest.approx((s_i + s_d + s_w) / 3)
    agreement = abs(s_i + s_d + s_w) / (abs(s_i) + abs(s_d) + abs(s_w))
    assert r.inputs["agreement"] == pytest.approx(agreement) and agreement < 1
    assert r.confidence == pytest.approx(0.5 * (0.5 + 0.5 * agreement))


def test_trend_flat_straight_line_and_missing():
    flat = Trend().read(bare(closes_intraday=[100.0] * 10))
    assert flat.available and flat.score == 0 and flat.inputs["agreement"] == 0
    straight = Trend().read(bare(closes_intraday=100 * np.exp(0.001 * np.arange(10))))
    assert straight.score == pytest.approx(1.0)  # sd ~0: an unbroken line is a full trend
    assert not Trend().read(bare(closes_intraday=[100.0, 101.0])).available
    assert not Trend().read(bare(closes_daily=[100.0, -1.0] * 40)).available
    assert not Trend().read(bare()).available


# --------------------------------------------------------------------------- news


def test_news_missing_flag_when_news_ingest_absent():
    r = NewsEvent().read(bare())
    assert not r.available and r.reason == "news_ingest not present"


def test_news_quiet_is_an_available_neutral():
    r = NewsEvent().read(bare(news=()))
    assert r.available and r.score == 0 and r.confidence == 0.5


def test_news_proximity_and_severity():
    s = NewsEvent()
    inside = NewsInput(NOW + timedelta(minutes=20), 30, "blackout", 0.9)
    assert s.read(bare(news=(inside,))).score == pytest.approx(1.0)
    # upcoming 1 day + 30 min, window 30: beyond = 1440 -> w = 1 - 1440 / 4320 = 2/3
    upcoming = NewsInput(NOW + timedelta(days=1, minutes=30), 30, "reduce_25", 0.6)
    assert s.read(bare(news=(upcoming,))).score == pytest.approx(0.6 * 2 / 3)
    # past 90 min, window 30: beyond 60 -> w = 1 - 60 / 120 = 0.5; severity = action 2/3
    past = NewsInput(NOW - timedelta(minutes=90), 30, "reduce_50", None)
    assert s.read(bare(news=(past,))).score == pytest.approx(1 / 3)
    far = NewsInput(NOW + timedelta(days=10), 30, "blackout", 1.0)
    other = NewsInput(NOW, 30, "blackout", 1.0, ("BANKNIFTY",))
    r = s.read(bare(news=(far, other, upcoming)))
    assert r.score == pytest.approx(0.4) and r.inputs["n_relevant"] == 2


def test_news_accepts_risk_items_and_state():
    item = NewsItem(event_id="e1", title="CPI", occurs_at=NOW + timedelta(minutes=10),
                    window_minutes=15, action="reduce_50", symbols=("NIFTY",))
    a = NewsEvent().read(bare(news=NewsState(events=(item,))))
    b = NewsEvent().read(bare(news=[item]))
    assert a == b and a.score == pytest.approx(2 / 3) and "CPI" in a.reason


def test_news_input_validation():
    with pytest.raises(ValueError):
        NewsInput(datetime(2026, 1, 1), 10, "proceed")
    with pytest.raises(ValueError):
        NewsInput(NOW, 10, "panic")
    with pytest.raises(ValueError):
        NewsInput(NOW, 10, "proceed", 1.5)


# --------------------------------------------------------------------------- direction model


@pytest.mark.parametrize(("p", "expected"), [(0.5, 0.0), (0.65, 0.3), (0.2, -0.6), (1.0, 1.0),
                                             (0.0, -1.0)])
def test_direction_model(p, expected):
    r = DirectionModelSignal().read(bare(p_up=p, p_up_confidence=0.7))
    assert r.score == pytest.approx(expected) and r.confidence == 0.7


def test_direction_model_confidence_default_and_missing():
    r = DirectionModelSignal().read(bare(p_up=0.6))
    assert r.confidence == 0.25 and "not supplied" in r.reason
    assert DirectionModelSignal().read(bare(p_up=0.6, p_up_confidence=3.0)).confidence == 1.0
    assert not DirectionModelSignal().read(bare()).available
    assert "outside" in DirectionModelSignal().read(bare(p_up=1.2)).reason


# --------------------------------------------------------------------------- engine


def test_default_signals_are_eight_unique_and_read_everything(rng):
    signals = default_signals()
    assert len(signals) == 8 and len({s.name for s in signals}) == 8
    readings = read_all(signals, full(rng))
    assert [r.name for r in readings] == [s.name for s in signals]
    assert all(r.available for r in readings), [r.reason for r in readings if not r.available]
    assert {r.axis for r in readings} == {Axis.DIRECTION, Axis.VOLATILITY}


def test_empty_inputs_read_missing_except_none():
    readings = read_all(default_signals(), bare())
    assert all(not r.available and r.reason for r in readings)


def test_bounds_hold_on_random_inputs():
    rng = np.random.default_rng(1234)
    for _ in range(300):
        kw = {
            "spot": rng.uniform(15_000, 30_000), "atm_iv": rng.uniform(0.02, 1.5),
            "t_years": rng.uniform(1e-4, 0.5), "vol_forecast": rng.uniform(0.01, 2.0),
            "iv_history": rng.uniform(0.05, 0.8, rng.integers(0, 300)),
            "rn_skew": rng.normal(0, 3), "left_tail": rng.uniform(0, 0.5),
            "right_tail": rng.uniform(0, 0.5), "pcr_oi": rng.uniform(0, 5),
            "pcr_change": rng.normal(1, 3), "gex": rng.normal(0, 1e10),
            "gamma_flip": rng.uniform(14_000, 31_000),
            "closes_intraday": 24_000 * np.exp(np.cumsum(rng.normal(0, 0.003, rng.integers(1, 80)))),
            "closes_daily": 24_000 * np.exp(np.cumsum(rng.normal(0, 0.02, rng.integers(1, 200)))),
            "news": tuple(NewsInput(NOW + timedelta(minutes=float(rng.normal(0, 3000))),
                                    int(rng.integers(0, 120)), "reduce_25",
                                    float(rng.uniform())) for _ in range(rng.integers(0, 4))),
            "p_up": rng.uniform(), "p_up_confidence": rng.uniform(-0.5, 1.5),
        }
        drop = rng.uniform(size=len(kw)) < 0.3
        m = bare(**{k: (None if d else v) for (k, v), d in zip(kw.items(), drop, strict=True)})
        for r in read_all(default_signals(), m):
            assert -1 <= r.score <= 1 and 0 <= r.confidence <= 1
            assert r.available or r.reason


def test_readings_are_deterministic():
    a = read_all(default_signals(), full(np.random.default_rng(1234)))
    b = read_all(default_signals(), full(np.random.default_rng(1234)))
    assert a == b


class _Boom:
    name = "boom"
    axis = Axis.VOLATILITY

    def read(self, inputs: MarketInputs) -> SignalReading:
        raise ZeroDivisionError("kaboom")


class _Wrong:
    name = "wrong"
    axis = Axis.DIRECTION

    def read(self, inputs: MarketInputs):
        return 0.5


def test_read_all_isolates_failures(rng):
    signals = (_Boom(), *default_signals(), _Wrong())
    readings = read_all(signals, full(rng))
    assert readings[0] == SignalReading.missing("boom", Axis.VOLATILITY,
                                                "error: ZeroDivisionError: kaboom")
    assert not readings[-1].available and "TypeError" in readings[-1].reason
    assert readings[1:-1] == read_all(default_signals(), full(np.random.default_rng(1234)))


def test_signals_are_frozen_and_tunable():
    s = VolForecastSpread(gain=1.0)
    with pytest.raises(FrozenInstanceError):
        s.gain = 2.0  # type: ignore[misc]
    assert s.read(bare(atm_iv=0.2, vol_forecast=0.16)).score == pytest.approx(-0.2)


# --------------------------------------------------------------------------- from analytics


def test_market_inputs_from_expiry_analytics(rng):
    t, rate, spot = 7 / 365, 0.065, 24_000.0
    exp = SyntheticExpiry(date(2026, 11, 27), t, spot * math.exp(rate * t), (0.6, -0.25, 0.15))
    snap = synthetic_chain([exp], spot=spot, rate=rate, rng=rng)
    ea = analyse_chain(snap, t_by_expiry={exp.expiry: t}, rate=rate,
                       lot_size_by_expiry={exp.expiry: 65}).expiries[0]
    m = market_inputs_from(ea, symbol="NIFTY", asof=NOW, spot=spot, vol_forecast=0.12, news=())
    assert m.atm_iv == pytest.approx(ea.atm_iv) and m.t_years == t and m.vol_forecast == 0.12
    assert ea.density is not None and m.rn_skew == pytest.approx(ea.density.skew)
    assert m.rn_skew < 0 and m.left_tail > m.right_tail > 0  # a put-skewed smile
    assert m.pcr_oi == pytest.approx(ea.pcr_oi)
    readings = {r.name: r for r in read_all(default_signals(), m)}
    assert readings["vol_forecast"].score < 0  # forecast 12 % under an IV near 15 %
    skew = readings["density_skew"]
    assert skew.available and skew.inputs["tail_term"] < 0  # more mass priced in the left tail
    assert readings["news_event"].available


def test_market_inputs_from_carries_nan_reasons(rng):
    t, rate, spot = 7 / 365, 0.065, 24_000.0
    exp = SyntheticExpiry(date(2026, 11, 27), t, spot * math.exp(rate * t), (0.15,))
    snap = synthetic_chain([exp], spot=spot, rate=rate, rng=rng)
    ea = analyse_chain(snap, t_by_expiry={exp.expiry: t}, rate=rate,
                       lot_size_by_expiry={}).expiries[0]  # no lot size: no GEX
    m = market_inputs_from(ea, symbol="NIFTY", asof=NOW, spot=spot)
    assert "no lot size" in m.reasons["gex"]
    r = GexPositioning().read(m)
    assert not r.available and "no lot size" in r.reason
    assert replace(m, gex=1e9).gex == 1e9
