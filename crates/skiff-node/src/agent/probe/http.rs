//! `httpGet` probes and hooks: one GET from the node into the pod's network, over TLS for
//! `scheme: HTTPS` without verifying the certificate (as the kubelet: pods' certificates are not
//! the node's to judge).

use super::Outcome;
use super::target::{Target, USER_AGENT, aim, go_error};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::HTTPGetAction;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Why an HTTP probe got no answer.
#[derive(Debug, thiserror::Error)]
enum GetError {
    #[error("dial tcp {addr}: {}", go_error(.source))]
    Dial { addr: SocketAddr, source: std::io::Error },
    #[error("tls: {0}")]
    Tls(#[source] std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Request(#[from] http::Error),
}

/// GET `action` from `target` within `timeout`: success for 200 <= status < 400, the kubelet's
/// rule (a redirect counts as a success).
pub async fn get(target: &Target<'_>, action: &HTTPGetAction, timeout: Duration) -> Outcome {
    let addr = match aim(target, &action.port, action.host.as_deref()) {
        Ok(a) => a,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    let https = action.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"));
    let path = match action.path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => "/".to_string(),
    };
    let url = format!("{}://{addr}{path}", if https { "https" } else { "http" });
    let get = async {
        let mut request = http::Request::get(&path)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::ACCEPT, "*/*");
        for h in action.http_headers.iter().flatten() {
            request = request.header(h.name.as_str(), h.value.as_str());
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|source| GetError::Dial { addr, source })?;
        if https {
            // An address, never a name: rustls sends no SNI for it, as Go does not.
            let name = ServerName::IpAddress(addr.ip().into());
            let tls = INSECURE_TLS.connect(name, stream).await.map_err(GetError::Tls)?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(stream), request).await
        }
    };
    match tokio::time::timeout(timeout, get).await {
        Ok(Ok(status)) if (200..400).contains(&status.as_u16()) => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {}", status.as_u16())),
        Ok(Err(e)) => Outcome::Failure(format!("Get {url:?}: {e}")),
        Err(_) => Outcome::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

async fn send<I>(io: I, request: http::Request<Empty<Bytes>>) -> Result<http::StatusCode, GetError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(request).await?.status())
}

/// The TLS client of HTTPS probes: any certificate, checked only for the handshake's signature.
static INSECURE_TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
});

/// Go's `InsecureSkipVerify`: the chain and name are not checked, the handshake still is.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::super::target::testing::{probe, target};
    use super::*;
    use crate::pod_dir::PodDir;
    use k8s_openapi::api::core::v1::{Container, ContainerPort};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    /// Answer one request on `s` with `status`; the request's head goes to `tx`.
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        status: u16,
        tx: &tokio::sync::mpsc::UnboundedSender<String>,
    ) {
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
        let _ = s.write_all(reply.as_bytes()).await;
    }

    /// An HTTP server on loopback answering each request with `status` (over TLS with a
    /// self-signed certificate if `tls`), and the requests seen.
    async fn server(status: u16, tls: bool) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let acceptor = tls.then(|| {
            let cert = rcgen::generate_simple_self_signed(vec!["pod.example".into()]).expect("certificate");
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert.cert.der().clone()], key)
                .expect("server config");
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                match &acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(s).await {
                            answer(s, status, &tx).await
                        }
                    }
                    None => answer(s, status, &tx).await,
                }
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn http_probes_follow_the_kubelets_status_rule_and_send_its_headers() {
        let dir = PodDir::at("/nonexistent".into());
        let (ok, mut seen) = server(200, false).await;
        let c = Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("web".into()),
                container_port: ok as i32,
                ..Default::default()
            }]),
            ..Default::default()
        };
        let p = probe(
            serde_json::json!({"httpGet": {"path": "healthz", "port": "web", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}}),
        );
        assert_eq!(
            get(&target(&c, &dir), p.http_get.as_ref().expect("httpGet"), Duration::from_secs(2)).await,
            Outcome::Success
        );
        let request = seen.recv().await.expect("a request");
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("user-agent: kube-probe/1.32"), "{request}");
        assert!(request.contains("x-probe: yes"), "{request}");

        let (failing, _seen) = server(500, false).await;
        let p = probe(serde_json::json!({"httpGet": {"path": "/", "port": failing}}));
        let out = get(&target(&c, &dir), p.http_get.as_ref().expect("httpGet"), Duration::from_secs(2)).await;
        assert_eq!(out, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
        let p = probe(serde_json::json!({"httpGet": {"port": "nope"}}));
        let out = get(&target(&c, &dir), p.http_get.as_ref().expect("httpGet"), Duration::from_secs(2)).await;
        assert_eq!(out, Outcome::Failure("couldn't find port: nope in app".into()));
    }

    #[tokio::test]
    async fn https_probes_accept_any_certificate_and_judge_the_status() {
        let dir = PodDir::at("/nonexistent".into());
        let c = Container { name: "app".into(), ..Default::default() };
        let (ok, mut seen) = server(204, true).await;
        let p = probe(serde_json::json!({"httpGet": {"path": "/ready", "port": ok, "scheme": "HTTPS"}}));
        assert_eq!(
            get(&target(&c, &dir), p.http_get.as_ref().expect("httpGet"), Duration::from_secs(2)).await,
            Outcome::Success
        );
        assert!(seen.recv().await.expect("a request").starts_with("GET /ready HTTP/1.1\r\n"));

        let (failing, _seen) = server(503, true).await;
        let p = probe(serde_json::json!({"httpGet": {"port": failing, "scheme": "HTTPS"}}));
        let out = get(&target(&c, &dir), p.http_get.as_ref().expect("httpGet"), Duration::from_secs(2)).await;
        assert_eq!(out, Outcome::Failure("HTTP probe failed with statuscode: 503".into()));

        // Plain HTTP where HTTPS is expected: the handshake fails, and the probe says so.
        let (plain, _seen) = server(200, false).await;
        let p = probe(serde_json::json!({"httpGet": {"port": plain, "scheme": "HTTPS"}}));
        let out = get(&target(&c, &dir), p.http_get.as_ref().expect("httpGet"), Duration::from_secs(2)).await;
        let Outcome::Failure(why) = out else { panic!("plain HTTP passed an HTTPS probe") };
        assert!(why.starts_with(&format!("Get \"https://127.0.0.1:{plain}/\": tls: ")), "{why}");
    }
}
