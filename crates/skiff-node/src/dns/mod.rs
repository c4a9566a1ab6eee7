//! Cluster DNS, served by every node itself: [`records`] is the zone's content from Services
//! and EndpointSlices, pure, rebuilt from each of the node's service snapshots
//! (`crate::service_view`); [`server`] answers it over
//! UDP and TCP (hickory-server, see docs/notes/hickory-dns.md) and forwards other names to the
//! node's resolvers; [`resolv`] and [`hosts`] are a pod's resolv.conf, host name and hosts file.

pub mod hosts;
pub mod records;
pub mod resolv;
pub mod server;

use crate::service_view::Snapshot;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolveHosts;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use records::Zone;
use resolv::ClusterDnsConfig;
use server::{ClusterDns, DnsError};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;

/// Serve the cluster DNS on `config.ip` port 53 (an address of this machine), its zone built
/// from each of `snapshots`; other names go to the resolvers of this machine's
/// `/etc/resolv.conf`. Serves until the returned server is dropped.
pub async fn start(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    config: &ClusterDnsConfig,
) -> Result<hickory_server::Server<ClusterDns>, DnsError> {
    let first = {
        let s = snapshots.borrow();
        if s.listed { Zone::build(&config.domain, &s.services, &s.slices) } else { Zone::unlisted(&config.domain) }
    };
    let (tx, rx) = watch::channel(Arc::new(first));
    let dns = ClusterDns::new(&config.domain, rx, upstream(IpAddr::V4(config.ip)))?;
    let (server, _) = server::serve(SocketAddr::new(IpAddr::V4(config.ip), 53), dns).await?;
    tokio::spawn(keep_current(snapshots, config.domain.clone(), tx));
    Ok(server)
}

/// A new zone for each snapshot that has every name, until nobody asks any more.
async fn keep_current(mut snapshots: watch::Receiver<Arc<Snapshot>>, domain: String, zone: watch::Sender<Arc<Zone>>) {
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.listed && zone.send(Arc::new(Zone::build(&domain, &snapshot.services, &snapshot.slices))).is_err() {
            return;
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

/// A resolver over this machine's name servers, never `ours` (that would loop); None when the
/// machine has none.
fn upstream(ours: IpAddr) -> Option<TokioResolver> {
    let (mut config, opts) = match hickory_resolver::system_conf::read_system_conf() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "reading /etc/resolv.conf: names outside the cluster will not resolve");
            return None;
        }
    };
    config.name_servers.retain(|ns| ns.ip != ours);
    if config.name_servers.is_empty() {
        return None;
    }
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = opts;
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder.build().map_err(|e| tracing::warn!(error = %e, "the upstream resolver")).ok()
}
