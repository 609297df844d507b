-- Records that could not be used: kept with their source position and the
-- reason, so nothing is silently dropped and a fix can replay them.
CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    source      text        NOT NULL,
    position    text,
    payload     bytea       NOT NULL,
    reason      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dead_letters_received_at_idx ON dead_letters (received_at);
