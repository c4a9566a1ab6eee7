//! Watch fan-out for the backends without a native watch. Committed events go to a cache of
//! recent events bounded by bytes; watchers read from it, and from the backend's own history
//! (see [`History`]) when they are further behind than the cache reaches. A slow watcher thus
//! costs nothing but its position: it is never dropped for lagging, only for asking after a
//! revision that compaction has forgotten.

use crate::{Event, Revision, StoreError, WatchItem, WatchStream};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Bytes of recent events kept in memory for watchers. Watchers that keep up read from here;
/// one further behind reads the store's log, so a bigger cache buys little: 16 MiB here cost
/// ~22 MiB more RSS than 4 MiB in `bench/apiserver.sh`, for no change in its figures.
pub const DEFAULT_CACHE_BYTES: usize = 4 << 20;
/// A watcher reads at most this many events, or about this many bytes, at a time.
const BATCH_EVENTS: usize = 256;
const BATCH_BYTES: usize = 4 << 20;

/// A read of past events: those under `prefix` with revisions in (`after`, `upto`], oldest
/// first, stopping after `max_events` or once `max_bytes` are reached.
#[derive(Debug, Clone)]
pub struct HistoryRead {
    pub prefix: String,
    pub after: Revision,
    pub upto: Revision,
    pub max_events: usize,
    pub max_bytes: usize,
}

/// A backend's own record of past events.
pub trait History: Send + Sync + 'static {
    /// The events `read` asks for, and the revision the read covered through. `after` older
    /// than the compacted revision is [`StoreError::Compacted`].
    fn events(&self, read: &HistoryRead) -> Result<(Vec<Event>, Revision), StoreError>;
}

struct Cache {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
    budget: usize,
    /// Every event after this revision is in `events`.
    floor: Revision,
}

impl Cache {
    fn push(&mut self, event: Arc<Event>) {
        let size = event.size();
        if size > self.budget / 4 {
            // Too big to keep: the cache restarts after it.
            self.events.clear();
            self.bytes = 0;
            self.floor = event.revision();
            return;
        }
        self.bytes += size;
        self.events.push_back(event);
        while self.bytes > self.budget {
            let Some(old) = self.events.pop_front() else { break };
            self.bytes -= old.size();
            self.floor = old.revision();
        }
    }

    /// Matching events after `after`, if the cache covers them, and the revision read through.
    fn after(&self, prefix: &str, after: Revision) -> Option<(Vec<Arc<Event>>, Revision)> {
        if after < self.floor {
            return None;
        }
        let start = self.events.partition_point(|e| e.revision() <= after);
        let mut through = self.events.back().map_or(self.floor, |e| e.revision()).max(after);
        let mut out = Vec::new();
        for e in self.events.range(start..) {
            if e.kv.key.starts_with(prefix) {
                out.push(e.clone());
                if out.len() == BATCH_EVENTS {
                    through = e.revision();
                    break;
                }
            }
        }
        Some((out, through))
    }
}

struct Shared {
    cache: Mutex<Cache>,
    /// The revision of the last published event.
    head: watch::Sender<Revision>,
}

/// Publishes committed events, in revision order, to every watcher.
#[derive(Clone)]
pub struct WatchHub {
    shared: Arc<Shared>,
}

impl WatchHub {
    /// A hub whose events start after `revision` (the store's revision when opened), caching
    /// up to `cache_bytes` of them.
    pub fn new(revision: Revision, cache_bytes: usize) -> Self {
        let cache = Cache { events: VecDeque::new(), bytes: 0, budget: cache_bytes, floor: revision };
        let (head, _) = watch::channel(revision);
        WatchHub { shared: Arc::new(Shared { cache: Mutex::new(cache), head }) }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding this lock cannot leave the cache inconsistent (single pushes/pops).
        self.shared.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record committed events (in revision order, with no revision skipped) and wake watchers.
    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        let mut last = None;
        {
            let mut cache = self.cache();
            for e in events {
                last = Some(e.revision());
                cache.push(Arc::new(e));
            }
        }
        if let Some(rev) = last {
            self.shared.head.send_replace(rev);
        }
    }

    /// The revision of the last published event.
    pub fn head(&self) -> Revision {
        *self.shared.head.borrow()
    }

    /// Wait until the head reaches `revision`; false if `timeout` passes first.
    pub async fn wait_for(&self, revision: Revision, timeout: std::time::Duration) -> bool {
        let mut rx = self.shared.head.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|h| *h >= revision)).await.is_ok_and(|r| r.is_ok())
    }

    /// Changes under `prefix` after `after`, read from the cache or else from `history`. The
    /// caller has checked `after` against its compacted revision.
    pub fn watch(&self, prefix: &str, after: Revision, history: Arc<dyn History>) -> WatchStream {
        let watcher = Watcher {
            hub: self.clone(),
            history,
            prefix: prefix.to_string(),
            scanned: after,
            reported: after,
            pending: VecDeque::new(),
            head: self.shared.head.subscribe(),
        };
        Box::pin(futures::stream::unfold(Some(watcher), |w| async move {
            let mut w = w?;
            match w.next().await {
                Some(Ok(item)) => Some((Ok(item), Some(w))),
                // An error ends the stream after it is reported.
                Some(Err(e)) => Some((Err(e), None)),
                None => None,
            }
        }))
    }
}

