//! The node side of `skiff server`, `skiff agent` and the per-pod `skiff shim`.

use anyhow::Context;
use skiff_node::ipam::Subnet;
use std::path::{Path, PathBuf};

/// How this machine runs pods.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The cluster's pod network; this node takes its first /24.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub pod_cidr: String,
    /// The bridge that connects this node's pods.
    #[arg(long, default_value = "skiff0")]
    pub bridge: String,
}

impl NodeArgs {
    fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "skiff".into())
                .to_lowercase()
        })
    }

    /// The node's subnet: the first /24 of the pod CIDR (or the CIDR itself when smaller).
    fn subnet(&self) -> anyhow::Result<Subnet> {
        let cidr = Subnet::parse(&self.pod_cidr)?;
        Ok(Subnet { network: cidr.network, prefix: cidr.prefix.max(24) })
    }
}

/// Start the node agent and the scheduler on `client`, in the background.
pub async fn start(data_dir: &Path, args: &NodeArgs, client: kube::Client, scheduler: bool) -> anyhow::Result<()> {
    let config = skiff_node::agent::AgentConfig {
        node_name: args.node_name(),
        data_dir: data_dir.to_path_buf(),
        shim_exe: std::env::current_exe().context("finding the skiff binary")?,
        pod_subnet: args.subnet()?,
        bridge: args.bridge.clone(),
        client: client.clone(),
    };
    let agent = skiff_node::agent::Agent::new(config)?;
    tokio::spawn(async move {
        if let Err(e) = skiff_node::agent::run(agent).await {
            tracing::error!(error = %e, "the node agent stopped");
        }
    });
    if scheduler {
        tokio::spawn(skiff_node::scheduler::run(client));
    }
    Ok(())
}

/// A client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let config =
        kube::config::Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// `skiff agent`: run only the node side against a server elsewhere.
pub fn agent(data_dir: PathBuf, kubeconfig: PathBuf, args: NodeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let client = client(&kubeconfig).await?;
        start(&data_dir, &args, client, false).await?;
        super::wait_for_signal().await
    })
}

/// `skiff shim`: one pod's sandbox and container parent (started by the agent, not by users).
pub fn shim(dir: &Path, hostname: &str) -> anyhow::Result<()> {
    skiff_node::shim::run(dir, hostname)?;
    Ok(())
}
