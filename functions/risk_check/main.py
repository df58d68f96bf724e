"""Cloud Function risk_check: decision.proposed -> kill switches, seven walls, verdict."""

from datetime import timedelta

from shared.contracts import DecisionProposedV1
from shared.runtime import FunctionApp
from shared.services.risk_check import RiskCheckService

app = FunctionApp("risk_check", max_age=timedelta(minutes=2))
app.on_event(DecisionProposedV1, RiskCheckService.from_runtime)
entry = app.target()
