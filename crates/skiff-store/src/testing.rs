//! The behaviour every [`Store`] backend must have. A backend's tests call
//! [`store_conformance!`](crate::store_conformance) with an expression that makes a fresh store.

use crate::{EventType, RangeRequest, Revision, Store, StoreError, WatchItem};
use futures::StreamExt;
use std::time::Duration;

async fn next_item(w: &mut crate::WatchStream) -> WatchItem {
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(Some(Ok(item))) => item,
        other => panic!("expected a watch item, got {other:?}"),
    }
}

/// The next event, skipping progress reports.
async fn next_event(w: &mut crate::WatchStream) -> crate::Event {
    loop {
        if let WatchItem::Event(e) = next_item(w).await {
            return (*e).clone();
        }
    }
}

/// Read as many events from `w` as `revisions` has, and check their revisions.
pub async fn expect_events(mut w: crate::WatchStream, revisions: &[Revision]) {
    let mut got = Vec::new();
    while got.len() < revisions.len() {
        got.push(next_event(&mut w).await.revision());
    }
    assert_eq!(got, revisions);
}

fn values(page: &crate::Page) -> Vec<(&str, &[u8])> {
    page.items.iter().map(|kv| (kv.key.as_str(), kv.value.as_slice())).collect()
}

pub async fn range_reads_at_a_revision_and_paginates(s: &dyn Store) {
    s.create("/p/a", b"a1".to_vec()).await.expect("create");
    let b = s.create("/p/b", b"b1".to_vec()).await.expect("create");
    s.create("/p/c", b"c1".to_vec()).await.expect("create");
    s.create("/q/z", b"z".to_vec()).await.expect("create");
    let snapshot = s.current_revision().await.expect("rev");
    s.update("/p/b", b"b2".to_vec(), b.mod_revision).await.expect("update");
    s.delete("/p/c", None).await.expect("delete");
    s.create("/p/d", b"d1".to_vec()).await.expect("create");

    let now = s.range(RangeRequest::prefix("/p/")).await.expect("now");
    assert_eq!(values(&now), [("/p/a", &b"a1"[..]), ("/p/b", b"b2"), ("/p/d", b"d1")]);
    assert_eq!(now.revision, snapshot + 3);
    let then = s.range(RangeRequest { revision: Some(snapshot), ..RangeRequest::prefix("/p/") }).await.expect("then");
    assert_eq!(values(&then), [("/p/a", &b"a1"[..]), ("/p/b", b"b1"), ("/p/c", b"c1")]);
    assert_eq!(then.revision, snapshot);

    // Pages at the first page's revision make one consistent list.
    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let req = RangeRequest { prefix: "/p/", start: start.as_deref(), revision: Some(snapshot), limit: 2 };
        let page = s.range(req).await.expect("page");
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        start = page.items.last().map(|kv| format!("{}\0", kv.key));
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, ["/p/a", "/p/b", "/p/c"]);
    let last = s.range(RangeRequest { limit: 3, ..RangeRequest::prefix("/p/") }).await.expect("exact fit");
    assert!(!last.more, "no more when the page ends with the last key");

    let future = s.range(RangeRequest { revision: Some(now.revision + 1), ..RangeRequest::prefix("/p/") }).await;
    assert!(matches!(future, Err(StoreError::FutureRevision { .. })), "{future:?}");
    s.compact(snapshot + 1).await.expect("compact");
    let old = s.range(RangeRequest { revision: Some(snapshot), ..RangeRequest::prefix("/p/") }).await;
    assert!(matches!(old, Err(StoreError::Compacted { .. })), "{old:?}");
    let at = s.range(RangeRequest { revision: Some(snapshot + 1), ..RangeRequest::prefix("/p/") }).await;
    assert_eq!(
        values(&at.expect("at the compacted revision")),
        [("/p/a", &b"a1"[..]), ("/p/b", b"b2"), ("/p/c", b"c1")]
    );
    assert_eq!(s.compacted_revision().await.expect("compacted"), snapshot + 1);
}

