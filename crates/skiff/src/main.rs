//! The `skiff` command: parse, set up logging, dispatch. Behaviour lives in the library crates.

mod alloc;
mod commands;
mod credentials;
mod supervisor;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "A single-binary, Kubernetes-compatible cluster for one machine")]
struct Cli {
    /// Where skiff keeps its state (store, certificates, images).
    #[arg(long, global = true, env = "SKIFF_DATA_DIR", default_value = "/var/lib/skiff")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    /// Embedded and durable (redb) under the data directory.
    Redb,
    /// In memory: everything is lost when the server stops.
    Memory,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: the Kubernetes API server over HTTPS.
    Server {
        /// Address and port to serve the API on.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Storage backend.
        #[arg(long, value_enum, default_value = "redb")]
        store: StoreKind,
        /// Seconds between bookmarks on idle watches that allow them.
        #[arg(long, default_value_t = 60, hide = true)]
        watch_bookmark_seconds: u64,
        /// Seconds a client may take to send a request's headers (kube-apiserver: 32).
        #[arg(long, default_value_t = 32, hide = true)]
        request_header_timeout_seconds: u64,
        /// Seconds between compactions of the store's history (kube-apiserver's
        /// --etcd-compaction-interval); watches and paginated lists can resume from any revision
        /// of the last one to two intervals. 0 turns scheduled compaction off (the store still
        /// compacts by size).
        #[arg(long, default_value_t = 300)]
        compaction_interval_seconds: u64,
        /// Seconds a connection may stay open with no request in flight (kube-apiserver: 90).
        #[arg(long, default_value_t = 90, hide = true)]
        idle_timeout_seconds: u64,
        /// Read-only requests in flight at once (a list takes up to 10 seats by its size;
        /// watches and streams take none); past that, requests wait briefly, then get 429.
        #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..))]
        max_requests_inflight: u64,
        /// Mutating requests in flight at once; past that, 429 as above.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        max_mutating_requests_inflight: u64,
        /// Connections open at once; more wait in the kernel's backlog.
        #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
        max_connections: u64,
        /// The network Services' cluster IPs come from, or two of different families
        /// (`10.43.0.0/16,fd00:43::/112`) for dual-stack Services; the first is the primary
        /// (its first address is the `kubernetes` Service's). The cluster DNS address is in
        /// the IPv4 one.
        #[arg(long, default_value = skiff_apiserver::services::DEFAULT_SERVICE_CIDR, value_parser = skiff_apiserver::services::parse_cidr)]
        service_cidr: skiff_apiserver::services::ServiceCidr,
        /// The ports NodePort and LoadBalancer Services are given on every node.
        #[arg(long, default_value = "30000-32767", value_parser = skiff_apiserver::services::parse_node_ports)]
        service_node_port_range: std::ops::RangeInclusive<u16>,
        /// Serve the API only: no node agent, no scheduler on this machine.
        #[arg(long)]
        disable_agent: bool,
        /// Run no controllers (Deployments, ReplicaSets, Jobs ... are stored but not acted on), as
        /// k3s's flag of the same name; another server sharing the store may run them.
        #[arg(long)]
        disable_controller_manager: bool,
        /// The longest a certificate signed for an approved CertificateSigningRequest is valid
        /// (a request's `expirationSeconds` may ask for less), as kube-controller-manager's flag.
        #[arg(long, default_value = "365d", value_parser = commands::identity::parse_duration)]
        cluster_signing_duration: std::time::Duration,
        /// How requests are authorized, after system:masters: kube-apiserver's ordered,
        /// comma-separated list of Node, RBAC, AlwaysAllow (every authenticated request) and
        /// AlwaysDeny. Node brings the NodeRestriction admission plugin with it.
        #[arg(long, default_value = "Node,RBAC")]
        authorization_mode: skiff_apiserver::AuthorizationMode,
        /// Which stored resources are encrypted, with which keys (upstream's
        /// EncryptionConfiguration, the aesgcm provider). Default: DATA_DIR/pki/encryption-config.yaml,
        /// made at the first start to encrypt Secrets with a fresh key.
        #[arg(long)]
        encryption_provider_config: Option<PathBuf>,
        #[command(flatten)]
        audit: AuditArgs,
        #[command(flatten)]
        node: commands::node::NodeArgs,
    },
    /// Run only the node agent, joining the cluster of a server elsewhere.
    Agent {
        /// The kubeconfig to reach the API server with (e.g. a copy of `skiff kubeconfig`).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Where the API server reaches this agent for logs, exec, attach and port-forward
        /// (the kubelet's port); published on the Node. An unspecified IP (0.0.0.0) is
        /// published as this machine's host name.
        #[arg(long, default_value = "0.0.0.0:10250")]
        endpoint: SocketAddr,
        #[command(flatten)]
        node: commands::node::NodeArgs,
    },
    /// One RUN step of `skiff build` in a container: started by the build, not by hand.
    #[command(hide = true)]
    BuildStep { step: PathBuf },
    /// Secrets encryption at rest: `rotate` puts a new key first in DATA_DIR/pki/encryption-config.yaml;
    /// the next start of `skiff server` reseals every Secret with it.
    SecretsEncrypt {
        #[command(subcommand)]
        command: SecretsEncryptCommand,
    },
    /// Print the admin kubeconfig written by `skiff server`, or with `--user` mint one for another
    /// identity: a client certificate from the cluster CA (what RBAC then grants that user).
    Kubeconfig {
        /// The user name (the certificate's common name).
        #[arg(long)]
        user: Option<String>,
        /// A group the user is in (the certificate's organizations); repeat for more.
        #[arg(long, requires = "user")]
        group: Vec<String>,
        /// How long the certificate is valid (a duration: 8h, 30d).
        #[arg(long, default_value = "365d", requires = "user", value_parser = commands::identity::parse_duration)]
        expiration: std::time::Duration,
    },
    /// List local images.
    Images,
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Remove image names (the content goes with `skiff image prune`).
    Rmi {
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Make an image from a root filesystem tarball (`-` reads standard input), like `docker import`.
    Import {
        /// The tarball, or `-`.
        source: String,
        /// NAME[:TAG] for the new image.
        reference: String,
        /// A config instruction to apply, e.g. `CMD ["sh"]` (repeatable).
        #[arg(short, long = "change")]
        change: Vec<String>,
    },
    /// Build an image from a Dockerfile into the local store.
    Build {
        /// NAME[:TAG] (repeatable).
        #[arg(short, long = "tag")]
        tag: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile).
        #[arg(short, long = "file")]
        file: Option<PathBuf>,
        /// KEY=VALUE for ARG (repeatable).
        #[arg(long = "build-arg")]
        build_arg: Vec<String>,
        /// The stage to build (default: the last).
        #[arg(long)]
        target: Option<String>,
        /// The build context directory.
        context: PathBuf,
    },
    /// Pull an image from a registry (mirrors and credentials from DATA_DIR/registries.yaml).
    Pull { reference: String },
    /// Push an image to its registry.
    Push {
        reference: String,
        /// Use plain HTTP (a registry without TLS).
        #[arg(long)]
        insecure: bool,
    },
    /// Write images to a tar archive (OCI layout plus Docker's manifest.json).
    Save {
        #[arg(required = true)]
        references: Vec<String>,
        /// The archive to write (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Load images from a `docker save` or OCI layout tar archive.
    Load {
        /// The archive to read (default: standard input).
        #[arg(short, long)]
        input: Option<PathBuf>,
    },
    /// Image subcommands.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Subcommand)]
enum SecretsEncryptCommand {
    /// Put a new key first (the old ones stay, to open what they sealed).
    Rotate,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Show images' configs and layers as JSON.
    Inspect {
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// List local images.
    Ls,
    /// Remove blobs, layer snapshots and build cache that no image name or running container uses.
    Prune,
}

fn main() -> std::process::ExitCode {
    alloc::return_memory_promptly();
    // The per-pod shim and its container-start helper skip the CLI parser and the log filter
    // set-up: the shim lives as long as its pod, and the helper runs once per container start.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(code) = skiff_node::shim::helper_main(&args) {
        return code;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG").unwrap_or_else(|_| "info".into());
    match &cli.command {
        // Not to standard error: libcontainer logs from container processes whose stderr is the
        // container's own. A close-on-exec file never reaches the container's program.
        Command::BuildStep { step } => {
            let dir = step.parent().unwrap_or(step);
            let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("shim.log"))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(log))
                .init();
        }
        _ => tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init(),
    }
    match cli.command {
        Command::Server {
            listen,
            store,
            watch_bookmark_seconds,
            request_header_timeout_seconds,
            compaction_interval_seconds,
            idle_timeout_seconds,
            max_requests_inflight,
            max_mutating_requests_inflight,
            max_connections,
            service_cidr,
            service_node_port_range,
            disable_agent,
            disable_controller_manager,
            cluster_signing_duration,
            authorization_mode,
            encryption_provider_config,
            audit,
            node,
        } => server(
            cli.data_dir,
            listen,
            StoreChoice { kind: store, encryption: encryption_provider_config },
            ClientLimits {
                bookmark_interval: std::time::Duration::from_secs(watch_bookmark_seconds),
                compaction_interval: std::time::Duration::from_secs(compaction_interval_seconds),
                server: skiff_apiserver::Limits {
                    header_read_timeout: std::time::Duration::from_secs(request_header_timeout_seconds),
                    idle_timeout: std::time::Duration::from_secs(idle_timeout_seconds),
                    max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
                    max_requests_inflight: usize::try_from(max_requests_inflight).unwrap_or(usize::MAX),
                    max_mutating_requests_inflight: usize::try_from(max_mutating_requests_inflight)
                        .unwrap_or(usize::MAX),
                },
                authorization: authorization_mode,
                audit: audit.into(),
            },
            node,
            Components { agent: !disable_agent, controllers: !disable_controller_manager, cluster_signing_duration },
            skiff_apiserver::services::ServiceRanges { cidr: service_cidr, node_ports: service_node_port_range },
        ),
        Command::Agent { kubeconfig, endpoint, node } => {
            commands::node::agent(cli.data_dir, kubeconfig, endpoint, node)
        }
        Command::BuildStep { step } => commands::images::build_step(&step),
        Command::SecretsEncrypt { command: SecretsEncryptCommand::Rotate } => {
            let path = skiff_apiserver::encryption::default_path(&cli.data_dir);
            let name = skiff_apiserver::encryption::rotate(&path)
                .with_context(|| format!("rotating the key in {} (has `skiff server` run?)", path.display()))?;
            commands::print(&format!(
                "key {name} now seals; restart `skiff server` to reseal every stored Secret with it\n"
            ));
            Ok(())
        }
        Command::Kubeconfig { user, group, expiration } => {
            let path = cli.data_dir.join("kubeconfig.yaml");
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("reading {} (has `skiff server` run with this --data-dir?)", path.display())
            })?;
            match user {
                None => commands::print(&text),
                Some(user) => {
                    commands::print(&commands::identity::kubeconfig(&cli.data_dir, &text, &user, &group, expiration)?)
                }
            }
            Ok(())
        }
        Command::Images | Command::Image { command: ImageCommand::Ls } => commands::images::list(&cli.data_dir),
        Command::Tag { source, target } => commands::images::tag(&cli.data_dir, &source, &target),
        Command::Rmi { references } => commands::images::rmi(&cli.data_dir, &references),
        Command::Import { source, reference, change } => {
            commands::images::import(&cli.data_dir, &source, &reference, &change)
        }
        Command::Build { tag, file, build_arg, target, context } => commands::images::build(
            &cli.data_dir,
            commands::images::BuildArgs {
                context: &context,
                dockerfile: file.as_deref(),
                tags: &tag,
                build_args: &build_arg,
                target: target.as_deref(),
            },
        ),
        Command::Pull { reference } => commands::images::pull(&cli.data_dir, &reference),
        Command::Push { reference, insecure } => commands::images::push(&cli.data_dir, &reference, insecure),
        Command::Save { references, output } => commands::images::save(&cli.data_dir, &references, output.as_deref()),
        Command::Load { input } => commands::images::load(&cli.data_dir, input.as_deref()),
        Command::Image { command: ImageCommand::Prune } => commands::images::prune(&cli.data_dir),
        Command::Image { command: ImageCommand::Inspect { references } } => {
            commands::images::inspect(&cli.data_dir, &references)
        }
    }
}

