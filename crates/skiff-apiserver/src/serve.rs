//! The HTTPS listener: TLS with optional client certificates, HTTP/1.1 (with upgrades) and
//! HTTP/2 by ALPN, graceful shutdown.

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Encrypted bytes a connection may hold before a write waits: room for a whole bulk frame.
const TLS_BUFFER: usize = 2 * crate::spdy_conn::BULK;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading PEM: {0}")]
    Pem(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(String),
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| TlsError::Pem(e.to_string()))
}

pub fn acceptor(pki: &crate::pki::Pki) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&pki.ca_cert)? {
        roots.add(c)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pki.server_key.as_bytes())
        .map_err(|e| TlsError::Pem(e.to_string()))?
        .ok_or_else(|| TlsError::Pem("no private key in server.key".into()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server_cert)?, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What clients may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To send a request's headers (kube-apiserver: 32 s).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (kube-apiserver: 90 s).
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Read-only and mutating requests in flight at once (`--max-requests-inflight`,
    /// `--max-mutating-requests-inflight`; kube-apiserver: 400 and 200).
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(32),
            idle_timeout: Duration::from_secs(90),
            max_connections: 4096,
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
        }
    }
}

/// Upstream's (Go's default) `MaxHeaderBytes`.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// Requests in flight on one connection and when the last one ended: what the idle timeout
/// measures.
#[derive(Default)]
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    last_end: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Activity {
    fn start(self: &Arc<Self>) -> ActiveRequest {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ActiveRequest(self.clone())
    }

    /// Idle for at least `timeout` (no request in flight, none ended since).
    fn idle_for(&self, timeout: Duration, since: tokio::time::Instant) -> bool {
        let last = self.last_end.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(since);
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 && last.elapsed() >= timeout
    }
}

/// One request in flight, until its response body is sent or dropped.
struct ActiveRequest(Arc<Activity>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Accept connections until `shutdown` flips, then let open connections finish briefly.
///
/// A client gets `header_read_timeout` to send a request's headers, and a connection with
/// nothing in flight is closed after `idle_timeout`: half-sent requests and idle clients do not
/// hold connections and file descriptors open forever. At most `max_connections` are open at
/// once; past that, new ones wait in the kernel's backlog.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let Limits { header_read_timeout, idle_timeout, .. } = limits;
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, router, mut shutdown) = (acceptor.clone(), router.clone(), shutdown.clone());
        connections.spawn(async move {
            let _permit = permit;
            let mut tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            // rustls takes 64 KiB at a time by default: a bulk frame would go out in several
            // writes, each waking the client (writers flush, so nothing waits in this buffer).
            tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER));
            let identity = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let identity = identity.and_then(|der| crate::authn::cert::identity(der)).map(Arc::new);
            let activity = Arc::new(Activity::default());
            let requests = activity.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(crate::authn::ClientCert(identity.clone()));
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let active = requests.start();
                let response = router.clone().oneshot(req);
                async move {
                    let resp = response.await?;
                    Ok::<_, std::convert::Infallible>(resp.map(|body| crate::http::hold_until_sent(body, active)))
                }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .max_buf_size(MAX_HEADER_BYTES);
            builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEADER_BYTES as u32);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::pin!(conn);
            let opened = tokio::time::Instant::now();
            let mut check = tokio::time::interval((idle_timeout / 4).max(Duration::from_millis(250)));
            let outcome = loop {
                tokio::select! {
                    r = conn.as_mut() => break r.err(),
                    _ = shutdown.changed() => break None,
                    _ = check.tick() => if activity.idle_for(idle_timeout, opened) { break None },
                }
            };
            match outcome {
                Some(e) => tracing::debug!(%peer, error = %e, "connection ended with error"),
                None => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ =
        tokio::time::timeout(Duration::from_secs(6), async { while connections.join_next().await.is_some() {} }).await;
}
