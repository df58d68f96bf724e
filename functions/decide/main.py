"""Cloud Function decide: chain.snapshot -> sized, explained proposals per tenant;
POST /decision (a tenant's current decision, decided on demand when it has none yet)."""

from datetime import timedelta

from shared.contracts import ChainSnapshotV1
from shared.runtime import FunctionApp
from shared.services.decide import CurrentDecisionRequest, CurrentDecisionService, DecideService

app = FunctionApp("decide", max_age=timedelta(minutes=2))
app.on_event(ChainSnapshotV1, DecideService.from_runtime)
app.on_http("/decision", CurrentDecisionRequest, CurrentDecisionService.from_runtime)
entry = app.target()
