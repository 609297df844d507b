-- Ended sessions and changed or removed accounts are announced on
-- `pulseboard_accounts`, so each running service stops using the sessions
-- it read before (server/src/sessions.rs), whichever service or command
-- made the change.

CREATE FUNCTION notify_accounts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pulseboard_accounts', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts_changed();

CREATE TRIGGER sessions_ended
    AFTER DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts_changed();
