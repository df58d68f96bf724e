r"""Sharpe ratios of a backtest and how far to trust them: PSR and DSR. Pure.

Conventions
-----------
* ``returns`` are per-period (here: per-trade) simple returns, decimals (0.01 = 1 %), in
  the order they were realised. Nothing is annualised: a Sharpe ratio here is per period,
  :math:`\widehat{SR} = \bar r / s` with :math:`s` the sample standard deviation
  (``ddof=1``), and no risk-free rate is subtracted (a trade's return is already an excess
  over holding the capital idle for minutes to days).
* Skewness :math:`\hat\gamma_3` and kurtosis :math:`\hat\gamma_4` are the sample moments
  about the mean with ``1/n`` normalisation (``scipy.stats.skew`` and
  ``scipy.stats.kurtosis(fisher=False)`` with ``bias=True``): the normal has
  :math:`\gamma_3 = 0`, :math:`\gamma_4 = 3` (kurtosis is *not* excess kurtosis).
* Probabilities are in [0, 1]. A result that cannot be computed is NaN and carries a
  ``reason`` (fewer than two observations, zero variance, a non-positive variance of the
  Sharpe estimator); every finite result has ``reason == ""``.

Probabilistic Sharpe Ratio (Bailey & López de Prado, 2012, "The Sharpe Ratio Efficient
Frontier", J. of Risk 15(2))
------------------------------------------------------------------------------------------
The probability that the true Sharpe ratio exceeds a benchmark :math:`SR^*`, given
:math:`n` observations with the observed skewness and kurtosis:

.. math::

    \widehat{PSR}(SR^*) = \Phi\left(\frac{(\widehat{SR} - SR^*)\sqrt{n - 1}}
        {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}
        \right)

(:math:`\Phi` the standard normal CDF). :math:`PSR(SR^*) = 1/2` when
:math:`\widehat{SR} = SR^*`.

Deflated Sharpe Ratio (Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio:
Correcting for Selection Bias, Backtest Overfitting and Non-Normality", J. of Portfolio
Management 40(5))
---------------------------------------------------------------------------------------
The PSR against the Sharpe ratio the best of :math:`N` independent trials would show by
luck alone, given the variance :math:`V[\widehat{SR}_k]` of the trials' Sharpe ratios:

.. math::

    SR_0 = \sqrt{V[\widehat{SR}_k]}\left((1 - \gamma)\,\Phi^{-1}\!\left(1 - \frac{1}{N}\right)
        + \gamma\,\Phi^{-1}\!\left(1 - \frac{1}{N e}\right)\right), \qquad
    DSR = \widehat{PSR}(SR_0)

with :math:`\gamma \approx 0.5772` the Euler-Mascheroni constant. One trial has nothing
to deflate (:math:`SR_0 = 0`, the expected maximum of one zero-mean draw), so its DSR is
its PSR against zero. More trials (or a wider spread of their Sharpe ratios) raise
:math:`SR_0` and lower the DSR. The paper's worked example (annualised SR 2.5 over 1,250
daily observations, :math:`\hat\gamma_3 = -3`, :math:`\hat\gamma_4 = 10`, :math:`N = 100`
trials with annualised :math:`V = 0.5`) gives :math:`SR_0 = 0.1132` per day and
DSR 0.9004; the tests reproduce it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

__all__ = [
    "EULER_GAMMA",
    "DeflatedSharpe",
    "ProbabilisticSharpe",
    "SharpeEstimate",
    "StrategySharpe",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
    "strategy_sharpes",
]

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant :math:`\\gamma`."""

_NORMAL = NormalDist()
_NAN = math.nan


