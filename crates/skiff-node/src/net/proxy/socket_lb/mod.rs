//! Socket-level load balancing of cluster IPs (what Cilium calls kube-proxy replacement at the
//! socket layer): a cgroup `connect4` program rewrites a TCP connect to a Service's cluster IP
//! into a connect to one of its endpoints, chosen at random, so the connection's packets go
//! straight to the pod as if it had been addressed directly: no DNAT on each packet, no
//! routing through the node and back onto the bridge. A `getpeername4` program answers the
//! cluster IP the socket asked for, as through the rules.
//!
//! The nftables rules ([`crate::net::proxy`]) stay the whole truth: this only short-cuts the
//! connections it can, and everything it leaves (see [`plan::desired`]), every packet from
//! another machine, and every connect while no program is attached (the agent restarting) goes
//! through the rules. Programs are attached to the cgroup v2 root through links, so they apply
//! to every process on the machine (pods and the host) and are detached when the agent exits.

pub mod plan;
pub mod program;

use crate::net::bpf::{self, BpfError, Map};
use crate::net::proxy::model::Port;
use std::os::fd::OwnedFd;

/// Maps' capacities. The hash maps allocate as they fill; the LRU one is allocated whole.
const MAX_SERVICES: u32 = 65_536;
const MAX_BACKENDS: u32 = 1 << 20;
const MAX_ORIGINS: u32 = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum SocketLbError {
    #[error("no cgroup v2 hierarchy is mounted")]
    NoCgroup2,
    #[error(transparent)]
    Bpf(#[from] BpfError),
}

impl From<bpf::asm::UnknownLabel> for SocketLbError {
    fn from(e: bpf::asm::UnknownLabel) -> Self {
        SocketLbError::Bpf(e.into())
    }
}

/// The attached programs and their maps.
pub struct SocketLb {
    services: Map,
    backends: Map,
    state: plan::State,
    /// A write failed: what the maps hold is unknown until everything is written again.
    dirty: bool,
    /// Holding these keeps the programs attached; the maps live as long as the programs.
    _links: Vec<OwnedFd>,
    _origins: Map,
}

impl SocketLb {
    /// Create the maps, load the programs and attach them to the cgroup v2 root.
    pub fn attach() -> Result<SocketLb, SocketLbError> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let root = bpf::cgroup2_mount(&mounts).ok_or(SocketLbError::NoCgroup2)?;
        Self::attach_to(&root)
    }

    /// [`SocketLb::attach`] to the cgroup v2 directory `cgroup` (and what is below it).
    pub fn attach_to(cgroup: &std::path::Path) -> Result<SocketLb, SocketLbError> {
        let hash = |name, size| Map::create(name, bpf::MAP_TYPE_HASH, 8, 8, size, bpf::NO_PREALLOC);
        let services = hash("skiff_lb_svc", MAX_SERVICES)?;
        let backends = hash("skiff_lb_be", MAX_BACKENDS)?;
        let origins = Map::create("skiff_lb_orig", bpf::MAP_TYPE_LRU_HASH, 8, 8, MAX_ORIGINS, 0)?;
        let connect = bpf::load(
            "skiff_connect4",
            bpf::PROG_TYPE_CGROUP_SOCK_ADDR,
            bpf::CGROUP_INET4_CONNECT,
            &program::connect4(services.fd(), backends.fd(), origins.fd())?,
        )?;
        let getpeername = bpf::load(
            "skiff_peername4",
            bpf::PROG_TYPE_CGROUP_SOCK_ADDR,
            bpf::CGROUP_INET4_GETPEERNAME,
            &program::getpeername4(origins.fd())?,
        )?;
        let links = vec![
            bpf::attach_cgroup(&connect, cgroup, bpf::CGROUP_INET4_CONNECT)?,
            bpf::attach_cgroup(&getpeername, cgroup, bpf::CGROUP_INET4_GETPEERNAME)?,
        ];
        Ok(SocketLb {
            services,
            backends,
            state: plan::State::default(),
            dirty: false,
            _links: links,
            _origins: origins,
        })
    }

    /// Balance what `ports` (one family's Service ports, from the proxy's model) allow; on an
    /// error the next update writes everything again.
    pub fn update(&mut self, ports: &[Port]) -> Result<(), BpfError> {
        let desired = plan::desired(ports);
        if self.dirty {
            // Unknown contents: unreachable first (connects fall back to the rules), then anew.
            for frontend in self.state.frontends().chain(desired.keys()) {
                self.services.delete(&frontend.key())?;
            }
            self.state = plan::State::default();
            self.dirty = false;
        }
        let (ops, next) = self.state.plan(&desired);
        for op in &ops {
            if let Err(e) = self.write(op) {
                self.dirty = true;
                return Err(e);
            }
        }
        self.state = next;
        Ok(())
    }

    fn write(&self, op: &plan::Op) -> Result<(), BpfError> {
        match op {
            plan::Op::PutService { frontend, slot, count } => {
                self.services.put(&frontend.key(), &plan::service_value(*slot, *count))
            }
            plan::Op::DeleteService(frontend) => self.services.delete(&frontend.key()),
            plan::Op::PutBackend { slot, index, backend } => {
                self.backends.put(&plan::backend_key(*slot, *index), &backend.value())
            }
            plan::Op::DeleteBackend { slot, index } => self.backends.delete(&plan::backend_key(*slot, *index)),
        }
    }
}
