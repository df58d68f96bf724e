r"""Odds of a single-expiry structure under the market's implied density, rescaled by the
vol forecast. Pure.

The chain's risk-neutral density of :math:`S_T` (Breeden-Litzenberger on the smoothed
smile, :class:`shared.domain.analytics.Density`: nodes :math:`S_i` on a uniform grid,
normalised so its trapezoidal integral is 1) carries the market's skew and tails; the
forecast says how wide the distribution should be. With trapezoidal node weights
:math:`w_i` (:math:`\sum_i w_i = 1`), :math:`y_i = \ln(S_i / F)` and
:math:`\bar y = \sum_i w_i y_i`, the adjusted distribution puts weight :math:`w_i` on

.. math::

    S'_i = F \exp\big(\lambda (y_i - \bar y) + c\big), \qquad
    c = -\ln \sum_i w_i e^{\lambda (y_i - \bar y)},

so that :math:`E[S'] = F` exactly (the forward stays a martingale) and the spread of
:math:`\ln S_T` is scaled by :math:`\lambda = \sigma_{\text{forecast}} / \sigma_{\text{ATM}}`
while its shape (skew, kurtosis) is the market's. :math:`\lambda = 1` is the market's own
density. For a structure with payoff
:math:`P(S) = \sum_j u_j\,\mathrm{intrinsic}_j(S) - \text{net premium}` (rupees, signed
units, undiscounted, as :mod:`shared.domain.risk.odds`):

.. math::

    \text{win probability} = \sum_i w_i\,[P(S'_i) > 0], \qquad
    \text{expected payoff} = \sum_i w_i\,P(S'_i).

Identities (tested): the weights sum to 1, :math:`E[S'] = F`, put-call parity
:math:`E[(S'-K)^+] - E[(K-S')^+] = F - K`, and for a lognormal density the expected
payoff matches undiscounted Black-76 at :math:`\lambda \sigma`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DensityOdds", "density_odds", "node_weights"]


@dataclass(frozen=True, slots=True)
class DensityOdds:
    """Odds under the rescaled implied density (see the module docstring).

    Attributes
    ----------
    win_probability
        :math:`P(P(S') > 0)`, in [0, 1].
    expected_payoff
        :math:`E[P(S')]`, rupees for the whole position, before costs.
    scale
        :math:`\\lambda`, the forecast over the ATM vol (1: the market's density).
    mean
        :math:`E[S']`, index points (the forward, to rounding).
    """

    win_probability: float
    expected_payoff: float
    scale: float
    mean: float


def node_weights(grid: npt.ArrayLike, pdf: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Trapezoidal weights of a density on ``grid`` (ascending), normalised to sum to 1."""
    x = np.asarray(grid, dtype=np.float64)
    f = np.asarray(pdf, dtype=np.float64)
    if x.ndim != 1 or x.shape != f.shape or x.size < 2:
        raise ValueError("grid and pdf must be 1-D of one length >= 2")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(f))):
        raise ValueError("grid and pdf must be finite")
    if np.any(np.diff(x) <= 0) or np.any(f < 0):
        raise ValueError("grid must be ascending and pdf non-negative")
    dx = np.diff(x)
    w = f * (np.concatenate(([0.0], dx)) + np.concatenate((dx, [0.0]))) / 2.0
    total = float(w.sum())
    if not total > 0:
        raise ValueError("the density has no mass")
    return w / total


def density_odds(units: npt.ArrayLike, strikes: npt.ArrayLike, is_call: npt.ArrayLike,
                 net_premium: float, grid: npt.ArrayLike, pdf: npt.ArrayLike, *,
                 forward: float, scale: float = 1.0) -> DensityOdds:
    """Win probability and expected payoff of a structure (see the module docstring).

    Parameters
    ----------
    units, strikes, is_call : array_like, shape (n,)
        Signed units per leg (+ bought), strikes (index points) and CE flags.
    net_premium : float
        Rupees paid (+) or received (-) for the whole position.
    grid, pdf : array_like, shape (m,)
        The implied density of :math:`S_T` (index points; ``pdf`` per index point).
    forward : float
        The expiry's forward, index points (> 0).
    scale : float
        :math:`\\lambda > 0`: forecast vol over ATM implied vol.
    """
    if not (math.isfinite(forward) and forward > 0):
        raise ValueError(f"forward must be positive, got {forward!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive, got {scale!r}")
    u = np.asarray(units, dtype=np.float64)
    k = np.asarray(strikes, dtype=np.float64)
    c = np.asarray(is_call, dtype=bool)
    if u.ndim != 1 or u.shape != k.shape or u.shape != c.shape or u.size == 0:
        raise ValueError("units, strikes and is_call must be 1-D of one non-zero length")
    w = node_weights(grid, pdf)
    x = np.asarray(grid, dtype=np.float64)
    if x[0] <= 0:
        raise ValueError("the density grid must be positive index levels")
    y = np.log(x / forward)
    z = scale * (y - float(w @ y))
    z -= math.log(float(w @ np.exp(z)))
    s = forward * np.exp(z)
    intrinsic = np.where(c[None, :], s[:, None] - k[None, :], k[None, :] - s[:, None])
    payoff = np.maximum(intrinsic, 0.0) @ u - float(net_premium)
    return DensityOdds(win_probability=float(w[payoff > 0].sum()),
                       expected_payoff=float(w @ payoff), scale=float(scale),
                       mean=float(w @ s))
