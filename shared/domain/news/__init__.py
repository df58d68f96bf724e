"""news_ingest's pure core: feed parsing, dedup, classification, the event calendar."""
