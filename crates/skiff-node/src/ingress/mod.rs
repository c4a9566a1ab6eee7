//! The built-in ingress (what k3s's bundled Traefik does): every node serves HTTP and HTTPS on
//! its own ports 80 and 443 for the Ingresses of skiff's class. [`routes`] is the routing table
//! (pure), [`proxy`] serves a request by it, [`tls`] picks certificates by SNI; this module
//! watches Ingresses, IngressClasses and TLS Secrets and, with the node's service snapshots,
//! keeps the table and the certificates current.

pub mod proxy;
pub mod routes;
pub mod tls;

use crate::service_view::Snapshot;
use futures::{FutureExt, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::{reflector, watcher};
use routes::Routes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where the ingress listens.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    pub bind: IpAddr,
    pub http_port: u16,
    pub https_port: u16,
}

/// Serve the ingress until the process ends. A port that cannot be had (another web server on
/// this machine) is a warning: the rest of the node goes on.
pub async fn run(client: kube::Client, config: IngressConfig, services: watch::Receiver<Arc<Snapshot>>) {
    let (routes_tx, routes_rx) = watch::channel(Arc::new(Routes::default()));
    let (certs_tx, certs_rx) = watch::channel(Arc::new(tls::Certificates::new()));
    // One pool of endpoint connections for both ports.
    let upstreams = proxy::upstreams();
    match tls::default_key() {
        Ok(fallback) => {
            let resolver = tls::Resolver { current: certs_rx, fallback: Arc::new(fallback) };
            let mut server =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map(|b| b.with_no_client_auth().with_cert_resolver(Arc::new(resolver)));
            if let Ok(s) = &mut server {
                s.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            }
            match server {
                Ok(s) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(s));
                    let addr = SocketAddr::new(config.bind, config.https_port);
                    listen(addr, Some(acceptor), routes_rx.clone(), upstreams.clone()).await;
                }
                Err(e) => tracing::warn!(error = %e, "the ingress's TLS settings: no HTTPS"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "the ingress's default certificate: no HTTPS"),
    }
    listen(SocketAddr::new(config.bind, config.http_port), None, routes_rx, upstreams).await;
    keep_current(client, services, routes_tx, certs_tx).await;
}

async fn listen(
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    routes: watch::Receiver<Arc<Routes>>,
    upstreams: proxy::Upstreams,
) {
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(%addr, https = tls.is_some(), "ingress listening");
            tokio::spawn(accept(listener, tls, routes, upstreams));
        }
        Err(e) => tracing::warn!(error = %e, %addr, "the ingress cannot listen: Ingresses are not served there"),
    }
}

/// Connections open at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to finish its TLS handshake, and to send a request's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    routes: watch::Receiver<Arc<Routes>>,
    upstreams: proxy::Upstreams,
) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(seat) = open.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::debug!(error = %e, "accepting an ingress connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (tls, routes, upstreams) = (tls.clone(), routes.clone(), upstreams.clone());
        tokio::spawn(async move {
            let _seat = seat;
            let https = tls.is_some();
            let service = hyper::service::service_fn(move |req| {
                let table = routes.borrow().clone();
                proxy::handle(req, table, upstreams.clone(), peer, https)
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let served = match tls {
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => builder.serve_connection_with_upgrades(TokioIo::new(s), service).await,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, %peer, "an ingress TLS handshake");
                        return;
                    }
                    Err(_) => return,
                },
                None => builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await,
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "an ingress connection");
            }
        });
    }
}

/// Rebuild the routes and certificates after each burst of changes to Ingresses, classes, TLS
/// Secrets or the node's services.
async fn keep_current(
    client: kube::Client,
    mut services: watch::Receiver<Arc<Snapshot>>,
    routes: watch::Sender<Arc<Routes>>,
    certs: watch::Sender<Arc<tls::Certificates>>,
) {
    let (ingresses, ingress_events) = crate::watch_cache::watch_all::<Ingress>(&client, watcher::Config::default());
    let (classes, class_events) = crate::watch_cache::watch_all::<IngressClass>(&client, watcher::Config::default());
    let (secrets, secret_events) =
        crate::watch_cache::watch_all::<Secret>(&client, watcher::Config::default().fields("type=kubernetes.io/tls"));
    let events = futures::stream::select(futures::stream::select(ingress_events, class_events), secret_events);
    let mut events = std::pin::pin!(events);
    // Certificates parsed, by Secret and its resourceVersion (a bad one is reported once).
    let mut parsed: HashMap<(String, String), Option<Arc<rustls::sign::CertifiedKey>>> = HashMap::new();
    loop {
        tokio::select! {
            event = events.next() => {
                if event.is_none() {
                    return;
                }
            }
            changed = services.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        while let Some(Some(_)) = events.next().now_or_never() {}
        let snapshot = services.borrow_and_update().clone();
        let classes = classes.state();
        let ours: Vec<Arc<Ingress>> =
            ingresses.state().into_iter().filter(|i| skiff_core::ingress_class::serves(i, &classes)).collect();
        let table = Routes::build(&ours, &snapshot);
        let mut current = tls::Certificates::new();
        for (host, name) in &table.tls {
            let Some((ns, secret_name)) = name.split_once('/') else { continue };
            let Some(secret) = secrets.get(&reflector::ObjectRef::new(secret_name).within(ns)) else { continue };
            let version = secret.metadata.resource_version.clone().unwrap_or_default();
            let key = parsed.entry((name.clone(), version)).or_insert_with(|| match tls::certified_key(name, &secret) {
                Ok(k) => Some(Arc::new(k)),
                Err(e) => {
                    tracing::warn!(error = %e, host, "an Ingress's TLS certificate: the default one is served instead");
                    None
                }
            });
            if let Some(k) = key {
                current.insert(host.clone(), k.clone());
            }
        }
        parsed.retain(|(name, _), _| table.tls.values().any(|n| n == name));
        certs.send_replace(Arc::new(current));
        routes.send_replace(Arc::new(table));
    }
}
