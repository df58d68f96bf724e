r"""The rolling IC of a production model's *served* forecasts against what happened. Pure.

decide records, for each snapshot, the forecast each production model gave it (type,
version, value). For one underlying, take each IST session's last recorded forecast
:math:`p_d` and the session's daily bar (open/high/low/close of its snapshot spots), and
pair it with the realised outcome over the model's horizon :math:`h` (in sessions):

* **volatility** (``vol_har_{h}d``, annualised vol forecast): the realised vol of the next
  :math:`h` sessions, :math:`\sqrt{252 \cdot \overline{\mathrm{GK}}_{d+1..d+h}}`, with
  :math:`\mathrm{GK}` the Garman-Klass daily variance (floored as in training);
* **direction** (``direction_lgbm_{h}d``, P(up)): the log return
  :math:`\ln(C_{d+h} / C_d)`.

Forecasts whose horizon has not passed yet are left out. The rolling Spearman IC over
``window`` sessions (:func:`shared.domain.models.drift.rolling_ic`) then goes to
:func:`shared.domain.models.drift.ic_decay`: the mean IC of the last ``recent`` values
against the ``reference`` values before them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

from shared.domain.models.drift import IcDecay, ic_decay, rolling_ic
from shared.domain.models.vol import floor_variance, garman_klass_variance

__all__ = ["LiveIc", "live_ic", "model_kind"]

Kind = Literal["volatility", "direction"]


@dataclass(frozen=True, slots=True)
class LiveIc:
    """The decay verdict and how much evidence it rests on (``pairs``: forecasts with a
    realised outcome)."""

    decay: IcDecay | None
    pairs: int
    reason: str | None = None


def model_kind(model_type: str) -> tuple[Kind, int] | None:
    """``(kind, horizon)`` of a model type whose forecasts can be scored, else None."""
    for prefix, kind in (("vol_har_", "volatility"), ("direction_lgbm_", "direction")):
        if model_type.startswith(prefix) and model_type.endswith("d"):
            digits = model_type[len(prefix):-1]
            if digits.isdigit() and int(digits) > 0:
                return kind, int(digits)  # type: ignore[return-value]
    return None


def live_ic(forecast_days: Sequence[date], forecasts: Sequence[float],
            bar_days: Sequence[date], open_: npt.ArrayLike, high: npt.ArrayLike,
            low: npt.ArrayLike, close: npt.ArrayLike, *, kind: Kind, horizon: int,
            window: int = 20, reference: int = 40, recent: int = 20,
            min_ratio: float = 0.5) -> LiveIc:
    """The IC decay of served forecasts (see the module docstring). ``forecast_days`` and
    ``bar_days`` ascending; a forecast on a day without a bar is left out."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon!r}")
    index = {d: i for i, d in enumerate(bar_days)}
    c = np.asarray(close, dtype=np.float64)
    gk = floor_variance(garman_klass_variance(open_, high, low, close))
    preds, outcomes = [], []
    for d, p in zip(forecast_days, forecasts, strict=True):
        i = index.get(d)
        if i is None or i + horizon >= len(c) or not math.isfinite(p):
            continue
        if kind == "volatility":
            future = gk[i + 1:i + 1 + horizon]
            y = math.sqrt(252.0 * float(np.mean(future))) if np.all(np.isfinite(future)) \
                else math.nan
        else:
            y = math.log(c[i + horizon] / c[i])
        preds.append(float(p))
        outcomes.append(y)
    n = len(preds)
    if n < window + reference + recent - 1:
        return LiveIc(None, n, f"{n} scored forecasts; the IC decay check needs "
                               f"{window + reference + recent - 1}")
    series = rolling_ic(np.array(preds), np.array(outcomes), window=window)
    return LiveIc(ic_decay(series, reference_window=reference, recent_window=recent,
                           min_ratio=min_ratio), n)
