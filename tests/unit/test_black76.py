"""Black-76 pricing, implied volatility and greeks (``shared/domain/black76.py``).

Legs come from seeded builders (``np.random.default_rng(1234)``) for vectorised checks and
from hypothesis for property checks; QuantLib, where installed, is an independent
reference. No I/O: hypothesis keeps no example database.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.black76 import (
    DAYS_PER_YEAR,
    NSE_TICK,
    Greeks,
    ImpliedVol,
    IVStatus,
    _norm_cdf,
    black76_price,
    greeks,
    implied_vol,
)

EPS = float(np.finfo(np.float64).eps)
MINUTE = 1.0 / (365 * 24 * 60)  # in years (ACT/365)
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True)


@dataclass(frozen=True)
class Legs:
    """A batch of option legs, shape (n,) each."""

    forward: np.ndarray
    strike: np.ndarray
    t: np.ndarray
    rate: np.ndarray
    sigma: np.ndarray
    is_call: np.ndarray

    @property
    def df(self) -> np.ndarray:
        return np.exp(-self.rate * self.t)

    def price(self) -> np.ndarray:
        return black76_price(self.forward, self.strike, self.t, self.rate, self.sigma,
                             self.is_call)

    def time_value(self, price: np.ndarray) -> np.ndarray:
        intrinsic = np.maximum(np.where(self.is_call, self.forward - self.strike,
                                        self.strike - self.forward), 0.0)
        return price - self.df * intrinsic

    def iv_noise(self) -> np.ndarray:
        """How precisely a computed price pins sigma down: eps * DF (F + K) / vega."""
        vega = greeks(self.forward, self.strike, self.t, self.rate, self.sigma,
                      self.is_call).vega
        return EPS * self.df * (self.forward + self.strike) / vega

    def take(self, mask: np.ndarray) -> Legs:
        return Legs(*(getattr(self, f)[mask] for f in
                      ("forward", "strike", "t", "rate", "sigma", "is_call")))


def build_legs(rng: np.random.Generator, n: int, *, forward=(100.0, 60_000.0),
               sigma=(0.03, 3.0), t=(5 * MINUTE, 5.0), n_std=4.0, rate=(-0.01, 0.12),
               strike_grid: float | None = None) -> Legs:
    """Log-uniform forward, sigma and t; ln(K/F) uniform within +-n_std standard deviations."""

    def log_uniform(lo_hi):
        lo, hi = lo_hi
        return np.exp(rng.uniform(math.log(lo), math.log(hi), n))

    f, vol, tt = log_uniform(forward), log_uniform(sigma), log_uniform(t)
    k = f * np.exp(rng.uniform(-n_std, n_std, n) * vol * np.sqrt(tt))
    if strike_grid is not None:
        k = np.maximum(np.round(k / strike_grid), 1.0) * strike_grid
    return Legs(f, k, tt, rng.uniform(*rate, n), vol, rng.random(n) < 0.5)


def wide_legs(n: int = 20_000) -> Legs:
    """sigma 3 %..300 %, t 5 minutes..5 years, |ln(K/F)| <= 4 standard deviations."""
    return build_legs(np.random.default_rng(1234), n)


def index_legs(n: int = 20_000) -> Legs:
    """Index-like: forward 5,000..60,000, sigma 3 %..150 %, t 5 minutes..2 years."""
    return build_legs(np.random.default_rng(1234), n, forward=(5_000.0, 60_000.0),
                      sigma=(0.03, 1.5), t=(5 * MINUTE, 2.0))


def iv_of(legs: Legs, price: np.ndarray, **kw) -> ImpliedVol:
    return implied_vol(price, legs.forward, legs.strike, legs.t, legs.rate, legs.is_call, **kw)


def math_price(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Scalar Black-76 with the standard library's erfc: an independent reference."""
    s = sigma * math.sqrt(t)
    d1 = math.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    big_n = lambda d: 0.5 * math.erfc(-d / math.sqrt(2.0))  # noqa: E731
    df = math.exp(-r * t)
    if is_call:
        return df * (f * big_n(d1) - k * big_n(d2))
    return df * (k * big_n(-d2) - f * big_n(-d1))


# ---------------------------------------------------------------------------------------
# Normal CDF and prices
# ---------------------------------------------------------------------------------------