/// This machine's name (for the controller manager's Lease holder identity).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "skiff".into())
}

/// The cluster CA as the CSR signing controller's authority: the API server's signer, which
/// the controllers crate does not link.
struct ClusterCa {
    cert: String,
    key: String,
}

impl ClusterCa {
    /// None for a PKI made before the CA key was kept: no CSR is signed.
    fn signing(
        pki: &skiff_apiserver::Pki,
        max_duration: std::time::Duration,
    ) -> Option<skiff_controllers::csr_signing::Signing> {
        let key = pki.ca_key.clone()?;
        let ca = ClusterCa { cert: pki.ca_cert.clone(), key };
        Some(skiff_controllers::csr_signing::Signing { authority: Arc::new(ca), max_duration })
    }
}

impl skiff_controllers::csr_signing::Authority for ClusterCa {
    fn sign(
        &self,
        request: &[u8],
        usages: &[String],
        not_before: std::time::SystemTime,
        not_after: std::time::SystemTime,
    ) -> Result<String, skiff_controllers::csr_signing::SignError> {
        use skiff_apiserver::signer;
        let usages = usages.iter().map(|u| signer::Usage::parse(u)).collect::<Result<Vec<_>, _>>()?;
        Ok(signer::sign_csr(&self.cert, &self.key, request, &usages, not_before, not_after)?)
    }
}

