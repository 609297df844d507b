-- The four sensor views, with the source warehouse's columns in its order.
-- The joins differ from the source's on purpose:
--
-- * The source joined message on sensors.message_guid. That column is the
--   sensor's guid, copied onto every fact row: five rows per sensor here,
--   one per service event. Only the INSTALLED filter kept each message from
--   counting five times, and a sensor installed twice (moved, replaced)
--   would still count every message twice and show it under both
--   locations. Here each active sensor contributes one row, its latest
--   installation (sensor_installations), and messages match sensor.guid.
-- * Counts and averages are taken per sensor over its messages (lateral
--   subqueries on the (guid, ts) index), so they count messages, not rows
--   of a join. As in the source, sensors without messages are left out.
-- * The source's join to manufacturer selected nothing and only required
--   the row to exist, which the foreign key now guarantees; it is dropped.

-- One row per active sensor: its most recent INSTALLED event and where.
CREATE VIEW sensor_installations AS
SELECT DISTINCT ON (s.id)
       s.id                     AS sensor_id,
       s.guid,
       s.sku,
       s.mac,
       l.lat,
       l.long,
       l.description            AS location,
       to_timestamp(h.serviced) AS installed
  FROM sensors f
  JOIN sensor s   ON s.id = f.sensor_id
  JOIN history h  ON h.id = f.history_id
  JOIN location l ON l.id = f.location_id
 WHERE s.active
   AND h.action = 'INSTALLED'
 ORDER BY s.id, h.serviced DESC, h.id DESC;

-- One row per message. `redshift` keeps the source's name for the time the
-- row was stored (message.created). No ORDER BY (the source sorted by fact
-- id, which says nothing within a sensor): callers filter, order and limit.
CREATE VIEW sensor_msg_detail AS
SELECT to_timestamp(e.ts) AS recorded,
       e.temp,
       i.guid,
       i.sku,
       i.mac,
       i.lat,
       i.long,
       i.location,
       i.installed,
       e.created          AS redshift
  FROM sensor_installations i
  JOIN message e ON e.guid = i.guid;

CREATE VIEW sensor_msg_count AS
SELECT e.msg_count,
       i.guid,
       i.lat,
       i.long,
       i.location
  FROM sensor_installations i
 CROSS JOIN LATERAL (
       SELECT count(*) AS msg_count
         FROM message m
        WHERE m.guid = i.guid
       ) e
 WHERE e.msg_count > 0
 ORDER BY e.msg_count, i.guid;

CREATE VIEW sensor_avg_temp AS
SELECT e.avg_temp,
       e.msg_count,
       i.guid,
       i.lat,
       i.long,
       i.location
  FROM sensor_installations i
 CROSS JOIN LATERAL (
       SELECT round(avg(m.temp), 2) AS avg_temp,
              count(*)              AS msg_count
         FROM message m
        WHERE m.guid = i.guid
       ) e
 WHERE e.msg_count > 0
 ORDER BY e.avg_temp, i.guid;

-- As sensor_avg_temp, over the last 30 minutes. The window is
-- to_timestamp(ts) >= now() - interval '30 minutes' written on the bare
-- column so the (guid, ts) index bounds the scan; ceil keeps the boundary
-- exact for whole-second ts.
CREATE VIEW sensor_avg_temp_current AS
SELECT e.avg_temp,
       e.msg_count,
       i.guid,
       i.lat,
       i.long,
       i.location
  FROM sensor_installations i
 CROSS JOIN LATERAL (
       SELECT round(avg(m.temp), 2) AS avg_temp,
              count(*)              AS msg_count
         FROM message m
        WHERE m.guid = i.guid
          AND m.ts >= ceil(extract(epoch FROM now() - interval '30 minutes'))::bigint
       ) e
 WHERE e.msg_count > 0
 ORDER BY e.avg_temp, i.guid;
