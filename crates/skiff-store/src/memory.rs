//! The in-memory backend: a sorted map behind one lock. For tests and ephemeral clusters.

use crate::{Event, EventType, KeyValue, Revision, Store, StoreError, WatchHub, WatchStream};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct State {
    revision: Revision,
    data: BTreeMap<String, KeyValue>,
}

pub struct MemoryStore {
    state: Mutex<State>,
    hub: WatchHub,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore { state: Mutex::new(State::default()), hub: WatchHub::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.lock().data.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let s = self.lock();
        let items =
            s.data.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v.clone());
        Ok((items.collect(), s.revision))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let mut s = self.lock();
        if s.data.contains_key(key) {
            return Err(StoreError::AlreadyExists(key.into()));
        }
        s.revision += 1;
        let kv = KeyValue { key: key.into(), value, create_revision: s.revision, mod_revision: s.revision };
        s.data.insert(key.into(), kv.clone());
        self.hub.publish(Event { kind: EventType::Created, kv: kv.clone(), prev: None });
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError> {
        let mut s = self.lock();
        let current = s.data.get(key).ok_or_else(|| StoreError::NotFound(key.into()))?;
        if current.mod_revision != expected {
            return Err(StoreError::Conflict { key: key.into(), expected, actual: current.mod_revision });
        }
        let prev = current.clone();
        s.revision += 1;
        let kv = KeyValue { key: key.into(), value, create_revision: prev.create_revision, mod_revision: s.revision };
        s.data.insert(key.into(), kv.clone());
        self.hub.publish(Event { kind: EventType::Updated, kv: kv.clone(), prev: Some(prev) });
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let mut s = self.lock();
        let current = s.data.get(key).ok_or_else(|| StoreError::NotFound(key.into()))?;
        if let Some(exp) = expected
            && current.mod_revision != exp
        {
            return Err(StoreError::Conflict { key: key.into(), expected: exp, actual: current.mod_revision });
        }
        s.revision += 1;
        let rev = s.revision;
        let prev = s.data.remove(key).ok_or_else(|| StoreError::NotFound(key.into()))?;
        let kv = KeyValue { mod_revision: rev, ..prev.clone() };
        self.hub.publish(Event { kind: EventType::Deleted, kv: kv.clone(), prev: Some(prev) });
        Ok(kv)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        self.hub.watch(prefix, after)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.hub.compact(revision);
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.lock().revision)
    }
}

#[cfg(test)]
mod tests {
    crate::store_conformance!(crate::MemoryStore::new());
}