/// The ports this machine listens on itself (the API server's, the ingress's): a load balancer
/// taking one would divert its traffic.
fn reserved_ports(
    listen: SocketAddr,
    node: Option<&commands::node::NodeArgs>,
) -> Vec<skiff_controllers::service_lb::ReservedPort> {
    let tcp = |port: u16, owner: &str| skiff_controllers::service_lb::ReservedPort {
        protocol: "TCP".into(),
        port: port.into(),
        owner: owner.into(),
    };
    let mut ports = vec![tcp(listen.port(), "the API server")];
    if let Some(node) = node.filter(|n| !n.disable_ingress) {
        ports.push(tcp(node.ingress_http_port, "the ingress (HTTP)"));
        ports.push(tcp(node.ingress_https_port, "the ingress (HTTPS)"));
    }
    ports
}

/// What `skiff server` runs besides the API server.
struct Components {
    /// The node agent and the scheduler.
    agent: bool,
    controllers: bool,
    /// The longest certificate the CSR signer issues.
    cluster_signing_duration: std::time::Duration,
}

/// The API server's knobs: timings and what clients may hold.
struct ClientLimits {
    bookmark_interval: std::time::Duration,
    /// Zero: no scheduled compaction.
    compaction_interval: std::time::Duration,
    server: skiff_apiserver::Limits,
    authorization: skiff_apiserver::AuthorizationMode,
    audit: skiff_apiserver::audit::Options,
}

