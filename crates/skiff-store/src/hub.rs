//! Watch fan-out with a bounded history, shared by the backends that have no native watch.

use crate::{Event, Revision, StoreError, WatchStream};
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events kept for watches that start in the past.
const DEFAULT_HISTORY: usize = 10_000;
/// Events buffered per live watcher before it is declared lagged.
const WATCHER_BUFFER: usize = 4096;

struct History {
    events: VecDeque<Arc<Event>>,
    /// Events at or below this revision are forgotten.
    compacted: Revision,
    capacity: usize,
}

/// Publishes committed events, in revision order, to every watcher.
pub struct WatchHub {
    history: Mutex<History>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl WatchHub {
    /// A hub whose history starts after `revision` (the store's revision when opened).
    pub fn new(revision: Revision) -> Self {
        Self::with_capacity(revision, DEFAULT_HISTORY)
    }

    pub fn with_capacity(revision: Revision, capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(WATCHER_BUFFER);
        WatchHub { history: Mutex::new(History { events: VecDeque::new(), compacted: revision, capacity }), tx }
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // A panic while holding this lock cannot leave History inconsistent (single pushes/pops).
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record and broadcast an event. Callers publish in revision order.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut h = self.lock();
        h.events.push_back(event.clone());
        while h.events.len() > h.capacity {
            if let Some(old) = h.events.pop_front() {
                h.compacted = old.revision();
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    pub fn compact(&self, revision: Revision) {
        let mut h = self.lock();
        while h.events.front().is_some_and(|e| e.revision() <= revision) {
            h.events.pop_front();
        }
        h.compacted = h.compacted.max(revision);
    }

    /// Changes under `prefix` after revision `after`: history first, then live events.
    pub fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let h = self.lock();
        if after < h.compacted {
            return Err(StoreError::Compacted { requested: after, compacted: h.compacted });
        }
        let prefix = prefix.to_string();
        let backlog: Vec<Arc<Event>> =
            h.events.iter().filter(|e| e.revision() > after && e.kv.key.starts_with(&prefix)).cloned().collect();
        // Subscribing under the history lock: publish() also takes it, so no event is missed or doubled.
        let rx = self.tx.subscribe();
        drop(h);
        let live = futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(e) => Some((Ok(e), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Err(StoreError::WatcherLagged), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        let mut lagged = false;
        let live = live
            .filter(move |r| {
                let keep = match r {
                    Ok(e) => e.revision() > after && e.kv.key.starts_with(&prefix),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .take_while(move |r| {
                // End the stream after reporting a lag once.
                let go = !lagged;
                lagged |= r.is_err();
                futures::future::ready(go)
            });
        let stream = futures::stream::iter(backlog.into_iter().map(Ok)).chain(live).map(|r| r.map(|e| (*e).clone()));
        Ok(stream.boxed())
    }
}