def test_norm_cdf_matches_libm_to_a_few_ulps_including_the_tails():
    d = np.concatenate([np.linspace(-38.0, 9.0, 200_001),
                        np.random.default_rng(1234).normal(0.0, 3.0, 100_000)])
    arg = d * -math.sqrt(0.5)
    ref = np.array([0.5 * math.erfc(a) for a in arg])
    got = _norm_cdf(d)
    normal = ref > 1e-300  # below that libm returns subnormals, we round to 0
    assert np.max(np.abs(got[normal] / ref[normal] - 1.0)) < 4e-15
    assert np.all(np.abs(got - ref)[~normal] <= 1e-300)
    np.testing.assert_array_equal(_norm_cdf(np.array([-np.inf, np.inf, 0.0])), [0.0, 1.0, 0.5])
    assert np.isnan(_norm_cdf(np.array([np.nan]))[0])


def test_price_matches_a_scalar_stdlib_implementation():
    legs = build_legs(np.random.default_rng(1234), 500)
    got = legs.price()
    ref = np.array([math_price(*a) for a in zip(legs.forward, legs.strike, legs.t, legs.rate,
                                                legs.sigma, legs.is_call, strict=True)])
    scale = legs.df * (legs.forward + legs.strike)
    assert np.all(np.abs(got - ref) <= 64 * EPS * scale)


@PROPERTY
@given(forward=st.floats(100.0, 60_000.0), n_std=st.floats(-4.0, 4.0),
       sigma=st.floats(0.03, 3.0), log_t=st.floats(math.log(5 * MINUTE), math.log(5.0)),
       rate=st.floats(-0.01, 0.12))
def test_put_call_parity(forward, n_std, sigma, log_t, rate):
    t = math.exp(log_t)
    strike = forward * math.exp(n_std * sigma * math.sqrt(t))
    call, put = black76_price(forward, strike, t, rate, sigma, np.array([True, False]))
    df = math.exp(-rate * t)
    assert abs((call - put) - df * (forward - strike)) <= 16 * EPS * df * (forward + strike)
    assert call >= 0.0 and put >= 0.0


def test_zero_variance_prices_are_the_discounted_intrinsic_value():
    f, k, r = 24_000.0, np.array([23_000.0, 24_000.0, 25_000.0]), 0.065
    for t, sigma in ((0.0, 0.2), (0.1, 0.0)):
        df = math.exp(-r * t)
        np.testing.assert_allclose(black76_price(f, k, t, r, sigma, True),
                                   df * np.maximum(f - k, 0.0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(black76_price(f, k, t, r, sigma, False),
                                   df * np.maximum(k - f, 0.0), rtol=0, atol=1e-12)


def test_invalid_price_inputs_are_nan_and_do_not_disturb_the_rest():
    f = np.array([24_000.0, 0.0, -1.0, np.nan, 24_000.0, 24_000.0, 24_000.0, np.inf])
    k = np.array([24_000.0, 24_000.0, 24_000.0, 24_000.0, np.nan, 24_000.0, 24_000.0, 1.0])
    t = np.array([0.05, 0.05, 0.05, 0.05, 0.05, -0.01, 0.05, 0.05])
    sigma = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, -0.2, 0.2])
    got = black76_price(f, k, t, 0.065, sigma, True)
    assert np.isfinite(got[0])
    assert np.all(np.isnan(got[1:]))
    assert got[0] == black76_price(24_000.0, 24_000.0, 0.05, 0.065, 0.2, True)[0]


# ---------------------------------------------------------------------------------------
# Implied volatility: round trips
# ---------------------------------------------------------------------------------------


def test_sigma_price_iv_round_trip_over_a_wide_range():
    legs = wide_legs()
    price = legs.price()
    res = iv_of(legs, price)
    enough = legs.time_value(price) >= NSE_TICK
    assert enough.sum() > 10_000
    assert np.all(res.status[enough] == IVStatus.OK)
    assert np.all(res.status[~enough] == IVStatus.NO_TIME_VALUE)
    # The only error left is what rounding the price to a double allows.
    err = np.abs(res.iv - legs.sigma)[enough]
    assert np.all(err <= 1e-11 + 32 * legs.iv_noise()[enough])


def test_sigma_price_iv_round_trip_is_exact_to_1e10_for_index_options():
    legs = index_legs()
    price = legs.price()
    res = iv_of(legs, price)
    enough = legs.time_value(price) >= NSE_TICK
    assert np.all(res.status[enough] == IVStatus.OK)
    assert np.max(np.abs(res.iv - legs.sigma)[enough]) <= 1e-10


