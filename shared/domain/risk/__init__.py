"""The risk castle (pure domain): twelve kill switches and seven walls over one proposal.

Inputs are frozen values (:mod:`.inputs`, :class:`.context.RiskContext`); the castle
(:class:`.castle.RiskCastle`) validates the proposal (:mod:`.validation`), runs the kill
switches (:mod:`.switches`) then the walls (:mod:`.walls`), stops at the first block and
returns an explainable :class:`.castle.CastleVerdict`. The margin estimate, stress and
payoff maths are in :mod:`.position`; the cost engine is reached through the
:class:`.ports.CostModel` port. No I/O, no clock, no environment.
"""

from shared.domain.risk.base import Gate, Wall
from shared.domain.risk.castle import CastleVerdict, RiskCastle
from shared.domain.risk.context import RiskContext
from shared.domain.risk.inputs import (
    CorrelationMatrix,
    LegQuote,
    MarketView,
    ModelFreshness,
    NewsItem,
    NewsState,
    Portfolio,
    Position,
    Scope,
    SwitchStates,
    TenantPolicy,
    TrippedSwitch,
)
from shared.domain.risk.ports import CostEstimate, CostModel
from shared.domain.risk.position import NakedShort, PositionMath, ScanParameters, position_math
from shared.domain.risk.switches import (
    CapitalFloorSwitch,
    CorrelationClusterSwitch,
    DailyLossSwitch,
    DryRunLock,
    ExchangeSwitch,
    KillSwitch,
    MarginUtilisationSwitch,
    MasterKill,
    ModelStalenessSwitch,
    SourceSwitch,
    StaleDataSwitch,
    StrategySwitch,
    SwitchTrip,
    SymbolSwitch,
    default_switches,
)
from shared.domain.risk.validation import (
    BadLots,
    InvalidProposal,
    LegNotInMarket,
    NonFiniteInput,
    NonFinitePrice,
    QuantityNotLotMultiple,
    StructureMismatch,
    SymbolMismatch,
    TenantMismatch,
    UnknownStructure,
    validate_proposal,
)
from shared.domain.risk.walls import (
    CorrelationWall,
    CostWall,
    MarginWall,
    NewsGate,
    PolicyLimits,
    RegimeWall,
    TailHedgeWall,
    default_walls,
)

__all__ = [
    "BadLots",
    "CapitalFloorSwitch",
    "CastleVerdict",
    "CorrelationClusterSwitch",
    "CorrelationMatrix",
    "CorrelationWall",
    "CostEstimate",
    "CostModel",
    "CostWall",
    "DailyLossSwitch",
    "DryRunLock",
    "ExchangeSwitch",
    "Gate",
    "InvalidProposal",
    "KillSwitch",
    "LegNotInMarket",
    "LegQuote",
    "MarginUtilisationSwitch",
    "MarginWall",
    "MarketView",
    "MasterKill",
    "ModelFreshness",
    "ModelStalenessSwitch",
    "NakedShort",
    "NewsGate",
    "NewsItem",
    "NewsState",
    "NonFiniteInput",
    "NonFinitePrice",
    "PolicyLimits",
    "Portfolio",
    "Position",
    "PositionMath",
    "QuantityNotLotMultiple",
    "RegimeWall",
    "RiskCastle",
    "RiskContext",
    "ScanParameters",
    "Scope",
    "SourceSwitch",
    "StaleDataSwitch",
    "StrategySwitch",
    "StructureMismatch",
    "SwitchStates",
    "SwitchTrip",
    "SymbolMismatch",
    "SymbolSwitch",
    "TailHedgeWall",
    "TenantMismatch",
    "TenantPolicy",
    "TrippedSwitch",
    "UnknownStructure",
    "Wall",
    "default_switches",
    "default_walls",
    "position_math",
    "validate_proposal",
]
