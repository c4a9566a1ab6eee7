//! The node agent: runs the pods bound to this node. So far the pure parts: `process` (a Pod's
//! container and its image config → the process to start), `pull` (pull policy and the kubelet's
//! pull messages, plus the local-image hint), `backoff` (the kubelet's 10 s → 5 min back-off),
//! `quantity` (resource quantities), `runtime_spec` (the OCI runtime config of a container),
//! `seccomp` (a container's seccomp filter: the runtime default, Localhost profiles) and
//! `status` (pod phase and conditions from container statuses), `ipam` (pod addresses from the
//! node's subnet, one lease file per address), `logs` (CRI log records and `kubectl logs`
//! selection) and `runtime` (libcontainer).

pub mod agent;
pub mod backoff;
pub mod container;
pub mod env;
pub mod events;
pub mod expand;
pub mod link;
pub mod logs;
pub mod net;
pub mod pod_dir;
pub mod process;
pub mod pull;
pub mod quantity;
pub mod runtime_spec;
pub mod sandbox;
pub mod scheduler;
pub mod seccomp;
pub mod shim;
pub mod status;
pub mod worker;
