//! The node side of `skiff server` and `skiff agent`: the node's flags, the agent and scheduler
//! started under the supervisor, and `skiff agent`'s endpoint wired to this machine's
//! `skiff_node::link::LocalNode`.

use crate::supervisor::Supervisor;
use anyhow::Context;
use skiff_node::net::ipam::{Subnet, Subnet6};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How this machine runs pods.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The cluster's pod network; this node takes its first /24. Dual stack: an IPv4 and an
    /// IPv6 network, comma-separated (`10.42.0.0/16,fd00:42::/56`), as k3s's `--cluster-cidr`;
    /// pods then get an address of each (the node takes the IPv6 network's first /64).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub pod_cidr: String,
    /// The bridge that connects this node's pods.
    #[arg(long, default_value = "skiff0")]
    pub bridge: String,
    /// A container's log file is rotated when it reaches this size (a quantity: 10Mi, 500Ki).
    #[arg(long, default_value = "10Mi", value_parser = parse_size)]
    pub container_log_max_size: u64,
    /// Pods reach only this machine: no NAT for their traffic to other addresses (tests use this).
    #[arg(long)]
    pub disable_outbound_nat: bool,
    /// Log files kept per container, the current one included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub container_log_max_files: u32,
    /// Run containers that set no seccompProfile (nor their pod) with RuntimeDefault, as
    /// `kubelet --seccomp-default`; `--seccomp-default=false` runs them Unconfined. Localhost
    /// profiles are read from DATA_DIR/seccomp.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub seccomp_default: bool,
    /// The most pods this node takes (the Node's allocatable `pods`), as `kubelet --max-pods`.
    #[arg(long, default_value_t = 110, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pods: u32,
    /// The size of this node's share of the pod CIDR (its subnet's prefix length), as k3s's
    /// `--node-cidr-mask-size`: 24 gives 253 pod addresses, 22 gives 1021.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(8..=30))]
    pub node_cidr_mask_size: u8,
    /// The size of this node's share of an IPv6 pod network (dual stack), as k3s's
    /// `--node-cidr-mask-size-ipv6`.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(8..=120))]
    pub node_cidr_mask_size_ipv6: u8,
    /// The cluster DNS address pods are given (in their resolv.conf): the node serves DNS on it
    /// and the API server gives it to the `kube-dns` Service. It must be in the service CIDR.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: std::net::Ipv4Addr,
    /// The cluster's DNS domain: Services are `NAME.NAMESPACE.svc.DOMAIN`.
    #[arg(long, default_value = "cluster.local", value_parser = parse_domain)]
    pub cluster_domain: String,
    /// Run no service proxy on this node (traffic to cluster IPs and node ports is not
    /// forwarded; rules a previous run left are removed), as k3s's `--disable-kube-proxy`.
    #[arg(long)]
    pub disable_service_proxy: bool,
    /// Balance TCP connections to cluster IPs by the service proxy's nftables rules alone,
    /// not also when they are made (an eBPF program on `connect()` that sends them straight to
    /// an endpoint, as Cilium's socket load balancing).
    #[arg(long)]
    pub disable_socket_lb: bool,
    /// Where this node's local-path provisioner makes volumes' directories (k3s's flag of the
    /// same name); default: `storage` in the data directory.
    #[arg(long)]
    pub default_local_storage_path: Option<PathBuf>,
    /// Run no local-path provisioner on this node (k3s: `--disable local-storage`): claims of
    /// the `local-path` class placed here stay Pending.
    #[arg(long)]
    pub disable_local_storage: bool,
    /// Enforce no NetworkPolicies on this node (rules a previous run left are removed), as
    /// k3s's flag of the same name.
    #[arg(long)]
    pub disable_network_policy: bool,
    /// Serve no Ingresses on this node (k3s: `--disable traefik`).
    #[arg(long)]
    pub disable_ingress: bool,
    /// The address the ingress listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub ingress_bind_address: std::net::IpAddr,
    /// The ingress's HTTP port.
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// The ingress's HTTPS port.
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
}

fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim_end_matches('.').to_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.len() <= 253 && d.split('.').all(label_ok) {
        Ok(d)
    } else {
        Err(format!("{s:?} is not a DNS domain like cluster.local"))
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    skiff_core::quantity::bytes(s)
        .and_then(|b| u64::try_from(b).ok())
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("{s:?} is not a positive size like 10Mi"))
}

impl NodeArgs {
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "skiff".into())
                .to_lowercase()
        })
    }

    /// The node's subnets: the first /`node_cidr_mask_size` of the IPv4 pod CIDR (or the CIDR
    /// itself when smaller), and on a dual-stack node the first /`node_cidr_mask_size_ipv6` of
    /// the IPv6 one.
    fn subnets(&self) -> anyhow::Result<(Subnet, Option<Subnet6>)> {
        let mut parts = self.pod_cidr.split(',').map(str::trim);
        let first = parts.next().unwrap_or_default();
        let cidr = Subnet::parse(first).with_context(|| {
            if first.contains(':') {
                "--pod-cidr: the IPv4 network comes first (IPv6-only and IPv6-primary pod networks are not supported)"
            } else {
                "--pod-cidr"
            }
        })?;
        let v4 = Subnet { network: cidr.network, prefix: cidr.prefix.max(self.node_cidr_mask_size) };
        let v6 = match parts.next() {
            None => None,
            Some(s) => {
                let cidr = Subnet6::parse(s).context("--pod-cidr's second network")?;
                let v6 = Subnet6 { network: cidr.network, prefix: cidr.prefix.max(self.node_cidr_mask_size_ipv6) };
                anyhow::ensure!(
                    v6.holds(&v4),
                    "--pod-cidr: the node's IPv6 subnet {v6} is smaller than its IPv4 subnet {v4} (every pod gets one address of each)"
                );
                Some(v6)
            }
        };
        anyhow::ensure!(parts.next().is_none(), "--pod-cidr takes at most two networks (IPv4,IPv6)");
        Ok((v4, v6))
    }
}

/// The node's bridge with its gateway address, made before the API server starts: the server
/// also listens there, where this node's pods reach it. Returns that address.
pub async fn prepare_bridge(args: &NodeArgs) -> anyhow::Result<std::net::Ipv4Addr> {
    let (v4, v6) = args.subnets()?;
    let mut gateways = vec![(v4.gateway().into(), v4.prefix)];
    gateways.extend(v6.map(|v6| (v6.gateway().into(), v6.prefix)));
    let net = skiff_node::net::Net::connect()?;
    net.ensure_bridge(&args.bridge, &gateways).await?;
    Ok(v4.gateway())
}

/// Who the node acts as.
pub struct NodeClients {
    /// The kubelet's side: `system:node:<name>` in `system:nodes`.
    pub kubelet: kube::Client,
    /// The network plane (service proxy, DNS, NetworkPolicies, ingress).
    pub network: kube::Client,
    /// The local-path provisioner.
    pub storage: kube::Client,
}

