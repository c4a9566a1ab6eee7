//! What every pod worker shares: the agent's configuration, the image store and registry
//! transport, pod addresses, host ports, the restart back-off, the event recorder, and the
//! facts of this machine read once at start.

use crate::net::cidr::{Cidr, Family};
use crate::net::ipam::{Ipam, Subnet, Subnet6};
use skiff_client::events::Recorder;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct AgentConfig {
    pub node_name: String,
    pub data_dir: PathBuf,
    /// The `skiff` binary, re-executed as `skiff shim` per pod.
    pub shim_exe: PathBuf,
    /// The `skiff` binary, run as `skiff container-start` by shims to create each container.
    pub runtime_exe: PathBuf,
    /// This node's pod subnet, e.g. 10.42.0.0/24; its first address goes on the bridge.
    pub pod_subnet: Subnet,
    /// A dual-stack node's IPv6 pod subnet, e.g. fd00:42::/64 (pods' IPv6 addresses mirror
    /// their IPv4 ones: `Subnet6::mirror`).
    pub pod_subnet_v6: Option<Subnet6>,
    pub bridge: String,
    /// When container log files rotate.
    pub log_limits: crate::logs::LogLimits,
    /// Masquerade what pods send beyond the pod subnet (off: pods reach only this machine).
    pub outbound_nat: bool,
    /// The kubelet's side acts as this: the node's own identity (`system:node:<name>`).
    pub client: kube::Client,
    /// The network plane (service view, proxy, DNS, NetworkPolicies, ingress) acts as this:
    /// `system:skiff-node-network`, which reads what it routes.
    pub network_client: kube::Client,
    /// The local-path provisioner acts as this: `system:skiff-node-storage`.
    pub storage_client: kube::Client,
    /// Where the local-path provisioner makes volumes (None: it does not run on this node).
    pub local_storage: Option<PathBuf>,
    /// Put on the Node (an agent's endpoint for the API server).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The default seccomp profile and where Localhost profiles are.
    pub seccomp: crate::seccomp::NodeSeccomp,
    /// The Node's allocatable `pods`.
    pub max_pods: u32,
    /// The cluster DNS this node serves and gives its pods.
    pub dns: crate::dns::resolv::ClusterDnsConfig,
    /// Run the service proxy (off: its rules are removed).
    pub service_proxy: bool,
    /// Also balance TCP connections to cluster IPs at `connect()` (`net::proxy::socket_lb`).
    pub socket_lb: bool,
    /// Enforce NetworkPolicies (off: their rules are removed).
    pub network_policy: bool,
    /// Serve Ingresses, there.
    pub ingress: Option<crate::ingress::IngressConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the API server: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Ipam(#[from] crate::net::ipam::IpamError),
    #[error("the image store: {0}")]
    Images(#[from] skiff_image::StoreError),
    #[error("{0}")]
    Setup(String),
}

/// What every pod worker shares.
pub struct Agent {
    pub config: AgentConfig,
    pub images: skiff_image::ImageStore,
    pub transport: skiff_image::registry::Transport,
    pub ipam: Ipam,
    pub host_ports: crate::net::hostport::HostPorts,
    pub backoff: Mutex<crate::agent::backoff::Backoff>,
    pub recorder: Recorder,
    /// Watches on the Secrets and ConfigMaps the pods' volumes read.
    pub watches: crate::agent::watched::Watches,
    /// This machine, read once: what the Node reports and pods' environments read.
    pub machine: Machine,
    /// The cluster's Services and EndpointSlices (DNS, service links, the service proxy).
    pub services: crate::service_view::ServiceView,
}

/// Facts about this machine that do not change while the agent runs.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    pub cpus: usize,
    pub memory_kib: u64,
    /// The node's own address (its InternalIP and pods' hostIP): that of the interface with the
    /// default route, as the kubelet picks it; the bridge's on a machine with no default route.
    pub node_ip: Ipv4Addr,
}

impl Machine {
    fn read(bridge_ip: Ipv4Addr) -> Machine {
        let (cpus, memory_kib) = machine_size();
        Machine { cpus, memory_kib, node_ip: default_route_address().unwrap_or(bridge_ip) }
    }
}

impl Agent {
    pub fn new(config: AgentConfig) -> Result<Arc<Agent>, AgentError> {
        let images = skiff_image::ImageStore::open(&config.data_dir.join("images"))?;
        let registries = skiff_image::registries::Registries::load(&config.data_dir.join("registries.yaml"))
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        let ipam = Ipam::open(&config.data_dir.join("ipam").join(&config.bridge), config.pod_subnet)?;
        let recorder = Recorder::new(config.client.clone(), "kubelet", &config.node_name);
        Ok(Arc::new(Agent {
            images,
            transport: skiff_image::registry::Transport::new(registries),
            ipam,
            host_ports: Default::default(),
            backoff: Mutex::new(Default::default()),
            recorder,
            watches: crate::agent::watched::Watches::new(config.client.clone()),
            machine: Machine::read(config.pod_subnet.gateway()),
            services: Default::default(),
            config,
        }))
    }

    pub fn pods_root(&self) -> PathBuf {
        self.config.data_dir.join("pods")
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.config.pod_subnet.gateway()
    }

    /// The address families this node's pods have addresses in.
    pub fn families(&self) -> Vec<Family> {
        self.pod_networks().iter().map(Cidr::family).collect()
    }

    /// This node's pod subnets, IPv4 first.
    pub fn pod_networks(&self) -> Vec<Cidr> {
        let v4 = self.config.pod_subnet;
        let mut out = vec![Cidr { network: v4.network.into(), prefix: v4.prefix }];
        out.extend(self.config.pod_subnet_v6.map(|v6| Cidr { network: v6.network.into(), prefix: v6.prefix }));
        out
    }

    /// The pod leased `ip`'s addresses on its bridge, IPv4 first (the order of `podIPs`).
    pub fn pod_addresses(&self, ip: Ipv4Addr) -> Vec<crate::net::PodAddress> {
        let v4 = self.config.pod_subnet;
        let mut out = vec![crate::net::PodAddress { ip: ip.into(), prefix: v4.prefix, gateway: v4.gateway().into() }];
        out.extend(self.config.pod_subnet_v6.map(|v6| crate::net::PodAddress {
            ip: v6.mirror(&v4, ip).into(),
            prefix: v6.prefix,
            gateway: v6.gateway().into(),
        }));
        out
    }

    /// The pod leased `ip`'s addresses, IPv4 first.
    pub fn pod_ips(&self, ip: Ipv4Addr) -> Vec<IpAddr> {
        self.pod_addresses(ip).into_iter().map(|a| a.ip).collect()
    }

    /// The host end of a pod's veth (at most 15 bytes, unique per pod).
    pub fn veth_name(uid: &str) -> String {
        let hex: String = uid.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect();
        format!("sk{hex}")
    }
}

/// This machine's CPUs and memory (KiB): the node's capacity and allocatable.
fn machine_size() -> (usize, u64) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    (cpus, memory_kib)
}

/// The IPv4 address of the interface that holds the default route (`/proc/net/route`).
fn default_route_address() -> Option<Ipv4Addr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let iface = default_route_interface(&routes)?;
    nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let ip = a.address?.as_sockaddr_in()?.ip();
        (a.interface_name == iface).then_some(ip)
    })
}

/// The interface of the default route with the lowest metric, from `/proc/net/route`'s text.
fn default_route_interface(routes: &str) -> Option<String> {
    routes
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; RTF_UP = 1.
            let up = u32::from_str_radix(f.get(3)?, 16).ok()? & 1 == 1;
            let default = *f.get(1)? == "00000000" && *f.get(7)? == "00000000";
            let metric = f.get(6)?.parse::<u32>().ok()?;
            (up && default).then(|| (metric, f[0].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_interface_by_metric() {
        let routes = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            skiff0\t00002A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            wlan0\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
            eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(routes).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }
}
