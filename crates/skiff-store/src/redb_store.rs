//! The embedded durable backend on redb: every acknowledged write is committed with fsync.
//! An I/O failure (a full disk) fails that request only: redb then refuses everything until the
//! database is reopened, so the next request reopens it (commits are atomic: nothing half-written).

use crate::{Event, EventType, KeyValue, Revision, Store, StoreError, WatchHub, WatchStream};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("data");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION_KEY: &str = "revision";

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn closed() -> StoreError {
    StoreError::Backend("the database is closed after an I/O error and could not be reopened yet".into())
}

/// Stored form: create revision, mod revision (both big-endian u64), then the value.
fn encode(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kv.value.len());
    out.extend_from_slice(&kv.create_revision.to_be_bytes());
    out.extend_from_slice(&kv.mod_revision.to_be_bytes());
    out.extend_from_slice(&kv.value);
    out
}

fn decode(key: &str, raw: &[u8]) -> Result<KeyValue, StoreError> {
    if raw.len() < 16 {
        return Err(StoreError::Backend(format!("corrupt record for {key}")));
    }
    let (c, rest) = raw.split_at(8);
    let (m, value) = rest.split_at(8);
    let num = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    Ok(KeyValue { key: key.into(), value: value.to_vec(), create_revision: num(c), mod_revision: num(m) })
}

struct Inner {
    path: PathBuf,
    /// `None` only between closing after an I/O error and a successful reopen.
    db: RwLock<Option<Database>>,
    /// An I/O error happened: reopen before the next operation.
    broken: AtomicBool,
    /// Serializes writers so that events reach the hub in revision order.
    write: Mutex<()>,
    hub: WatchHub,
}

pub struct RedbStore {
    inner: Arc<Inner>,
}

