//! Values kept until Postgres announces a change that may alter them (the
//! server's listener calls [`Announced::changed`]), and for at most a
//! maximum age should an announcement be missed. A value read before an
//! announcement is not kept after it. Saved chart definitions, rendered pages
//! and signed-in sessions are kept this way.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Announced<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Counts announced changes.
    generation: AtomicU64,
    max_age: Duration,
    /// The most kept, counted by `weigh`; beyond it, the old are dropped,
    /// then all.
    limit: usize,
    weigh: fn(&V) -> usize,
}

impl<K: Eq + Hash, V: Clone> Announced<K, V> {
    pub fn new(max_age: Duration, limit: usize, weigh: fn(&V) -> usize) -> Self {
        Announced {
            entries: Mutex::default(),
            generation: AtomicU64::new(0),
            max_age,
            limit,
            weigh,
        }
    }

    /// Where the announcements stand: take it before reading a value.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The value kept for `key`, if younger than the maximum age.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .lock()
            .expect("entries lock")
            .get(key)
            .filter(|(kept, _)| kept.elapsed() < self.max_age)
            .map(|(_, value)| value.clone())
    }

    /// Keeps a value read at `generation`, unless a change was announced
    /// since (the value may already be out of date).
    pub fn keep(&self, key: K, value: V, generation: u64) {
        let mut entries = self.entries.lock().expect("entries lock");
        if self.generation() != generation {
            return;
        }
        let weight = |entries: &HashMap<K, (Instant, V)>| -> usize {
            entries.values().map(|(_, v)| (self.weigh)(v)).sum()
        };
        if weight(&entries) + (self.weigh)(&value) > self.limit {
            entries.retain(|_, (kept, _)| kept.elapsed() < self.max_age);
            if weight(&entries) + (self.weigh)(&value) > self.limit {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.lock().expect("entries lock").remove(key);
    }

    /// A change was announced: nothing kept is current.
    pub fn changed(&self) {
        let mut entries = self.entries.lock().expect("entries lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_change_is_not_kept() {
        let kept: Announced<&str, u32> = Announced::new(Duration::from_secs(60), 10, |_| 1);
        let before = kept.generation();
        kept.changed();
        kept.keep("a", 1, before);
        assert_eq!(kept.get("a"), None);
        kept.keep("a", 1, kept.generation());
        assert_eq!(kept.get("a"), Some(1));
    }

    #[test]
    fn beyond_the_limit_old_values_go_first_then_all() {
        let kept: Announced<u32, usize> =
            Announced::new(Duration::from_millis(20), 10, |weight| *weight);
        kept.keep(1, 6, kept.generation());
        std::thread::sleep(Duration::from_millis(30));
        kept.keep(2, 4, kept.generation());
        kept.keep(3, 5, kept.generation());
        assert_eq!(kept.get(&3), Some(5), "the expired value made room");
        kept.keep(4, 9, kept.generation());
        assert_eq!((kept.get(&2), kept.get(&3)), (None, None));
        assert_eq!(kept.get(&4), Some(9));
    }
}
