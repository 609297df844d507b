-- Each sales flush marks the windows the watermark has passed as final;
-- this finds the few not final yet without reading the rest.
CREATE INDEX sales_windows_open ON sales_windows (window_end) WHERE NOT is_final;
