//! The service proxy (kube-proxy's job, in the node agent): traffic to a Service's cluster IP,
//! node ports and load-balancer addresses goes to one of its ready endpoints, by nftables rules
//! in a table of skiff's own (`ip skiff-svc-<bridge>`, and `ip6 skiff-svc-<bridge>` on a
//! dual-stack node). [`model`] says what each Service port needs, [`render`] writes it as one
//! nftables transaction; this module follows the node's service snapshots and applies a new
//! ruleset whenever what the ports need changes.
//!
//! Rules stay when the agent stops (pods keep running, and so does their traffic); the next
//! start replaces them in one transaction, which keeps established connections (their
//! translation lives in conntrack); after that each change rewrites only the Service ports
//! that changed (affinity sets and everything else stay). `--disable-service-proxy` removes the table. UDP and SCTP
//! translations to an endpoint that left are deleted from conntrack (`crate::net::conntrack`).
//!
//! In front of the rules, TCP connections to cluster IPs are balanced when they are made
//! ([`socket_lb`], unless `--disable-socket-lb`), from the same model.

pub mod model;
pub mod render;
pub mod socket_lb;

use crate::net::cidr::Family;
use crate::service_view::Snapshot;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How soon a ruleset the kernel refused is tried again.
const RETRY: Duration = Duration::from_secs(1);

pub struct ProxyConfig {
    /// The nftables table (one per node bridge, so test nodes on one machine stay apart).
    pub table: String,
    pub node_name: String,
    /// Addresses the node answers itself (the cluster DNS): not proxied.
    pub skip: Vec<IpAddr>,
    /// The pods' networks: their traffic is the cluster's own (see `render::ruleset`).
    pub in_cluster: Vec<crate::net::cidr::Cidr>,
    /// The families this node's pods have addresses in: one table each.
    pub families: Vec<Family>,
    /// Balance TCP connections to cluster IPs at `connect()` as well ([`socket_lb`]).
    pub socket_lb: bool,
}

/// The table of the proxy for the pods on `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("skiff-svc-{bridge}")
}

/// Program the rules for every snapshot, until the snapshots end.
pub async fn run(config: ProxyConfig, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
    // A family the node no longer has (a dual-stack node restarted single-stack) keeps no table.
    for family in [Family::V4, Family::V6].into_iter().filter(|f| !config.families.contains(f)) {
        if let Err(e) = crate::net::nft::remove_table(family, &config.table) {
            tracing::warn!(error = %e, ?family, "removing the service rules of a family the node no longer has");
        }
    }
    // Routed service traffic needs forwarding.
    for family in &config.families {
        if let Err(e) = crate::net::forwarding(*family) {
            tracing::warn!(error = %e, "Service traffic may not be forwarded");
        }
    }
    let mut socket_lb = (config.socket_lb && config.families.contains(&Family::V4)).then(attach_socket_lb).flatten();
    // Per family, what its table holds (None: unknown, so the next ruleset is whole).
    let mut programmed: Vec<(Family, Option<Vec<model::Port>>)> = config.families.iter().map(|f| (*f, None)).collect();
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let mut failed = false;
        if snapshot.listed {
            for (family, table) in &mut programmed {
                let ports = model::ports(&snapshot, &config.node_name, &config.skip, *family);
                // The rules first: they are the whole truth, the balancer a short cut.
                failed |= !program(&config, *family, &ports, table).await;
                if let (Family::V4, Some(lb)) = (*family, socket_lb.as_mut())
                    && let Err(e) = lb.update(&ports)
                {
                    tracing::warn!(error = %e, "balancing connections to cluster IPs at connect (the rules still do)");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(RETRY).await;
            continue;
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

/// Bring `family`'s table from `programmed` to what `snapshot` needs; false if that failed
/// (then `programmed` is None: the next try writes the whole table).
async fn program(
    config: &ProxyConfig,
    family: Family,
    ports: &[model::Port],
    programmed: &mut Option<Vec<model::Port>>,
) -> bool {
    if programmed.as_deref() == Some(ports) {
        return true;
    }
    let started = Instant::now();
    // The first time (and after a failure) the whole table; then what changed.
    let batch = match &*programmed {
        Some(before) => render::update(family, &config.table, before, ports, &config.in_cluster),
        None => render::ruleset(family, &config.table, ports, &config.in_cluster),
    };
    let messages = batch.len();
    match tokio::task::spawn_blocking(move || crate::net::nft::apply(&batch)).await {
        Ok(Ok(())) => {
            tracing::debug!(?family, ports = ports.len(), messages, took = ?started.elapsed(), "service rules programmed");
            let stale = model::stale(programmed.as_deref().unwrap_or_default(), ports);
            if !stale.is_empty() {
                forget(stale);
            }
            *programmed = Some(ports.to_vec());
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, ?family, "programming the service rules");
            *programmed = None;
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, ?family, "programming the service rules");
            true
        }
    }
}

/// The socket-level balancer, or None (logged) where the kernel or the host does not allow it.
fn attach_socket_lb() -> Option<socket_lb::SocketLb> {
    match socket_lb::SocketLb::attach() {
        Ok(lb) => Some(lb),
        Err(e) => {
            tracing::warn!(error = %e, "connections to cluster IPs are balanced by the nftables rules alone");
            None
        }
    }
}

/// Delete the tracked connections to endpoints that left (in the background: a dump of the
/// whole table can take a moment).
fn forget(stale: Vec<crate::net::conntrack::Stale>) {
    tokio::task::spawn_blocking(move || match crate::net::conntrack::forget(&stale) {
        Ok(n) => tracing::debug!(deleted = n, "stale connection tracking entries"),
        Err(e) => tracing::warn!(error = %e, "deleting stale connection tracking entries"),
    });
}

/// Remove the proxy's tables (when the node runs without it).
pub fn remove(table: &str) -> Result<(), crate::net::nft::NftError> {
    crate::net::nft::remove_table(Family::V4, table)?;
    crate::net::nft::remove_table(Family::V6, table)
}
