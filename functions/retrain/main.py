"""Cloud Function retrain: scheduled retraining and the governed model registry."""

from datetime import timedelta

from shared.runtime import FunctionApp
from shared.services.pending import pending_schedule_service

app = FunctionApp("retrain", max_age=timedelta(hours=6))
app.on_schedule(pending_schedule_service("retrain", issue=5))
entry = app.target()
