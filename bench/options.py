"""Options-analytics benchmarks (``python -m bench.options``): Black-76 IV and greeks.

* Implied volatility of 1,000 realistic NIFTY options, measured side by side in one run:
  ``shared.domain.black76.implied_vol`` (vectorised numpy) against a Python loop over
  QuantLib's ``blackFormulaImpliedStdDev`` and a loop over py_vollib's
  ``py_vollib.black.implied_volatility.implied_volatility``. Targets: >= 3x QuantLib,
  >= 20x py_vollib, max |IV - QuantLib| <= 1e-9 on legs with at least one tick of time
  value.
* Greeks (delta, gamma, vega, theta) of 10,000 options. Target: median <= 1 ms.

The legs are seeded (``np.random.default_rng(1234)``): forward around 24,000, strikes on
the 50-point grid within +-15 % of it, 1 to 90 days to expiry, volatility from a skewed
smile between 10 % and 35 %, premiums from ``black76_price`` rounded to the 0.05 tick.

The peers are given every benefit: their loops run over pre-built Python floats for the
legs that have an IV (at least one tick of time value), while ``implied_vol`` takes all
1,000 legs as arrays and classifies the rest itself. QuantLib is asked for accuracy 1e-12
on ``sigma sqrt(t)`` so that it can serve as the 1e-9 reference; its default (1e-6, i.e.
IV errors up to ~1e-5) is timed too, for information. Every timing is warmed up once and
the median of ``runs`` samples (``time.perf_counter``) is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shared.domain.black76 import NSE_TICK, black76_price, greeks, implied_vol

N_IV = 1_000
N_GREEKS = 10_000
RATE = 0.065  # continuously compounded
QUANTLIB_ACCURACY = 1e-12  # on sigma sqrt(t), so QuantLib is a 1e-9 reference for sigma
TARGETS = {"speedup_vs_quantlib": 3.0, "speedup_vs_py_vollib": 20.0,
           "max_abs_err_vs_quantlib": 1e-9, "greeks_median_s": 1e-3}

IV_OURS = "iv x1000: black76.implied_vol"
IV_QL = "iv x1000: QuantLib loop"
IV_QL_DEFAULT = "iv x1000: QuantLib loop, acc 1e-6"
IV_VOLLIB = "iv x1000: py_vollib loop"
GREEKS = "greeks x10000: black76.greeks"


@dataclass(frozen=True)
class Chain:
    """Seeded option legs, arrays of shape (n,); t in years (ACT/365)."""

    forward: np.ndarray
    strike: np.ndarray
    t: np.ndarray
    sigma: np.ndarray
    is_call: np.ndarray
    price: np.ndarray  # black76_price rounded to the tick

    @property
    def df(self) -> np.ndarray:
        return np.exp(-RATE * self.t)

    def time_value(self) -> np.ndarray:
        intrinsic = np.maximum(np.where(self.is_call, self.forward - self.strike,
                                        self.strike - self.forward), 0.0)
        return self.price - self.df * intrinsic


def nifty_chain(n: int, seed: int = 1234) -> Chain:
    """``n`` realistic NIFTY legs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    forward = 24_000.0 * np.exp(rng.normal(0.0, 0.01, n))
    strike = np.round(forward * rng.uniform(0.85, 1.15, n) / 50.0) * 50.0
    t = rng.uniform(1.0, 90.0, n) / 365.0
    m = np.log(strike / forward)
    sigma = np.clip(0.14 - 0.5 * m + 4.0 * m * m, 0.10, 0.35)  # put skew plus smile
    is_call = rng.random(n) < 0.5
    exact = black76_price(forward, strike, t, RATE, sigma, is_call)
    price = np.round(exact / NSE_TICK) * NSE_TICK
    return Chain(forward, strike, t, sigma, is_call, price)


def measure(fn: Callable[[], object], runs: int) -> dict[str, float]:
    """Median, min and max wall time of ``fn`` over ``runs`` calls, after one warm-up."""
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(samples), "min_s": min(samples),
            "max_s": max(samples)}


def _quantlib_loop(chain: Chain, legs: np.ndarray, accuracy: float | None):
    try:
        import QuantLib as ql
    except ImportError:
        return None
    call, put = ql.Option.Call, ql.Option.Put
    args = [(call if c else put, k, f, p, d, math.sqrt(t)) for c, k, f, p, d, t in zip(
        chain.is_call[legs].tolist(), chain.strike[legs].tolist(),
        chain.forward[legs].tolist(), chain.price[legs].tolist(), chain.df[legs].tolist(),
        chain.t[legs].tolist(), strict=True)]
    solve, null = ql.blackFormulaImpliedStdDev, ql.nullDouble()
    if accuracy is None:
        return lambda: [solve(o, k, f, p, d) / sq for o, k, f, p, d, sq in args]
    return lambda: [solve(o, k, f, p, d, 0.0, null, accuracy, 100) / sq
                    for o, k, f, p, d, sq in args]


