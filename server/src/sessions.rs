//! Sessions read from Postgres, kept for a moment: a dashboard asks for
//! every one of its charts each refresh, and each request would otherwise
//! read its session again. In the service a session is used for at most
//! [`SESSION_REUSE`]; a sign-out through this service ends it here at once,
//! and ended sessions and changed or removed accounts are announced by
//! Postgres (`live.rs`), which empties the cache in every service.

use app::accounts::Account;
use app::announced::Announced;
use std::ops::Deref;
use std::time::Duration;

/// The longest a session is used without reading it again, should an
/// announcement be missed.
pub const SESSION_REUSE: Duration = Duration::from_secs(1);

/// Sessions kept at most; beyond it, the older ones are dropped.
const MAX_SESSIONS: usize = 10_000;

/// Accounts by session token.
pub struct SessionCache(Announced<String, Account>);

impl SessionCache {
    /// Sessions used for at most `reuse` after they were read.
    pub fn new(reuse: Duration) -> Self {
        SessionCache(Announced::new(reuse, MAX_SESSIONS, |_| 1))
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache::new(SESSION_REUSE)
    }
}

impl Deref for SessionCache {
    type Target = Announced<String, Account>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::accounts::Role;

    fn ann() -> Account {
        Account {
            id: 1,
            username: "ann".into(),
            role: Role::Viewer,
        }
    }

    #[test]
    fn a_session_is_used_until_it_ends_changes_or_is_a_second_old() {
        let sessions = SessionCache::new(Duration::from_millis(200));
        assert_eq!(sessions.get("t"), None);
        sessions.keep("t".into(), ann(), sessions.generation());
        assert_eq!(sessions.get("t"), Some(ann()));
        assert_eq!(sessions.get("other"), None);
        sessions.forget("t");
        assert_eq!(sessions.get("t"), None);

        sessions.keep("t".into(), ann(), sessions.generation());
        sessions.changed();
        assert_eq!(sessions.get("t"), None);

        // Read before the change, kept after it: not kept.
        let before = sessions.generation();
        sessions.changed();
        sessions.keep("t".into(), ann(), before);
        assert_eq!(sessions.get("t"), None);

        sessions.keep("t".into(), ann(), sessions.generation());
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(sessions.get("t"), None);
    }
}
