//! skiff's control-plane components (kube-scheduler's and kube-controller-manager's jobs): each
//! watches the API server through the kube client and writes back through it, like any other
//! client, and runs in `skiff server` under its supervisor. For now the [`scheduler`]; the
//! workload controllers (ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, ...) live here as
//! they come, one module each. Nothing here links the node, the image store or the API server's
//! internals: only skiff-core's rules and skiff-client's shared client pieces.

pub mod scheduler;
