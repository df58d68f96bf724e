-- 0010: news_ingest (issue #7). Market-wide data, not tenant data: no tenant column, no
-- row-level security (like chain_snapshots).
--
-- news_feeds        per configured feed: the conditional-GET validators and the last poll;
-- news_stories      one per story, however many outlets carry it: the classification of
--                   its first item (type, symbols, sectors, sentiment, impact, the rules
--                   that fired and the rule set's version) and how many sources it has;
-- news_items        every item seen, once (item_key: the normalised link, else the feed
--                   and guid), pointing at its story;
-- news_events       what the news gate reads: stories at or above the impact threshold and
--                   the scheduled calendar (RBI policy, budgets, FOMC, US CPI, expiry days),
--                   each with its action and window; the outbox of news.event;
-- news_feed_errors  every per-feed failure (append-only).

CREATE TABLE news_feeds (
    name           text PRIMARY KEY,
    url            text NOT NULL,
    etag           text,
    last_modified  text,
    last_polled_at timestamptz,
    last_status    text,
    last_error     text
);

CREATE TABLE news_stories (
    story_id      text PRIMARY KEY,
    fingerprint   bigint NOT NULL,
    title         text NOT NULL,
    published_at  timestamptz,
    first_seen_at timestamptz NOT NULL,
    event_type    text NOT NULL,
    symbols       text[] NOT NULL,
    sectors       text[] NOT NULL,
    sentiment     double precision NOT NULL CHECK (sentiment BETWEEN -1 AND 1),
    impact        double precision NOT NULL CHECK (impact BETWEEN 0 AND 1),
    why           jsonb NOT NULL,
    ruleset       text NOT NULL,
    sources       integer NOT NULL DEFAULT 1 CHECK (sources >= 1)
);
CREATE INDEX news_stories_seen ON news_stories (first_seen_at);

CREATE TABLE news_items (
    item_key       text PRIMARY KEY,
    story_id       text NOT NULL REFERENCES news_stories (story_id),
    feed           text NOT NULL,
    guid           text,
    title          text NOT NULL,
    link           text,
    normalized_url text,
    published_at   timestamptz,
    fetched_at     timestamptz NOT NULL
);
CREATE INDEX news_items_story ON news_items (story_id);

CREATE TABLE news_events (
    event_id       uuid PRIMARY KEY,
    dedup_key      text NOT NULL UNIQUE,
    kind           text NOT NULL CHECK (kind IN ('news', 'scheduled')),
    event_type     text NOT NULL,
    title          text NOT NULL,
    occurs_at      timestamptz NOT NULL,
    symbols        text[] NOT NULL DEFAULT '{}',
    impact         double precision NOT NULL CHECK (impact BETWEEN 0 AND 1),
    action         text NOT NULL CHECK (action IN ('proceed', 'reduce_25', 'reduce_50', 'blackout')),
    window_minutes integer NOT NULL CHECK (window_minutes >= 0),
    source         text NOT NULL,
    why            jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX news_events_time ON news_events (occurs_at);
CREATE INDEX news_events_unpublished ON news_events (created_at) WHERE published_at IS NULL;

CREATE TABLE news_feed_errors (
    error_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed         text NOT NULL,
    reason_code  text NOT NULL,
    reason       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL
);
CREATE TRIGGER news_feed_errors_append_only BEFORE UPDATE OR DELETE ON news_feed_errors
    FOR EACH ROW EXECUTE FUNCTION forbid_changes();

GRANT SELECT, INSERT ON news_feeds, news_stories, news_items, news_events, news_feed_errors
    TO qs_app;
GRANT UPDATE (url, etag, last_modified, last_polled_at, last_status, last_error) ON news_feeds
    TO qs_app;
GRANT UPDATE (sources) ON news_stories TO qs_app;
GRANT UPDATE (published_at) ON news_events TO qs_app;
