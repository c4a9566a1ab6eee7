//! A revisioned key-value store with watch, the shape etcd has: every write gets the next
//! global revision, updates and deletes compare-and-swap on a key's `mod_revision`, and a watch
//! replays changes after any revision the store still remembers.
//!
//! Backends: [`MemoryStore`] for tests and [`RedbStore`] (durable, embedded) as the default.
//! Every backend passes the shared suite in [`testing`].

mod hub;
mod memory;
mod redb_store;
pub mod testing;

use futures::stream::BoxStream;

pub use hub::WatchHub;
pub use memory::MemoryStore;
pub use redb_store::RedbStore;

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
    /// The watch asked for history the store no longer has.
    #[error("required revision {requested} has been compacted (oldest available after {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The watcher fell too far behind and must list again.
    #[error("watch fell behind and was closed")]
    WatcherLagged,
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type WatchStream = BoxStream<'static, Result<Event, StoreError>>;

/// The narrow storage interface the API server uses.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// All keys under `prefix`, in key order, and the store revision they were read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError>;
    /// Replace `key` if its `mod_revision` is still `expected`.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError>;
    /// Remove `key` (if its `mod_revision` is `expected`, when given); returns the removed value
    /// with `mod_revision` set to the delete's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError>;
    /// Changes under `prefix` with revision greater than `after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;
    /// Forget history up to and including `revision`.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
    async fn current_revision(&self) -> Result<Revision, StoreError>;
}
