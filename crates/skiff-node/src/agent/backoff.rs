//! The kubelet's back-off for image pulls and crashing containers: 10 s, doubling, at most 5 min;
//! forgotten once the thing has worked (or been quiet) for 10 min.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// Running (or not failing) this long resets the back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last_failure: Instant,
}

/// Back-off per key (e.g. pod uid + container name).
#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

impl Backoff {
    /// Record a failure at `now`; returns how long to wait before the next try.
    pub fn failed(&mut self, key: &str, now: Instant) -> Duration {
        let delay = match self.entries.get(key) {
            Some(e) if now.duration_since(e.last_failure) < RESET_AFTER + e.delay => (e.delay * 2).min(MAX),
            _ => INITIAL,
        };
        self.entries.insert(key.to_string(), Entry { delay, last_failure: now });
        delay
    }

    /// Whether a new try must still wait at `now`, and for how long.
    pub fn remaining(&self, key: &str, now: Instant) -> Option<Duration> {
        let e = self.entries.get(key)?;
        let until = e.last_failure + e.delay;
        (now < until).then(|| until - now)
    }

    /// The delay set by the last failure of `key` (what "back-off 20s" reports).
    pub fn delay(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(INITIAL, |e| e.delay)
    }

    /// Forget every key starting with `prefix` (a pod that is gone).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }

    /// Forget `key` (it ran long enough, or the pod is gone).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_five_minutes_and_resets() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..7).map(|i| b.failed("k", t0 + Duration::from_secs(i)).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert!(b.remaining("k", t0 + Duration::from_secs(7)).is_some());
        // Quiet for longer than 10 minutes (plus the last delay): back to the start.
        assert_eq!(b.failed("k", t0 + Duration::from_secs(7 + 600 + 301)).as_secs(), 10);
        b.reset("k");
        assert!(b.remaining("k", t0).is_none());
    }
}
