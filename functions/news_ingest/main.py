"""Cloud Function news_ingest: feeds and the event calendar → stored, deduplicated,
classified news and scheduled events → news.event (scheduler-fired)."""

from datetime import timedelta

from shared.runtime import FunctionApp
from shared.services.news_ingest import NewsIngestService

app = FunctionApp("news_ingest", max_age=timedelta(minutes=10))
app.on_schedule(NewsIngestService.from_runtime)
entry = app.target()