def test_market_price_iv_price_round_trip():
    # Prices rounded to the tick, as traded: each OK leg's IV reproduces its price.
    legs = build_legs(np.random.default_rng(1234), 20_000, forward=(20_000.0, 60_000.0),
                      sigma=(0.05, 1.0), t=(5 * MINUTE, 1.0), strike_grid=50.0)
    price = np.round(legs.price() / NSE_TICK) * NSE_TICK
    res = iv_of(legs, price)
    ok = res.ok
    assert ok.sum() > 10_000
    again = black76_price(legs.forward, legs.strike, legs.t, legs.rate, res.iv,
                          legs.is_call)
    scale = legs.df * (legs.forward + legs.strike)
    assert np.all(np.abs(again - price)[ok] <= 64 * EPS * scale[ok])
    # Legs that fail do so for a reason, never as a plausible wrong number.
    assert set(np.unique(res.status[~ok])) <= {IVStatus.NO_PRICE, IVStatus.BELOW_INTRINSIC,
                                               IVStatus.NO_TIME_VALUE}
    assert np.all(np.isnan(res.iv[~ok]))


@PROPERTY
@given(forward=st.floats(100.0, 60_000.0), n_std=st.floats(-4.0, 4.0),
       sigma=st.floats(0.03, 3.0), log_t=st.floats(math.log(5 * MINUTE), math.log(5.0)),
       rate=st.floats(-0.01, 0.12), is_call=st.booleans())
def test_iv_round_trip_property(forward, n_std, sigma, log_t, rate, is_call):
    legs = Legs(*(np.array([v]) for v in (forward, 0.0, math.exp(log_t), rate, sigma,
                                          is_call)))
    legs = Legs(legs.forward, legs.forward * np.exp(n_std * sigma * np.sqrt(legs.t)), legs.t,
                legs.rate, legs.sigma, legs.is_call)
    price = legs.price()
    res = iv_of(legs, price)
    if legs.time_value(price)[0] >= NSE_TICK:
        assert res.status[0] == IVStatus.OK
        assert abs(res.iv[0] - sigma) <= 1e-11 + 32 * legs.iv_noise()[0]
    else:
        assert res.status[0] == IVStatus.NO_TIME_VALUE
        assert np.isnan(res.iv[0])


def test_default_stopping_rule_agrees_with_a_much_stricter_one():
    legs = wide_legs(50_000)
    price = legs.price()
    default = iv_of(legs, price)
    strict = iv_of(legs, price, tol=1e-18, max_iter=200)
    np.testing.assert_array_equal(default.status, strict.status)
    assert np.nanmax(np.abs(default.iv - strict.iv)) <= 1e-12


def test_itm_and_otm_legs_at_one_strike_imply_the_same_vol():
    # Parity-consistent prices: the ITM leg's time value is the OTM leg's price.
    legs = build_legs(np.random.default_rng(1234), 5_000, forward=(20_000.0, 30_000.0),
                      sigma=(0.05, 1.0), t=(15 * MINUTE, 1.0))
    call = black76_price(legs.forward, legs.strike, legs.t, legs.rate, legs.sigma, True)
    put = call - legs.df * (legs.forward - legs.strike)
    iv_c = implied_vol(call, legs.forward, legs.strike, legs.t, legs.rate, True)
    iv_p = implied_vol(put, legs.forward, legs.strike, legs.t, legs.rate, False)
    both = iv_c.ok & iv_p.ok
    assert both.sum() > 2_000
    assert np.max(np.abs(iv_c.iv - iv_p.iv)[both]) <= 1e-9


# ---------------------------------------------------------------------------------------
# Implied volatility: expiry day, deep ITM / OTM, near the upper bound
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_expiry_day_chain(minutes):
    t = minutes * MINUTE
    forward = 24_013.35
    strikes = np.arange(23_000.0, 25_050.0, 50.0)
    k = np.concatenate([strikes, strikes])
    is_call = np.repeat([True, False], strikes.size)
    for sigma in (0.06, 0.12, 0.35, 0.9):
        legs = Legs(np.full(k.size, forward), k, np.full(k.size, t), np.full(k.size, 0.065),
                    np.full(k.size, sigma), is_call)
        exact = legs.price()
        res = iv_of(legs, exact)
        enough = legs.time_value(exact) >= NSE_TICK
        assert np.all(res.status[enough] == IVStatus.OK)
        # Far strikes are worth less than a tick, or nothing at all in double precision.
        assert set(np.unique(res.status[~enough])) <= {IVStatus.NO_TIME_VALUE,
                                                       IVStatus.NO_PRICE}
        assert np.all(np.abs(res.iv - sigma)[enough] <= 1e-9)
        # Traded (tick-rounded) prices: OK legs reproduce them; the rest say why not.
        traded = np.round(exact / NSE_TICK) * NSE_TICK
        res = iv_of(legs, traded)
        again = black76_price(forward, k, t, 0.065, res.iv, is_call)
        assert np.all(np.abs(again - traded)[res.ok] <= 1e-9)
        assert set(np.unique(res.status[~res.ok])) <= {
            IVStatus.NO_PRICE, IVStatus.BELOW_INTRINSIC, IVStatus.NO_TIME_VALUE}


