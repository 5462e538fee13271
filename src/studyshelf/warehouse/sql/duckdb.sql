-- The raw events, one row per Event (columns in the order of events/schema.py). Time is UTC.
CREATE TABLE IF NOT EXISTS events (
    id UUID NOT NULL,
    ts TIMESTAMP NOT NULL,
    type VARCHAR NOT NULL,
    owner_org UUID,
    partner_org UUID,
    file_id UUID,
    version_id UUID,
    folder_id UUID,
    folder_path UUID[] NOT NULL,
    category VARCHAR NOT NULL,
    extension VARCHAR NOT NULL,
    country VARCHAR NOT NULL,
    browser VARCHAR NOT NULL,
    browser_major VARCHAR NOT NULL,
    os VARCHAR NOT NULL,
    device VARCHAR NOT NULL,
    referrer_host VARCHAR NOT NULL,
    lms VARCHAR NOT NULL,
    link_id VARCHAR,
    course VARCHAR NOT NULL,
    resource_link VARCHAR NOT NULL,
    viewer VARCHAR NOT NULL,
    session VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    load_ms INTEGER,
    error_class VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    bot BOOLEAN NOT NULL,
    rendition VARCHAR DEFAULT '',
    captions VARCHAR DEFAULT '',
    watch_ms INTEGER,
    reached_pct SMALLINT
);
-- Playback columns (issue 19): a warehouse made before them gains them here, at the end, in COLUMNS order.
-- DuckDB adds no NOT NULL column; the insert writes '' for a line without them (duckdb.py, _STAGE).
ALTER TABLE events ADD COLUMN IF NOT EXISTS rendition VARCHAR DEFAULT '';
ALTER TABLE events ADD COLUMN IF NOT EXISTS captions VARCHAR DEFAULT '';
ALTER TABLE events ADD COLUMN IF NOT EXISTS watch_ms INTEGER;
ALTER TABLE events ADD COLUMN IF NOT EXISTS reached_pct SMALLINT;
