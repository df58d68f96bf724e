"""Backtest statistics (pure): per-trade Sharpe ratios, the Probabilistic Sharpe Ratio and
the Deflated Sharpe Ratio (:mod:`.sharpe`)."""

from shared.domain.backtest.sharpe import (
    EULER_GAMMA,
    DeflatedSharpe,
    ProbabilisticSharpe,
    SharpeEstimate,
    StrategySharpe,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    strategy_sharpes,
)

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
