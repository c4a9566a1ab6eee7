//! The controller manager: every controller of `skiff server` under one Lease, so that of
//! several servers sharing a store exactly one acts. Losing the lease stops them all (and the
//! supervisor stops the server, crash-only, as kube-controller-manager exits).

use crate::leader::{self, Election, LeaderError};

/// Run the controllers as `identity` once it leads; returns only when leadership is lost.
pub async fn run(client: kube::Client, identity: &str) -> Result<(), LeaderError> {
    let work = {
        let client = client.clone();
        async move {
            tokio::join!(
                crate::replicaset::run(client.clone()),
                crate::deployment::run(client.clone()),
                crate::job::run(client.clone()),
                crate::cronjob::run(client.clone()),
                crate::daemonset::run(client.clone()),
                crate::disruption::run(client.clone()),
                crate::hpa::run(client.clone()),
                crate::gc::run(client),
            );
        }
    };
    leader::lead(client, Election::controller_manager(identity), work).await
}
