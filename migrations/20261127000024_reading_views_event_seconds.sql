-- The readings' event time as stored, in whole epoch seconds, on the two
-- views charts read summaries beside. A chart reads readings only for the
-- partial steps at the edges of its range, and a filter on `ts` reaches the
-- (guid, ts) index, where one on `recorded` (to_timestamp(ts)) can only use
-- the BRIN index, which reads every block range not yet summarized: right
-- after a burst of ingest, every new reading. Not a chart column: datasets
-- list the columns users see.
CREATE OR REPLACE VIEW sensor_msg_detail AS
SELECT to_timestamp(e.ts) AS recorded,
       e.temp,
       i.guid,
       i.sku,
       i.mac,
       i.lat,
       i.long,
       i.location,
       i.installed,
       e.created          AS redshift,
       e.ts
  FROM sensor_installations i
  JOIN message e ON e.guid = i.guid;

CREATE OR REPLACE VIEW sensor_latency AS
SELECT to_timestamp(ts)                                   AS recorded,
       guid,
       ((extract(epoch FROM created) - ts) * 1000)::float8 AS latency_ms,
       ts
  FROM message;
