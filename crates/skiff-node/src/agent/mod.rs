//! The node agent (the kubelet's job, in `skiff server` or alone as `skiff agent`): registers
//! this machine as a Node, keeps its status fresh (the heartbeat), and runs one [`worker`] per pod
//! bound to it. Pods whose directory exists but that the API no longer has are torn down; pods
//! that run are re-adopted after a restart. What the workers share is [`state`]; what a worker
//! uses: [`sandbox`] (its handle on the pod's shim), [`container`] (an attempt's rootfs and
//! bundle), [`pull`] and [`backoff`], [`env`], [`volumes`] (ConfigMap, Secret, downward API and
//! projected volumes) kept current by [`watched`]; the pod status it reports is `crate::status`'s.
//! The node also serves the cluster DNS (`crate::dns`) on an address of its bridge, and runs
//! the service proxy (`crate::net::proxy`), NetworkPolicies (`crate::net::policy`) and the
//! ingress (`crate::ingress`).

pub(crate) mod backoff;
pub(crate) mod container;
pub(crate) mod env;
pub(crate) mod probe;
pub(crate) mod pull;
pub(crate) mod sandbox;
pub(crate) mod state;
pub(crate) mod volumes;
pub(crate) mod watched;
pub(crate) mod worker;

pub use state::{Agent, AgentConfig, AgentError, Machine};

use crate::pod_dir::PodDir;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The kubelet version the node reports (the API's version, with skiff's suffix).
pub const KUBELET_VERSION: &str = "v1.32.0-skiff";
/// Run the agent until the process ends: register, heartbeat, and drive the pods bound here.
pub async fn run(agent: Arc<Agent>) -> Result<(), AgentError> {
    let net = crate::net::Net::connect()?;
    let gateways: Vec<_> = agent.pod_addresses(agent.gateway()).iter().map(|a| (a.gateway, a.prefix)).collect();
    let bridge_index = net.ensure_bridge(&agent.config.bridge, &gateways).await?;
    let bridge = &agent.config.bridge;
    let nat = if agent.config.outbound_nat {
        crate::net::nat::enable(bridge, &agent.pod_networks())
    } else {
        crate::net::nat::disable(bridge)
    };
    if let Err(e) = nat {
        tracing::warn!(error = %e, "setting up outbound NAT for pods: pods reach only this machine");
    }
    let watching = agent.clone();
    tokio::spawn(async move { watching.services.run(watching.config.network_client.clone()).await });
    // Pods reach the cluster DNS address through their gateway: it is this node's own.
    let _dns = match net.ensure_address(bridge_index, agent.config.dns.ip.into(), 32).await {
        Ok(()) => crate::dns::start(agent.services.subscribe(), &agent.config.dns)
            .await
            .map_err(|e| tracing::warn!(error = %e, "the cluster DNS: pods will not resolve cluster names"))
            .ok(),
        Err(e) => {
            tracing::warn!(error = %e, ip = %agent.config.dns.ip, "putting the cluster DNS address on the bridge");
            None
        }
    };
    if (agent.config.service_proxy || agent.config.network_policy)
        && let Err(e) = crate::net::bridge_netfilter(&agent.families())
    {
        tracing::error!(error = %e, "Service traffic between pods on this node is not translated back and NetworkPolicies do not apply between them");
    }
    let proxy_table = crate::net::proxy::table_name(&agent.config.bridge);
    if agent.config.service_proxy {
        let config = crate::net::proxy::ProxyConfig {
            table: proxy_table,
            node_name: agent.config.node_name.clone(),
            skip: vec![agent.config.dns.ip.into()],
            in_cluster: agent.pod_networks(),
            families: agent.families(),
            socket_lb: agent.config.socket_lb,
        };
        tokio::spawn(crate::net::proxy::run(config, agent.services.subscribe()));
    } else if let Err(e) = crate::net::proxy::remove(&proxy_table) {
        tracing::warn!(error = %e, "removing the service proxy's rules");
    }
    let policy_table = crate::net::policy::table_name(&agent.config.bridge);
    if agent.config.network_policy {
        let (client, node) = (agent.config.network_client.clone(), agent.config.node_name.clone());
        tokio::spawn(crate::net::policy::run(client, policy_table, node, agent.families()));
    } else if let Err(e) = crate::net::policy::remove(&policy_table) {
        tracing::warn!(error = %e, "removing the network policy rules");
    }
    if let Some(root) = agent.config.local_storage.clone() {
        let config = crate::storage::StorageConfig { node_name: agent.config.node_name.clone(), root };
        tokio::spawn(crate::storage::run(agent.config.storage_client.clone(), config));
    }
    if let Some(config) = agent.config.ingress.clone() {
        tokio::spawn(crate::ingress::run(agent.config.network_client.clone(), config, agent.services.subscribe()));
    }
    register(&agent).await?;
    tokio::spawn(heartbeat(agent.clone()));

    let pods: Api<Pod> = Api::all(agent.config.client.clone());
    let selector = format!("spec.nodeName={}", agent.config.node_name);
    // managedFields are the API's bookkeeping: a worker never reads them, and they are a good
    // part of each pod kept in memory.
    let pods = watcher(pods, watcher::Config::default().fields(&selector)).modify(|p| p.metadata.managed_fields = None);
    let mut stream = std::pin::pin!(pods);
    // The latest version of each pod, shared with its worker (one copy, not one each).
    let mut workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>> = HashMap::new();
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
                        let _ = tx.send(Some(Arc::new(pod)));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(Arc::new(pod)));
                        tokio::spawn(crate::agent::worker::run(agent.clone(), rx));
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
                            crate::agent::worker::tear_down(&agent, &PodDir::new(&agent.pods_root(), &uid)).await
                        });
                    }
                }
            }
        }
    }
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
        ("pods", agent.config.max_pods.to_string()),
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
