-- The seed's smoothie-shop sales: the catalogue, purchases enriched with
-- their product (the seed's Flink join), restocking events, and running
-- totals per product (the seed's Kafka Streams / Flink RunningTotals jobs).

CREATE TABLE products (
    product_id        text         PRIMARY KEY,
    category          text         NOT NULL,
    item              text         NOT NULL,
    size              text         NOT NULL,
    cogs              numeric(8,2) NOT NULL,
    price             numeric(8,2) NOT NULL,
    inventory_level   integer      NOT NULL,
    contains_fruit    boolean      NOT NULL,
    contains_veggies  boolean      NOT NULL,
    contains_nuts     boolean      NOT NULL,
    contains_caffeine boolean      NOT NULL,
    updated_at        timestamptz  NOT NULL DEFAULT now()
);

-- One row per purchase (line item), with the seed's enriched fields.
CREATE TABLE purchases_enriched (
    id                bigserial     PRIMARY KEY,
    transaction_time  timestamptz   NOT NULL,
    transaction_id    text          NOT NULL,
    product_id        text          NOT NULL,
    product_category  text          NOT NULL,
    product_name      text          NOT NULL,
    product_size      text          NOT NULL,
    product_cogs      numeric(8,2)  NOT NULL,
    product_price     numeric(8,2)  NOT NULL,
    contains_fruit    boolean       NOT NULL,
    contains_veggies  boolean       NOT NULL,
    contains_nuts     boolean       NOT NULL,
    contains_caffeine boolean       NOT NULL,
    purchase_price    numeric(8,2)  NOT NULL,
    purchase_quantity integer       NOT NULL,
    is_member         boolean       NOT NULL,
    member_discount   numeric(4,2)  NOT NULL,
    add_supplements   boolean       NOT NULL,
    supplement_price  numeric(8,2)  NOT NULL,
    total_purchase    numeric(10,2) NOT NULL,
    ingested_at       timestamptz,
    created           timestamptz   NOT NULL DEFAULT now()
);

CREATE INDEX purchases_enriched_time_brin ON purchases_enriched USING brin (transaction_time);

CREATE TABLE inventories (
    id             bigserial   PRIMARY KEY,
    event_time     timestamptz NOT NULL,
    product_id     text        NOT NULL,
    existing_level integer     NOT NULL,
    stock_quantity integer     NOT NULL,
    new_level      integer     NOT NULL,
    created        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE running_totals (
    product_id   text          PRIMARY KEY,
    transactions bigint        NOT NULL,
    quantities   bigint        NOT NULL,
    sales        numeric(14,2) NOT NULL,
    -- Transaction time of the newest purchase counted.
    event_time   timestamptz   NOT NULL,
    updated_at   timestamptz   NOT NULL DEFAULT now()
);
