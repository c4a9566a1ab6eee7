//! The long-running components of `skiff server` and `skiff agent` (the store compactor, the
//! node agent, the scheduler, the node endpoint) under one supervisor.
//!
//! Crash-only, as k3s is: every component is critical, so one that ends (with an error, a
//! panic, or by returning at all) stops the process with an error that names it, rather than
//! leaving a cluster that answers but no longer runs pods. Shutdown is ordered: the latest
//! started stops first, so the node side goes before the API server it talks to.

use anyhow::anyhow;
use std::future::Future;
use tokio::task::{AbortHandle, JoinSet};

#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<anyhow::Result<()>>,
    /// Each component's name and handle, in start order.
    started: Vec<(&'static str, AbortHandle)>,
}

impl Supervisor {
    /// Run `component`, which should run until the process stops.
    pub fn spawn(&mut self, name: &'static str, component: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        self.started.push((name, self.tasks.spawn(component)));
    }

    /// Until `stop` completes (a signal: Ok; or something else that ended: its error) or a
    /// component ends (the error, naming it); then stop every component, the latest started
    /// first.
    pub async fn run_until(mut self, stop: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
        let outcome = tokio::select! {
            stopped = stop => stopped,
            Some(done) = self.tasks.join_next_with_id() => {
                let (id, why) = match done {
                    Ok((id, Ok(()))) => (id, anyhow!("it returned")),
                    Ok((id, Err(e))) => (id, e),
                    Err(e) => (e.id(), anyhow!("it panicked: {e}")),
                };
                let name = self.started.iter().find(|(_, h)| h.id() == id).map_or("a component", |(n, _)| n);
                Err(why.context(format!("{name} stopped")))
            }
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %format!("{e:#}"), "stopping skiff");
        }
        for (_, handle) in self.started.iter().rev() {
            handle.abort();
        }
        while self.tasks.join_next().await.is_some() {}
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Sets its flag when dropped: when the task holding it is aborted.
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_component_that_ends_stops_the_rest_and_is_named() {
        let mut s = Supervisor::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(stopped.clone());
        s.spawn("the scheduler", async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        });
        s.spawn("the node agent", async { Err(anyhow!("the bridge is gone")) });
        let err = s.run_until(std::future::pending()).await.expect_err("a component ended");
        assert_eq!(format!("{err:#}"), "the node agent stopped: the bridge is gone");
        assert!(stopped.load(Ordering::SeqCst), "the scheduler was stopped");
    }

    #[tokio::test]
    async fn a_panic_or_a_return_is_an_error_too_and_a_signal_is_not() {
        let mut s = Supervisor::default();
        s.spawn("the compactor", async { panic!("boom") });
        let err = s.run_until(std::future::pending()).await.expect_err("panicked");
        assert!(format!("{err:#}").starts_with("the compactor stopped: it panicked"), "{err:#}");

        let mut s = Supervisor::default();
        s.spawn("the endpoint", async { Ok(()) });
        let err = s.run_until(std::future::pending()).await.expect_err("returned");
        assert_eq!(format!("{err:#}"), "the endpoint stopped: it returned");

        let mut s = Supervisor::default();
        s.spawn("the agent", async {
            std::future::pending::<()>().await;
            Ok(())
        });
        s.run_until(async { Ok(()) }).await.expect("a signal stops everything cleanly");
        // With nothing to supervise, only `stop` ends it, and its error is the outcome.
        Supervisor::default().run_until(async { Ok(()) }).await.expect("signal");
        let err = Supervisor::default().run_until(async { Err(anyhow!("the API server stopped")) }).await;
        assert_eq!(err.map_err(|e| e.to_string()), Err("the API server stopped".to_string()));
    }
}