pub async fn watch_reports_progress_and_waits_for_revisions(s: &dyn Store) {
    let start = s.current_revision().await.expect("rev");
    let mut w = s.watch("/a/", start).await.expect("watch");
    s.create("/b/x", vec![]).await.expect("create elsewhere");
    assert_eq!(next_item(&mut w).await, WatchItem::Progress(start + 1), "caught up past a foreign write");
    let a = s.create("/a/x", vec![]).await.expect("create");
    assert!(matches!(next_item(&mut w).await, WatchItem::Event(e) if e.revision() == a.mod_revision));
    assert!(s.wait_for(a.mod_revision, Duration::from_millis(10)).await.expect("wait"));
    assert!(!s.wait_for(a.mod_revision + 1, Duration::from_millis(50)).await.expect("wait"));
}

pub async fn slow_watchers_read_history_past_the_cache(s: &dyn Store) {
    let start = s.current_revision().await.expect("rev");
    let w = s.watch("/big/", start).await.expect("watch");
    // 48 MiB of events, more than the watch cache keeps (4 MiB): the oldest come from the store.
    let mut kv = s.create("/big/x", vec![0; 1 << 20]).await.expect("create");
    for i in 1..48u8 {
        kv = s.update("/big/x", vec![i; 1 << 20], kv.mod_revision).await.expect("update");
    }
    let revisions: Vec<Revision> = (start + 1..=kv.mod_revision).collect();
    expect_events(w, &revisions).await;
    let mut w = s.watch("/big/", start).await.expect("watch again");
    let first = next_event(&mut w).await;
    assert_eq!((first.kind, first.kv.value.len(), first.kv.value[0]), (EventType::Created, 1 << 20, 0));
    let second = next_event(&mut w).await;
    assert_eq!((second.kv.value[0], second.prev.map(|p| p.value[0])), (1, Some(0)));
}

pub async fn create_get_list(s: &dyn Store) {
    assert_eq!(s.current_revision().await.expect("rev"), 0);
    let a = s.create("/pods/default/a", b"A".to_vec()).await.expect("create a");
    assert_eq!((a.create_revision, a.mod_revision), (1, 1));
    s.create("/pods/default/b", b"B".to_vec()).await.expect("create b");
    s.create("/pods/other/c", b"C".to_vec()).await.expect("create c");
    s.create("/podsx/x", b"X".to_vec()).await.expect("create x");
    assert_eq!(
        s.create("/pods/default/a", b"again".to_vec()).await,
        Err(StoreError::AlreadyExists("/pods/default/a".into()))
    );
    let got = s.get("/pods/default/a").await.expect("get").expect("present");
    assert_eq!(got.value, b"A");
    assert_eq!(s.get("/pods/default/zzz").await.expect("get"), None);
    let (items, rev) = s.list("/pods/").await.expect("list");
    let keys: Vec<&str> = items.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["/pods/default/a", "/pods/default/b", "/pods/other/c"]);
    assert_eq!(rev, 4);
    let (items, _) = s.list("/pods/default/").await.expect("list ns");
    assert_eq!(items.len(), 2);
}

pub async fn update_compare_and_swap(s: &dyn Store) {
    let a = s.create("/k", b"1".to_vec()).await.expect("create");
    let b = s.update("/k", b"2".to_vec(), a.mod_revision).await.expect("update");
    assert_eq!((b.create_revision, b.mod_revision), (a.create_revision, a.mod_revision + 1));
    let stale = s.update("/k", b"3".to_vec(), a.mod_revision).await;
    assert_eq!(stale, Err(StoreError::Conflict { key: "/k".into(), expected: a.mod_revision, actual: b.mod_revision }));
    assert_eq!(s.get("/k").await.expect("get").expect("present").value, b"2");
    assert_eq!(s.update("/missing", b"x".to_vec(), 1).await, Err(StoreError::NotFound("/missing".into())));
}

pub async fn delete_with_and_without_precondition(s: &dyn Store) {
    let a = s.create("/k", b"1".to_vec()).await.expect("create");
    assert!(matches!(s.delete("/k", Some(a.mod_revision + 10)).await, Err(StoreError::Conflict { .. })));
    let gone = s.delete("/k", Some(a.mod_revision)).await.expect("delete");
    assert_eq!(gone.value, b"1");
    assert_eq!(gone.mod_revision, a.mod_revision + 1);
    assert_eq!(s.get("/k").await.expect("get"), None);
    assert_eq!(s.delete("/k", None).await, Err(StoreError::NotFound("/k".into())));
    s.create("/k", b"new".to_vec()).await.expect("recreate");
    s.delete("/k", None).await.expect("unconditional delete");
    assert_eq!(s.current_revision().await.expect("rev"), 4);
}

