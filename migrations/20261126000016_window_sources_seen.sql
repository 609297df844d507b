-- When each partition last delivered (epoch milliseconds, processing time):
-- a partition silent for a while stops holding the watermark back, also for
-- an instance that resumes its clock after a restart or a rebalance.
ALTER TABLE window_sources ADD COLUMN seen_ms bigint NOT NULL DEFAULT 0;
