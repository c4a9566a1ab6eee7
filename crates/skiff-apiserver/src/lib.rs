//! skiff's Kubernetes API server: HTTPS with client-certificate or token authentication,
//! discovery, OpenAPI, and CRUD/list/watch/patch of the core kinds over a [`skiff_store::Store`].

pub mod audit;
mod authn;
mod authz;
mod catalog;
mod crds;
mod discovery;
pub mod encryption;
mod exec;
mod http;
mod inflight;
mod list;
mod logs;
mod metrics;
mod namespaces;
pub mod nodes;
mod openapi;
pub mod pki;
mod portforward;
mod protobuf;
mod proxy;
mod query;
mod registry;
mod resource_metrics;
mod rest;
mod route;
mod serve;
pub mod serviceaccounts;
pub mod services;
pub mod signer;

pub use serve::Limits;
mod spdy_conn;
mod watch;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use skiff_core::ApiError;
use skiff_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch as signal;

pub use discovery::KUBE_MINOR;
pub use pki::Pki;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Tls(#[from] serve::TlsError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("initializing the API: {0}")]
    Init(#[from] ApiError),
    #[error(transparent)]
    ServiceAccountKey(#[from] serviceaccounts::KeyError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub store: Arc<dyn Store>,
    /// How often idle watches that allow bookmarks get one (upstream: about a minute).
    pub bookmark_interval: std::time::Duration,
    /// How long a client may take to send a request's headers, and how many connections may be
    /// open at once.
    pub limits: serve::Limits,
    /// This server's own node agent, by node name (other nodes are reached through the
    /// endpoints they publish).
    pub nodes: Option<(String, Arc<dyn skiff_nodeapi::NodeLink>)>,
    /// Where Services' cluster IPs and node ports come from.
    pub service_ranges: services::ServiceRanges,
    /// The cluster DNS address (the `kube-dns` Service's), in the service range.
    pub cluster_dns: std::net::Ipv4Addr,
    /// The cluster's DNS domain (the serving certificate names `kubernetes.default.svc.DOMAIN`).
    pub cluster_domain: String,
    /// An address of this machine where its pods reach the API server (its node's bridge):
    /// served too, on the same port, and the `kubernetes` Service's endpoint.
    pub advertise: Option<std::net::Ipv4Addr>,
    /// How requests are authorized.
    pub authorization: AuthorizationMode,
    /// The audit policy and log (`--audit-*`).
    pub audit: audit::Options,
}

/// `--authorization-mode`: kube-apiserver's ordered list of authorizers asked after
/// `system:masters` (`Node,RBAC` by default; `AlwaysAllow` lets every authenticated request
/// through, for benchmarks and migrations). The Node authorizer brings the NodeRestriction
/// admission with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthorizationMode(pub skiff_core::auth::Modes);

impl std::str::FromStr for AuthorizationMode {
    type Err = skiff_core::auth::ModesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(AuthorizationMode)
    }
}

pub struct AppState {
    registry: registry::Registry,
    bookmark_interval: std::time::Duration,
    token: String,
    server_address: String,
    shutdown: signal::Receiver<bool>,
    /// This server's own node agent, by node name.
    nodes: Option<(String, Arc<dyn skiff_nodeapi::NodeLink>)>,
    /// How this server identifies itself to remote node agents.
    client_identity: nodes::remote::ClientIdentity,
    /// The authorizer chain and what its authorizers read (RBAC objects, the node graph).
    authorization: authz::chain::Chain,
    /// Service-account tokens: issued, checked, and their issuer's OIDC documents.
    service_accounts: serviceaccounts::Issuer,
    /// The kinds served now: built-in and custom.
    catalog: Arc<catalog::Catalog>,
    /// The OpenAPI documents of what is served.
    openapi: openapi::OpenApi,
}

/// A running API server.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub pki: Pki,
    pub kubeconfig_path: PathBuf,
    shutdown: signal::Sender<bool>,
    /// The accept loop; `None` once it has ended.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stop accepting, end watches, and wait for open connections to finish (bounded).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }

    /// Wait until the server stops on its own, which only a bug does (a supervisor's cue).
    pub async fn stopped(&mut self) {
        match &mut self.task {
            Some(task) => {
                let _ = task.await;
                self.task = None;
            }
            None => std::future::pending().await,
        }
    }
}

