"""Chain analytics checked against identities and reference implementations."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from shared.domain.analytics import (
    AnalyticsConfig,
    StrikeIndex,
    analyse_chain,
    arbitrage_check,
    dealer_gex,
    gamma_flip,
    implied_forward,
    max_pain,
)
from shared.domain.black76 import black76_price, greeks
from tests.builders import SyntheticExpiry, synthetic_chain

RATE = 0.065
SPOT = 24_000.0


def flat(expiry=date(2026, 11, 24), t=4 / 365, vol=0.14, forward=None):
    fwd = forward or SPOT * np.exp(RATE * t)
    return SyntheticExpiry(expiry, t, fwd, (vol,))


def analyse(snap, expiries, lot=65, cfg=None):
    return analyse_chain(snap, t_by_expiry={e.expiry: e.t for e in expiries}, rate=RATE,
                         lot_size_by_expiry={e.expiry: lot for e in expiries}, cfg=cfg)


def test_forward_and_ivs_are_recovered_from_a_clean_chain(rng):
    exps = [flat(), SyntheticExpiry(date(2026, 12, 29), 39 / 365, SPOT * np.exp(RATE * 39 / 365),
                                    (0.6, -0.25, 0.15))]  # skewed: IV = 0.15 - 0.25x + 0.6x^2
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE, rng=rng)
    result = analyse(snap, exps)
    assert not result.skipped
    for e, truth in zip(result.expiries, exps, strict=True):
        assert e.forward_method == "parity"
        assert e.forward == pytest.approx(truth.forward, abs=0.5)  # quotes are on a 0.05 tick
        assert e.atm_iv == pytest.approx(np.polyval(truth.smile, 0.0), abs=2e-3)
        mask = snap.for_expiry(e.expiry)
        model = np.polyval(truth.smile, np.log(snap.strike[mask] / truth.forward))
        ok = np.isfinite(result.legs.iv[mask])
        k = snap.strike[mask]
        otm_value = black76_price(truth.forward, k, truth.t, RATE, model, k >= truth.forward)
        assert ok[otm_value > 1.0].all()  # every leg with real time value has an IV
        otm = np.where(snap.is_call[mask], k >= truth.forward, k < truth.forward)
        near = ok & otm & (np.abs(np.log(k / truth.forward)) < 0.05)
        np.testing.assert_allclose(result.legs.iv[mask][near], model[near], atol=3e-3)


def test_implied_forward_is_put_call_parity():
    k = np.array([23_900.0, 24_000.0, 24_100.0])
    f, df = 24_031.7, np.exp(-RATE * 0.02)
    call = black76_price(f, k, 0.02, RATE, 0.13, True)
    put = black76_price(f, k, 0.02, RATE, 0.13, False)
    assert implied_forward(k, call, put, 24_000.0, df, 3) == pytest.approx(f, rel=1e-12)
    assert np.isnan(implied_forward(k, call, np.full(3, np.nan), 24_000.0, df, 3))


def test_max_pain_matches_brute_force(rng):
    strikes = np.arange(23_000.0, 25_001.0, 50.0)
    call_oi = rng.integers(0, 50_000, strikes.size).astype(float)
    put_oi = rng.integers(0, 50_000, strikes.size).astype(float)
    call_oi[3] = np.nan  # an absent leg
    pain = {s: sum((max(s - k, 0) * (0 if np.isnan(c) else c)) + max(k - s, 0) * p
                   for k, c, p in zip(strikes, call_oi, put_oi, strict=True)) for s in strikes}
    assert max_pain(strikes, call_oi, put_oi) == min(pain, key=pain.get)


def test_gex_matches_the_definition_and_finds_the_flip():
    strikes = np.array([23_500.0, 24_000.0, 24_500.0, 23_500.0, 24_000.0, 24_500.0])
    is_call = np.array([True, True, True, False, False, False])
    oi = np.array([1_000.0, 5_000.0, 9_000.0, 12_000.0, 4_000.0, 500.0])
    iv = np.full(6, 0.15)
    t, fwd = 10 / 365, SPOT * np.exp(RATE * 10 / 365)
    levels = SPOT * np.linspace(0.9, 1.1, 201)
    by_leg, totals = dealer_gex(strikes, is_call, oi, iv, fwd, SPOT, t, RATE, 65, levels)
    gamma_f = greeks(fwd, strikes, t, RATE, iv, is_call).gamma
    expected = np.where(is_call, 1, -1) * gamma_f * (fwd / SPOT) ** 2 * oi * 65 * SPOT**2 * 0.01
    np.testing.assert_allclose(by_leg, expected, rtol=1e-12)
    # puts dominate below, calls above: one crossing, and it is a root of the total
    flip = gamma_flip(levels, totals, SPOT)
    assert 23_500 < flip < 24_500
    _, at_flip = dealer_gex(strikes, is_call, oi, iv, fwd, SPOT, t, RATE, 65, np.array([flip]))
    assert abs(at_flip[0]) < 1e-3 * np.abs(totals).max()
    assert np.isnan(gamma_flip(levels, np.abs(totals) + 1, SPOT))


def test_density_of_a_flat_smile_is_the_lognormal():
    exps = [flat(t=30 / 365, vol=0.16)]
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE, width=0.25)
    e = analyse(snap, exps).expiries[0]
    d = e.density
    assert d is not None
    assert np.all(d.pdf >= 0)
    assert np.trapezoid(d.pdf, d.grid) == pytest.approx(1.0, abs=1e-12)
    assert d.raw_integral == pytest.approx(1.0, abs=2e-3)  # the smile is arbitrage-free
    sd = d.variance**0.5
    s = e.atm_iv * np.sqrt(e.t)
    ref = stats.lognorm(s=s, scale=e.forward * np.exp(-0.5 * s * s))
    assert d.mean == pytest.approx(e.forward, rel=1e-4)  # a martingale under the forward measure
    assert sd == pytest.approx(ref.std(), rel=2e-3)
    assert d.skew == pytest.approx(float(ref.stats(moments="s")), abs=0.02)
    assert d.kurtosis == pytest.approx(float(ref.stats(moments="k")) + 3, abs=0.05)
    assert d.crash_probability == pytest.approx(ref.cdf(d.crash_level), abs=2e-3)


@settings(deadline=None, max_examples=40, derandomize=True)
@given(
    atm=st.floats(0.08, 0.6),
    slope=st.floats(-0.8, 0.2),
    curvature=st.floats(0.0, 3.0),
    days=st.integers(1, 120),
)
def test_a_density_is_either_sound_or_refused_with_a_reason(atm, slope, curvature, days):
    t = days / 365
    exps = [SyntheticExpiry(date(2026, 12, 1), t, SPOT * np.exp(RATE * t), (curvature, slope, atm))]
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE, width=0.3)
    e = analyse(snap, exps).expiries[0]
    if e.density is None:
        assert any(r.startswith("density:") for r in e.reasons)
        return
    d = e.density
    assert np.all(d.pdf >= 0)
    assert np.trapezoid(d.pdf, d.grid) == pytest.approx(1.0, abs=1e-9)
    assert d.mean == pytest.approx(e.forward, rel=5e-3)  # E[S_T] = F under the forward measure
    assert d.clipped_negative_mass <= 0.01
    assert 0 <= d.crash_probability <= 1


@pytest.mark.parametrize("smile", [(1.5, -0.5, 0.13), (3.0, -0.7, 0.18), (0.5, -0.2, 0.25)])
@pytest.mark.parametrize("days", [3, 10, 40])
def test_realistic_skewed_smiles_give_sound_densities(smile, days):
    t = days / 365
    exps = [SyntheticExpiry(date(2026, 12, 1), t, SPOT * np.exp(RATE * t), smile)]
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE, width=0.2)
    e = analyse(snap, exps).expiries[0]
    assert e.density is not None, e.reasons
    assert e.density.mean == pytest.approx(e.forward, rel=2e-3)
    assert e.density.clipped_negative_mass < 0.005
    assert e.density.skew < 0  # a negative skew in vol gives a left-skewed density


def test_pcr_and_flows_by_strike(rng):
    exps = [flat()]
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE, rng=rng)
    e = analyse(snap, exps).expiries[0]
    calls, puts = snap.is_call, ~snap.is_call
    assert e.pcr_oi == pytest.approx(snap.oi[puts].sum() / snap.oi[calls].sum())
    assert e.pcr_volume == pytest.approx(snap.volume[puts].sum() / snap.volume[calls].sum())
    assert np.nansum(e.call_oi_change) == pytest.approx(snap.oi_change[calls].sum())
    assert np.nansum(e.put_oi) == pytest.approx(snap.oi[puts].sum())
    assert e.gex_total == pytest.approx(e.gex_by_strike.sum())


def test_a_clean_chain_passes_and_a_broken_one_is_flagged():
    k = np.arange(23_000.0, 25_001.0, 100.0)
    f, t = 24_050.0, 20 / 365
    df = np.exp(-RATE * t)
    c = black76_price(f, k, t, RATE, 0.15, True)
    p = black76_price(f, k, t, RATE, 0.15, False)
    args = dict(forward=f, df=df, tolerance=0.05, max_fraction=0.05)
    clean = arbitrage_check(k, c - 0.5, c + 0.5, p - 0.5, p + 0.5, **args)
    assert (clean.vertical_violations, clean.butterfly_violations, clean.bad) == (0, 0, False)
    # a rich call above the forward: its butterfly is arbitrage; one violation alone is
    # counted but does not condemn the chain
    bent = c.copy()
    bent[14] += 60
    one = arbitrage_check(k, bent - 0.5, bent + 0.5, p - 0.5, p + 0.5, **args)
    assert one.butterfly_violations >= 1 and not one.bad and "butterfly" in one.worst
    # a rich put below the forward (its call is synthesised by parity) is caught too
    rich_put = p.copy()
    rich_put[5] += 60
    put_side = arbitrage_check(k, c - 0.5, c + 0.5, rich_put - 0.5, rich_put + 0.5, **args)
    assert put_side.butterfly_violations >= 1
    # several broken strikes: a bad chain
    broken = c.copy()
    broken[[13, 15, 17]] += 60
    many = arbitrage_check(k, broken - 0.5, broken + 0.5, p - 0.5, p + 0.5, **args)
    assert many.bad
    # a higher strike call above a lower one, and crossed quotes, are vertical violations
    crossed = c.copy()
    crossed[15] = crossed[14] + 10
    vert = arbitrage_check(k, crossed - 0.5, crossed + 0.5, p - 0.5, p + 0.5, **args)
    assert vert.vertical_violations >= 1
    inverted = arbitrage_check(k, c + 0.5, c - 0.5, p + 0.5, p - 0.5, **args)
    assert inverted.vertical_violations == k.size and inverted.bad


def test_no_false_positives_on_clean_skewed_chains(rng):
    for slope in (-0.6, -0.3, 0.0):
        exps = [SyntheticExpiry(date(2026, 12, 1), 11 / 365, SPOT * np.exp(RATE * 11 / 365),
                                (2.0, slope, 0.14))]
        snap = synthetic_chain(exps, spot=SPOT, rate=RATE, rng=rng, width=0.15)
        e = analyse(snap, exps).expiries[0]
        assert not e.arbitrage.bad, e.arbitrage


def test_no_usable_quotes_give_reasons_not_numbers():
    exps = [flat()]
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE)
    empty = type(snap)(**{**{f: getattr(snap, f) for f in snap.__dataclass_fields__},
                         "last": np.full(snap.n_legs, np.nan), "bid": np.full(snap.n_legs, np.nan),
                         "ask": np.full(snap.n_legs, np.nan)})
    result = analyse(empty, exps)
    e = result.expiries[0]
    assert e.forward_method == "spot_carry"
    assert np.isnan(e.atm_iv) and e.density is None and np.isnan(result.legs.iv).all()
    assert any("forward" in r for r in e.reasons) and any("smile" in r for r in e.reasons)


def test_expired_and_unknown_expiries_are_skipped_with_a_reason():
    exps = [flat(), flat(expiry=date(2026, 11, 17), t=0.0)]
    snap = synthetic_chain(exps, spot=SPOT, rate=RATE)
    result = analyse_chain(snap, t_by_expiry={exps[0].expiry: exps[0].t, exps[1].expiry: 0.0},
                           rate=RATE, lot_size_by_expiry={})
    assert result.skipped == {date(2026, 11, 17): "expired or no year fraction"}
    assert np.isnan(result.legs.iv[snap.for_expiry(date(2026, 11, 17))]).all()
    assert any("lot size" in r for r in result.expiries[0].reasons)


def test_strike_index_splits_calls_and_puts():
    idx = StrikeIndex.of(np.array([200.0, 100.0, 100.0, 300.0]), np.array([True, True, False, False]))
    call, put = idx.split(np.array([2.0, 1.0, 10.0, 30.0]))
    np.testing.assert_array_equal(idx.strikes, [100.0, 200.0, 300.0])
    np.testing.assert_array_equal(call, [1.0, 2.0, np.nan])
    np.testing.assert_array_equal(put, [10.0, np.nan, 30.0])


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        AnalyticsConfig().tick = 0.1  # type: ignore[misc]


def test_gex_is_spot_gamma_by_finite_differences():
    """Each leg's GEX equals sign x d2V/dS2 x units x S^2 x 1 % with V repriced at shifted
    spots (the forward moving with spot): an independent check of the conversion."""
    strikes = np.array([23_800.0, 24_200.0])
    is_call = np.array([True, False])
    oi, iv, t = np.array([3_000.0, 2_000.0]), np.array([0.14, 0.16]), 9 / 365
    fwd = SPOT * np.exp(RATE * t)
    by_leg, _ = dealer_gex(strikes, is_call, oi, iv, fwd, SPOT, t, RATE, 65, np.array([SPOT]))
    h = 1.0
    value = [black76_price((SPOT + d) * fwd / SPOT, strikes, t, RATE, iv, is_call) for d in (-h, 0, h)]
    gamma_s = (value[0] - 2 * value[1] + value[2]) / h**2
    expected = np.where(is_call, 1, -1) * gamma_s * oi * 65 * SPOT**2 * 0.01
    np.testing.assert_allclose(by_leg, expected, rtol=1e-4)
