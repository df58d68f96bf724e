"""Cloud Function chain_poll: fetch and analyse the option chain, publish chain.snapshot."""

from datetime import timedelta

from shared.runtime import FunctionApp
from shared.services.pending import pending_schedule_service

app = FunctionApp("chain_poll", max_age=timedelta(seconds=90))
app.on_schedule(pending_schedule_service("chain_poll", issue=3))
entry = app.target()
