-- Latency counts kept per batch and minute of event time instead of per
-- minute and exact latency. A batch catching up on a backlog spans an hour
-- or more of event time, and added a row for each of its event seconds:
-- 3,333 rows for 20,000 readings of six sensors, updated one by one. Now a
-- batch adds a row per minute: its stored instant, and the seconds of that
-- minute that have readings with their counts. Each reading's latency is
-- still exact: the stored instant minus its event second.
CREATE TABLE sensor_latency_batches (
    bucket_start timestamptz NOT NULL,
    stored_at_us bigint      NOT NULL,
    seconds      smallint[]  NOT NULL,
    counts       bigint[]    NOT NULL,
    CHECK (cardinality(seconds) = cardinality(counts))
);

-- Charts and retention select by minute.
CREATE INDEX sensor_latency_batches_minute ON sensor_latency_batches (bucket_start);

-- A stored count's latency, measured from its minute's first second.
INSERT INTO sensor_latency_batches (bucket_start, stored_at_us, seconds, counts)
SELECT bucket_start,
       (extract(epoch FROM bucket_start))::int8 * 1000000 + latency_us,
       ARRAY[0::smallint],
       ARRAY[msg_count]
  FROM sensor_latency_minutely;

DROP TABLE sensor_latency_minutely;
