"""Cloud Function news_ingest: feeds and the event calendar, publish news.event."""

from datetime import timedelta

from shared.runtime import FunctionApp
from shared.services.pending import pending_schedule_service

app = FunctionApp("news_ingest", max_age=timedelta(minutes=10))
app.on_schedule(pending_schedule_service("news_ingest", issue=7))
entry = app.target()