/// Start the node agent with `clients` under `supervisor` (it stops before the API server goes;
/// the pods stay); `annotations` go on the Node (a remote agent's endpoint).
pub async fn start(
    supervisor: &mut Supervisor,
    data_dir: &Path,
    args: &NodeArgs,
    clients: NodeClients,
    annotations: std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let config = skiff_node::agent::AgentConfig {
        node_name: args.node_name(),
        data_dir: data_dir.to_path_buf(),
        shim_exe: shim_exe()?,
        runtime_exe: std::env::current_exe().context("finding the skiff binary")?,
        pod_subnet: args.subnets()?.0,
        pod_subnet_v6: args.subnets()?.1,
        bridge: args.bridge.clone(),
        log_limits: skiff_node::logs::LogLimits {
            max_size: args.container_log_max_size,
            max_files: args.container_log_max_files,
        },
        outbound_nat: !args.disable_outbound_nat,
        client: clients.kubelet,
        network_client: clients.network,
        storage_client: clients.storage,
        local_storage: (!args.disable_local_storage)
            .then(|| args.default_local_storage_path.clone().unwrap_or_else(|| data_dir.join("storage"))),
        annotations,
        seccomp: skiff_node::seccomp::NodeSeccomp::new(data_dir, args.seccomp_default),
        max_pods: args.max_pods,
        dns: skiff_node::dns::resolv::ClusterDnsConfig { ip: args.cluster_dns, domain: args.cluster_domain.clone() },
        service_proxy: !args.disable_service_proxy,
        socket_lb: !args.disable_socket_lb,
        network_policy: !args.disable_network_policy,
        ingress: (!args.disable_ingress).then_some(skiff_node::ingress::IngressConfig {
            bind: args.ingress_bind_address,
            http_port: args.ingress_http_port,
            https_port: args.ingress_https_port,
        }),
    };
    let agent = skiff_node::agent::Agent::new(config)?;
    supervisor.spawn("the node agent", async move { Ok(skiff_node::agent::run(agent).await?) });
    Ok(())
}

/// Give this server's own node the control-plane role once it has registered, as k3s labels
/// its servers: the control plane sets it, as a node may not give itself a role
/// (NodeRestriction).
pub async fn label_control_plane(admin: kube::Client, node: String) {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(admin);
    let patch = serde_json::json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}});
    loop {
        match nodes.patch(&node, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await {
            Ok(_) => return,
            // Not registered yet: it is, within moments of the agent's start.
            Err(kube::Error::Api(s)) if s.code == 404 => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(e) => {
                tracing::warn!(error = %e, node, "labelling the node as the control plane");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// The per-pod shim: `skiff-shim` beside this binary (a fraction of the memory per pod), or this
/// binary itself (`skiff shim`) when it travels alone.
fn shim_exe() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding the skiff binary")?;
    let dedicated = me.with_file_name("skiff-shim");
    Ok(if dedicated.is_file() { dedicated } else { me })
}

/// The connection and credentials a kubeconfig file names.
pub async fn config(kubeconfig: &Path) -> anyhow::Result<kube::Config> {
    let config =
        kube::config::Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
    Ok(kube::Config::from_custom_kubeconfig(config, &Default::default()).await?)
}

/// `skiff agent`: run only the node side against a server elsewhere, with the endpoint through
/// which that server reaches this machine's pods.
pub fn agent(data_dir: PathBuf, kubeconfig: PathBuf, endpoint: SocketAddr, args: NodeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let config = config(&kubeconfig).await?;
        let tls = skiff_node::link::endpoint::EndpointTls::new(config.root_cert.as_deref().unwrap_or_default())?;
        let listener = tokio::net::TcpListener::bind(endpoint)
            .await
            .with_context(|| format!("listening on {endpoint} for the node endpoint"))?;
        let published = if endpoint.ip().is_unspecified() {
            format!("{}:{}", args.node_name(), endpoint.port())
        } else {
            endpoint.to_string()
        };
        let local = std::sync::Arc::new(skiff_node::link::LocalNode::new(args.node_name(), data_dir.join("pods")));
        let mut supervisor = Supervisor::default();
        supervisor.spawn("the node endpoint", async move {
            skiff_node::link::endpoint::serve(listener, tls.acceptor, local).await;
            Ok(())
        });
        let annotations = [
            (skiff_nodeapi::wire::ENDPOINT_ANNOTATION.to_string(), published),
            (skiff_nodeapi::wire::FINGERPRINT_ANNOTATION.to_string(), tls.fingerprint),
        ];
        // One identity for the whole node: the kubeconfig's.
        let client = kube::Client::try_from(config)?;
        let clients = NodeClients { kubelet: client.clone(), network: client.clone(), storage: client };
        start(&mut supervisor, &data_dir, &args, clients, annotations.into()).await?;
        supervisor.run_until(super::wait_for_signal()).await
    })
}
