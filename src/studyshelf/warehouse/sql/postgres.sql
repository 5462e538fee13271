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
    rendition text NOT NULL DEFAULT '',
    captions text NOT NULL DEFAULT '',
    watch_ms integer,
    reached_pct smallint,
    PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);
-- The key leads with ts: it is the dedup key (the event id; ts because a partition key must be in it) and
-- the index that bounds a short range such as today's live figures (as (id, ts), the planner walked the
-- whole index of the month for them: 7 ms for an empty day, growing with the month). Warehouses made with
-- (id, ts) are changed once, here.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conrelid = '{schema}.events'::regclass AND contype = 'p'
          AND pg_get_constraintdef(oid) = 'PRIMARY KEY (id, ts)'
    ) THEN
        ALTER TABLE {schema}.events DROP CONSTRAINT events_pkey;
        ALTER TABLE {schema}.events ADD PRIMARY KEY (ts, id);
    END IF;
END $$;
-- Playback columns (issue 19): a warehouse made before them gains them here, at the end, in COLUMNS order
-- (a constant default: no rewrite of the stored rows).
ALTER TABLE {schema}.events ADD COLUMN IF NOT EXISTS rendition text NOT NULL DEFAULT '';
ALTER TABLE {schema}.events ADD COLUMN IF NOT EXISTS captions text NOT NULL DEFAULT '';
ALTER TABLE {schema}.events ADD COLUMN IF NOT EXISTS watch_ms integer;
ALTER TABLE {schema}.events ADD COLUMN IF NOT EXISTS reached_pct smallint;
-- Every query reads a time range: a BRIN index on ts keeps it to the blocks of that range (events arrive in
-- time order), at almost no cost per insert. Dashboards read the rollups of the application database; raw
-- scans here are the rollup job's days, today's live figures and drill-downs to one file or folder.
-- (Btrees on (owner_org, ts) and (partner_org, ts) cost ~20% of the insert rate and are gone.)
DROP INDEX IF EXISTS {schema}.events_owner_ts;
DROP INDEX IF EXISTS {schema}.events_partner_ts;
CREATE INDEX IF NOT EXISTS events_ts_brin ON {schema}.events USING brin (ts);
CREATE INDEX IF NOT EXISTS events_file_ts ON {schema}.events (file_id, ts);
-- A folder filter matches the folder anywhere in the event's ancestor path.
CREATE INDEX IF NOT EXISTS events_folder_path ON {schema}.events USING gin (folder_path);
