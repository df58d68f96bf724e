"""Cloud Function risk_check: decision.proposed -> kill switches, seven walls, verdict;
POST /check (a tenant's own trade idea) and POST /killswitch (operators)."""

from datetime import timedelta

from shared.contracts import DecisionProposedV1
from shared.runtime import FunctionApp
from shared.services.risk_api import (
    KillSwitchCommand,
    KillSwitchService,
    TradeCheckRequest,
    TradeCheckService,
)
from shared.services.risk_check import RiskCheckService

app = FunctionApp("risk_check", max_age=timedelta(minutes=2))
app.on_event(DecisionProposedV1, RiskCheckService.from_runtime)
app.on_http("/check", TradeCheckRequest, TradeCheckService.from_runtime)
app.on_http("/killswitch", KillSwitchCommand, KillSwitchService.from_runtime)
entry = app.target()