def _py_vollib_loop(chain: Chain, legs: np.ndarray):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "import vollib instead"
            from py_vollib.black.implied_volatility import implied_volatility
    except ImportError:
        return None
    args = list(zip(chain.price[legs].tolist(), chain.forward[legs].tolist(),
                    chain.strike[legs].tolist(), chain.t[legs].tolist(),
                    ["c" if c else "p" for c in chain.is_call[legs].tolist()], strict=True))
    return lambda: [implied_volatility(p, f, k, RATE, t, flag) for p, f, k, t, flag in args]


def run(runs: int = 5) -> dict[str, dict[str, float]]:
    """Run the options benchmarks; ``{name: {"median_s", "min_s", "max_s", ...}}``.

    The implied-volatility row of ``black76.implied_vol`` also carries
    ``speedup_vs_quantlib``, ``speedup_vs_py_vollib``, ``max_abs_err_vs_quantlib`` (on the
    ``legs_with_iv`` legs with at least one tick of time value) and ``legs_ok``; a peer
    that is not installed is left out (its figures are NaN).
    """
    chain = nifty_chain(N_IV)
    legs = np.flatnonzero(chain.time_value() >= NSE_TICK)

    def ours():
        return implied_vol(chain.price, chain.forward, chain.strike, chain.t, RATE,
                           chain.is_call)

    peers = {IV_QL: _quantlib_loop(chain, legs, QUANTLIB_ACCURACY),
             IV_QL_DEFAULT: _quantlib_loop(chain, legs, None),
             IV_VOLLIB: _py_vollib_loop(chain, legs)}
    results: dict[str, dict[str, float]] = {IV_OURS: measure(ours, runs)}
    for name, loop in peers.items():
        if loop is not None:
            results[name] = measure(loop, runs)

    res = ours()
    row = results[IV_OURS]
    row["legs_with_iv"] = float(legs.size)
    row["legs_ok"] = float(res.ok.sum())
    for peer, key in ((IV_QL, "speedup_vs_quantlib"), (IV_VOLLIB, "speedup_vs_py_vollib")):
        row[key] = (results[peer]["median_s"] / row["median_s"] if peer in results
                    else math.nan)
    row["max_abs_err_vs_quantlib"] = math.nan
    if peers[IV_QL] is not None:
        reference = np.array(peers[IV_QL]())
        row["max_abs_err_vs_quantlib"] = float(np.max(np.abs(res.iv[legs] - reference)))
        if peers[IV_QL_DEFAULT] is not None:
            results[IV_QL_DEFAULT]["max_abs_err_vs_quantlib"] = float(
                np.max(np.abs(np.array(peers[IV_QL_DEFAULT]()) - reference)))
        if peers[IV_VOLLIB] is not None:
            results[IV_VOLLIB]["max_abs_err_vs_quantlib"] = float(
                np.max(np.abs(np.array(peers[IV_VOLLIB]()) - reference)))

    book = nifty_chain(N_GREEKS, seed=1235)
    results[GREEKS] = measure(
        lambda: greeks(book.forward, book.strike, book.t, RATE, book.sigma, book.is_call), runs)
    return results


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f}ms"


def report(results: dict[str, dict[str, float]], runs: int) -> str:
    """The results as a text table, with the targets checked."""
    lines = [f"{'benchmark':<36} {'median':>10} {'min':>10} {'max':>10}   (n={runs})"]
    for name, r in results.items():
        extra = ""
        if "max_abs_err_vs_quantlib" in r and name != IV_OURS:
            extra = f"   max |IV - QuantLib| {r['max_abs_err_vs_quantlib']:.1e}"
        lines.append(f"{name:<36} {_fmt_time(r['median_s'])} {_fmt_time(r['min_s'])} "
                     f"{_fmt_time(r['max_s'])}{extra}")
    ours = results[IV_OURS]

    def check(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    lines += [
        "",
        f"legs with >= 1 tick of time value: {ours['legs_with_iv']:.0f} of {N_IV}"
        f" (IV status OK: {ours['legs_ok']:.0f})",
        f"speedup vs QuantLib  {ours['speedup_vs_quantlib']:7.1f}x"
        f"   target >= {TARGETS['speedup_vs_quantlib']:.0f}x"
        f"   {check(ours['speedup_vs_quantlib'] >= TARGETS['speedup_vs_quantlib'])}",
        f"speedup vs py_vollib {ours['speedup_vs_py_vollib']:7.1f}x"
        f"   target >= {TARGETS['speedup_vs_py_vollib']:.0f}x"
        f"   {check(ours['speedup_vs_py_vollib'] >= TARGETS['speedup_vs_py_vollib'])}",
        f"max |IV - QuantLib|  {ours['max_abs_err_vs_quantlib']:8.1e}"
        f"   target <= {TARGETS['max_abs_err_vs_quantlib']:.0e}"
        f"   {check(ours['max_abs_err_vs_quantlib'] <= TARGETS['max_abs_err_vs_quantlib'])}",
        f"greeks x{N_GREEKS} median {results[GREEKS]['median_s'] * 1e3:6.3f}ms"
        f"   target <= {TARGETS['greeks_median_s'] * 1e3:.0f}ms"
        f"   {check(results[GREEKS]['median_s'] <= TARGETS['greeks_median_s'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.options", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="samples per measurement (default 5)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.runs)
    print(json.dumps(results, indent=2) if args.json else report(results, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
