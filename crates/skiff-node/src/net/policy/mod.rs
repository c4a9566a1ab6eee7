//! NetworkPolicy enforcement for this node's pods: [`model`] says what each local pod's
//! policies allow (pure), [`render`] writes it as one nftables transaction on the table
//! `skiff-np-<bridge>` of each address family the node has; this module watches
//! NetworkPolicies, pods and namespaces and applies new rulesets whenever what the local pods
//! need changes.

pub mod model;
pub mod render;

use crate::net::cidr::Family;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::watcher;
use std::time::Duration;

/// The table of the policies for the pods on `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("skiff-np-{bridge}")
}

/// Remove the policy tables (when the node runs without policies).
pub fn remove(table: &str) -> Result<(), crate::net::nft::NftError> {
    crate::net::nft::remove_table(Family::V4, table)?;
    crate::net::nft::remove_table(Family::V6, table)
}

/// Enforce the cluster's NetworkPolicies for the pods of `node_name`, in a table for each of
/// `families`, until the process ends.
pub async fn run(client: kube::Client, table: String, node_name: String, families: Vec<Family>) {
    // A family the node no longer has (a dual-stack node restarted single-stack) keeps no table.
    for family in [Family::V4, Family::V6].into_iter().filter(|f| !families.contains(f)) {
        if let Err(e) = crate::net::nft::remove_table(family, &table) {
            tracing::warn!(error = %e, ?family, "removing the policy rules of a family the node no longer has");
        }
    }
    let (policies, policy_events) = crate::watch_cache::watch_all::<NetworkPolicy>(&client, watcher::Config::default());
    let (pods, pod_events) = crate::watch_cache::watch_all::<Pod>(&client, watcher::Config::default());
    let (namespaces, ns_events) = crate::watch_cache::watch_all::<Namespace>(&client, watcher::Config::default());
    let events = futures::stream::select(futures::stream::select(policy_events, pod_events), ns_events);
    let mut events = std::pin::pin!(events);
    let mut programmed: Option<Vec<model::PodPolicy>> = None;
    let mut retry = false;
    loop {
        // After a failure, try again in a second even if nothing changes.
        if retry {
            let _ = tokio::time::timeout(Duration::from_secs(1), events.next()).await;
        } else if events.next().await.is_none() {
            return;
        }
        while let Some(Some(_)) = events.next().now_or_never() {}
        let ready = [
            policies.wait_until_ready().now_or_never(),
            pods.wait_until_ready().now_or_never(),
            namespaces.wait_until_ready().now_or_never(),
        ];
        if ready.iter().any(Option::is_none) {
            continue;
        }
        let (policies_now, pods_now, namespaces_now) = (policies.state(), pods.state(), namespaces.state());
        let all_pods: Vec<&Pod> = pods_now.iter().map(|p| p.as_ref()).collect();
        let local: Vec<&Pod> = all_pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str()))
            .copied()
            .collect();
        let wanted = model::pod_policies(
            &policies_now.iter().map(|p| p.as_ref()).collect::<Vec<_>>(),
            &all_pods,
            &namespaces_now.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
            &local,
        );
        if programmed.as_ref() == Some(&wanted) {
            continue;
        }
        let batches: Vec<_> = families.iter().map(|f| render::ruleset(*f, &table, &wanted)).collect();
        let applied = tokio::task::spawn_blocking(move || batches.iter().try_for_each(crate::net::nft::apply)).await;
        retry = !matches!(applied, Ok(Ok(())));
        match applied {
            Ok(Ok(())) => programmed = Some(wanted),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "programming the network policies");
                programmed = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "programming the network policies");
                programmed = None;
            }
        }
    }
}
