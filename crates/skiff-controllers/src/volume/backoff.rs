//! Per-object retry delays after a failed write: 500 ms, doubling, at most a cap (a write refused
//! for good, a 403 or a 422, must not become a hot loop). A conflict starts at 100 ms: it only
//! says the cache was behind, and it has likely caught up by then. A success forgets the object.

use crate::work::Key;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(500);
const FIRST_CONFLICT: Duration = Duration::from_millis(100);

pub struct Backoff {
    max: Duration,
    failures: Mutex<HashMap<Key, u32>>,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff { max, failures: Mutex::new(HashMap::new()) }
    }

    /// `key` failed again: how long to wait before the next try.
    pub fn failed(&self, key: &Key) -> Duration {
        self.after(key, FIRST)
    }

    fn after(&self, key: &Key, first: Duration) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.clone()).or_default();
        let delay = first.saturating_mul(1 << (*n).min(16));
        *n = n.saturating_add(1);
        delay.min(self.max)
    }

    pub fn succeeded(&self, key: &Key) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// A sync's outcome for [`crate::work::drive`]: a failure is logged and tried again after
    /// its back-off (never an error: the queue's own retry is a fixed second).
    pub fn outcome(
        &self,
        what: &str,
        key: &Key,
        result: Result<(), kube::Error>,
    ) -> Result<Option<Duration>, kube::Error> {
        match result {
            Ok(()) => {
                self.succeeded(key);
                Ok(None)
            }
            Err(e) => {
                tracing::debug!(error = %e, namespace = key.namespace, name = key.name, what, "syncing");
                let conflict = matches!(&e, kube::Error::Api(s) if s.code == 409);
                Ok(Some(self.after(key, if conflict { FIRST_CONFLICT } else { FIRST })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let b = Backoff::new(Duration::from_secs(3));
        let k = Key { namespace: "ns".into(), name: "c".into() };
        let delays: Vec<u128> = (0..4).map(|_| b.failed(&k).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000]);
        b.succeeded(&k);
        assert_eq!(b.failed(&k), FIRST);
    }
}
