-- The all-time median's value counts were upserted in every batch, a row per
-- sensor and tenth of a degree: a few hundred readings updated nearly a row
-- each (about 7 µs a row), and concurrent batches waited on each other's
-- locks on those rows until commit. A batch now inserts its counts as one
-- row per sensor, and a background task folds them into
-- sensor_temp_histogram about once a second. Medians read both, so they are
-- exact after every commit, folded or not.
CREATE TABLE sensor_temp_counts_pending (
    guid   varchar(36) NOT NULL,
    tenths int4[]      NOT NULL, -- round(temp, 1) * 10
    counts int8[]      NOT NULL,
    CHECK (cardinality(tenths) = cardinality(counts))
) WITH (vacuum_truncate = false); -- a truncating vacuum would block inserts

COMMENT ON TABLE sensor_temp_counts_pending IS
    'Value counts of committed batches not yet folded into sensor_temp_histogram, a row per batch and sensor';

-- Every value count per sensor and tenth of a degree, folded or not; a
-- tenth can appear more than once.
CREATE VIEW sensor_temp_counts AS
SELECT guid, temp, msg_count
  FROM sensor_temp_histogram
 UNION ALL
SELECT p.guid, (c.tenth / 10.0)::numeric(5, 2), c.n
  FROM sensor_temp_counts_pending p, unnest(p.tenths, p.counts) AS c(tenth, n);

CREATE OR REPLACE VIEW sensor_stats AS
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
         FROM (SELECT t.temp, sum(sum(t.msg_count)) OVER (ORDER BY t.temp) AS cumulative
                 FROM sensor_temp_counts t
                WHERE t.guid = s.guid
                GROUP BY t.temp) c
        WHERE c.cumulative * 2 >= s.msg_count
        ORDER BY c.temp
        LIMIT 1
       ) m;
