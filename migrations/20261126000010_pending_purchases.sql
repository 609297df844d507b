-- Purchases read from Kafka whose product is not known yet. They wait here,
-- written in the same transaction as the offsets that consumed them, until
-- the product arrives or the join's wait runs out (then they become dead
-- letters). A flush takes one by deleting it, so two instances never both do.
CREATE TABLE pending_purchases (
    id            bigserial   PRIMARY KEY,
    product_id    text        NOT NULL,
    payload       bytea       NOT NULL,
    position      text,
    received_at   timestamptz NOT NULL,
    waiting_since timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX pending_purchases_product ON pending_purchases (product_id);