/// kube-apiserver's `--audit-*` flags.
#[derive(clap::Args)]
struct AuditArgs {
    /// The audit policy (an audit.k8s.io/v1 Policy): which requests are recorded, at which
    /// level. Without one nothing is audited.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// Where audit events are written, as JSON lines (`-`: standard output).
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// Megabytes the audit log reaches before it is rotated (0: never).
    #[arg(long, default_value_t = 100)]
    audit_log_maxsize: u64,
    /// Rotated audit logs kept (0: all).
    #[arg(long, default_value_t = 100)]
    audit_log_maxbackup: usize,
    /// Days rotated audit logs are kept, by the time in their names (0: no limit).
    #[arg(long, default_value_t = 366)]
    audit_log_maxage: u64,
}

impl From<AuditArgs> for skiff_apiserver::audit::Options {
    fn from(a: AuditArgs) -> Self {
        skiff_apiserver::audit::Options {
            policy_file: a.audit_policy_file,
            log_path: a.audit_log_path,
            max_size_mb: a.audit_log_maxsize,
            max_backups: a.audit_log_maxbackup,
            max_age_days: a.audit_log_maxage,
        }
    }
}

/// `raw` with the resources the encryption configuration names sealed at rest; values not yet
/// sealed with its first key (from before encryption, or a rotation) are resealed now, and a
/// value no key opens stops the start with a clear error.
async fn sealed(
    data_dir: &std::path::Path,
    config: Option<&std::path::Path>,
    raw: Arc<dyn skiff_store::Store>,
) -> anyhow::Result<Arc<dyn skiff_store::Store>> {
    let path = config.map(PathBuf::from).unwrap_or_else(|| skiff_apiserver::encryption::default_path(data_dir));
    let sealing = skiff_apiserver::encryption::load(&path, config.is_none())
        .with_context(|| format!("the encryption configuration {}", path.display()))?;
    let store = skiff_store::encrypted::EncryptedStore::new(raw, sealing.prefixes, sealing.keys);
    let resealed =
        skiff_store::encrypted::reseal(&store).await.context("sealing the stored Secrets with the current key")?;
    if resealed > 0 {
        tracing::info!(resealed, "stored values sealed with the current encryption key");
    }
    Ok(Arc::new(store))
}