struct Watcher {
    hub: WatchHub,
    history: Arc<dyn History>,
    prefix: String,
    /// Matching events up to this revision are in `pending` or delivered.
    scanned: Revision,
    /// The last revision reported as progress.
    reported: Revision,
    pending: VecDeque<Arc<Event>>,
    head: watch::Receiver<Revision>,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<WatchItem, StoreError>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                self.reported = self.reported.max(e.revision());
                return Some(Ok(WatchItem::Event(e)));
            }
            let head = *self.head.borrow_and_update();
            if self.scanned < head {
                if let Err(e) = self.fill(head).await {
                    return Some(Err(e));
                }
                continue;
            }
            if self.reported < self.scanned {
                self.reported = self.scanned;
                return Some(Ok(WatchItem::Progress(self.scanned)));
            }
            // The hub is gone only with its store.
            self.head.changed().await.ok()?;
        }
    }

    /// Queue the next batch of matching events after `scanned`, from the cache if it reaches.
    async fn fill(&mut self, head: Revision) -> Result<(), StoreError> {
        let cached = self.hub.cache().after(&self.prefix, self.scanned);
        let (events, through) = match cached {
            Some(found) => found,
            None => {
                let history = self.history.clone();
                let req = HistoryRead {
                    prefix: self.prefix.clone(),
                    after: self.scanned,
                    upto: head,
                    max_events: BATCH_EVENTS,
                    max_bytes: BATCH_BYTES,
                };
                let read = move || history.events(&req);
                let (events, through) = tokio::task::spawn_blocking(read)
                    .await
                    .map_err(|e| StoreError::Backend(format!("reading watch history: {e}")))??;
                (events.into_iter().map(Arc::new).collect(), through)
            }
        };
        self.pending.extend(events);
        self.scanned = through.max(self.scanned);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, KeyValue};

    fn event(rev: Revision, key: &str, bytes: usize) -> Event {
        let kv = KeyValue { key: key.into(), value: vec![0; bytes], create_revision: rev, mod_revision: rev };
        Event { kind: EventType::Created, kv, prev: None }
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_knows_what_it_covers() {
        let mut c = Cache { events: VecDeque::new(), bytes: 0, budget: 1000, floor: 0 };
        for rev in 1..=10 {
            c.push(Arc::new(event(rev, "/a", 150)));
        }
        assert!(c.bytes <= 1000);
        let oldest = c.events.front().map(|e| e.revision()).expect("some");
        assert_eq!(c.floor, oldest - 1);
        assert!(c.after("/", c.floor - 1).is_none(), "older than the cache reaches");
        let (got, through) = c.after("/", 9).expect("covered");
        assert_eq!((got.len(), through), (1, 10));
        c.push(Arc::new(event(11, "/a", 600)));
        assert_eq!((c.events.len(), c.floor), (0, 11), "an event over a quarter of the budget restarts the cache");
        assert_eq!(c.after("/", 11).map(|(e, t)| (e.len(), t)), Some((0, 11)));
    }

    struct NoHistory;
    impl History for NoHistory {
        fn events(&self, read: &HistoryRead) -> Result<(Vec<Event>, Revision), StoreError> {
            Err(StoreError::Compacted { requested: read.after, compacted: read.after + 1 })
        }
    }

    #[tokio::test]
    async fn watchers_get_events_then_progress_and_history_errors_end_them() {
        use futures::StreamExt;
        let hub = WatchHub::new(0, 1 << 20);
        let mut w = hub.watch("/a", 0, Arc::new(NoHistory));
        hub.publish([event(1, "/a/x", 1), event(2, "/b/y", 1)]);
        match w.next().await {
            Some(Ok(WatchItem::Event(e))) => assert_eq!(e.revision(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.next().await, Some(Ok(WatchItem::Progress(2))));
        assert!(hub.wait_for(2, std::time::Duration::from_millis(10)).await);
        assert!(!hub.wait_for(3, std::time::Duration::from_millis(10)).await);
        // Behind the cache: the backend's history answers (here: compacted), and the stream ends.
        let small = WatchHub::new(5, 1 << 20);
        small.publish([event(6, "/a", 1)]);
        let mut w = small.watch("/", 2, Arc::new(NoHistory));
        assert!(matches!(w.next().await, Some(Err(StoreError::Compacted { .. }))));
        assert!(w.next().await.is_none());
    }
}
