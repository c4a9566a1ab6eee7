//! The node endpoint of `skiff agent` (the kubelet's port 10250): the API server's logs, exec,
//! attach and port-forward requests for pods on this machine, served through this machine's
//! [`LocalNode`] — the same code the in-process agent of `skiff server` uses. The protocol is
//! `skiff_nodeapi::wire`; its client is the API server's `nodes::remote`.

use super::LocalNode;
use skiff_nodeapi::wire::{BadRequest, Reply, Request, exec_server, read_line, write_line};
use skiff_nodeapi::{NodeError, NodeLink};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Why the endpoint's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the cluster CA: {0}")]
    Ca(#[source] rustls::Error),
    #[error("the kubeconfig names no certificate authority to check the API server by")]
    NoCa,
    #[error(transparent)]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("making the endpoint's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] rustls::Error),
}

/// The endpoint's TLS: a self-signed certificate made at start (its SHA-256 goes on the Node),
/// and only clients with a certificate of the cluster CA (`ca`, DER).
pub struct EndpointTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub fingerprint: String,
}

impl EndpointTls {
    pub fn new(ca: &[Vec<u8>]) -> Result<EndpointTls, EndpointError> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for der in ca {
            roots.add(CertificateDer::from(der.clone())).map_err(EndpointError::Ca)?;
        }
        if roots.is_empty() {
            return Err(EndpointError::NoCa);
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
        let generated = rcgen::generate_simple_self_signed(vec!["skiff-node".to_string()])?;
        let cert = generated.cert.der().clone();
        let fingerprint = skiff_nodeapi::wire::fingerprint(&cert);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert], key)?;
        Ok(EndpointTls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), fingerprint })
    }
}

/// Serve the endpoint on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, tls: tokio_rustls::TlsAcceptor, local: Arc<LocalNode>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %e, "node endpoint: accepting");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, local) = (tls.clone(), local.clone());
        tokio::spawn(async move {
            match tls.accept(tcp).await {
                Ok(conn) => handle(conn, local.as_ref()).await,
                Err(e) => tracing::debug!(%peer, error = %e, "node endpoint: TLS"),
            }
        });
    }
}

/// Serve one request (one connection) through `local`.
pub async fn handle<C: AsyncRead + AsyncWrite + Send + Unpin + 'static>(mut conn: C, local: &dyn NodeLink) {
    let request = match read_line(&mut conn).await.map(|l| serde_json::from_slice::<Request>(&l)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let bad = Err::<(), _>(NodeError::refused(BadRequest(e)));
            let _ = write_line(&mut conn, &Reply::from_result(&bad)).await;
            return;
        }
        Err(_) => return,
    };
    match request {
        Request::Logs(r) => {
            let logs = local.logs(r).await;
            if write_line(&mut conn, &Reply::from_result(&logs)).await.is_err() {
                return;
            }
            if let Ok(mut logs) = logs {
                use futures::StreamExt;
                while let Some(Ok(chunk)) = logs.next().await {
                    // Flushed per chunk: `logs -f` shows each line as it comes.
                    if conn.write_all(&chunk).await.is_err() || conn.flush().await.is_err() {
                        return;
                    }
                }
                let _ = conn.shutdown().await;
            }
        }
        Request::PortForward { node, pod_uid, port } => {
            let pod = local.port_forward(&node, &pod_uid, port).await;
            if write_line(&mut conn, &Reply::from_result(&pod)).await.is_ok()
                && let Ok(mut pod) = pod
            {
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut pod).await;
            }
        }
        Request::Exec(r) => exec_server(conn, local.exec(r).await).await,
        Request::Attach(r) => exec_server(conn, local.attach(r).await).await,
        Request::Usage { node } => {
            let usage = local.usage(&node).await;
            if write_line(&mut conn, &Reply::from_result(&usage)).await.is_ok()
                && let Ok(usage) = usage
            {
                let _ = write_line(&mut conn, &usage).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_bad_request_line_gets_a_400_reply() {
        let local = LocalNode::new("here".into(), "/nonexistent".into());
        let (mut api, node) = tokio::io::duplex(1024);
        api.write_all(b"{\"op\":\"nothing\"}\n").await.expect("ask");
        handle(node, &local).await;
        let mut reply = String::new();
        api.read_to_string(&mut reply).await.expect("reply");
        let reply: Reply = serde_json::from_str(reply.trim()).expect("a reply line");
        assert_eq!(reply.code, Some(400));
        assert!(reply.error.is_some_and(|e| e.starts_with("bad request: ")));
    }

    #[test]
    fn no_ca_no_endpoint() {
        assert!(matches!(EndpointTls::new(&[]), Err(EndpointError::NoCa)));
    }
}
