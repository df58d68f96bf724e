"""Cloud Function chain_poll: fetch and analyse the option chain, publish chain.snapshot."""

from datetime import timedelta

from shared.runtime import FunctionApp
from shared.services.chain_poll import ChainPollService

app = FunctionApp("chain_poll", max_age=timedelta(seconds=90))
app.on_schedule(ChainPollService.from_runtime)
entry = app.target()