def test_deep_itm_and_otm_legs():
    f, t, r = 24_000.0, 30 / 365, 0.065
    df = math.exp(-r * t)
    cases = [  # strike, sigma, is_call
        (14_000.0, 0.60, True),  # deep ITM call: price 10,000 + a few rupees of time value
        (14_000.0, 0.60, False),  # the deep OTM put at the same strike
        (34_000.0, 0.55, False),  # deep ITM put
        (34_000.0, 0.55, True),  # deep OTM call
        (20_000.0, 0.25, True),
        (28_000.0, 0.25, False),
    ]
    k, sigma, is_call = (np.array(c) for c in zip(*cases, strict=True))
    price = black76_price(f, k, t, r, sigma, is_call)
    intrinsic = np.maximum(np.where(is_call, f - k, k - f), 0.0)
    assert np.all(price - df * intrinsic >= NSE_TICK)
    res = implied_vol(price, f, k, t, r, is_call)
    assert res.reasons() == ["OK"] * len(cases)
    np.testing.assert_allclose(res.iv, sigma, rtol=0, atol=1e-10)


def test_deep_otm_leg_worth_less_than_a_tick_has_no_iv():
    f, t, r = 24_000.0, 2 / 365, 0.065
    k = np.array([26_000.0, 22_000.0])
    is_call = np.array([True, False])
    price = black76_price(f, k, t, r, 0.12, is_call)
    assert np.all(price < NSE_TICK)
    res = implied_vol(np.array([0.05, 0.05]), f, k, t, r, is_call)  # one tick: quoted
    assert res.reasons() == ["OK", "OK"]
    res = implied_vol(price, f, k, t, r, is_call)
    assert res.reasons() == ["NO_TIME_VALUE", "NO_TIME_VALUE"]
    assert np.all(np.isnan(res.iv))


def test_prices_near_the_upper_bound():
    legs = build_legs(np.random.default_rng(1234), 5_000, sigma=(1.0, 3.0), t=(1.0, 5.0))
    price = legs.price()
    bound = legs.df * np.where(legs.is_call, legs.forward, legs.strike)
    near = price > 0.8 * bound
    assert near.sum() > 500
    res = iv_of(legs, price)
    enough = legs.time_value(price) >= NSE_TICK
    assert np.all(res.status[enough] == IVStatus.OK)
    err = np.abs(res.iv - legs.sigma)[enough]
    assert np.all(err <= 1e-11 + 32 * legs.iv_noise()[enough])


# ---------------------------------------------------------------------------------------
# Implied volatility: every status, crafted
# ---------------------------------------------------------------------------------------


