-- Accounts (see app/src/accounts): who may read, change and administer.
-- Passwords are stored only as argon2id hashes (PHC strings). A session is
-- known by the SHA-256 of its cookie's random token, so reading this table
-- does not let anyone sign in.

CREATE TABLE users (
    id            bigserial   PRIMARY KEY,
    username      text        NOT NULL UNIQUE,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_sha256 bytea       PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- A public dashboard can be read without signing in (set by an admin).
ALTER TABLE dashboards ADD COLUMN public boolean NOT NULL DEFAULT false;
