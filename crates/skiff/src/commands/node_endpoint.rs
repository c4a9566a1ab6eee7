//! The node endpoint of `skiff agent` (the kubelet's port 10250): the API server's logs, exec,
//! attach and port-forward requests for pods on this machine, served through this machine's
//! [`LocalNode`] — the same code the in-process agent of `skiff server` uses. The protocol and
//! its client are `skiff_apiserver::nodes::remote`.

use super::node::LocalNode;
use anyhow::Context;
use skiff_apiserver::nodes::remote::{Reply, Request, kind, read_line};
use skiff_apiserver::nodes::{ExecProcess, NodeLink};
use skiff_stream::frames::{Frames, frame};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The endpoint's TLS: a self-signed certificate made at start (its SHA-256 goes on the Node),
/// and only clients with a certificate of the cluster CA (`ca`, DER).
pub struct EndpointTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub fingerprint: String,
}

impl EndpointTls {
    pub fn new(ca: &[Vec<u8>]) -> anyhow::Result<EndpointTls> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for der in ca {
            roots.add(CertificateDer::from(der.clone())).context("the cluster CA")?;
        }
        anyhow::ensure!(!roots.is_empty(), "the kubeconfig names no certificate authority to check the API server by");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
        let generated = rcgen::generate_simple_self_signed(vec!["skiff-node".to_string()])?;
        let cert = generated.cert.der().clone();
        let fingerprint = skiff_apiserver::nodes::remote::fingerprint(&cert);
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
                Ok(conn) => handle(conn, &local).await,
                Err(e) => tracing::debug!(%peer, error = %e, "node endpoint: TLS"),
            }
        });
    }
}

async fn handle<C: AsyncRead + AsyncWrite + Send + Unpin + 'static>(mut conn: C, local: &LocalNode) {
    let request = match read_line(&mut conn).await.map(|l| serde_json::from_slice::<Request>(&l)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let bad = Err::<(), _>(skiff_core::ApiError::BadRequest(format!("bad request: {e}")));
            let _ = reply(&mut conn, &Reply::from_result(&bad)).await;
            return;
        }
        Err(_) => return,
    };
    match request {
        Request::Logs(r) => {
            let logs = local.logs(r).await;
            if reply(&mut conn, &Reply::from_result(&logs)).await.is_err() {
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
            if reply(&mut conn, &Reply::from_result(&pod)).await.is_ok()
                && let Ok(mut pod) = pod
            {
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut pod).await;
            }
        }
        Request::Exec(r) => {
            let process = local.exec(r).await;
            session(conn, process).await;
        }
        Request::Attach(r) => {
            let process = local.attach(r).await;
            session(conn, process).await;
        }
    }
}

async fn reply(conn: &mut (impl AsyncWrite + Unpin), reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    conn.write_all(&line).await?;
    conn.flush().await
}

/// Answer with how starting the process went; then frames from the API server drive it, and
/// its output and exit go back as frames. When the API server goes, the process is dropped
/// (which ends an exec'd command).
async fn session<C: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    mut conn: C,
    process: Result<ExecProcess, skiff_core::ApiError>,
) {
    if reply(&mut conn, &Reply::from_result(&process)).await.is_err() {
        return;
    }
    let Ok(process) = process else { return };
    let (mut rd, wr) = tokio::io::split(conn);
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let ExecProcess { mut stdin, stdout, stderr, exit, resize } = process;
    let input = async {
        let (mut frames, mut buf) = (Frames::default(), vec![0u8; 64 * 1024]);
        loop {
            while let Some((k, data)) = frames.next_frame() {
                match k {
                    kind::STDIN => {
                        if let Some(w) = stdin.as_mut()
                            && (w.write_all(&data).await.is_err() || w.flush().await.is_err())
                        {
                            stdin = None;
                        }
                    }
                    kind::STDIN_END => {
                        if let Some(mut w) = stdin.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    kind::RESIZE => {
                        if let (Some(set), [c1, c2, r1, r2]) = (&resize, data.as_slice()) {
                            set(u16::from_be_bytes([*c1, *c2]), u16::from_be_bytes([*r1, *r2]));
                        }
                    }
                    _ => {}
                }
            }
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => frames.push(&buf[..n]),
            }
        }
    };
    let output = async {
        tokio::join!(pump(stdout, kind::STDOUT, wr.clone()), pump(stderr, kind::STDERR, wr.clone()));
        let code = exit.await;
        let mut wr = wr.lock().await;
        let _ = wr.write_all(&frame(kind::EXIT, &code.to_be_bytes())).await;
        let _ = wr.shutdown().await;
    };
    // Over when the process ends, or when the API server goes (input ends first).
    tokio::select! {
        () = output => {}
        () = input => {}
    }
}

async fn pump(
    mut from: Box<dyn AsyncRead + Send + Unpin>,
    kind: u8,
    to: Arc<tokio::sync::Mutex<tokio::io::WriteHalf<impl AsyncWrite>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // Flushed per frame: over TLS, output could otherwise wait for more output.
                let mut to = to.lock().await;
                if to.write_all(&frame(kind, &buf[..n])).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
