-- Sample rows of the IoT sensor demo: 6 locations, 1 manufacturer, 6
-- sensors, 30 service events and 30 facts (each sensor: installed,
-- calibrated, firmware upgraded, re-calibrated, upgraded again).
-- Empty notes become NULL. The rows are the seed demo's sample data
-- (kinesis-redshift-streaming-demo, MIT licence, (c) 2020 Gary A. Stafford).

INSERT INTO location (id, long, lat, description) VALUES
    (1, -122.4191599, 37.7068476, 'Research Lab #2203'),
    (2, -122.4190397, 37.7071763, 'Research Lab #2209'),
    (3, -122.4187016, 37.7072686, 'Zone 4 Wafer Processing Area B3'),
    (4, -122.4184393, 37.7070334, 'Zone 2 Semiconductor Assembly Area A2'),
    (5, -122.4181399, 37.7066541, 'Wafer Inspection Lab #0210A'),
    (6, -122.4186191, 37.7067618, 'Wafer Inspection Lab #0211C');

INSERT INTO manufacturer (id, name, website) VALUES
    (1, 'National Control Devices, LLC', 'https://ncd.io/');

INSERT INTO sensor (id, guid, mac, sku, upc, active) VALUES
    (1, '03e39872-e105-4be4-83c0-9ade818465dc', '8e:fa:46:09:14:b2', 'PR49-24A', '689860072244', true),
    (2, 'fa565921-fddd-4bfb-a7fd-d617f816df4b', 'f6:f0:5a:64:21:05', 'PR49-24A', '689860072244', true),
    (3, 'd120422d-5789-435d-9dc6-73d8489b04c2', '44:c2:ed:9b:c5:9a', 'PR55-27',  '689860070264', true),
    (4, '93238559-4d55-4b2a-bdcb-6aa3be0f3908', 'c0:fe:08:15:e2:70', 'PR55-27',  '689860070264', true),
    (5, 'dbc05806-6872-4f0a-aca2-f794cc39bd9b', 'c2:e4:60:29:73:48', 'PR55-19A', '689860070264', true),
    (6, 'f9ade639-f936-4954-aa5a-1f2ed86c9bcf', 'd6:3d:62:29:15:0a', 'PR49-24A', '689860072244', true);

-- The source numbers event 15 as a second 14 (and fact 15 then matches
-- nothing); with a primary key it has to be 15.
INSERT INTO history (id, serviced, action, technician_id, notes) VALUES
    ( 1, 1517454709, 'INSTALLED',         2341, NULL),
    ( 2, 1517454709, 'CALIBRATED',        2341, NULL),
    ( 3, 1517754901, 'FIRMWARE UPGRADED', 2341, 'Upgraded to v1.12'),
    ( 4, 1517454709, 'INSTALLED',         2341, NULL),
    ( 5, 1517454709, 'CALIBRATED',        2341, NULL),
    ( 6, 1517754901, 'FIRMWARE UPGRADED', 2341, 'Upgraded to v1.12'),
    ( 7, 1517454709, 'INSTALLED',         2341, NULL),
    ( 8, 1517454709, 'CALIBRATED',        2341, NULL),
    ( 9, 1517754901, 'FIRMWARE UPGRADED', 2341, 'Upgraded to v1.12'),
    (10, 1555329600, 'INSTALLED',         2341, NULL),
    (11, 1555329600, 'CALIBRATED',        2341, NULL),
    (12, 1555329600, 'FIRMWARE UPGRADED', 2341, 'Upgraded to v1.12'),
    (13, 1555329600, 'INSTALLED',         2341, NULL),
    (14, 1555329600, 'CALIBRATED',        2341, NULL),
    (15, 1555329600, 'FIRMWARE UPGRADED', 2341, 'Upgraded to v1.12'),
    (16, 1573300800, 'INSTALLED',         2341, NULL),
    (17, 1573300800, 'CALIBRATED',        2341, NULL),
    (18, 1573300800, 'FIRMWARE UPGRADED', 2341, 'Upgraded to v1.12'),
    (19, 1578139200, 'RE-CALIBRATED',     1983, NULL),
    (20, 1578139200, 'RE-CALIBRATED',     1983, NULL),
    (21, 1578139200, 'RE-CALIBRATED',     1983, NULL),
    (22, 1578139200, 'RE-CALIBRATED',     1983, NULL),
    (23, 1578139200, 'RE-CALIBRATED',     1983, NULL),
    (24, 1578139200, 'RE-CALIBRATED',     1983, NULL),
    (25, 1580928505, 'FIRMWARE UPGRADED', 2093, 'Upgraded to v1.23'),
    (26, 1580928505, 'FIRMWARE UPGRADED', 2093, 'Upgraded to v1.23'),
    (27, 1580928505, 'FIRMWARE UPGRADED', 2093, 'Upgraded to v1.23'),
    (28, 1580928505, 'FIRMWARE UPGRADED', 2093, 'Upgraded to v1.23'),
    (29, 1580928505, 'FIRMWARE UPGRADED', 2093, 'Upgraded to v1.23'),
    (30, 1580928505, 'FIRMWARE UPGRADED', 2093, 'Upgraded to v1.23');