/// Prepare the PKI and kubeconfig, bind, and start serving in the background.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    // A malformed audit policy stops the start before anything is served.
    let auditor = Arc::new(audit::Auditor::new(&config.audit, config.authorization.0.allows_everything())?);
    // Pods reach the API at the `kubernetes` Service's address (and its endpoint): the
    // certificate names both, and the Service's DNS names.
    let service_ip = config.service_ranges.first();
    let mut extra_ips = vec![service_ip];
    extra_ips.extend(config.advertise.map(std::net::IpAddr::V4));
    let names = [format!("kubernetes.default.svc.{}", config.cluster_domain), "kubernetes.default".to_string()];
    let pki = Pki::load_or_create_with(&config.data_dir.join("pki"), &extra_ips, &names)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    let kubeconfig_path = config.data_dir.join("kubeconfig.yaml");
    pki::write_kubeconfig(&kubeconfig_path, &pki.kubeconfig(addr))?;

    let (tx, rx) = signal::channel(false);
    let mut registry = registry::Registry::with_service_ranges(config.store, config.service_ranges);
    registry.ensure_rbac_defaults().await?;
    let authorization = authz::chain::Chain::start(config.authorization.0, registry.store().clone())
        .await
        .map_err(|e| ServerError::Init(ApiError::Internal(e.to_string())))?;
    registry.set_authorizer(authorization.rbac().receiver());
    registry.restrict_nodes(authorization.restricts_nodes());
    // The service-account signing key, made on the first start (off the runtime: RSA takes a
    // moment); the JWKS URI names where pods reach this server.
    let external = config.advertise.map_or(addr, |ip| SocketAddr::new(ip.into(), addr.port()));
    let pki_dir = config.data_dir.join("pki");
    let service_accounts =
        tokio::task::spawn_blocking(move || serviceaccounts::Issuer::load_or_create(&pki_dir, external))
            .await
            .map_err(|e| ServerError::Init(ApiError::Internal(e.to_string())))??;
    let state = Arc::new(AppState {
        registry,
        authorization,
        service_accounts,
        bookmark_interval: config.bookmark_interval,
        token: pki.token.clone(),
        server_address: addr.to_string(),
        shutdown: rx.clone(),
        nodes: config.nodes,
        client_identity: nodes::remote::ClientIdentity::from_pem(&pki.admin_cert, &pki.admin_key)
            .map_err(|e| ServerError::Pki(pki::PkiError::Invalid(e.to_string())))?,
        catalog: Arc::default(),
        openapi: openapi::OpenApi::new(),
    });
    crds::Controller::new(state.registry.clone(), state.catalog.clone(), state.openapi.clone())
        .start()
        .await
        .map_err(|e| ServerError::Init(ApiError::Internal(e.to_string())))?;
    namespaces::start(&state).await?;
    state.registry.ensure_kubernetes_service(addr.port()).await?;
    if let Err(e) = state.registry.ensure_kube_dns_service(config.cluster_dns).await {
        // An address taken by another Service, or outside the range: DNS names still resolve
        // (nodes serve them), only clients looking for the Service miss it.
        tracing::warn!(error = %e, ip = %config.cluster_dns, "creating the kube-dns Service");
    }
    state.registry.ensure_ingress_class().await?;
    state.registry.ensure_storage_class().await?;
    let acceptor = serve::acceptor(&pki)?;
    let inflight = Arc::new(inflight::Inflight::new(
        config.limits.max_requests_inflight,
        config.limits.max_mutating_requests_inflight,
    ));
    if let Some(ip) = config.advertise {
        state.registry.ensure_kubernetes_endpoints(ip, addr.port()).await?;
    }
    let router = router(state, inflight, auditor);
    if let Some(ip) = config.advertise {
        let also = SocketAddr::new(std::net::IpAddr::V4(ip), addr.port());
        let listener =
            tokio::net::TcpListener::bind(also).await.map_err(|source| ServerError::Listen { addr: also, source })?;
        tokio::spawn(serve::serve(listener, acceptor.clone(), router.clone(), config.limits, rx.clone()));
        tracing::info!(addr = %also, "API server listening for pods");
    }
    let task = tokio::spawn(serve::serve(listener, acceptor, router, config.limits, rx));
    tracing::info!(%addr, "API server listening");
    Ok(RunningServer { addr, pki, kubeconfig_path, shutdown: tx, task: Some(task) })
}

