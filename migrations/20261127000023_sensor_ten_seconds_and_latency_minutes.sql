-- Two finer summaries of the readings, kept with every batch like the
-- per-minute statistics, so that the sensors dashboard's 10-second line and
-- its latency histogram no longer read every reading of their range. Both
-- are finer copies of the readings rather than rollups to keep: retention
-- removes them with the readings.

-- Statistics per 10 seconds and sensor, as sensor_stats_minutely keeps per
-- minute. Keyed by time first: charts and retention select by time.
CREATE TABLE sensor_stats_10s (
    bucket_start timestamptz  NOT NULL,
    guid         varchar(36)  NOT NULL,
    msg_count    bigint       NOT NULL,
    temp_sum     numeric      NOT NULL,
    temp_min     numeric(5,2) NOT NULL,
    temp_max     numeric(5,2) NOT NULL,
    ts_max       bigint       NOT NULL,
    PRIMARY KEY (bucket_start, guid)
);

INSERT INTO sensor_stats_10s (bucket_start, guid, msg_count, temp_sum, temp_min, temp_max, ts_max)
SELECT to_timestamp(floor(ts / 10.0) * 10), guid, count(*), sum(temp), min(temp), max(temp), max(ts)
  FROM message
 GROUP BY 1, 2;

-- How many readings of each minute of event time had each exact latency
-- (stored time minus event time, in microseconds). A batch is stored at one
-- instant and its event times are whole seconds, so a batch adds a handful
-- of rows however many readings it holds.
CREATE TABLE sensor_latency_minutely (
    bucket_start timestamptz NOT NULL,
    latency_us   bigint      NOT NULL,
    msg_count    bigint      NOT NULL,
    PRIMARY KEY (bucket_start, latency_us)
);

INSERT INTO sensor_latency_minutely (bucket_start, latency_us, msg_count)
SELECT to_timestamp(floor(ts / 60.0) * 60),
       (extract(epoch FROM created) * 1000000)::int8 - ts * 1000000,
       count(*)
  FROM message
 GROUP BY 1, 2;
