-- IoT temperature sensors as a star schema: streaming readings in `message`,
-- the location, history, sensor and manufacturer dimensions, and the
-- `sensors` fact table. Table and column names follow the source warehouse
-- (hence singular names, and `long`) so its views read the same here.

-- One row per reading. No foreign key to sensor: a reading from a sensor
-- not registered yet must be stored, not fail the batch it came in.
CREATE TABLE message (
    id      bigserial     PRIMARY KEY,
    guid    varchar(36)   NOT NULL,                -- the sensor's guid
    ts      bigint        NOT NULL,                -- when read, epoch seconds
    temp    numeric(5, 2) NOT NULL,
    created timestamptz   NOT NULL DEFAULT now()   -- when stored
);

-- Per-sensor time series and per-sensor aggregates, as index-only scans.
CREATE INDEX message_guid_ts_idx ON message (guid, ts) INCLUDE (temp);
-- Time windows across all sensors. Rows arrive roughly in ts order, which
-- keeps a BRIN index tiny and selective.
CREATE INDEX message_ts_brin_idx ON message USING brin (ts);

CREATE TABLE location (
    id          integer        PRIMARY KEY,
    long        numeric(10, 7) NOT NULL CHECK (long BETWEEN -180 AND 180),
    lat         numeric(10, 7) NOT NULL CHECK (lat BETWEEN -90 AND 90),
    description varchar(256)
);

-- Service events. `action` stays free text: the sample data uses
-- RE-CALIBRATED, missing from the source's documented list (INSTALLED,
-- CALIBRATED, FIRMWARE UPGRADED, DECOMMISSIONED, OTHER).
CREATE TABLE history (
    id            integer     PRIMARY KEY,
    serviced      bigint      NOT NULL,            -- epoch seconds
    action        varchar(20) NOT NULL,
    technician_id integer     NOT NULL,
    notes         varchar(256)
);

CREATE TABLE sensor (
    id     integer     PRIMARY KEY,
    guid   varchar(36) NOT NULL UNIQUE,
    mac    varchar(18) NOT NULL,
    sku    varchar(18) NOT NULL,
    upc    varchar(12) NOT NULL,
    active boolean     NOT NULL DEFAULT true,
    notes  varchar(256),
    UNIQUE (id, guid)                              -- target of sensors' composite key
);

CREATE TABLE manufacturer (
    id      integer      PRIMARY KEY,
    name    varchar(100) NOT NULL,
    website varchar(100) NOT NULL,
    notes   varchar(256)
);

-- One row per sensor and service event. message_guid repeats the sensor's
-- guid (it is what messages carry); the composite key keeps the copy equal
-- to sensor.guid of sensor_id.
CREATE TABLE sensors (
    id              bigserial   PRIMARY KEY,
    sensor_id       integer     NOT NULL,
    manufacturer_id integer     NOT NULL REFERENCES manufacturer (id),
    location_id     integer     NOT NULL REFERENCES location (id),
    history_id      integer     NOT NULL REFERENCES history (id),
    message_guid    varchar(36) NOT NULL,
    FOREIGN KEY (sensor_id, message_guid) REFERENCES sensor (id, guid) ON UPDATE CASCADE
);

CREATE INDEX sensors_sensor_id_idx ON sensors (sensor_id);
CREATE INDEX sensors_manufacturer_id_idx ON sensors (manufacturer_id);
CREATE INDEX sensors_location_id_idx ON sensors (location_id);
CREATE INDEX sensors_history_id_idx ON sensors (history_id);
