//! Compaction on a schedule, as kube-apiserver runs it against etcd: at every tick, forget what
//! is older than the revision seen at the previous tick, so the history always spans at least
//! one interval (a watcher or a paginated list has that long to catch up).

use crate::Store;
use std::sync::Arc;
use std::time::Duration;

/// Compact `store` every `interval`, for as long as the future is polled (it never ends).
pub async fn run_compactor(store: Arc<dyn Store>, interval: Duration) {
    {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut previous = None;
        loop {
            ticks.tick().await;
            if let Some(revision) = previous
                && let Err(e) = store.compact(revision).await
            {
                tracing::warn!(error = %e, revision, "scheduled compaction failed");
            }
            previous = store.current_revision().await.ok();
        }
    }
}
