-- Saved chart definitions (see app/src/chart/definition.rs), and every
-- revision each one went through, so any earlier one can be restored.

CREATE TABLE charts (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL,
    definition jsonb       NOT NULL,
    revision   integer     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chart_revisions (
    chart_id   bigint      NOT NULL REFERENCES charts (id) ON DELETE CASCADE,
    revision   integer     NOT NULL,
    definition jsonb       NOT NULL,
    saved_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chart_id, revision)
);
