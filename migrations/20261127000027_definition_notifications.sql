-- Every committed change to charts or dashboards is announced on
-- `pulseboard_definitions`, so each running service drops the pages it
-- rendered from the old definitions (server/src/page_cache.rs), whichever
-- service or command made the change.

CREATE FUNCTION notify_definitions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pulseboard_definitions', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER charts_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON charts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_definitions_changed();

CREATE TRIGGER dashboards_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dashboards
    FOR EACH STATEMENT EXECUTE FUNCTION notify_definitions_changed();
