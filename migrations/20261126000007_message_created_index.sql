-- The streams page reads recent activity by stored time (rate, last event).
CREATE INDEX message_created_idx ON message (created);
