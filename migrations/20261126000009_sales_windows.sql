-- Purchases, drinks and sales per product in event-time windows (10 minutes,
-- sliding every 5), and the events that came too late for any window.

CREATE TABLE sales_windows (
    window_start timestamptz   NOT NULL,
    window_end   timestamptz   NOT NULL,
    product_id   text          NOT NULL,
    transactions bigint        NOT NULL,
    quantities   bigint        NOT NULL,
    sales        numeric(14,2) NOT NULL,
    -- False while the watermark has not passed window_end: the row may still change.
    is_final     boolean       NOT NULL,
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, product_id)
);

CREATE TABLE late_events (
    id          bigserial   PRIMARY KEY,
    stream      text        NOT NULL,
    event_time  timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    reason      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The seed's Spark output: the ten best-selling products of each window.
CREATE VIEW sales_top_products AS
SELECT window_start, window_end, product_id, transactions, quantities, sales, is_final, rank
  FROM (SELECT w.*, rank() OVER (PARTITION BY window_start ORDER BY sales DESC, product_id) AS rank
          FROM sales_windows w) ranked
 WHERE rank <= 10;