INSERT INTO sensors (sensor_id, manufacturer_id, location_id, history_id, message_guid) VALUES
    (1, 1, 1,  1, '03e39872-e105-4be4-83c0-9ade818465dc'),
    (1, 1, 1,  2, '03e39872-e105-4be4-83c0-9ade818465dc'),
    (1, 1, 1,  3, '03e39872-e105-4be4-83c0-9ade818465dc'),
    (2, 1, 2,  4, 'fa565921-fddd-4bfb-a7fd-d617f816df4b'),
    (2, 1, 2,  5, 'fa565921-fddd-4bfb-a7fd-d617f816df4b'),
    (2, 1, 2,  6, 'fa565921-fddd-4bfb-a7fd-d617f816df4b'),
    (3, 1, 3,  7, 'd120422d-5789-435d-9dc6-73d8489b04c2'),
    (3, 1, 3,  8, 'd120422d-5789-435d-9dc6-73d8489b04c2'),
    (3, 1, 3,  9, 'd120422d-5789-435d-9dc6-73d8489b04c2'),
    (4, 1, 4, 10, '93238559-4d55-4b2a-bdcb-6aa3be0f3908'),
    (4, 1, 4, 11, '93238559-4d55-4b2a-bdcb-6aa3be0f3908'),
    (4, 1, 4, 12, '93238559-4d55-4b2a-bdcb-6aa3be0f3908'),
    (5, 1, 5, 13, 'dbc05806-6872-4f0a-aca2-f794cc39bd9b'),
    (5, 1, 5, 14, 'dbc05806-6872-4f0a-aca2-f794cc39bd9b'),
    (5, 1, 5, 15, 'dbc05806-6872-4f0a-aca2-f794cc39bd9b'),
    (6, 1, 6, 16, 'f9ade639-f936-4954-aa5a-1f2ed86c9bcf'),
    (6, 1, 6, 17, 'f9ade639-f936-4954-aa5a-1f2ed86c9bcf'),
    (6, 1, 6, 18, 'f9ade639-f936-4954-aa5a-1f2ed86c9bcf'),
    (1, 1, 1, 19, '03e39872-e105-4be4-83c0-9ade818465dc'),
    (2, 1, 2, 20, 'fa565921-fddd-4bfb-a7fd-d617f816df4b'),
    (3, 1, 3, 21, 'd120422d-5789-435d-9dc6-73d8489b04c2'),
    (4, 1, 4, 22, '93238559-4d55-4b2a-bdcb-6aa3be0f3908'),
    (5, 1, 5, 23, 'dbc05806-6872-4f0a-aca2-f794cc39bd9b'),
    (6, 1, 6, 24, 'f9ade639-f936-4954-aa5a-1f2ed86c9bcf'),
    (1, 1, 1, 25, '03e39872-e105-4be4-83c0-9ade818465dc'),
    (2, 1, 2, 26, 'fa565921-fddd-4bfb-a7fd-d617f816df4b'),
    (3, 1, 3, 27, 'd120422d-5789-435d-9dc6-73d8489b04c2'),
    (4, 1, 4, 28, '93238559-4d55-4b2a-bdcb-6aa3be0f3908'),
    (5, 1, 5, 29, 'dbc05806-6872-4f0a-aca2-f794cc39bd9b'),
    (6, 1, 6, 30, 'f9ade639-f936-4954-aa5a-1f2ed86c9bcf');