def test_every_status_is_produced_by_a_crafted_leg_and_gives_nan():
    f, k, t, r = 24_000.0, 23_500.0, 7 / 365, 0.065
    df = math.exp(-r * t)
    fair_call = float(black76_price(f, k, t, r, 0.15, True)[0])
    rows = [  # price, forward, strike, t, rate, is_call, expected
        (fair_call, f, k, t, r, True, IVStatus.OK),
        (np.nan, f, k, t, r, True, IVStatus.NO_PRICE),
        (0.0, f, k, t, r, True, IVStatus.NO_PRICE),
        (-5.0, f, k, t, r, False, IVStatus.NO_PRICE),
        (fair_call, f, k, 0.0, r, True, IVStatus.EXPIRED),
        (fair_call, f, k, -1 / 365, r, True, IVStatus.EXPIRED),
        (fair_call, 0.0, k, t, r, True, IVStatus.BAD_INPUT),
        (fair_call, f, -1.0, t, r, True, IVStatus.BAD_INPUT),
        (fair_call, np.nan, k, t, r, True, IVStatus.BAD_INPUT),
        (fair_call, f, k, np.nan, r, True, IVStatus.BAD_INPUT),
        (fair_call, f, k, t, np.inf, True, IVStatus.BAD_INPUT),
        (df * (f - k) - 0.01, f, k, t, r, True, IVStatus.BELOW_INTRINSIC),
        (df * (f - k) + 0.01, f, k, t, r, True, IVStatus.NO_TIME_VALUE),
        (0.04, f, 26_000.0, t, r, True, IVStatus.NO_TIME_VALUE),
        (df * (24_500.0 - f) + 0.049, f, 24_500.0, t, r, False, IVStatus.NO_TIME_VALUE),
        (df * f, f, k, t, r, True, IVStatus.ABOVE_BOUND),
        (df * k + 1.0, f, k, t, r, False, IVStatus.ABOVE_BOUND),
        (np.inf, f, k, t, r, True, IVStatus.ABOVE_BOUND),
    ]
    cols = list(zip(*rows, strict=True))
    price, fwd, strike, tt, rate = (np.array(c, dtype=float) for c in cols[:5])
    is_call = np.array(cols[5])
    expected = [s.name for s in cols[6]]
    res = implied_vol(price, fwd, strike, tt, rate, is_call)
    assert res.reasons() == expected
    assert np.isfinite(res.iv[0]) and abs(res.iv[0] - 0.15) < 1e-12
    assert np.all(np.isnan(res.iv[1:]))

    # NOT_CONVERGED: out of iterations. No evaluation at all...
    res = implied_vol(price[:1], f, k, t, r, True, max_iter=0)
    assert res.reasons() == ["NOT_CONVERGED"] and np.isnan(res.iv[0])
    # ...or one, for a leg whose first guess is far off (300 % vol, 4 years, near the bound).
    hard = black76_price(100.0, 100.0, 4.0, 0.0, 3.0, True)
    res = implied_vol(hard, 100.0, 100.0, 4.0, 0.0, True, max_iter=1)
    assert res.reasons() == ["NOT_CONVERGED"] and np.isnan(res.iv[0])
    assert abs(implied_vol(hard, 100.0, 100.0, 4.0, 0.0, True).iv[0] - 3.0) < 1e-10

    seen = set(implied_vol(price, fwd, strike, tt, rate, is_call).status.tolist()) | {
        IVStatus.NOT_CONVERGED}
    assert seen == set(IVStatus)


def test_status_helpers_and_argument_checks():
    res = implied_vol(np.array([5.0, np.nan]), 100.0, 100.0, 0.1, 0.0, True, tick=0.01)
    assert res.ok.tolist() == [True, False]
    assert res.reasons() == ["OK", "NO_PRICE"]
    assert res.counts() == {"OK": 1, "NO_PRICE": 1}
    with pytest.raises(ValueError):
        implied_vol(5.0, 100.0, 100.0, 0.1, 0.0, True, tol=0.0)
    with pytest.raises(ValueError):
        implied_vol(5.0, 100.0, 100.0, 0.1, 0.0, True, tick=-0.05)
    with pytest.raises(TypeError):
        implied_vol(5.0, 100.0, 100.0, 0.1, 0.0, np.array(["CE"]))


# ---------------------------------------------------------------------------------------
# Greeks
# ---------------------------------------------------------------------------------------


def greek_legs(n: int = 2_000) -> Legs:
    return build_legs(np.random.default_rng(1234), n, forward=(1_000.0, 60_000.0),
                      sigma=(0.05, 1.0), t=(1 / 365, 2.0), n_std=3.0)


def assert_within(actual: np.ndarray, desired: np.ndarray, tol: np.ndarray | float) -> None:
    bad = ~(np.abs(actual - desired) <= tol)
    assert not bad.any(), (
        f"{bad.sum()} mismatches, worst {np.max(np.abs(actual - desired)[bad]):.3g}")


