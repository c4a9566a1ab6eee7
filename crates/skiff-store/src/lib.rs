//! A revisioned key-value store with watch, the shape etcd has: every write gets the next
//! global revision, updates and deletes compare-and-swap on a key's `mod_revision`, reads can be
//! made at any revision the store still remembers (MVCC), and a watch replays changes after any
//! such revision, across restarts for the durable backend.
//!
//! Backends: [`MemoryStore`] for tests and [`RedbStore`] (durable, embedded) as the default.
//! Both keep every version of a key until [`Store::compact`] forgets those no read can need;
//! [`mvcc`] holds the rules they share and [`WatchHub`] the watch fan-out. Every backend passes
//! the shared suite in [`testing`]. [`encrypted`] seals chosen values at rest in front of any
//! of them.

mod compactor;
pub mod encrypted;
mod hub;
mod memory;
pub mod mvcc;
mod redb_store;
pub mod testing;

use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

pub use compactor::run_compactor;
pub use hub::WatchHub;
pub use memory::MemoryStore;
pub use redb_store::{RedbConfig, RedbStore};

/// A global, monotonically increasing write counter. `resourceVersion` is its decimal form.
pub type Revision = u64;

/// One stored key with its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision that created the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key (for a delete event: the revision of the delete).
    pub mod_revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Created,
    Updated,
    Deleted,
}

/// A change, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// The new value; for `Deleted`, the last value with `mod_revision` = the delete's revision.
    pub kv: KeyValue,
    /// The value before this change (none for `Created`).
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }

    /// The bytes this event holds, for memory budgets.
    pub fn size(&self) -> usize {
        let kv = |kv: &KeyValue| kv.key.capacity() + kv.value.capacity() + std::mem::size_of::<KeyValue>();
        kv(&self.kv) + self.prev.as_ref().map_or(0, kv)
    }
}

/// What a watch delivers: changes in revision order, and progress when it has caught up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    Event(Arc<Event>),
    /// Every change under the watch's prefix up to this revision has been delivered: the
    /// revision a bookmark may carry.
    Progress(Revision),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The compare-and-swap failed: the key's current state is returned for the caller's message.
    #[error("key {key} was modified (revision {actual}, expected {expected})")]
    Conflict { key: String, expected: Revision, actual: Revision },
    /// A read or watch asked for history the store no longer has.
    #[error("required revision {requested} has been compacted (oldest available after {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// A read asked for a revision the store has not reached.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type WatchStream = BoxStream<'static, Result<WatchItem, StoreError>>;

/// A range read: keys under `prefix`, from `start` on (inclusive; `key + "\0"` is the first key
/// after `key`), as they were at `revision` (the current state when `None`), at most `limit` of
/// them (0: all).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeRequest<'a> {
    pub prefix: &'a str,
    pub start: Option<&'a str>,
    pub revision: Option<Revision>,
    pub limit: usize,
}

impl<'a> RangeRequest<'a> {
    pub fn prefix(prefix: &'a str) -> Self {
        RangeRequest { prefix, ..Default::default() }
    }
}

/// One page of a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<KeyValue>,
    /// The revision the page was read at: every later page of the same list reads at it too.
    pub revision: Revision,
    /// Keys remain after the last item.
    pub more: bool,
}

/// The narrow storage interface the API server uses.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// A page of keys in key order, read at one revision (see [`RangeRequest`]). A revision
    /// older than the compacted one is [`StoreError::Compacted`], a newer than the current one
    /// [`StoreError::FutureRevision`].
    async fn range(&self, req: RangeRequest<'_>) -> Result<Page, StoreError>;
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError>;
    /// Replace `key` if its `mod_revision` is still `expected`.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError>;
    /// Remove `key` (if its `mod_revision` is `expected`, when given); returns the removed value
    /// with `mod_revision` set to the delete's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError>;
    /// Changes under `prefix` with revision greater than `after`, then [`WatchItem::Progress`]
    /// whenever the watch has caught up with the store.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;
    /// Forget every version that no read at or after `revision` needs.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
    async fn current_revision(&self) -> Result<Revision, StoreError>;
    /// The newest revision compacted away: reads and watches need a revision at or above it.
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;
    /// Wait up to `timeout` for the store to reach `revision`; false if it did not.
    async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<bool, StoreError>;

    /// Every key under `prefix` now, and the revision read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let page = self.range(RangeRequest::prefix(prefix)).await?;
        Ok((page.items, page.revision))
    }
}
