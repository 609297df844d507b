-- Dashboards (see app/src/dashboard/definition.rs): a grid of charts and
-- text in tabs, with a time range and refresh interval. `source_hash` is set
-- for dashboards loaded from files, so an unchanged file is not loaded again
-- over edits made in the browser.

CREATE TABLE dashboards (
    id          bigserial   PRIMARY KEY,
    slug        text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    definition  jsonb       NOT NULL,
    source_hash text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- End-to-end latency of every stored sensor reading: stored time minus
-- event time. Event times are whole seconds, so each value is up to one
-- second high.
CREATE VIEW sensor_latency AS
SELECT to_timestamp(ts)                                   AS recorded,
       guid,
       ((extract(epoch FROM created) - ts) * 1000)::float8 AS latency_ms
  FROM message;
