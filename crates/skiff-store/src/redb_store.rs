//! The embedded durable backend on redb. Every version of every key is kept (table `versions`,
//! keyed by key and revision) with a log of which key each revision wrote (table `log`), until
//! compaction: that is the watch history, so it survives restarts. Writes go through one writer
//! thread that commits whatever is queued in one transaction (group commit): one fsync is shared
//! by concurrent writers, and each write is acknowledged only after it. An I/O failure (a full
//! disk) fails that batch only: redb then refuses everything until the database is reopened, so
//! the next operation reopens it (commits are atomic: nothing half-written).

use crate::hub::{DEFAULT_CACHE_BYTES, History, HistoryRead};
use crate::mvcc::{self, Snapshot, Version, Write};
use crate::{Event, EventType, KeyValue, Page, RangeRequest, Revision, Store, StoreError, WatchHub, WatchStream};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction,
};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

const VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("versions");
const LOG: TableDefinition<u64, &str> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Before versions were kept: key -> create revision, mod revision, value.
const LEGACY_DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("data");
const REVISION: &str = "revision";
const COMPACTED: &str = "compacted";
/// Bytes held by versions that are no longer current, for compaction by size.
const HISTORY_BYTES: &str = "history_bytes";
/// Writes committed together at most.
const MAX_BATCH: usize = 512;
/// Revisions compacted per transaction, so a large compaction never holds the writer long.
const COMPACTION_CHUNK: u64 = 10_000;

/// Sizes for the embedded store.
#[derive(Debug, Clone, Copy)]
pub struct RedbConfig {
    /// redb's page cache.
    pub cache_bytes: usize,
    /// Recent events kept in memory for watchers.
    pub watch_cache_bytes: usize,
    /// Bytes of superseded versions kept before the oldest are compacted away.
    pub history_bytes: u64,
}

