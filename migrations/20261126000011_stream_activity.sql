-- What the Streams page shows for every stream, kept cheaply.

-- Records stored per stream and minute of stored time, with the newest event
-- time among them. Each flush adds to its stream's current minute in the same
-- transaction as the records, so rates never need a scan of the raw tables
-- (and aggregates-only streams, which keep no raw rows, have them too).
CREATE TABLE stream_activity (
    stream       text        NOT NULL,
    minute       timestamptz NOT NULL,
    records      bigint      NOT NULL,
    newest_event timestamptz,
    PRIMARY KEY (stream, minute)
);

-- The stream a dead letter was meant for, when known (a request for an
-- unknown stream has none).
ALTER TABLE dead_letters ADD COLUMN stream text;
CREATE INDEX dead_letters_stream_idx ON dead_letters (stream);
