-- The all-time median counts readings per tenth of a degree rather than per
-- hundredth: a batch then updates at most a few thousand histogram rows
-- instead of nearly one per reading. The median is the tenth holding the
-- lower middle reading, round(percentile_disc(0.5), 1): within 0.05 °C.
CREATE TEMP TABLE folded_histogram AS
SELECT guid, round(temp, 1) AS temp, sum(msg_count)::bigint AS msg_count
  FROM sensor_temp_histogram
 GROUP BY guid, round(temp, 1);

TRUNCATE sensor_temp_histogram;

INSERT INTO sensor_temp_histogram (guid, temp, msg_count)
SELECT guid, temp, msg_count FROM folded_histogram;

DROP TABLE folded_histogram;

COMMENT ON TABLE sensor_temp_histogram IS
    'Readings per sensor and tenth of a degree (temp = round(reading, 1)), for all-time medians within 0.05 °C';
