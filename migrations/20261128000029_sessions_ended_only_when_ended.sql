-- A sign-out naming no session (an expired or made-up cookie) deleted no
-- row but still announced an ended session, and every service emptied its
-- kept sessions: anyone could do that at will. Sessions are announced as
-- ended only when rows were deleted.

DROP TRIGGER sessions_ended ON sessions;

CREATE FUNCTION notify_sessions_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ended) THEN
        PERFORM pg_notify('pulseboard_accounts', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_ended
    AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS ended
    FOR EACH STATEMENT EXECUTE FUNCTION notify_sessions_ended();

CREATE TRIGGER sessions_truncated
    AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts_changed();
