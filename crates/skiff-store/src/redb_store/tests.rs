use super::*;

fn temp_path() -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir");
    // Keep the directory for the test's lifetime by leaking it; the OS temp cleaner removes it.
    dir.keep().join("store.redb")
}

fn temp_store() -> RedbStore {
    RedbStore::open(&temp_path()).expect("open")
}

crate::store_conformance!(temp_store());

#[tokio::test]
async fn data_history_and_revision_survive_reopen() {
    let path = temp_path();
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
    // The history is durable: a watcher from before the restart resumes where it was.
    crate::testing::expect_events(s.watch("/", 1).await.expect("watch"), &[2, 3]).await;
    let page = s.range(RangeRequest { revision: Some(2), ..RangeRequest::prefix("/") }).await.expect("at 2");
    let values: Vec<&[u8]> = page.items.iter().map(|kv| kv.value.as_slice()).collect();
    assert_eq!(values, [&b"1"[..], &b"2"[..]]);
}

#[tokio::test]
async fn a_database_from_before_versions_is_converted() {
    let path = temp_path();
    {
        let db = Database::create(&path).expect("create");
        let tx = db.begin_write().expect("tx");
        {
            let mut data = tx.open_table(LEGACY_DATA).expect("data");
            let mut record = Vec::new();
            record.extend_from_slice(&4u64.to_be_bytes());
            record.extend_from_slice(&6u64.to_be_bytes());
            record.extend_from_slice(b"old");
            data.insert("/pods/a", record.as_slice()).expect("insert");
            tx.open_table(META).expect("meta").insert(REVISION, 7).expect("insert");
        }
        tx.commit().expect("commit");
    }
    let s = RedbStore::open(&path).expect("open converts");
    let a = s.get("/pods/a").await.expect("get").expect("kept");
    assert_eq!((a.value.as_slice(), a.create_revision, a.mod_revision), (&b"old"[..], 4, 6));
    assert_eq!(s.current_revision().await.expect("rev"), 7);
    assert_eq!(s.compacted_revision().await.expect("compacted"), 7, "no history from before");
    assert!(matches!(s.watch("/", 6).await, Err(StoreError::Compacted { .. })));
    s.update("/pods/a", b"new".to_vec(), 6).await.expect("writes continue after 7");
    assert_eq!(s.get("/pods/a").await.expect("get").expect("present").mod_revision, 8);
}

#[tokio::test]
async fn history_is_compacted_by_size() {
    let config = RedbConfig { history_bytes: 64 << 10, ..RedbConfig::default() };
    let s = RedbStore::open_with(&temp_path(), config).expect("open");
    let mut kv = s.create("/big", vec![1; 8 << 10]).await.expect("create");
    for _ in 0..40 {
        kv = s.update("/big", vec![2; 8 << 10], kv.mod_revision).await.expect("update");
    }
    // The writer compacts after acknowledging; a request queued behind it waits for that.
    s.compact(0).await.expect("no-op compaction");
    let compacted = s.compacted_revision().await.expect("compacted");
    assert!(compacted > 1, "40 superseded 8 KiB versions exceed a 64 KiB budget");
    let history = {
        let guard = s.inner.db().expect("db");
        let tx = guard.as_ref().expect("open").begin_read().expect("tx");
        meta_value(&tx.open_table(META).expect("meta"), HISTORY_BYTES).expect("history bytes")
    };
    assert!(history <= 64 << 10, "history back under its budget: {history}");
    assert_eq!(s.get("/big").await.expect("get").expect("present").mod_revision, kv.mod_revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits() {
    let s: &'static RedbStore = Box::leak(Box::new(temp_store()));
    let tasks: Vec<_> = (0..32)
        .map(|i| tokio::spawn(async move { s.create(&format!("/k/{i}"), vec![]).await.expect("create") }))
        .collect();
    let mut revisions: Vec<Revision> = Vec::new();
    for t in tasks {
        revisions.push(t.await.expect("join").mod_revision);
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=32).collect::<Vec<_>>(), "every write its own revision, none lost");
}

#[test]
fn the_database_file_is_its_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    drop(RedbStore::open(&path).expect("open"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    // An older, wider file is narrowed when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(RedbStore::open(&path).expect("reopen"));
    assert_eq!(mode(&path), 0o600);
}
