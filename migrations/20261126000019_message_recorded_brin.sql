-- Charts over sensor_msg_detail and sensor_latency filter on `recorded`,
-- which those views define as to_timestamp(ts). The planner cannot turn such
-- a filter into a range of ts, so the BRIN index on ts is no help to them,
-- and a "last 5 minutes" chart read every row. Rows arrive roughly in event
-- time order, so a BRIN index on the expression itself stays a few dozen KB
-- and narrows that read to the newest block ranges. Block ranges not yet
-- summarized are read whatever the filter, so each range is summarized as
-- soon as it fills (autosummarize), not at the next vacuum.
CREATE INDEX message_recorded_brin ON message USING brin (to_timestamp(ts))
    WITH (autosummarize = on);
