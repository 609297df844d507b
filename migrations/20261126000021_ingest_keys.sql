-- Keys for the ingest APIs (see app/src/accounts/keys.rs): an AWS-style
-- access key id and secret. The Firehose API checks Signature Version 4
-- signatures, which needs the secret itself on the server, as AWS keeps it;
-- the NDJSON API takes `Authorization: Bearer <id>:<secret>`. A revoked key
-- stays listed, so its id is never given out again.

CREATE TABLE ingest_keys (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL,
    access_key_id text        NOT NULL UNIQUE,
    secret        text        NOT NULL,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
