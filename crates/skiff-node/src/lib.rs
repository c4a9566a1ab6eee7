//! The node side of skiff (the kubelet's job), by process and concern:
//!
//! - [`agent`]: the node agent (in `skiff server`, or alone as `skiff agent`): the Node, its
//!   heartbeat, one pod worker per pod (`agent::worker`: the pure `plan` and the loop that
//!   carries it out), the sandbox handle, container preparation, pulls and back-off;
//! - [`shim`]: what runs in a pod's shim process (`shim::control`, which links no libcontainer:
//!   tidy checks it) and in the short-lived helpers (`shim::runtime`: libcontainer's
//!   `container-start` and `container-exec`; `shim::build_step`);
//! - [`link`]: the node API's node side (`skiff_nodeapi::NodeLink` for this machine's pods, and
//!   `skiff agent`'s endpoint), with attach as the agent runs it;
//! - [`exec`]: a command in a running container through `container-exec` (`kubectl exec`, exec
//!   probes and hooks);
//! - [`net`]: pod networking (veth and bridge, addresses, outbound NAT, host ports);
//! - [`dns`]: cluster DNS (the zone's records from Services and EndpointSlices);
//! - [`logs`]: CRI log files (written by the shim, read for `kubectl logs`);
//! - shared by those: [`pod_dir`] (the state on disk the agent and the shim share), and the pure
//!   translation of a pod's container to the OCI spec: [`process`], [`expand`], [`runtime_spec`],
//!   [`seccomp`]; [`status`] (pod status and the kubelet's reasons).
//!
//! Modules are `pub` for the binary and the root tests; the module graph has no cycles (tidy).

pub mod agent;
pub mod dns;
pub(crate) mod exec;
pub mod expand;
pub mod ingress;
pub mod link;
pub mod logs;
pub mod net;
pub mod pod_dir;
pub mod process;
pub mod runtime_spec;
pub mod seccomp;
pub mod service_view;
pub mod shim;
pub mod status;
pub mod storage;
pub mod watch_cache;