def test_greeks_match_central_finite_differences_of_the_price():
    legs = greek_legs()
    f, k, t, r, sig, c = (legs.forward, legs.strike, legs.t, legs.rate, legs.sigma,
                          legs.is_call)
    g = greeks(f, k, t, r, sig, c)

    def price(df=0.0, dsig=0.0, dt=0.0):
        return black76_price(f + df, k, t + dt, r, sig + dsig, c)

    std = f * sig * np.sqrt(t)  # one standard deviation of F, rupees
    h = 1e-4 * std
    delta = (price(df=h) - price(df=-h)) / (2 * h)
    h = 2e-3 * std
    gamma = (price(df=h) - 2 * price() + price(df=-h)) / h**2
    h = 1e-4 * sig
    vega = (price(dsig=h) - price(dsig=-h)) / (2 * h)
    h = 1e-5 * t
    theta = -(price(dt=h) - price(dt=-h)) / (2 * h) / DAYS_PER_YEAR
    value_scale = legs.df * (f + k)
    assert_within(g.delta, delta, 1e-8)
    assert_within(g.gamma, gamma, 1e-4 * g.gamma + 1e-12 / std)
    assert_within(g.vega, vega, 1e-7 * g.vega + 1e-12 * value_scale / sig)
    assert_within(g.theta, theta, 1e-6 * np.abs(g.theta) + 1e-12 * value_scale / t)


def test_greeks_identities():
    legs = greek_legs()
    f, k, t, r, sig = legs.forward, legs.strike, legs.t, legs.rate, legs.sigma
    gc, gp = greeks(f, k, t, r, sig, True), greeks(f, k, t, r, sig, False)
    df = legs.df
    assert_within(gc.delta - gp.delta, df, 4 * EPS)
    np.testing.assert_array_equal(gc.gamma, gp.gamma)
    np.testing.assert_array_equal(gc.vega, gp.vega)
    # d/dt of parity, C - P = DF (F - K): theta_c - theta_p = r DF (F - K) / 365.
    assert_within(gc.theta - gp.theta, r * df * (f - k) / DAYS_PER_YEAR,
                  64 * EPS * df * (f + k) / t)
    # Long ATM options lose value as time passes.
    atm = greeks(f, f, t, np.abs(r), sig, legs.is_call)
    assert np.all(atm.theta < 0)
    assert np.all(gc.delta > 0) and np.all(gp.delta < 0) and np.all(gc.gamma > 0)


def test_greeks_match_quantlib_black_calculator():
    ql = pytest.importorskip("QuantLib")
    legs = greek_legs(300)
    g = greeks(legs.forward, legs.strike, legs.t, legs.rate, legs.sigma, legs.is_call)
    for i in range(300):
        f, k, t, df, vol = (float(a[i]) for a in (legs.forward, legs.strike, legs.t, legs.df,
                                                  legs.sigma))
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if legs.is_call[i] else ql.Option.Put, k)
        bc = ql.BlackCalculator(payoff, f, vol * math.sqrt(t), df)
        assert g.delta[i] == pytest.approx(bc.deltaForward(), rel=1e-11, abs=1e-14)
        assert g.gamma[i] == pytest.approx(bc.gammaForward(), rel=1e-10, abs=1e-18)
        assert g.vega[i] == pytest.approx(bc.vega(t), rel=1e-10, abs=1e-12 * f)
        # With spot = forward QuantLib's theta holds the forward fixed, as ours does.
        assert g.theta[i] == pytest.approx(bc.thetaPerDay(f, t), rel=1e-10, abs=1e-12 * f)


def test_documented_spot_greek_conversions():
    # F = S e^{(r-q)t}: spot delta = delta F/S, spot gamma = gamma (F/S)^2 and, with the
    # spot held fixed, theta - delta (r - q) F / 365.
    legs = greek_legs(500)
    q = 0.012
    spot = legs.forward * np.exp(-(legs.rate - q) * legs.t)

    def value(s, t):
        f = s * np.exp((legs.rate - q) * t)
        return black76_price(f, legs.strike, t, legs.rate, legs.sigma, legs.is_call)

    g = greeks(legs.forward, legs.strike, legs.t, legs.rate, legs.sigma, legs.is_call)
    ratio = legs.forward / spot
    h = 1e-4 * spot * legs.sigma * np.sqrt(legs.t)
    assert_within(g.delta * ratio,
                  (value(spot + h, legs.t) - value(spot - h, legs.t)) / (2 * h), 1e-8)
    h = 2e-3 * spot * legs.sigma * np.sqrt(legs.t)
    fd_gamma = (value(spot + h, legs.t) - 2 * value(spot, legs.t) + value(spot - h, legs.t))
    fd_gamma /= h**2
    assert_within(g.gamma * ratio**2, fd_gamma, 1e-4 * g.gamma * ratio**2 + 1e-12 / h)
    h = 1e-5 * legs.t
    fd_theta = -(value(spot, legs.t + h) - value(spot, legs.t - h)) / (2 * h) / DAYS_PER_YEAR
    spot_theta = g.theta - g.delta * (legs.rate - q) * legs.forward / DAYS_PER_YEAR
    assert_within(spot_theta, fd_theta,
                  1e-6 * np.abs(spot_theta) + 1e-12 * legs.df * legs.forward / legs.t)


