//! skiff's control-plane components (kube-scheduler's and kube-controller-manager's jobs): each
//! watches the API server through the kube client and writes back through it, like any other
//! client, and runs in `skiff server` under its supervisor. The [`scheduler`]; the controller
//! [`manager`] (leader-elected through a Lease, [`leader`]) with the [`replicaset`] (which
//! keeps ReplicationControllers too: [`replicationcontroller`]), [`deployment`], [`job`],
//! [`cronjob`], [`daemonset`], [`statefulset`], [`disruption`], horizontal pod autoscaler ([`hpa`]), [`endpoints`], load balancer ([`service_lb`]), [`ingress_status`],
//! ClusterRole aggregation ([`clusterrole_aggregation`]), every namespace's default account and
//! CA ([`serviceaccounts`]), the CSR signer ([`csr_signing`]), garbage collector ([`gc`]) and
//! persistent [`volume`] (binder, PVC and PV protection) controllers, each a loop over watch
//! caches and a work queue ([`work`]) that carries out what a pure function decided; [`owner`]
//! references.
//! The watch caches are shared by all of them ([`informers`]): one copy of each object, read
//! as the controller manager; each controller writes as its own [`identity`].
//! Nothing here links the node, the image store or the API server's internals: only
//! skiff-core's rules and skiff-client's shared client pieces.

pub mod clusterrole_aggregation;
pub mod cronjob;
pub mod csr_signing;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod gc;
pub mod hpa;
pub mod identity;
pub mod informers;
pub mod ingress_status;
pub mod job;
pub mod leader;
pub mod manager;
pub mod owner;
pub mod replicaset;
pub mod replicationcontroller;
pub mod scheduler;
pub mod service_lb;
pub mod serviceaccounts;
pub mod statefulset;
pub mod template_fields;
pub mod volume;
pub mod work;
