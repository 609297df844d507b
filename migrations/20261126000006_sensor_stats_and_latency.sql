-- Per-sensor statistics and end-to-end latency, maintained with every batch
-- in the same transaction as the raw rows, so they never disagree with them.

-- When Pulseboard received each reading (NULL for rows written before this).
-- With ts (event time) and created (stored time) every row carries all three.
ALTER TABLE message ADD COLUMN ingested_at timestamptz;

CREATE TABLE sensor_stats_minutely (
    guid         varchar(36)  NOT NULL,
    bucket_start timestamptz  NOT NULL,
    msg_count    bigint       NOT NULL,
    temp_sum     numeric      NOT NULL,
    temp_min     numeric(5,2) NOT NULL,
    temp_max     numeric(5,2) NOT NULL,
    PRIMARY KEY (guid, bucket_start)
);

-- How often each temperature was read, per sensor: exact all-time medians
-- from a table whose size is bounded by the distinct values, not the rows.
CREATE TABLE sensor_temp_histogram (
    guid      varchar(36)  NOT NULL,
    temp      numeric(5,2) NOT NULL,
    msg_count bigint       NOT NULL,
    PRIMARY KEY (guid, temp)
);

-- Stored time minus event time, per stream and key: exact count, sum, min, max...
CREATE TABLE latency_stats (
    stream    text   NOT NULL,
    key       text   NOT NULL,
    msg_count bigint NOT NULL,
    sum_ms    bigint NOT NULL,
    min_ms    bigint NOT NULL,
    max_ms    bigint NOT NULL,
    PRIMARY KEY (stream, key)
);

-- ...and bucket counts for percentiles. A bucket is named by its lower bound
-- and keeps three significant digits: exact below 1 s, within 1% above.
CREATE TABLE latency_histogram (
    stream    text   NOT NULL,
    key       text   NOT NULL,
    bucket_ms bigint NOT NULL,
    msg_count bigint NOT NULL,
    PRIMARY KEY (stream, key, bucket_ms)
);

-- All-time statistics per sensor. The median is the lower middle reading
-- (percentile_disc(0.5)), exact.
CREATE VIEW sensor_stats AS
SELECT s.guid,
       i.location,
       s.msg_count,
       round(s.temp_sum / s.msg_count, 2) AS avg_temp,
       s.temp_min                         AS min_temp,
       s.temp_max                         AS max_temp,
       m.median_temp
  FROM (SELECT guid,
               sum(msg_count) AS msg_count,
               sum(temp_sum)  AS temp_sum,
               min(temp_min)  AS temp_min,
               max(temp_max)  AS temp_max
          FROM sensor_stats_minutely
         GROUP BY guid) s
  LEFT JOIN sensor_installations i ON i.guid = s.guid
 CROSS JOIN LATERAL (
       SELECT c.temp AS median_temp
         FROM (SELECT h.temp, sum(h.msg_count) OVER (ORDER BY h.temp) AS cumulative
                 FROM sensor_temp_histogram h
                WHERE h.guid = s.guid) c
        WHERE c.cumulative * 2 >= s.msg_count
        ORDER BY c.temp
        LIMIT 1
       ) m;

-- Statistics per sensor and minute; the median is read from that minute's raw rows.
CREATE VIEW sensor_stats_per_minute AS
SELECT s.guid,
       s.bucket_start,
       s.msg_count,
       round(s.temp_sum / s.msg_count, 2) AS avg_temp,
       s.temp_min                         AS min_temp,
       s.temp_max                         AS max_temp,
       (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY m.temp)
          FROM message m
         WHERE m.guid = s.guid
           AND m.ts >= extract(epoch FROM s.bucket_start)::bigint
           AND m.ts <  extract(epoch FROM s.bucket_start)::bigint + 60) AS median_temp
  FROM sensor_stats_minutely s;

-- p50, p95 and p99 of a stream's latency, over one key or (key NULL) all of
-- them. A percentile is the lower bound of the first bucket whose cumulative
-- count reaches that share of the rows.
CREATE FUNCTION latency_percentiles(p_stream text, p_key text)
RETURNS TABLE (p50_ms bigint, p95_ms bigint, p99_ms bigint)
LANGUAGE sql STABLE AS $$
    SELECT min(bucket_ms) FILTER (WHERE cumulative * 100 >= total * 50),
           min(bucket_ms) FILTER (WHERE cumulative * 100 >= total * 95),
           min(bucket_ms) FILTER (WHERE cumulative * 100 >= total * 99)
      FROM (SELECT bucket_ms,
                   sum(n) OVER (ORDER BY bucket_ms) AS cumulative,
                   sum(n) OVER ()                   AS total
              FROM (SELECT bucket_ms, sum(msg_count) AS n
                      FROM latency_histogram
                     WHERE stream = p_stream AND (p_key IS NULL OR key = p_key)
                     GROUP BY bucket_ms) buckets) c
$$;

CREATE VIEW stream_key_latency AS
SELECT l.stream,
       l.key,
       l.msg_count,
       l.min_ms,
       round(l.sum_ms::numeric / l.msg_count, 1) AS avg_ms,
       -- A bucket's lower bound can sit below the exact minimum: keep within it.
       least(greatest(p.p50_ms, l.min_ms), l.max_ms) AS p50_ms,
       least(greatest(p.p95_ms, l.min_ms), l.max_ms) AS p95_ms,
       least(greatest(p.p99_ms, l.min_ms), l.max_ms) AS p99_ms,
       l.max_ms
  FROM latency_stats l
 CROSS JOIN LATERAL latency_percentiles(l.stream, l.key) p;

-- Latency per stream, over all its keys.
CREATE VIEW stream_latency AS
SELECT l.stream,
       l.msg_count,
       l.min_ms,
       round(l.sum_ms::numeric / l.msg_count, 1) AS avg_ms,
       -- A bucket's lower bound can sit below the exact minimum: keep within it.
       least(greatest(p.p50_ms, l.min_ms), l.max_ms) AS p50_ms,
       least(greatest(p.p95_ms, l.min_ms), l.max_ms) AS p95_ms,
       least(greatest(p.p99_ms, l.min_ms), l.max_ms) AS p99_ms,
       l.max_ms
  FROM (SELECT stream,
               sum(msg_count) AS msg_count,
               sum(sum_ms)    AS sum_ms,
               min(min_ms)    AS min_ms,
               max(max_ms)    AS max_ms
          FROM latency_stats
         GROUP BY stream) l
 CROSS JOIN LATERAL latency_percentiles(l.stream, NULL) p;
