"""``qs replay``: market sessions played in process through chain_poll's analysis, decide,
the risk castle and a paper book, for fast backtests (:mod:`.runner`); the paper book with
the cost engine and the conservative ledger (:mod:`.book`); decide's market-wide state in
memory (:mod:`.market`); the optional in-process vol models and their warm-up
(:mod:`.models`); the session sources (:mod:`.sources`); the results, their JSON and the
session report (:mod:`.result`); the command (:mod:`.command`)."""

from shared.replay.config import (
    DEFAULT_DATE,
    DEFAULT_SEED,
    DEFAULT_SYMBOL,
    DemoTenant,
    ReplayConfig,
    ReplayInputError,
    demo_tenants,
)

__all__ = [
    "DEFAULT_DATE",
    "DEFAULT_SEED",
    "DEFAULT_SYMBOL",
    "DemoTenant",
    "ReplayConfig",
    "ReplayInputError",
    "demo_tenants",
]
