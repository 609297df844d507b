-- How far each Kafka partition feeding a window has got in event time (epoch
-- milliseconds), kept in the flush's transaction. An instance that is
-- assigned a partition, after a restart or a rebalance, resumes its clock
-- from here, so the watermark (trailing the slowest partition) does not start
-- over, and windows it had closed stay closed.

CREATE TABLE window_sources (
    stream       text   NOT NULL,
    window_name  text   NOT NULL,
    source       text   NOT NULL,
    max_event_ms bigint NOT NULL,
    PRIMARY KEY (stream, window_name, source)
);