/// The store `skiff server` keeps the cluster in, and what of it is encrypted at rest.
struct StoreChoice {
    kind: StoreKind,
    /// `--encryption-provider-config` (None: the default under DATA_DIR/pki).
    encryption: Option<PathBuf>,
}

fn server(
    data_dir: PathBuf,
    listen: SocketAddr,
    store: StoreChoice,
    limits: ClientLimits,
    node_args: commands::node::NodeArgs,
    components: Components,
    service_ranges: skiff_apiserver::services::ServiceRanges,
) -> anyhow::Result<()> {
    // Store reads and writes run on blocking threads: each thread keeps allocator memory of its
    // own, so a burst of concurrent lists must not fan out to hundreds of them.
    let runtime = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(32).enable_all().build()?;
    if !service_ranges.cidr.contains(&node_args.cluster_dns) {
        anyhow::bail!(
            "--cluster-dns {} is not in --service-cidr {}: the kube-dns Service could not have it",
            node_args.cluster_dns,
            service_ranges.cidr
        );
    }
    // The `kubernetes` Service is single-stack in the primary family and its endpoint is this
    // node's IPv4 address: kube-apiserver likewise refuses a primary family other than its
    // public address's.
    if components.agent && service_ranges.cidr.primary_family() != skiff_apiserver::services::IpFamily::V4 {
        anyhow::bail!(
            "--service-cidr {}: service IP family {:?} must match public address family (IPv4): list the IPv4 range first",
            service_ranges.cidr,
            service_ranges.cidr.primary().to_string()
        );
    }
    let (cluster_dns, cluster_domain) = (node_args.cluster_dns, node_args.cluster_domain.clone());
    let node = components.agent.then_some(node_args);
    runtime.block_on(async move {
        let mut signals = commands::Signals::install()?;
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        // The data directory holds the cluster's keys, Secrets and pods: its owner's only.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", data_dir.display()))?;
        }
        let raw: Arc<dyn skiff_store::Store> = match store.kind {
            StoreKind::Redb => {
                Arc::new(skiff_store::RedbStore::open(&data_dir.join("store.redb")).context("opening the store")?)
            }
            StoreKind::Memory => Arc::new(skiff_store::MemoryStore::new()),
        };
        let store = sealed(&data_dir, store.encryption.as_deref(), raw).await?;
        let mut supervisor = supervisor::Supervisor::default();
        if !limits.compaction_interval.is_zero() {
            let (store, interval) = (store.clone(), limits.compaction_interval);
            supervisor.spawn("the store compactor", async move {
                skiff_store::run_compactor(store, interval).await;
                Ok(())
            });
        }
        let nodes = node.as_ref().map(|n| {
            let local = skiff_node::link::LocalNode::new(n.node_name(), data_dir.join("pods"));
            (n.node_name(), Arc::new(local) as Arc<dyn skiff_nodeapi::NodeLink>)
        });
        let advertise = match &node {
            Some(n) => Some(commands::node::prepare_bridge(n).await?),
            None => None,
        };
        let mut running = skiff_apiserver::start(skiff_apiserver::Config {
            data_dir: data_dir.clone(),
            listen,
            store,
            bookmark_interval: limits.bookmark_interval,
            limits: limits.server,
            nodes,
            service_ranges,
            cluster_dns,
            cluster_domain,
            advertise,
            authorization: limits.authorization,
            audit: limits.audit,
        })
        .await?;
        let admin = commands::node::config(&running.kubeconfig_path).await?;
        let identities = credentials::Components::new(&admin, &running.pki)?.map(Arc::new);
        let admin = kube::Client::try_from(admin)?;
        if identities.is_none() {
            tracing::warn!("the cluster CA's key was not kept (a data directory from before it was): the controllers, scheduler and node act as admin");
        }
        let as_user = |user: &str, groups: &[&str]| match &identities {
            Some(c) => c.for_user(user, groups),
            None => Ok(admin.clone()),
        };
        // One watch cache per kind for the controllers and the scheduler together, read as the
        // controller manager; each of them writes as itself.
        let informers = match &identities {
            Some(c) => skiff_controllers::informers::Informers::with_credentials(
                c.for_user(skiff_core::auth::user::KUBE_CONTROLLER_MANAGER, &[])?,
                c.clone(),
            ),
            None => skiff_controllers::informers::Informers::new(admin.clone()),
        };
        // The controllers act once this server holds the controller manager's Lease.
        if components.controllers {
            let identity = format!("{}_{}", hostname(), std::process::id());
            let informers = informers.clone();
            let options = skiff_controllers::manager::Options {
                root_ca: running.pki.ca_cert.as_str().into(),
                signing: ClusterCa::signing(&running.pki, components.cluster_signing_duration),
                reserved_ports: reserved_ports(listen, node.as_ref()),
            };
            supervisor.spawn("the controller manager", async move {
                Ok(skiff_controllers::manager::run(informers, &identity, options).await?)
            });
        }
        if let Some(node) = node {
            supervisor.spawn("the scheduler", async move {
                skiff_controllers::scheduler::run(informers).await;
                Ok(())
            });
            let clients = commands::node::NodeClients {
                kubelet: as_user(&skiff_core::auth::user::node_username(&node.node_name()), &[skiff_core::auth::user::NODES_GROUP])?,
                network: as_user(skiff_core::auth::user::SKIFF_NODE_NETWORK, &[])?,
                storage: as_user(skiff_core::auth::user::SKIFF_NODE_STORAGE, &[])?,
            };
            commands::node::start(&mut supervisor, &data_dir, &node, clients, Default::default()).await?;
            tokio::spawn(commands::node::label_control_plane(admin.clone(), node.node_name()));
        }
        tracing::info!(kubeconfig = %running.kubeconfig_path.display(), "ready");
        // Until a signal, or until the API server or another component stops by itself.
        let outcome = supervisor
            .run_until(async {
                tokio::select! {
                    () = signals.recv() => Ok(()),
                    () = running.stopped() => Err(anyhow::anyhow!("the API server stopped")),
                }
            })
            .await;
        tracing::info!("shutting down (pods keep running)");
        running.shutdown().await;
        outcome
    })
}
