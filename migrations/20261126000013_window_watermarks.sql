-- Where each event-time window of a stream of one's own stands: the watermark
-- (epoch milliseconds) its last flush reached. Kept in the flush's transaction,
-- so windows closed before a restart, or by another instance, stay closed.

CREATE TABLE window_watermarks (
    stream       text   NOT NULL,
    window_name  text   NOT NULL,
    -- NULL until the window has seen an event.
    watermark_ms bigint,
    PRIMARY KEY (stream, window_name)
);
