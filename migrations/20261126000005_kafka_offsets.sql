-- Where each consumer group has got to in each partition: the next offset to
-- store. Written in the same transaction as the rows those offsets cover, so
-- after any crash Postgres says exactly what is stored; Kafka's own committed
-- offsets are only a copy for lag tooling.
CREATE TABLE kafka_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