def test_greeks_are_nan_only_for_a_reason():
    t = np.array([0.1, 0.0, 0.1, 0.1, 0.1, np.nan])
    sigma = np.array([0.2, 0.2, 0.0, 0.2, 0.2, 0.2])
    f = np.array([24_000.0, 24_000.0, 24_000.0, -1.0, 24_000.0, 24_000.0])
    k = np.array([24_000.0, 24_000.0, 24_000.0, 24_000.0, np.inf, 24_000.0])
    g = greeks(f, k, t, 0.065, sigma, True)
    for a in (g.delta, g.gamma, g.vega, g.theta):
        assert np.isfinite(a[0]) and np.all(np.isnan(a[1:]))


# ---------------------------------------------------------------------------------------
# QuantLib as an independent implied-volatility reference
# ---------------------------------------------------------------------------------------


def quantlib_iv(ql, legs: Legs, price: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = []
    for i in idx:
        kind = ql.Option.Call if legs.is_call[i] else ql.Option.Put
        std = ql.blackFormulaImpliedStdDev(kind, float(legs.strike[i]), float(legs.forward[i]),
                                           float(price[i]), float(legs.df[i]), 0.0,
                                           ql.nullDouble(), 1e-14, 1000)
        out.append(std / math.sqrt(legs.t[i]))
    return np.array(out)


def test_iv_matches_quantlib_to_1e9_on_index_options():
    ql = pytest.importorskip("QuantLib")
    rng = np.random.default_rng(1234)
    legs = build_legs(rng, 3_000, forward=(5_000.0, 60_000.0), sigma=(0.03, 1.5),
                      t=(5 * MINUTE, 2.0), strike_grid=50.0)
    # Include an expiry-day slice: 5 to 60 minutes left.
    day = build_legs(rng, 1_000, forward=(20_000.0, 30_000.0), sigma=(0.05, 1.0),
                     t=(5 * MINUTE, 60 * MINUTE), strike_grid=50.0)
    legs = Legs(*(np.concatenate([getattr(legs, a), getattr(day, a)]) for a in
                  ("forward", "strike", "t", "rate", "sigma", "is_call")))
    price = np.round(legs.price() / NSE_TICK) * NSE_TICK
    res = iv_of(legs, price)
    idx = np.flatnonzero(legs.time_value(price) >= NSE_TICK)
    assert idx.size > 2_000
    assert np.all(res.status[idx] == IVStatus.OK)
    ref = quantlib_iv(ql, legs, price, idx)
    assert np.max(np.abs(res.iv[idx] - ref)) <= 1e-9


def test_iv_matches_quantlib_over_a_wide_range_up_to_conditioning():
    # Far from index-option territory (300 % vol, 5 years, strikes e^20 from the forward)
    # a few legs are so ill-conditioned that the rounding of the price itself moves the
    # IV by more than 1e-9; both libraries then agree to within that noise.
    ql = pytest.importorskip("QuantLib")
    legs = wide_legs(4_000)
    price = legs.price()
    res = iv_of(legs, price)
    idx = np.flatnonzero(legs.time_value(price) >= NSE_TICK)
    assert np.all(res.status[idx] == IVStatus.OK)
    err = np.abs(res.iv[idx] - quantlib_iv(ql, legs, price, idx))
    assert np.all(err <= np.maximum(1e-9, 16 * legs.iv_noise()[idx]))
    assert np.mean(err <= 1e-9) > 0.999


# ---------------------------------------------------------------------------------------
# Shapes, read-only results, warnings
# ---------------------------------------------------------------------------------------


def test_vectorised_shapes():
    k = np.array([23_000.0, 24_000.0, 25_000.0, 26_000.0])
    t = np.array([[1 / 365], [7 / 365], [30 / 365]])
    assert black76_price(24_000.0, k, t, 0.065, 0.15, True).shape == (3, 4)
    price = black76_price(24_000.0, k, t, 0.065, 0.15, True)
    res = implied_vol(price, 24_000.0, k, t, 0.065, True)
    assert res.iv.shape == res.status.shape == (3, 4)
    assert res.status.dtype == np.int8 and res.iv.dtype == np.float64
    assert len(res.reasons()) == 12
    g = greeks(24_000.0, k, t, 0.065, 0.15, np.array([True, False, True, False]))
    assert isinstance(g, Greeks)
    assert g.delta.shape == g.gamma.shape == g.vega.shape == g.theta.shape == (3, 4)
    # All scalars: shape (1,).
    assert black76_price(100.0, 100.0, 0.5, 0.0, 0.2, True).shape == (1,)
    assert implied_vol(8.0, 100.0, 100.0, 0.5, 0.0, True).iv.shape == (1,)
    assert greeks(100.0, 100.0, 0.5, 0.0, 0.2, True).theta.shape == (1,)
    # Empty input.
    empty = np.array([])
    assert implied_vol(empty, empty, empty, empty, empty, empty.astype(bool)).iv.shape == (0,)
    # Results are read-only and the dataclasses frozen.
    with pytest.raises(ValueError):
        res.iv[0, 0] = 0.0
    with pytest.raises(ValueError):
        g.delta[0, 0] = 0.0
    with pytest.raises(AttributeError):
        res.iv = None  # type: ignore[misc]


def test_vectorised_results_equal_one_leg_at_a_time():
    legs = index_legs(200)
    price = legs.price()
    before = [a.copy() for a in (price, legs.forward, legs.strike, legs.t)]
    batch = iv_of(legs, price)
    for a, b in zip(before, (price, legs.forward, legs.strike, legs.t), strict=True):
        np.testing.assert_array_equal(a, b)  # inputs untouched
    g = greeks(legs.forward, legs.strike, legs.t, legs.rate, legs.sigma, legs.is_call)
    for i in range(0, 200, 20):
        one = implied_vol(price[i], legs.forward[i], legs.strike[i], legs.t[i], legs.rate[i],
                          legs.is_call[i])
        assert one.status[0] == batch.status[i]
        np.testing.assert_array_equal(one.iv[0], batch.iv[i])
        gi = greeks(legs.forward[i], legs.strike[i], legs.t[i], legs.rate[i], legs.sigma[i],
                    legs.is_call[i])
        assert (gi.delta[0], gi.gamma[0], gi.vega[0], gi.theta[0]) == (
            g.delta[i], g.gamma[i], g.vega[i], g.theta[i])


def test_no_numpy_warnings_even_on_hostile_inputs():
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-300, 1e-12, 1.0,
                         24_000.0, 1e12, 1e300])
    grid = np.meshgrid(specials, specials, np.array([0.0, 1e-12, MINUTE, 1.0, np.inf]),
                       np.array([1e-9, 0.2, 50.0]), indexing="ij")
    price, forward, t, sigma = (a.ravel() for a in grid)
    strike = np.full(price.size, 24_000.0)
    is_call = np.arange(price.size) % 2 == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        black76_price(forward, strike, t, 0.065, sigma, is_call)
        greeks(forward, strike, t, 0.065, sigma, is_call)
        res = implied_vol(price, forward, strike, t, 0.065, is_call)
        implied_vol(price, strike, forward, t, 0.065, is_call, tick=0.0)
        # Extreme but valid legs: vanishing and huge total variance.
        legs = build_legs(np.random.default_rng(1234), 5_000, sigma=(1e-6, 10.0),
                          t=(1e-9, 10.0), n_std=10.0)
        p = legs.price()
        iv_of(legs, p, tick=0.0)
        greeks(legs.forward, legs.strike, legs.t, legs.rate, legs.sigma, legs.is_call)
    assert np.all(np.isnan(res.iv[res.status != IVStatus.OK]))


def test_gamma_alone_equals_the_greeks_gamma(rng):
    from shared.domain.black76 import gamma

    n = 2000
    f = rng.uniform(5_000, 60_000, n)
    k = f * np.exp(rng.normal(0, 0.2, n))
    t = rng.uniform(1e-4, 2.0, n)
    vol = rng.uniform(0.05, 1.5, n)
    calls = rng.random(n) < 0.5
    expected = greeks(f, k, t, 0.065, vol, calls).gamma
    np.testing.assert_allclose(gamma(f, k, t, 0.065, vol), expected, rtol=1e-13, atol=0)
    bad = gamma(np.array([100.0, -1.0, 100.0]), 100.0, np.array([0.1, 0.1, 0.0]), 0.05, 0.2)
    assert np.isfinite(bad[0]) and np.isnan(bad[1:]).all()
    grid = gamma(f[:3][None, :] * np.array([[0.9], [1.0], [1.1]]), k[:3], t[:3], 0.065, vol[:3])
    assert grid.shape == (3, 3)
