//! The controller manager: every controller of `skiff server` under one Lease, so that of
//! several servers sharing a store exactly one acts. Losing the lease stops them all (and the
//! supervisor stops the server, crash-only, as kube-controller-manager exits).

use crate::informers::Informers;
use crate::leader::{self, Election, LeaderError};
use std::sync::Arc;

/// What the controllers are given besides the API.
pub struct Options {
    /// The cluster CA (PEM) every namespace is given.
    pub root_ca: Arc<str>,
    /// The CA that signs approved CSRs (None: a cluster whose CA key is not kept signs none).
    pub signing: Option<crate::csr_signing::Signing>,
    /// The ports the nodes listen on themselves: no load balancer takes them.
    pub reserved_ports: Vec<crate::service_lb::ReservedPort>,
}

/// Run the controllers as `identity` once it leads, reading the caches of `informers`; returns
/// only when leadership is lost.
pub async fn run(informers: Arc<Informers>, identity: &str, options: Options) -> Result<(), LeaderError> {
    let Options { root_ca, signing, reserved_ports } = options;
    let client = informers.client().clone();
    let work = async move {
        tokio::join!(
            crate::replicaset::run(&informers),
            crate::replicationcontroller::run(&informers),
            crate::deployment::run(&informers),
            crate::job::run(&informers),
            crate::cronjob::run(&informers),
            crate::daemonset::run(&informers),
            crate::statefulset::run(&informers),
            crate::disruption::run(&informers),
            crate::hpa::run(&informers),
            crate::endpoints::run(&informers),
            crate::service_lb::run(&informers, reserved_ports),
            crate::ingress_status::run(&informers),
            crate::clusterrole_aggregation::run(&informers),
            crate::serviceaccounts::run(&informers, root_ca),
            async {
                if let Some(signing) = signing {
                    crate::csr_signing::run(&informers, signing).await;
                }
            },
            crate::gc::run(informers.client_as(crate::identity::GARBAGE_COLLECTOR)),
            crate::volume::binder::run(&informers),
            crate::volume::pvc_protection::run(&informers),
            crate::volume::pv_protection::run(&informers),
            crate::volume::resize::run(&informers),
        );
    };
    leader::lead(client, Election::controller_manager(identity), work).await
}