impl Default for RedbConfig {
    /// A small page cache: the kernel's page cache holds the file anyway, and redb's own copy
    /// counts in the server's RSS (32 MiB cost ~32 MiB more than 8 MiB with 10,000 pods).
    fn default() -> Self {
        RedbConfig { cache_bytes: 8 << 20, watch_cache_bytes: DEFAULT_CACHE_BYTES, history_bytes: 256 << 20 }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn closed() -> StoreError {
    StoreError::Backend("the database is closed after an I/O error and could not be reopened yet".into())
}

/// A snapshot over redb tables (a read transaction's or the writer's).
struct Tables<'t, V, L> {
    versions: &'t V,
    log: &'t L,
}

impl<V, L> Snapshot for Tables<'_, V, L>
where
    V: ReadableTable<(&'static str, u64), &'static [u8]>,
    L: ReadableTable<u64, &'static str>,
{
    fn next_key(&self, from: &str, after: Option<&str>) -> Result<Option<String>, StoreError> {
        let lower = match after {
            Some(k) => Bound::Excluded((k, u64::MAX)),
            None => Bound::Included((from, 0)),
        };
        let mut range = self.versions.range::<(&str, u64)>((lower, Bound::Unbounded)).map_err(backend)?;
        match range.next() {
            Some(entry) => Ok(Some(entry.map_err(backend)?.0.value().0.to_string())),
            None => Ok(None),
        }
    }

    fn visible(&self, key: &str, at: Revision) -> Result<Option<(Revision, Version)>, StoreError> {
        let mut range = self.versions.range((key, 0)..=(key, at)).map_err(backend)?;
        match range.next_back() {
            Some(entry) => {
                let (k, v) = entry.map_err(backend)?;
                Ok(Some((k.value().1, Version::decode(key, v.value())?)))
            }
            None => Ok(None),
        }
    }

    fn log(
        &self,
        after: Revision,
        upto: Revision,
        f: &mut dyn FnMut(Revision, &str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for entry in self.log.range::<u64>((Bound::Excluded(after), Bound::Included(upto))).map_err(backend)? {
            let (rev, key) = entry.map_err(backend)?;
            if !f(rev.value(), key.value())? {
                break;
            }
        }
        Ok(())
    }
}

/// A committed batch: each write's outcome, and the store's figures after it.
struct Committed {
    results: Vec<Result<Event, StoreError>>,
    revision: Revision,
    compacted: Revision,
    /// Bytes of superseded versions.
    history: u64,
}

enum Request {
    Write { key: String, value: Vec<u8>, write: Write, reply: oneshot::Sender<Result<KeyValue, StoreError>> },
    Compact { revision: Revision, reply: oneshot::Sender<Result<(), StoreError>> },
}

struct Inner {
    path: PathBuf,
    config: RedbConfig,
    /// `None` only between closing after an I/O error and a successful reopen.
    db: RwLock<Option<Database>>,
    /// An I/O error happened: reopen before the next operation.
    broken: AtomicBool,
    hub: WatchHub,
}

pub struct RedbStore {
    inner: Arc<Inner>,
    writer: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn meta_value(t: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StoreError> {
    Ok(t.get(key).map_err(backend)?.map(|g| g.value()).unwrap_or(0))
}

impl Inner {
    /// A redb failure as a store error; I/O failures mark the database for reopening.
    fn fail(&self, e: impl Into<redb::Error>) -> StoreError {
        let e = e.into();
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            self.broken.store(true, Ordering::SeqCst);
        }
        match &e {
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                backend(format!("{e}: the disk holding {} is full", self.path.display()))
            }
            _ => backend(e),
        }
    }

    fn open_db(path: &Path, config: &RedbConfig) -> Result<Database, StoreError> {
        owner_only(path).map_err(|e| backend(format!("{}: {e}", path.display())))?;
        Database::builder().set_cache_size(config.cache_bytes).create(path).map_err(backend)
    }

    fn db(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            self.reopen()?;
        }
        Ok(self.db.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.broken.load(Ordering::SeqCst) {
            return Ok(());
        }
        // The old handle holds the file lock: close it first.
        drop(db.take());
        let reopened =
            Self::open_db(&self.path, &self.config).map_err(|e| backend(format!("reopening the database: {e}")))?;
        *db = Some(reopened);
        self.broken.store(false, Ordering::SeqCst);
        tracing::warn!(path = %self.path.display(), "reopened the database after an I/O error");
        Ok(())
    }

    /// Run `f` over one read transaction.
    fn read<T>(&self, f: impl FnOnce(&View<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_read().map_err(|e| self.fail(e))?;
        let meta = tx.open_table(META).map_err(|e| self.fail(e))?;
        let versions = tx.open_table(VERSIONS).map_err(|e| self.fail(e))?;
        let log = tx.open_table(LOG).map_err(|e| self.fail(e))?;
        f(&View {
            tables: Tables { versions: &versions, log: &log },
            revision: meta_value(&meta, REVISION)?,
            compacted: meta_value(&meta, COMPACTED)?,
        })
    }

    fn revisions(&self) -> Result<(Revision, Revision), StoreError> {
        self.read(|v| Ok((v.revision, v.compacted)))
    }

    /// Commit a batch of writes in one transaction; the results in order.
    fn commit(&self, batch: Vec<(String, Vec<u8>, Write)>) -> Result<Committed, StoreError> {
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_write().map_err(|e| self.fail(e))?;
        let committed = self.apply_batch(&tx, batch)?;
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(committed)
    }

    fn apply_batch(
        &self,
        tx: &WriteTransaction,
        batch: Vec<(String, Vec<u8>, Write)>,
    ) -> Result<Committed, StoreError> {
        let mut meta = tx.open_table(META).map_err(|e| self.fail(e))?;
        let mut versions = tx.open_table(VERSIONS).map_err(|e| self.fail(e))?;
        let mut log = tx.open_table(LOG).map_err(|e| self.fail(e))?;
        let mut revision = meta_value(&meta, REVISION)?;
        let mut history = meta_value(&meta, HISTORY_BYTES)?;
        let mut results = Vec::with_capacity(batch.len());
        for (key, value, write) in batch {
            let current = mvcc::get(&Tables { versions: &versions, log: &log }, &key)?;
            let event = match mvcc::apply(&key, write, value, current, revision + 1) {
                Ok(e) => e,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            revision += 1;
            let version = mvcc::version_of(&event).encode();
            versions.insert((key.as_str(), revision), version.as_slice()).map_err(|e| self.fail(e))?;
            log.insert(revision, key.as_str()).map_err(|e| self.fail(e))?;
            if let Some(prev) = &event.prev {
                // The superseded version (and a tombstone) are history now.
                history += (key.len() + 9 + prev.value.len()) as u64;
                if event.kind == EventType::Deleted {
                    history += (key.len() + 9) as u64;
                }
            }
            results.push(Ok(event));
        }
        meta.insert(REVISION, revision).map_err(|e| self.fail(e))?;
        meta.insert(HISTORY_BYTES, history).map_err(|e| self.fail(e))?;
        let compacted = meta_value(&meta, COMPACTED)?;
        Ok(Committed { results, revision, compacted, history })
    }

    /// Compact up to `target` in chunks, each its own transaction.
    fn compact(&self, target: Revision) -> Result<(), StoreError> {
        loop {
            let guard = self.db()?;
            let tx = guard.as_ref().ok_or_else(closed)?.begin_write().map_err(|e| self.fail(e))?;
            {
                let mut meta = tx.open_table(META).map_err(|e| self.fail(e))?;
                let mut versions = tx.open_table(VERSIONS).map_err(|e| self.fail(e))?;
                let mut log = tx.open_table(LOG).map_err(|e| self.fail(e))?;
                let compacted = meta_value(&meta, COMPACTED)?;
                let target = target.min(meta_value(&meta, REVISION)?);
                if target <= compacted {
                    return Ok(());
                }
                let end = target.min(compacted + COMPACTION_CHUNK);
                let mut keys = std::collections::BTreeSet::new();
                for entry in log.range(compacted + 1..=end).map_err(|e| self.fail(e))? {
                    keys.insert(entry.map_err(|e| self.fail(e))?.1.value().to_string());
                }
                let mut freed = 0u64;
                for key in &keys {
                    let mut revs = Vec::new();
                    for entry in
                        versions.range((key.as_str(), 0)..=(key.as_str(), u64::MAX)).map_err(|e| self.fail(e))?
                    {
                        let (k, v) = entry.map_err(|e| self.fail(e))?;
                        revs.push((k.value().1, Version::is_tombstone(v.value()), v.value().len()));
                    }
                    let flags: Vec<(Revision, bool)> = revs.iter().map(|(r, t, _)| (*r, *t)).collect();
                    for (rev, _, size) in &revs[..mvcc::compaction_drops(&flags, end)] {
                        versions.remove((key.as_str(), *rev)).map_err(|e| self.fail(e))?;
                        freed += (key.len() + size) as u64;
                    }
                }
                log.retain_in(compacted + 1..=end, |_, _| false).map_err(|e| self.fail(e))?;
                let history = meta_value(&meta, HISTORY_BYTES)?.saturating_sub(freed);
                meta.insert(HISTORY_BYTES, history).map_err(|e| self.fail(e))?;
                meta.insert(COMPACTED, end).map_err(|e| self.fail(e))?;
            }
            tx.commit().map_err(|e| self.fail(e))?;
        }
    }

    /// Compact the older half of the history if a batch left it over the budget.
    fn compact_by_size(&self, after: &Committed) -> Result<(), StoreError> {
        let Committed { revision, compacted, history, .. } = *after;
        if history > self.config.history_bytes && revision > compacted {
            let target = compacted + (revision - compacted).div_ceil(2);
            tracing::info!(history_bytes = history, target, "compacting the store's history by size");
            self.compact(target)?;
        }
        Ok(())
    }

    /// Create the tables a new database lacks, so that reads never meet a missing one.
    fn create_tables(&self) -> Result<(), StoreError> {
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_write().map_err(|e| self.fail(e))?;
        tx.open_table(META).map_err(|e| self.fail(e))?;
        tx.open_table(VERSIONS).map_err(|e| self.fail(e))?;
        tx.open_table(LOG).map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Convert a database written before versions were kept; its history starts now.
    fn migrate_legacy(&self) -> Result<(), StoreError> {
        let guard = self.db()?;
        let db = guard.as_ref().ok_or_else(closed)?;
        let tx = db.begin_write().map_err(|e| self.fail(e))?;
        {
            let legacy = match tx.open_table(LEGACY_DATA) {
                Ok(t) => t,
                Err(e) => return Err(backend(e)),
            };
            if legacy.len().map_err(|e| self.fail(e))? == 0 {
                drop(legacy);
                tx.delete_table(LEGACY_DATA).map_err(backend)?;
                tx.commit().map_err(|e| self.fail(e))?;
                return Ok(());
            }
            let mut versions = tx.open_table(VERSIONS).map_err(|e| self.fail(e))?;
            let mut meta = tx.open_table(META).map_err(|e| self.fail(e))?;
            for entry in legacy.iter().map_err(|e| self.fail(e))? {
                let (k, raw) = entry.map_err(|e| self.fail(e))?;
                let raw = raw.value();
                if raw.len() < 16 {
                    return Err(backend(format!("corrupt record for {}", k.value())));
                }
                let num = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                let version = Version { create_revision: num(&raw[..8]), value: Some(raw[16..].to_vec()) };
                versions
                    .insert((k.value(), num(&raw[8..16])), version.encode().as_slice())
                    .map_err(|e| self.fail(e))?;
            }
            let revision = meta_value(&meta, REVISION)?;
            meta.insert(COMPACTED, revision).map_err(|e| self.fail(e))?;
        }
        tx.delete_table(LEGACY_DATA).map_err(backend)?;
        tx.commit().map_err(|e| self.fail(e))?;
        tracing::info!(path = %self.path.display(), "converted the store to keep versions");
        Ok(())
    }

    /// The writer thread: commit whatever is queued together, then publish and acknowledge.
    fn run_writer(self: Arc<Self>, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut writes = Vec::new();
            let mut compactions = Vec::new();
            let mut next = Some(first);
            while let Some(req) = next {
                match req {
                    Request::Write { key, value, write, reply } => writes.push(((key, value, write), reply)),
                    Request::Compact { revision, reply } => compactions.push((revision, reply)),
                }
                next = if writes.len() < MAX_BATCH { requests.try_recv().ok() } else { None };
            }
            if !writes.is_empty() {
                let (batch, replies): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
                match self.commit(batch) {
                    Ok(mut committed) => {
                        let mut events = Vec::with_capacity(committed.results.len());
                        let answers: Vec<_> = std::mem::take(&mut committed.results)
                            .into_iter()
                            .map(|r| {
                                r.map(|e| {
                                    let kv = e.kv.clone();
                                    events.push(e);
                                    kv
                                })
                            })
                            .collect();
                        // Published before the acknowledgement: a writer's next watch sees its write.
                        self.hub.publish(events);
                        for (answer, reply) in answers.into_iter().zip(replies) {
                            let _ = reply.send(answer);
                        }
                        if let Err(e) = self.compact_by_size(&committed) {
                            tracing::warn!(error = %e, "compacting the store by size failed");
                        }
                    }
                    Err(e) => replies.into_iter().for_each(|r| {
                        let _ = r.send(Err(e.clone()));
                    }),
                }
            }
            for (revision, reply) in compactions {
                let _ = reply.send(self.compact(revision));
            }
        }
    }
}

type VersionsTable = redb::ReadOnlyTable<(&'static str, u64), &'static [u8]>;
type LogTable = redb::ReadOnlyTable<u64, &'static str>;

/// What a read sees: one read transaction's tables and the revisions it was taken at.
struct View<'t> {
    tables: Tables<'t, VersionsTable, LogTable>,
    revision: Revision,
    compacted: Revision,
}

impl History for Inner {
    fn events(&self, read: &HistoryRead) -> Result<(Vec<Event>, Revision), StoreError> {
        self.read(|v| {
            if read.after < v.compacted {
                return Err(StoreError::Compacted { requested: read.after, compacted: v.compacted });
            }
            mvcc::read_events(&v.tables, read)
        })
    }
}

impl RedbStore {
    /// Open (or create) the database file at `path` with the default sizes.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, RedbConfig::default())
    }

    pub fn open_with(path: &Path, config: RedbConfig) -> Result<Self, StoreError> {
        let db = Inner::open_db(path, &config)?;
        let has_legacy = {
            let tx = db.begin_read().map_err(backend)?;
            tx.list_tables().map_err(backend)?.any(|t| t.name() == LEGACY_DATA.name())
        };
        let mut inner = Inner {
            path: path.to_path_buf(),
            config,
            db: RwLock::new(Some(db)),
            broken: AtomicBool::new(false),
            hub: WatchHub::new(0, config.watch_cache_bytes),
        };
        inner.create_tables()?;
        if has_legacy {
            inner.migrate_legacy()?;
        }
        let (revision, _) = inner.revisions()?;
        inner.hub = WatchHub::new(revision, config.watch_cache_bytes);
        let inner = Arc::new(inner);
        let (writer, requests) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let inner = inner.clone();
                move || inner.run_writer(requests)
            })
            .map_err(|e| backend(format!("starting the store's writer: {e}")))?;
        Ok(RedbStore { inner, writer: Some(writer), thread: Some(thread) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(backend)?
    }

    async fn write(&self, key: &str, value: Vec<u8>, write: Write) -> Result<KeyValue, StoreError> {
        let (reply, answer) = oneshot::channel();
        let req = Request::Write { key: key.to_string(), value, write, reply };
        self.writer.as_ref().ok_or_else(closed)?.send(req).map_err(|_| closed())?;
        answer.await.map_err(|_| backend("the store's writer stopped"))?
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer; joining it releases the database file.
        drop(self.writer.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.blocking(move |i| i.read(|v| mvcc::get(&v.tables, &key))).await
    }

    async fn range(&self, req: RangeRequest<'_>) -> Result<Page, StoreError> {
        let (prefix, start) = (req.prefix.to_string(), req.start.map(String::from));
        let (revision, limit) = (req.revision, req.limit);
        self.blocking(move |i| {
            i.read(|v| {
                let at = revision.unwrap_or(v.revision);
                mvcc::check_readable(at, v.compacted, v.revision)?;
                let req = RangeRequest { prefix: &prefix, start: start.as_deref(), revision, limit };
                mvcc::read_range(&v.tables, &req, at)
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        self.write(key, value, Write::Create).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError> {
        self.write(key, value, Write::Update(expected)).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        self.write(key, Vec::new(), Write::Delete(expected)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let (_, compacted) = self.blocking(|i| i.revisions()).await?;
        if after < compacted {
            return Err(StoreError::Compacted { requested: after, compacted });
        }
        Ok(self.inner.hub.watch(prefix, after, self.inner.clone()))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer.as_ref().ok_or_else(closed)?.send(Request::Compact { revision, reply }).map_err(|_| closed())?;
        answer.await.map_err(|_| backend("the store's writer stopped"))?
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        // The last published revision: every write is published right after its commit.
        Ok(self.inner.hub.head())
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.blocking(|i| i.revisions()).await?.1)
    }

    async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<bool, StoreError> {
        Ok(self.inner.hub.wait_for(revision, timeout).await)
    }
}

/// The database file readable by its owner only (it holds every Secret): created so, and an
/// existing one narrowed to it.
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
