"""The session report: what a replayed session did, as data (:mod:`.model`) and as one
self-contained HTML page (:mod:`.html`)."""
