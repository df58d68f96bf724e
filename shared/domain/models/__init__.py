"""Forecasting models (pure domain): volatility in :mod:`.vol`.

No I/O, no clock, no environment; heavy libraries (statsmodels, arch) are imported lazily
by the functions that use them.
"""

from shared.domain.models.vol import (
    HAR_WINDOWS,
    TRADING_DAYS,
    GarchFit,
    GarchKind,
    GarchParams,
    HarCoefficients,
    HarFeatures,
    HarFit,
    HarModel,
    ModelScore,
    RealizedSeries,
    WalkForwardReport,
    annualised_vol,
    fit_garch,
    forecast_garch_variance,
    garman_klass_variance,
    har_features,
    har_target,
    parkinson_variance,
    realized_variance_from_bars,
    score_forecasts,
    walk_forward,
)

__all__ = [
    "HAR_WINDOWS",
    "TRADING_DAYS",
    "GarchFit",
    "GarchKind",
    "GarchParams",
    "HarCoefficients",
    "HarFeatures",
    "HarFit",
    "HarModel",
    "ModelScore",
    "RealizedSeries",
    "WalkForwardReport",
    "annualised_vol",
    "fit_garch",
    "forecast_garch_variance",
    "garman_klass_variance",
    "har_features",
    "har_target",
    "parkinson_variance",
    "realized_variance_from_bars",
    "score_forecasts",
    "walk_forward",
]
