//! The in-memory backend: every version in a sorted map behind one lock. For tests and
//! ephemeral clusters.

use crate::hub::{DEFAULT_CACHE_BYTES, History, HistoryRead};
use crate::mvcc::{self, Snapshot, Version, Write};
use crate::{KeyValue, Page, RangeRequest, Revision, Store, StoreError, WatchHub, WatchStream};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    versions: BTreeMap<(String, Revision), Version>,
    /// The key written at each revision.
    log: BTreeMap<Revision, String>,
}

impl Snapshot for State {
    fn next_key(&self, from: &str, after: Option<&str>) -> Result<Option<String>, StoreError> {
        let start = match after {
            Some(k) => Bound::Excluded((k.to_string(), Revision::MAX)),
            None => Bound::Included((from.to_string(), 0)),
        };
        Ok(self.versions.range((start, Bound::Unbounded)).next().map(|((k, _), _)| k.clone()))
    }

    fn visible(&self, key: &str, at: Revision) -> Result<Option<(Revision, Version)>, StoreError> {
        let range = (key.to_string(), 0)..=(key.to_string(), at);
        Ok(self.versions.range(range).next_back().map(|((_, r), v)| (*r, v.clone())))
    }

    fn log(
        &self,
        after: Revision,
        upto: Revision,
        f: &mut dyn FnMut(Revision, &str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for (rev, key) in self.log.range((Bound::Excluded(after), Bound::Included(upto))) {
            if !f(*rev, key)? {
                break;
            }
        }
        Ok(())
    }
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl History for Shared {
    fn events(&self, read: &HistoryRead) -> Result<(Vec<crate::Event>, Revision), StoreError> {
        let s = self.lock();
        if read.after < s.compacted {
            return Err(StoreError::Compacted { requested: read.after, compacted: s.compacted });
        }
        mvcc::read_events(&*s, read)
    }
}

pub struct MemoryStore {
    shared: Arc<Shared>,
    hub: WatchHub,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            shared: Arc::new(Shared { state: Mutex::new(State::default()) }),
            hub: WatchHub::new(0, DEFAULT_CACHE_BYTES),
        }
    }

    fn write(&self, key: &str, value: Vec<u8>, write: Write) -> Result<KeyValue, StoreError> {
        let mut s = self.shared.lock();
        let event = mvcc::apply(key, write, value, mvcc::get(&*s, key)?, s.revision + 1)?;
        s.revision += 1;
        let rev = s.revision;
        s.versions.insert((key.to_string(), rev), mvcc::version_of(&event));
        s.log.insert(rev, key.to_string());
        let kv = event.kv.clone();
        // Published under the lock: watchers see revisions in order.
        self.hub.publish([event]);
        Ok(kv)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        mvcc::get(&*self.shared.lock(), key)
    }

    async fn range(&self, req: RangeRequest<'_>) -> Result<Page, StoreError> {
        let s = self.shared.lock();
        let at = req.revision.unwrap_or(s.revision);
        mvcc::check_readable(at, s.compacted, s.revision)?;
        mvcc::read_range(&*s, &req, at)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        self.write(key, value, Write::Create)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError> {
        self.write(key, value, Write::Update(expected))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        self.write(key, Vec::new(), Write::Delete(expected))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let compacted = self.shared.lock().compacted;
        if after < compacted {
            return Err(StoreError::Compacted { requested: after, compacted });
        }
        Ok(self.hub.watch(prefix, after, self.shared.clone()))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut s = self.shared.lock();
        let revision = revision.min(s.revision);
        if revision <= s.compacted {
            return Ok(());
        }
        let touched: std::collections::BTreeSet<String> =
            s.log.range(s.compacted + 1..=revision).map(|(_, k)| k.clone()).collect();
        for key in touched {
            let revs: Vec<(Revision, bool)> = s
                .versions
                .range((key.clone(), 0)..=(key.clone(), Revision::MAX))
                .map(|((_, r), v)| (*r, v.value.is_none()))
                .collect();
            for (r, _) in &revs[..mvcc::compaction_drops(&revs, revision)] {
                s.versions.remove(&(key.clone(), *r));
            }
        }
        s.log = s.log.split_off(&(revision + 1));
        s.compacted = revision;
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.lock().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.lock().compacted)
    }

    async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<bool, StoreError> {
        Ok(self.hub.wait_for(revision, timeout).await)
    }
}

#[cfg(test)]
mod tests {
    crate::store_conformance!(crate::MemoryStore::new());
}
