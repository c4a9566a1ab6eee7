//! The node agent: registers this machine as a Node, keeps its status fresh (the heartbeat), and
//! runs one worker (`worker`) per pod bound to it. Pods whose directory exists but that the API no
//! longer has are torn down; pods that run are re-adopted after a restart.

use crate::events::Recorder;
use crate::net::ipam::{Ipam, Subnet};
use crate::pod_dir::PodDir;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The kubelet version the node reports (the API's version, with skiff's suffix).
pub const KUBELET_VERSION: &str = "v1.32.0-skiff";

pub struct AgentConfig {
    pub node_name: String,
    pub data_dir: PathBuf,
    /// The `skiff` binary, re-executed as `skiff shim` per pod.
    pub shim_exe: PathBuf,
    /// The `skiff` binary, run as `skiff container-start` by shims to create each container.
    pub runtime_exe: PathBuf,
    /// This node's pod subnet, e.g. 10.42.0.0/24; its first address goes on the bridge.
    pub pod_subnet: Subnet,
    pub bridge: String,
    /// When container log files rotate.
    pub log_limits: crate::logs::LogLimits,
    /// Masquerade what pods send beyond the pod subnet (off: pods reach only this machine).
    pub outbound_nat: bool,
    pub client: kube::Client,
    /// Put on the Node (an agent's endpoint for the API server).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The default seccomp profile and where Localhost profiles are.
    pub seccomp: crate::seccomp::NodeSeccomp,
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
    pub backoff: Mutex<crate::backoff::Backoff>,
    pub recorder: Recorder,
    /// This machine, read once: what the Node reports and pods' environments read.
    pub machine: Machine,
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
            machine: Machine::read(config.pod_subnet.gateway()),
            config,
        }))
    }

    pub fn pods_root(&self) -> PathBuf {
        self.config.data_dir.join("pods")
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.config.pod_subnet.gateway()
    }

    /// The host end of a pod's veth (at most 15 bytes, unique per pod).
    pub fn veth_name(uid: &str) -> String {
        let hex: String = uid.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect();
        format!("sk{hex}")
    }
}

/// Run the agent until the process ends: register, heartbeat, and drive the pods bound here.
pub async fn run(agent: Arc<Agent>) -> Result<(), AgentError> {
    let net = crate::net::Net::connect()?;
    net.ensure_bridge(&agent.config.bridge, agent.gateway(), agent.config.pod_subnet.prefix).await?;
    let (bridge, subnet) = (&agent.config.bridge, agent.config.pod_subnet);
    let nat = if agent.config.outbound_nat {
        crate::net::nat::enable(bridge, subnet)
    } else {
        crate::net::nat::disable(bridge)
    };
    if let Err(e) = nat {
        tracing::warn!(error = %e, "setting up outbound NAT for pods: pods reach only this machine");
    }
    register(&agent).await?;
    tokio::spawn(heartbeat(agent.clone()));

    let pods: Api<Pod> = Api::all(agent.config.client.clone());
    let selector = format!("spec.nodeName={}", agent.config.node_name);
    let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default().fields(&selector)));
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut listed: Vec<String> = Vec::new();
    loop {
        let event = match stream.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "watching pods");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match event {
            watcher::Event::Init => listed.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let Some(uid) = pod.metadata.uid.clone() else { continue };
                listed.push(uid.clone());
                workers.retain(|_, tx| !tx.is_closed());
                match workers.get(&uid) {
                    Some(tx) => {
                        let _ = tx.send(Some(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(pod));
                        tokio::spawn(crate::worker::run(agent.clone(), rx));
                        workers.insert(uid, tx);
                    }
                }
            }
            watcher::Event::Delete(pod) => {
                if let Some(tx) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                    let _ = tx.send(None);
                }
            }
            watcher::Event::InitDone => {
                // Pods on disk the API no longer has (deleted while the agent was down): clean up.
                for dir in std::fs::read_dir(agent.pods_root()).into_iter().flatten().flatten() {
                    let uid = dir.file_name().to_string_lossy().to_string();
                    if !listed.contains(&uid) && !workers.contains_key(&uid) {
                        let agent = agent.clone();
                        tokio::spawn(async move {
                            crate::worker::tear_down(&agent, &PodDir::new(&agent.pods_root(), &uid)).await
                        });
                    }
                }
            }
        }
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

/// The Node object: capacity from this machine, conditions Ready.
fn node_object(agent: &Agent) -> Node {
    let Machine { cpus, memory_kib, node_ip } = agent.machine;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let name = &agent.config.node_name;
    let resources: std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> = [
        ("cpu", cpus.to_string()),
        ("memory", format!("{memory_kib}Ki")),
        ("pods", "110".to_string()),
        ("ephemeral-storage", "100Gi".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), k8s_openapi::apimachinery::pkg::api::resource::Quantity(v)))
    .collect();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
    let os_image = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_else(|| "Linux".into());
    serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "annotations": agent.config.annotations,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch,
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": { "podCIDR": agent.config.pod_subnet.to_string(), "podCIDRs": [agent.config.pod_subnet.to_string()] },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                { "type": "InternalIP", "address": node_ip.to_string() },
                { "type": "Hostname", "address": name },
            ],
            "nodeInfo": {
                "machineID": read("/etc/machine-id"),
                "systemUUID": read("/etc/machine-id"),
                "bootID": read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": read("/proc/sys/kernel/osrelease"),
                "osImage": os_image,
                "containerRuntimeVersion": concat!("skiff://", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": arch,
            },
        },
    }))
    .unwrap_or_default()
}

fn conditions(now: &str) -> serde_json::Value {
    let c = |type_: &str, status: &str, reason: &str, message: &str| {
        serde_json::json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    serde_json::json!([
        c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

async fn register(agent: &Agent) -> Result<(), AgentError> {
    let nodes: Api<Node> = Api::all(agent.config.client.clone());
    let node = node_object(agent);
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        // Registered before: this run's annotations (a new endpoint certificate) replace the old.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let patch = serde_json::json!({ "metadata": { "annotations": agent.config.annotations } });
            nodes.patch(&agent.config.node_name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        }
        Err(e) => return Err(e.into()),
    }
    let mut status = serde_json::to_value(&node.status).unwrap_or_default();
    status["conditions"] = conditions(&now());
    nodes
        .patch_status(
            &agent.config.node_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
    tracing::info!(node = %agent.config.node_name, "node registered");
    Ok(())
}

fn now() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()).to_string()
}

/// Every 10 s, as the kubelet's node status updates: the conditions' heartbeat times.
async fn heartbeat(agent: Arc<Agent>) {
    let nodes: Api<Node> = Api::all(agent.config.client.clone());
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        // Merged by type: the transition times stay as they were.
        let mut conds = conditions(&now());
        for c in conds.as_array_mut().into_iter().flatten() {
            c.as_object_mut().map(|o| o.remove("lastTransitionTime"));
        }
        let patch = serde_json::json!({ "status": { "conditions": conds } });
        if let Err(e) =
            nodes.patch_status(&agent.config.node_name, &PatchParams::default(), &Patch::Strategic(patch)).await
        {
            tracing::warn!(error = %e, "node heartbeat");
            if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                let _ = register(&agent).await;
            }
        }
    }
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
