-- The latest reading (epoch seconds) per sensor and minute, so that charts
-- showing when a sensor last reported can read the per-minute statistics
-- too. Filled from the readings still stored: where retention already
-- removed a minute's readings it stays NULL, as no reading shows it either.
ALTER TABLE sensor_stats_minutely ADD COLUMN ts_max bigint;

UPDATE sensor_stats_minutely s
   SET ts_max = r.ts_max
  FROM (SELECT guid, ts - ts % 60 AS minute, max(ts) AS ts_max
          FROM message GROUP BY 1, 2) r
 WHERE s.guid = r.guid
   AND s.bucket_start = to_timestamp(r.minute);