pub async fn watch_live_and_from_history(s: &dyn Store) {
    let start = s.current_revision().await.expect("rev");
    let mut live = s.watch("/pods/", start).await.expect("watch");
    let a = s.create("/pods/a", b"1".to_vec()).await.expect("create");
    s.create("/other/z", b"z".to_vec()).await.expect("create other");
    let a2 = s.update("/pods/a", b"2".to_vec(), a.mod_revision).await.expect("update");
    s.delete("/pods/a", None).await.expect("delete");

    let e = next_event(&mut live).await;
    assert_eq!((e.kind, e.kv.value.as_slice(), e.revision()), (EventType::Created, &b"1"[..], a.mod_revision));
    let e = next_event(&mut live).await;
    assert_eq!((e.kind, e.revision()), (EventType::Updated, a2.mod_revision));
    assert_eq!(e.prev.as_ref().map(|p| p.value.as_slice()), Some(&b"1"[..]));
    let e = next_event(&mut live).await;
    assert_eq!((e.kind, e.kv.value.as_slice()), (EventType::Deleted, &b"2"[..]));
    assert_eq!(e.revision(), a2.mod_revision + 1);
    assert_eq!(e.prev.as_ref().map(|p| p.mod_revision), Some(a2.mod_revision));

    // Starting in the past replays only what came after that revision.
    let mut replay = s.watch("/pods/", a.mod_revision).await.expect("watch from history");
    assert_eq!(next_event(&mut replay).await.kind, EventType::Updated);
    assert_eq!(next_event(&mut replay).await.kind, EventType::Deleted);
}

pub async fn watch_of_compacted_revision_fails(s: &dyn Store) {
    for i in 0..5 {
        s.create(&format!("/k{i}"), vec![]).await.expect("create");
    }
    s.compact(3).await.expect("compact");
    assert!(matches!(s.watch("/", 1).await, Err(StoreError::Compacted { .. })));
    let mut w = s.watch("/", 3).await.expect("watch at compaction point");
    assert_eq!(next_event(&mut w).await.revision(), 4);
}

pub async fn concurrent_writers_get_distinct_revisions(s: &'static dyn Store) {
    let base = s.create("/counter", b"0".to_vec()).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for j in 0..10 {
                s.create(&format!("/c/{i}/{j}"), vec![]).await.expect("create");
                loop {
                    let cur = s.get("/counter").await.expect("get").expect("present");
                    let n: u64 = String::from_utf8_lossy(&cur.value).parse().unwrap_or(0);
                    match s.update("/counter", (n + 1).to_string().into_bytes(), cur.mod_revision).await {
                        Ok(_) => {
                            wins += 1;
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            wins
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("join");
    }
    assert_eq!(total, 80);
    let counter = s.get("/counter").await.expect("get").expect("present");
    assert_eq!(counter.value, b"80");
    let (items, rev) = s.list("/c/").await.expect("list");
    assert_eq!(items.len(), 80);
    assert_eq!(rev, base.mod_revision + 160);
}

/// Generates one `#[tokio::test]` per conformance case for the store made by `$make`.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        #[tokio::test]
        async fn conformance_create_get_list() {
            $crate::testing::create_get_list(&$make).await;
        }
        #[tokio::test]
        async fn conformance_update_compare_and_swap() {
            $crate::testing::update_compare_and_swap(&$make).await;
        }
        #[tokio::test]
        async fn conformance_delete() {
            $crate::testing::delete_with_and_without_precondition(&$make).await;
        }
        #[tokio::test]
        async fn conformance_watch() {
            $crate::testing::watch_live_and_from_history(&$make).await;
        }
        #[tokio::test]
        async fn conformance_compaction() {
            $crate::testing::watch_of_compacted_revision_fails(&$make).await;
        }
        #[tokio::test]
        async fn conformance_range_at_revision() {
            $crate::testing::range_reads_at_a_revision_and_paginates(&$make).await;
        }
        #[tokio::test]
        async fn conformance_watch_progress() {
            $crate::testing::watch_reports_progress_and_waits_for_revisions(&$make).await;
        }
        #[tokio::test]
        async fn conformance_slow_watchers() {
            $crate::testing::slow_watchers_read_history_past_the_cache(&$make).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_concurrent_writers() {
            let store: &'static dyn $crate::Store = Box::leak(Box::new($make));
            $crate::testing::concurrent_writers_get_distinct_revisions(store).await;
        }
    };
}
