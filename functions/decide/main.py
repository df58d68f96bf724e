"""Cloud Function decide: chain.snapshot -> sized, explained proposals per tenant."""

from datetime import timedelta

from shared.contracts import ChainSnapshotV1
from shared.runtime import FunctionApp
from shared.services.pending import pending_event_service

app = FunctionApp("decide", max_age=timedelta(minutes=2))
app.on_event(ChainSnapshotV1, pending_event_service("decide", issue=6))
entry = app.target()