def _phi(x: float) -> float:
    """Standard normal CDF (``math.erfc``: accurate far into both tails)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class SharpeEstimate:
    """The per-period Sharpe ratio of a return series and the moments PSR needs.

    Attributes
    ----------
    n
        Number of returns.
    mean, std
        Sample mean and standard deviation (``ddof=1``) of the returns, decimals per period.
    sharpe
        ``mean / std``, per period (not annualised); NaN with ``reason``.
    skew, kurtosis
        Sample skewness and (non-excess) kurtosis, ``1/n`` moments (see the module
        docstring); NaN with ``reason`` when the variance is zero or ``n < 2``.
    reason
        ``""`` when every figure is finite; otherwise why not.
    """

    n: int
    mean: float
    std: float
    sharpe: float
    skew: float
    kurtosis: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ProbabilisticSharpe:
    """:math:`\\widehat{PSR}(SR^*)` and its inputs (see the module docstring).

    Attributes
    ----------
    psr
        Probability in [0, 1] that the true per-period Sharpe ratio exceeds ``benchmark``;
        NaN with ``reason``.
    sharpe, benchmark
        Observed and benchmark per-period Sharpe ratios.
    n, skew, kurtosis
        Observations, sample skewness and (non-excess) kurtosis used.
    z
        The standardised distance ``(sharpe - benchmark) * sqrt(n - 1) / sqrt(denominator)``.
    reason
        ``""`` when ``psr`` is finite.
    """

    psr: float
    sharpe: float
    benchmark: float
    n: int
    skew: float
    kurtosis: float
    z: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """The Deflated Sharpe Ratio of one strategy among ``n_trials`` (module docstring).

    Attributes
    ----------
    dsr
        :math:`\\widehat{PSR}(SR_0)`, in [0, 1]; NaN with ``reason``.
    sharpe
        The strategy's observed per-period Sharpe ratio.
    sr0
        The expected maximum Sharpe ratio of ``n_trials`` unskilled trials, per period.
    n_trials
        Independent trials (strategies) the strategy was selected among (>= 1).
    var_trials
        Variance of the trials' Sharpe ratios, per period squared (unused when
        ``n_trials == 1``).
    psr
        The PSR against ``sr0`` in full (``psr.psr == dsr``).
    reason
        ``""`` when ``dsr`` is finite.
    """

    dsr: float
    sharpe: float
    sr0: float
    n_trials: int
    var_trials: float
    psr: ProbabilisticSharpe
    reason: str = ""


def _clean(returns: npt.ArrayLike) -> npt.NDArray[np.float64]:
    r = np.asarray(returns, dtype=np.float64).ravel()
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite numbers")
    return r


def sharpe_ratio(returns: npt.ArrayLike) -> SharpeEstimate:
    """The per-period Sharpe ratio of ``returns`` with its skewness and kurtosis.

    Parameters
    ----------
    returns
        Per-period returns, decimals; finite.

    Returns
    -------
    SharpeEstimate
        NaN figures with a reason for fewer than two returns or a zero standard deviation.

    Raises
    ------
    ValueError
        If a return is NaN or infinite.
    """
    r = _clean(returns)
    n = int(r.size)
    if n < 2:
        mean = float(r.mean()) if n else _NAN
        return SharpeEstimate(n, mean, _NAN, _NAN, _NAN, _NAN,
                              f"{n} return(s): a Sharpe ratio needs at least 2")
    mean = float(r.mean())
    dev = r - mean
    m2 = float(np.mean(dev * dev))
    std = math.sqrt(m2 * n / (n - 1))
    if not std > 1e-12 * max(1.0, abs(mean)):
        return SharpeEstimate(n, mean, std, _NAN, _NAN, _NAN,
                              "zero variance: every return is the same, the Sharpe ratio is "
                              "undefined")
    skew = float(np.mean(dev ** 3)) / m2 ** 1.5
    kurt = float(np.mean(dev ** 4)) / (m2 * m2)
    return SharpeEstimate(n, mean, std, mean / std, skew, kurt)


def probabilistic_sharpe_ratio(sharpe: float, n: int, skew: float = 0.0,
                               kurtosis: float = 3.0, benchmark: float = 0.0
                               ) -> ProbabilisticSharpe:
    """:math:`\\widehat{PSR}(SR^*)` from the observed statistics (module docstring).

    Parameters
    ----------
    sharpe
        Observed per-period Sharpe ratio.
    n
        Number of observations behind it.
    skew, kurtosis
        Sample skewness and non-excess kurtosis of the returns (normal: 0 and 3).
    benchmark
        :math:`SR^*`, per period (default 0).

    Returns
    -------
    ProbabilisticSharpe
        NaN with a reason when ``n < 2``, an input is not finite, or the variance term
        ``1 - skew * SR + (kurtosis - 1) / 4 * SR**2`` is not positive.
    """
    def nan(why: str) -> ProbabilisticSharpe:
        return ProbabilisticSharpe(_NAN, sharpe, benchmark, n, skew, kurtosis, _NAN, why)

    if n < 2:
        return nan(f"{n} observation(s): PSR needs at least 2")
    for name, v in (("sharpe", sharpe), ("skew", skew), ("kurtosis", kurtosis),
                    ("benchmark", benchmark)):
        if not math.isfinite(v):
            return nan(f"{name} is not finite ({v})")
    var_term = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not var_term > 0.0:
        return nan(f"the Sharpe estimator's variance term 1 - skew*SR + (kurt-1)/4*SR^2 = "
                   f"{var_term:.4g} is not positive (skew {skew:.3g}, kurtosis "
                   f"{kurtosis:.3g}, SR {sharpe:.3g})")
    z = (sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(var_term)
    return ProbabilisticSharpe(_phi(z), sharpe, benchmark, n, skew, kurtosis, z)


def expected_max_sharpe(n_trials: int, var_trials: float) -> float:
    """:math:`SR_0`, the expected maximum Sharpe ratio of ``n_trials`` unskilled trials
    whose Sharpe ratios have variance ``var_trials`` (per period squared).

    Returns 0 for one trial (nothing to deflate). Raises ``ValueError`` for
    ``n_trials < 1`` or a negative or non-finite variance with more than one trial.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    if n_trials == 1:
        return 0.0
    if not (math.isfinite(var_trials) and var_trials >= 0.0):
        raise ValueError(f"var_trials must be a finite variance >= 0, got {var_trials!r}")
    n = float(n_trials)
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(var_trials) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe_ratio(sharpe: float, n: int, skew: float, kurtosis: float, *,
                          n_trials: int, var_trials: float) -> DeflatedSharpe:
    """The Deflated Sharpe Ratio: :math:`\\widehat{PSR}(SR_0)` with :math:`SR_0` from
    :func:`expected_max_sharpe` (see the module docstring).

    Parameters
    ----------
    sharpe, n, skew, kurtosis
        The selected strategy's per-period Sharpe ratio, observations, sample skewness and
        non-excess kurtosis.
    n_trials
        How many strategies (independent trials) it was selected among, >= 1.
    var_trials
        Variance of those trials' per-period Sharpe ratios (ignored for one trial).

    Returns
    -------
    DeflatedSharpe
        NaN with a reason when the PSR cannot be computed, or ``var_trials`` is not a
        finite variance while ``n_trials > 1``.
    """
    if n_trials > 1 and not (math.isfinite(var_trials) and var_trials >= 0.0):
        why = (f"the variance of the {n_trials} trials' Sharpe ratios is not a finite "
               f"number ({var_trials})")
        psr = ProbabilisticSharpe(_NAN, sharpe, _NAN, n, skew, kurtosis, _NAN, why)
        return DeflatedSharpe(_NAN, sharpe, _NAN, n_trials, var_trials, psr, why)
    sr0 = expected_max_sharpe(n_trials, var_trials)
    psr = probabilistic_sharpe_ratio(sharpe, n, skew, kurtosis, benchmark=sr0)
    return DeflatedSharpe(psr.psr, sharpe, sr0, n_trials, var_trials, psr, psr.reason)


