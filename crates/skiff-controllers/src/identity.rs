//! Who each component acts as. As kube-controller-manager with
//! `--use-service-account-credentials`, each controller writes as its own ServiceAccount,
//! `kube-system/<account>`, held to the `system:controller:<account>` ClusterRole; the shared
//! watch caches read as the controller manager itself (`system:kube-controller-manager`, which
//! may list and watch everything); the scheduler writes as `system:kube-scheduler`.

use skiff_core::auth::bootstrap::CONTROLLER_NAMESPACE;
use skiff_core::auth::user::{KUBE_SCHEDULER, service_account_groups, service_account_username};

/// An identity a component acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A controller's ServiceAccount in kube-system (upstream's account name).
    Controller(&'static str),
    /// kube-scheduler's user.
    Scheduler,
}

impl Identity {
    /// The user name the API server sees.
    pub fn user(&self) -> String {
        match self {
            Identity::Controller(account) => service_account_username(CONTROLLER_NAMESPACE, account),
            Identity::Scheduler => KUBE_SCHEDULER.into(),
        }
    }

    /// The groups the API server sees (besides `system:authenticated`, which every
    /// authenticated user holds).
    pub fn groups(&self) -> Vec<String> {
        match self {
            Identity::Controller(_) => service_account_groups(CONTROLLER_NAMESPACE),
            Identity::Scheduler => Vec::new(),
        }
    }
}

pub const REPLICASET: Identity = Identity::Controller("replicaset-controller");
pub const REPLICATION_CONTROLLER: Identity = Identity::Controller("replication-controller");
pub const DEPLOYMENT: Identity = Identity::Controller("deployment-controller");
pub const JOB: Identity = Identity::Controller("job-controller");
pub const TTL_AFTER_FINISHED: Identity = Identity::Controller("ttl-after-finished-controller");
pub const CRONJOB: Identity = Identity::Controller("cronjob-controller");
pub const DAEMONSET: Identity = Identity::Controller("daemon-set-controller");
pub const STATEFULSET: Identity = Identity::Controller("statefulset-controller");
pub const DISRUPTION: Identity = Identity::Controller("disruption-controller");
pub const HPA: Identity = Identity::Controller("horizontal-pod-autoscaler");
pub const ENDPOINTS: Identity = Identity::Controller("endpoint-controller");
pub const ENDPOINT_SLICES: Identity = Identity::Controller("endpointslice-controller");
pub const SERVICE_LB: Identity = Identity::Controller("service-controller");
pub const INGRESS_STATUS: Identity = Identity::Controller("ingress-status-controller");
pub const CLUSTERROLE_AGGREGATION: Identity = Identity::Controller("clusterrole-aggregation-controller");
pub const SERVICE_ACCOUNTS: Identity = Identity::Controller("service-account-controller");
pub const ROOT_CA_PUBLISHER: Identity = Identity::Controller("root-ca-cert-publisher");
pub const CSR_SIGNING: Identity = Identity::Controller("certificate-controller");
pub const GARBAGE_COLLECTOR: Identity = Identity::Controller("generic-garbage-collector");
pub const PERSISTENT_VOLUME_BINDER: Identity = Identity::Controller("persistent-volume-binder");
pub const PVC_PROTECTION: Identity = Identity::Controller("pvc-protection-controller");
pub const PV_PROTECTION: Identity = Identity::Controller("pv-protection-controller");
pub const EXPAND: Identity = Identity::Controller("expand-controller");

/// Every controller account, for checks that each has its role.
pub const CONTROLLERS: &[Identity] = &[
    REPLICASET,
    REPLICATION_CONTROLLER,
    DEPLOYMENT,
    JOB,
    TTL_AFTER_FINISHED,
    CRONJOB,
    DAEMONSET,
    STATEFULSET,
    DISRUPTION,
    HPA,
    ENDPOINTS,
    ENDPOINT_SLICES,
    SERVICE_LB,
    INGRESS_STATUS,
    CLUSTERROLE_AGGREGATION,
    SERVICE_ACCOUNTS,
    ROOT_CA_PUBLISHER,
    CSR_SIGNING,
    GARBAGE_COLLECTOR,
    PERSISTENT_VOLUME_BINDER,
    PVC_PROTECTION,
    PV_PROTECTION,
    EXPAND,
];

/// Makes clients that act as an identity (`skiff server` mints each a client certificate).
pub trait Credentials: Send + Sync {
    fn client(&self, who: Identity) -> kube::Client;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_api_server_sees_them() {
        assert_eq!(REPLICASET.user(), "system:serviceaccount:kube-system:replicaset-controller");
        assert_eq!(REPLICASET.groups(), ["system:serviceaccounts", "system:serviceaccounts:kube-system"]);
        assert_eq!(Identity::Scheduler.user(), "system:kube-scheduler");
        assert!(Identity::Scheduler.groups().is_empty());
    }
}