fn router(state: Arc<AppState>, inflight: Arc<inflight::Inflight>, auditor: Arc<audit::Auditor>) -> Router {
    Router::new()
        .route("/version", get(|| async { axum::Json(discovery::version()) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", {
            let auditor = auditor.clone();
            get(|| async move { metrics::render(&auditor) })
        })
        .route(serviceaccounts::discovery::CONFIG_PATH, get(serviceaccounts::discovery::configuration))
        .route(serviceaccounts::discovery::JWKS_PATH, get(serviceaccounts::discovery::jwks))
        .route("/api", get(api))
        .route("/apis", get(apis))
        .route("/api/{version}", get(core_resources))
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/{version}", get(group_resources))
        .route("/openapi/v2", get(|State(s): State<Arc<AppState>>, h: HeaderMap| async move { s.openapi.v2(&h) }))
        .route("/openapi/v3", get(|State(s): State<Arc<AppState>>, h: HeaderMap| async move { s.openapi.v3_root(&h) }))
        .route("/openapi/v3/{*group_version}", get(openapi_group_version))
        .route("/api/{version}/{*rest}", axum::routing::any(rest::handle))
        .route("/apis/{group}/{version}/{*rest}", axum::routing::any(rest::handle))
        .route("/apis/metrics.k8s.io/v1beta1/{*rest}", get(resource_metrics::handle))
        .fallback(|| async { http::Failure(ApiError::NoResource) })
        // Layers run outermost last: who the client is, who it acts as, whether it may, then
        // whether it gets a seat.
        .layer(middleware::from_fn_with_state(inflight, inflight::limit))
        .layer(middleware::from_fn_with_state(state.clone(), authz::authorize))
        // The audit sees who the request acts as, and authorization's decision and 403s.
        .layer(middleware::from_fn_with_state(auditor.clone(), audit::acting))
        .layer(middleware::from_fn_with_state(state.clone(), authn::impersonate::impersonate))
        .layer(middleware::from_fn_with_state(auditor.clone(), audit::authenticated))
        .layer(middleware::from_fn_with_state(state.clone(), authn::authenticate))
        // Outermost: the Audit-Id, and failed authentications audited.
        .layer(middleware::from_fn_with_state(auditor, audit::init))
        .with_state(state)
}

fn discovery_response(served: &catalog::Snapshot, headers: &HeaderMap, core: bool, legacy: Value) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match discovery::aggregated_version(accept) {
        Some(v) => {
            let body = serde_json::to_vec(&discovery::aggregated(served, v, core)).unwrap_or_default();
            (StatusCode::OK, [(header::CONTENT_TYPE, discovery::aggregated_content_type(v))], body).into_response()
        }
        None => axum::Json(legacy).into_response(),
    }
}

async fn api(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    discovery_response(&state.catalog.snapshot(), &headers, true, discovery::api_versions(&state.server_address))
}

async fn apis(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let served = state.catalog.snapshot();
    discovery_response(&served, &headers, false, discovery::api_group_list(&served))
}

async fn openapi_group_version(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    state.openapi.v3_group_version(&path, &headers, query.as_deref())
}

/// A discovery document, or upstream's 404 for a group or version not served.
fn found(doc: Option<Value>) -> Response {
    match doc {
        Some(d) => axum::Json(d).into_response(),
        None => http::Failure(ApiError::NoResource).into_response(),
    }
}

async fn core_resources(State(state): State<Arc<AppState>>, Path(version): Path<String>) -> Response {
    found(discovery::api_resource_list(&state.catalog.snapshot(), "", &version))
}

async fn group(State(state): State<Arc<AppState>>, Path(group): Path<String>) -> Response {
    found(discovery::api_group(&state.catalog.snapshot(), &group))
}

async fn group_resources(
    State(state): State<Arc<AppState>>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    found(discovery::api_resource_list(&state.catalog.snapshot(), &group, &version).filter(|_| !group.is_empty()))
}

/// Entry points for the fuzz targets in `fuzz/`: the request decoders, reachable without a server.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::{duplicate_fields, parse_body};
    pub use crate::list::{decode_continue, list_revision};
    pub use crate::protobuf::decode as decode_protobuf;
    pub use crate::query::{FieldValidation, Query};
    pub use crate::registry::decode_body;
}