@dataclass(frozen=True, slots=True)
class StrategySharpe:
    """One strategy's per-trade Sharpe ratio, its PSR against zero and its DSR among the
    strategies of the same backtest.

    Attributes
    ----------
    strategy
        The strategy's name.
    estimate
        :func:`sharpe_ratio` of its per-trade returns.
    psr
        :func:`probabilistic_sharpe_ratio` against ``SR* = 0``.
    dsr
        :func:`deflated_sharpe_ratio` with ``N`` the strategies that have a finite Sharpe
        ratio and ``V`` the variance (``ddof=1``) of their Sharpe ratios.
    """

    strategy: str
    estimate: SharpeEstimate
    psr: ProbabilisticSharpe
    dsr: DeflatedSharpe


def strategy_sharpes(returns_by_strategy: Mapping[str, Sequence[float]]
                     ) -> tuple[StrategySharpe, ...]:
    """Sharpe, PSR and DSR of every strategy of one backtest, in name order.

    The DSR's trials are the strategies with a finite Sharpe ratio (one strategy: nothing
    to deflate, DSR = PSR against 0); their variance is the sample variance (``ddof=1``)
    of those Sharpe ratios. A strategy without a finite Sharpe ratio gets NaN PSR and DSR
    with the estimate's reason.
    """
    estimates = {name: sharpe_ratio(r) for name, r in sorted(returns_by_strategy.items())}
    finite = [e.sharpe for e in estimates.values() if math.isfinite(e.sharpe)]
    n_trials = max(len(finite), 1)
    var = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    out = []
    for name, e in estimates.items():
        psr = probabilistic_sharpe_ratio(e.sharpe, e.n, e.skew, e.kurtosis) \
            if not e.reason else ProbabilisticSharpe(_NAN, e.sharpe, 0.0, e.n, e.skew,
                                                     e.kurtosis, _NAN, e.reason)
        if e.reason:
            dsr = DeflatedSharpe(_NAN, e.sharpe, _NAN, n_trials, var, psr, e.reason)
        else:
            dsr = deflated_sharpe_ratio(e.sharpe, e.n, e.skew, e.kurtosis, n_trials=n_trials,
                                        var_trials=var)
        out.append(StrategySharpe(name, e, psr, dsr))
    return tuple(out)