enum Write {
    Create,
    Update(Revision),
    Delete(Option<Revision>),
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
        let reopened = Database::create(&self.path).map_err(|e| backend(format!("reopening the database: {e}")))?;
        *db = Some(reopened);
        self.broken.store(false, Ordering::SeqCst);
        tracing::warn!(path = %self.path.display(), "reopened the database after an I/O error");
        Ok(())
    }

    fn read_revision(&self) -> Result<Revision, StoreError> {
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_read().map_err(|e| self.fail(e))?;
        match tx.open_table(META) {
            Ok(t) => Ok(t.get(REVISION_KEY).map_err(|e| self.fail(e))?.map(|g| g.value()).unwrap_or(0)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(backend(e)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_read().map_err(|e| self.fail(e))?;
        let table = match tx.open_table(DATA) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        match table.get(key).map_err(|e| self.fail(e))? {
            Some(g) => Ok(Some(decode(key, g.value())?)),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_read().map_err(|e| self.fail(e))?;
        let revision = match tx.open_table(META) {
            Ok(t) => t.get(REVISION_KEY).map_err(|e| self.fail(e))?.map(|g| g.value()).unwrap_or(0),
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((vec![], 0)),
            Err(e) => return Err(backend(e)),
        };
        let table = tx.open_table(DATA).map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for item in table.range(prefix..).map_err(|e| self.fail(e))? {
            let (k, v) = item.map_err(|e| self.fail(e))?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push(decode(k.value(), v.value())?);
        }
        Ok((out, revision))
    }

    fn write(&self, key: &str, value: Vec<u8>, op: Write) -> Result<KeyValue, StoreError> {
        let _writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let guard = self.db()?;
        let tx = guard.as_ref().ok_or_else(closed)?.begin_write().map_err(|e| self.fail(e))?;
        let (kind, kv, prev) = {
            let mut meta = tx.open_table(META).map_err(|e| self.fail(e))?;
            let mut data = tx.open_table(DATA).map_err(|e| self.fail(e))?;
            let revision = meta.get(REVISION_KEY).map_err(|e| self.fail(e))?.map(|g| g.value()).unwrap_or(0) + 1;
            let current = match data.get(key).map_err(|e| self.fail(e))? {
                Some(g) => Some(decode(key, g.value())?),
                None => None,
            };
            let result = match (op, current) {
                (Write::Create, Some(_)) => return Err(StoreError::AlreadyExists(key.into())),
                (Write::Create, None) => {
                    let kv = KeyValue { key: key.into(), value, create_revision: revision, mod_revision: revision };
                    data.insert(key, encode(&kv).as_slice()).map_err(|e| self.fail(e))?;
                    (EventType::Created, kv, None)
                }
                (Write::Update(_) | Write::Delete(_), None) => {
                    return Err(StoreError::NotFound(key.into()));
                }
                (Write::Update(exp) | Write::Delete(Some(exp)), Some(cur)) if cur.mod_revision != exp => {
                    return Err(StoreError::Conflict { key: key.into(), expected: exp, actual: cur.mod_revision });
                }
                (Write::Update(_), Some(cur)) => {
                    let kv = KeyValue {
                        key: key.into(),
                        value,
                        create_revision: cur.create_revision,
                        mod_revision: revision,
                    };
                    data.insert(key, encode(&kv).as_slice()).map_err(|e| self.fail(e))?;
                    (EventType::Updated, kv, Some(cur))
                }
                (Write::Delete(_), Some(cur)) => {
                    data.remove(key).map_err(|e| self.fail(e))?;
                    (EventType::Deleted, KeyValue { mod_revision: revision, ..cur.clone() }, Some(cur))
                }
            };
            meta.insert(REVISION_KEY, revision).map_err(|e| self.fail(e))?;
            result
        };
        tx.commit().map_err(|e| self.fail(e))?;
        self.hub.publish(Event { kind, kv: kv.clone(), prev });
        Ok(kv)
    }
}

impl RedbStore {
    /// Open (or create) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(backend)?;
        let mut inner = Inner {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
            broken: AtomicBool::new(false),
            write: Mutex::new(()),
            hub: WatchHub::new(0),
        };
        let revision = inner.read_revision()?;
        inner.hub = WatchHub::new(revision);
        Ok(RedbStore { inner: Arc::new(inner) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(backend)?
    }
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.blocking(move |i| i.get(&key)).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |i| i.list(&prefix)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let key = key.to_string();
        self.blocking(move |i| i.write(&key, value, Write::Create)).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError> {
        let key = key.to_string();
        self.blocking(move |i| i.write(&key, value, Write::Update(expected))).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let key = key.to_string();
        self.blocking(move |i| i.write(&key, Vec::new(), Write::Delete(expected))).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        self.inner.hub.watch(prefix, after)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.hub.compact(revision);
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.blocking(|i| i.read_revision()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> RedbStore {
        let dir = tempfile::tempdir().expect("tempdir");
        // Keep the directory for the test's lifetime by leaking it; the OS temp cleaner removes it.
        let path = dir.keep().join("store.redb");
        RedbStore::open(&path).expect("open")
    }

    crate::store_conformance!(temp_store());

    #[tokio::test]
    async fn data_and_revision_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let s = RedbStore::open(&path).expect("open");
            s.create("/a", b"1".to_vec()).await.expect("create");
            let kv = s.create("/b", b"2".to_vec()).await.expect("create");
            s.update("/b", b"3".to_vec(), kv.mod_revision).await.expect("update");
        }
        let s = RedbStore::open(&path).expect("reopen");
        assert_eq!(s.current_revision().await.expect("rev"), 3);
        let b = s.get("/b").await.expect("get").expect("present");
        assert_eq!((b.value.as_slice(), b.create_revision, b.mod_revision), (&b"3"[..], 2, 3));
        // History from before the restart is gone: such a watch is expired, a new one works.
        assert!(matches!(s.watch("/", 1).await, Err(StoreError::Compacted { .. })));
        assert!(s.watch("/", 3).await.is_ok());
    }
}
