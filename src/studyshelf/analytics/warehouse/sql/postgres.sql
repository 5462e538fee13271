-- The raw events, partitioned by month (partitions are created on demand by the backend).
-- {schema} is replaced by the configured schema name. Time is timestamptz; sessions run in UTC.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.events (
    id uuid NOT NULL,
    ts timestamptz NOT NULL,
    type text NOT NULL,
    owner_org uuid,
    partner_org uuid,
    file_id uuid,
    version_id uuid,
    folder_id uuid,
    folder_path uuid[] NOT NULL,
    category text NOT NULL,
    extension text NOT NULL,
    country text NOT NULL,
    browser text NOT NULL,
    browser_major text NOT NULL,
    os text NOT NULL,
    device text NOT NULL,
    referrer_host text NOT NULL,
    lms text NOT NULL,
    link_id text,
    course text NOT NULL,
    resource_link text NOT NULL,
    viewer text NOT NULL,
    session text NOT NULL,
    bytes bigint NOT NULL,
    load_ms integer,
    error_class text NOT NULL,
    reason text NOT NULL,
    bot boolean NOT NULL,
    PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
-- The summary API always filters by time and by the owner or the partner organisation.
CREATE INDEX IF NOT EXISTS events_owner_ts ON {schema}.events (owner_org, ts);
CREATE INDEX IF NOT EXISTS events_partner_ts ON {schema}.events (partner_org, ts);
CREATE INDEX IF NOT EXISTS events_file_ts ON {schema}.events (file_id, ts);
-- A folder filter matches the folder anywhere in the event's ancestor path.
CREATE INDEX IF NOT EXISTS events_folder_path ON {schema}.events USING gin (folder_path);
