//! Sessions read from Postgres, kept for a moment: a dashboard asks for
//! every one of its charts each refresh, and each request would otherwise
//! read its session again. In the service a session is used for at most
//! [`SESSION_REUSE`]; a sign-out through this service ends it here at once,
//! and ended sessions and changed or removed accounts are announced by
//! Postgres (`live.rs`), which empties the cache in every service.

use app::accounts::Account;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest a session is used without reading it again, should an
/// announcement be missed.
pub const SESSION_REUSE: Duration = Duration::from_secs(1);

/// Sessions kept at most; beyond it, the older ones are dropped.
const MAX_SESSIONS: usize = 10_000;

pub struct SessionCache {
    by_token: Mutex<HashMap<String, (Instant, Account)>>,
    reuse: Duration,
    /// Counts announced changes, so a session read before one is not kept.
    generation: AtomicU64,
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache::new(SESSION_REUSE)
    }
}

impl SessionCache {
    /// Sessions used for at most `reuse` after they were read.
    pub fn new(reuse: Duration) -> Self {
        SessionCache {
            by_token: Mutex::default(),
            reuse,
            generation: AtomicU64::new(0),
        }
    }

    /// The account of a session read within the reuse time.
    pub fn get(&self, token: &str) -> Option<Account> {
        self.by_token
            .lock()
            .expect("sessions lock")
            .get(token)
            .filter(|(read, _)| read.elapsed() < self.reuse)
            .map(|(_, account)| account.clone())
    }

    /// Where the announced changes stand: take it before reading a session.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps a session read from Postgres unless a change was announced
    /// since `generation` (the session may have ended meanwhile).
    pub fn keep(&self, token: &str, account: &Account, generation: u64) {
        let mut sessions = self.by_token.lock().expect("sessions lock");
        if self.generation() != generation {
            return;
        }
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, (read, _)| read.elapsed() < self.reuse);
            if sessions.len() >= MAX_SESSIONS {
                sessions.clear();
            }
        }
        sessions.insert(token.to_string(), (Instant::now(), account.clone()));
    }

    /// The session ended.
    pub fn forget(&self, token: &str) {
        self.by_token.lock().expect("sessions lock").remove(token);
    }

    /// Sessions or accounts changed somewhere: read every session anew.
    pub fn changed(&self) {
        let mut sessions = self.by_token.lock().expect("sessions lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        sessions.clear();
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
        sessions.keep("t", &ann(), sessions.generation());
        assert_eq!(sessions.get("t"), Some(ann()));
        assert_eq!(sessions.get("other"), None);
        sessions.forget("t");
        assert_eq!(sessions.get("t"), None);

        sessions.keep("t", &ann(), sessions.generation());
        sessions.changed();
        assert_eq!(sessions.get("t"), None);

        // Read before the change, kept after it: not kept.
        let before = sessions.generation();
        sessions.changed();
        sessions.keep("t", &ann(), before);
        assert_eq!(sessions.get("t"), None);

        sessions.keep("t", &ann(), sessions.generation());
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(sessions.get("t"), None);
    }
}
