//! A node agent on another machine, reached through the endpoint it publishes on its Node
//! (the kubelet's port 10250, in skiff's own small protocol: `skiff_nodeapi::wire`).
//!
//! TLS both ways. The agent's certificate is self-signed and pinned: its SHA-256 is on the Node
//! (written by the agent, which only cluster credentials can do); the API server presents a
//! client certificate of the cluster CA, which the agent checks. One request per connection.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use skiff_nodeapi::wire::{Endpoint, Reply, Request, exec_client, fingerprint, read_line};
use skiff_nodeapi::{ExecProcess, ExecRequest, LogRequest, LogStream, NodeError, NodeLink, NodeUsage, Tunnel};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Why the API server's client certificate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Pem(#[from] std::io::Error),
    #[error("no private key")]
    NoKey,
}

/// Why a node's endpoint could not be reached, or did not answer as the protocol says.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("no answer in 10 s")]
    Timeout,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Name(#[from] rustls::pki_types::InvalidDnsNameError),
    /// The reply line is not a [`Reply`].
    #[error(transparent)]
    Reply(#[from] serde_json::Error),
}

/// Why a remote node could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The client's TLS configuration (the client certificate, the protocol versions).
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    #[error("reaching the node at {address}: {source}")]
    Unreachable {
        address: String,
        #[source]
        source: ReachError,
    },
}

/// Failing to reach a node is the server's failure, not the client's.
impl From<RemoteError> for NodeError {
    fn from(e: RemoteError) -> NodeError {
        NodeError::failed(e)
    }
}

/// The API server's client certificate for node endpoints.
pub struct ClientIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// From PEM texts.
    pub fn from_pem(cert: &str, key: &str) -> Result<ClientIdentity, IdentityError> {
        let certs = rustls_pemfile::certs(&mut cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut key.as_bytes())?;
        Ok(ClientIdentity { certs, key: key.ok_or(IdentityError::NoKey)? })
    }
}

/// Accepts exactly the certificate whose SHA-256 the node published (its name does not matter:
/// nodes are reached by address).
#[derive(Debug)]
struct Pinned {
    sha256: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.sha256 {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the node's certificate is not the one its Node object names".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A node reached through its endpoint.
pub struct RemoteNode {
    endpoint: Endpoint,
    tls: tokio_rustls::TlsConnector,
}

type Conn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

impl RemoteNode {
    pub fn new(endpoint: Endpoint, identity: &ClientIdentity) -> Result<RemoteNode, RemoteError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Pinned { sha256: endpoint.sha256.clone(), provider: provider.clone() });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(identity.certs.clone(), identity.key.clone_key())?;
        Ok(RemoteNode { endpoint, tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// Connect, ask, and read the answer: the connection then carries the operation.
    async fn open(&self, request: &Request) -> Result<Conn, NodeError> {
        let (conn, reply) = self
            .ask(request)
            .await
            .map_err(|source| RemoteError::Unreachable { address: self.endpoint.address.clone(), source })?;
        reply.into_result()?;
        Ok(conn)
    }

    async fn ask(&self, request: &Request) -> Result<(Conn, Reply), ReachError> {
        let connect = tokio::net::TcpStream::connect(&self.endpoint.address);
        let tcp = tokio::time::timeout(std::time::Duration::from_secs(10), connect)
            .await
            .map_err(|_| ReachError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from("skiff-node")?;
        let mut conn = self.tls.connect(name, tcp).await?;
        skiff_nodeapi::wire::write_line(&mut conn, request).await?;
        let reply = read_line(&mut conn).await?;
        Ok((conn, serde_json::from_slice(&reply)?))
    }

    async fn session(&self, request: Request, tty: bool) -> Result<ExecProcess, NodeError> {
        let conn = self.open(&request).await?;
        Ok(exec_client(conn, tty))
    }
}

#[async_trait::async_trait]
impl NodeLink for RemoteNode {
    async fn logs(&self, request: LogRequest) -> Result<LogStream, NodeError> {
        let conn = self.open(&Request::Logs(request)).await?;
        let stream = futures::stream::unfold(conn, |mut conn| async move {
            let mut buf = vec![0u8; 32 * 1024];
            match conn.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), conn))
                }
                Err(e) => Some((Err(e), conn)),
            }
        });
        Ok(Box::pin(stream))
    }

    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<Box<dyn Tunnel>, NodeError> {
        let request = Request::PortForward { node: node.to_string(), pod_uid: pod_uid.to_string(), port };
        Ok(Box::new(self.open(&request).await?))
    }

    async fn exec(&self, request: ExecRequest) -> Result<ExecProcess, NodeError> {
        let tty = request.tty;
        self.session(Request::Exec(request), tty).await
    }

    async fn attach(&self, request: ExecRequest) -> Result<ExecProcess, NodeError> {
        let tty = request.tty;
        self.session(Request::Attach(request), tty).await
    }

    async fn usage(&self, node: &str) -> Result<NodeUsage, NodeError> {
        let mut conn = self.open(&Request::Usage { node: node.to_string() }).await?;
        let line = read_line(&mut conn).await.map_err(NodeError::failed)?;
        serde_json::from_slice(&line).map_err(NodeError::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_is_not_there_is_the_servers_failure() {
        let e =
            NodeError::from(RemoteError::Unreachable { address: "10.0.0.9:10250".into(), source: ReachError::Timeout });
        assert_eq!(e.code(), 500);
        assert_eq!(e.to_string(), "reaching the node at 10.0.0.9:10250: no answer in 10 s");
        assert!(matches!(ClientIdentity::from_pem("", ""), Err(IdentityError::NoKey)));
    }
}
