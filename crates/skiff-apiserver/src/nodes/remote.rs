//! A node agent on another machine, reached through the endpoint it publishes on its Node
//! (the kubelet's port 10250, in skiff's own small protocol).
//!
//! Wire: TLS both ways. The agent's certificate is self-signed and pinned: its SHA-256 is on
//! the Node (written by the agent, which only cluster credentials can do); the API server
//! presents a client certificate of the cluster CA, which the agent checks. One request per
//! connection: a JSON [`Request`] line, a JSON [`Reply`] line, then the operation's bytes —
//! logs: the log bytes; port-forward: the forwarded bytes both ways; exec and attach: frames
//! (`skiff_stream::frames`) of the kinds in [`kind`].

use super::{ExecProcess, ExecRequest, LogRequest, LogStream, NodeLink, Tunnel};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use skiff_core::ApiError;
use skiff_stream::frames::{Frames, frame};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::task::AbortOnDropHandle;

/// Annotations an agent with an endpoint puts on its Node.
pub const ENDPOINT_ANNOTATION: &str = "skiff.dev/node-endpoint";
pub const FINGERPRINT_ANNOTATION: &str = "skiff.dev/node-endpoint-sha256";

/// Frame kinds of an exec or attach session.
pub mod kind {
    /// To the node.
    pub const STDIN: u8 = 0;
    pub const RESIZE: u8 = 4;
    pub const STDIN_END: u8 = 5;
    /// From the node.
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const EXIT: u8 = 3;
}

/// What the API server asks of a node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    Logs(LogRequest),
    Exec(ExecRequest),
    Attach(ExecRequest),
    #[serde(rename_all = "camelCase")]
    PortForward {
        node: String,
        pod_uid: String,
        port: u16,
    },
}

/// The node's answer, before the operation's bytes: nothing, or why not (with the HTTP code).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

impl Reply {
    pub fn from_result<T>(r: &Result<T, ApiError>) -> Reply {
        match r {
            Ok(_) => Reply::default(),
            Err(e) => Reply { error: Some(e.to_string()), code: Some(e.code()) },
        }
    }

    fn into_result(self) -> Result<(), ApiError> {
        match (self.error, self.code) {
            (None, _) => Ok(()),
            (Some(e), Some(400)) => Err(ApiError::BadRequest(e)),
            (Some(e), _) => Err(ApiError::Internal(e)),
        }
    }
}

/// Read one line (up to 64 KiB) byte by byte: nothing after it is consumed.
pub async fn read_line(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let b = from.read_u8().await?;
        if b == b'\n' {
            return Ok(line);
        }
        if line.len() >= 64 * 1024 {
            return Err(std::io::Error::other("line too long"));
        }
        line.push(b);
    }
}

/// Where a node's endpoint is and the SHA-256 (hex) of its certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub address: String,
    pub sha256: String,
}

impl Endpoint {
    /// The endpoint a Node object (JSON) publishes.
    pub fn of_node(node: &serde_json::Value) -> Option<Endpoint> {
        let annotations = node.pointer("/metadata/annotations")?;
        let address = annotations.get(ENDPOINT_ANNOTATION)?.as_str()?.to_string();
        let sha256 = annotations.get(FINGERPRINT_ANNOTATION)?.as_str()?.to_lowercase();
        Some(Endpoint { address, sha256 })
    }
}

/// The SHA-256 of a certificate, in lower-case hex.
pub fn fingerprint(cert: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(cert).iter().map(|b| format!("{b:02x}")).collect()
}

/// The API server's client certificate for node endpoints.
pub struct ClientIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// From PEM texts.
    pub fn from_pem(cert: &str, key: &str) -> Result<ClientIdentity, String> {
        let certs = rustls_pemfile::certs(&mut cert.as_bytes()).collect::<Result<Vec<_>, _>>();
        let certs = certs.map_err(|e| e.to_string())?;
        let key = rustls_pemfile::private_key(&mut key.as_bytes()).map_err(|e| e.to_string())?;
        Ok(ClientIdentity { certs, key: key.ok_or("no private key")? })
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
    pub fn new(endpoint: Endpoint, identity: &ClientIdentity) -> Result<RemoteNode, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Pinned { sha256: endpoint.sha256.clone(), provider: provider.clone() });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(identity.certs.clone(), identity.key.clone_key())
            .map_err(|e| e.to_string())?;
        Ok(RemoteNode { endpoint, tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// Connect, ask, and read the answer: the connection then carries the operation.
    async fn open(&self, request: &Request) -> Result<Conn, ApiError> {
        let unreachable =
            |e: String| ApiError::Internal(format!("reaching the node at {}: {e}", self.endpoint.address));
        let connect = tokio::net::TcpStream::connect(&self.endpoint.address);
        let tcp = tokio::time::timeout(std::time::Duration::from_secs(10), connect)
            .await
            .map_err(|_| unreachable("no answer in 10 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from("skiff-node").map_err(|e| unreachable(e.to_string()))?;
        let mut conn = self.tls.connect(name, tcp).await.map_err(|e| unreachable(e.to_string()))?;
        let mut line = serde_json::to_vec(request).map_err(|e| ApiError::Internal(e.to_string()))?;
        line.push(b'\n');
        conn.write_all(&line).await.map_err(|e| unreachable(e.to_string()))?;
        conn.flush().await.map_err(|e| unreachable(e.to_string()))?;
        let reply = read_line(&mut conn).await.map_err(|e| unreachable(e.to_string()))?;
        let reply: Reply = serde_json::from_slice(&reply).map_err(|e| unreachable(e.to_string()))?;
        reply.into_result()?;
        Ok(conn)
    }

    async fn session(&self, request: Request, tty: bool) -> Result<ExecProcess, ApiError> {
        let conn = self.open(&request).await?;
        Ok(session(conn, tty))
    }
}

#[async_trait::async_trait]
impl NodeLink for RemoteNode {
    async fn logs(&self, request: LogRequest) -> Result<LogStream, ApiError> {
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

    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<Box<dyn Tunnel>, ApiError> {
        let request = Request::PortForward { node: node.to_string(), pod_uid: pod_uid.to_string(), port };
        Ok(Box::new(self.open(&request).await?))
    }

    async fn exec(&self, request: ExecRequest) -> Result<ExecProcess, ApiError> {
        let tty = request.tty;
        self.session(Request::Exec(request), tty).await
    }

    async fn attach(&self, request: ExecRequest) -> Result<ExecProcess, ApiError> {
        let tty = request.tty;
        self.session(Request::Attach(request), tty).await
    }
}

/// An exec or attach session over `conn`, as a process: stdin and resizes become frames to the
/// node, its output and exit frames become the streams and the exit code.
fn session<C: AsyncRead + AsyncWrite + Send + 'static>(conn: C, tty: bool) -> ExecProcess {
    let (mut rd, wr) = tokio::io::split(conn);
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let (mut out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (mut err_w, err_r) = tokio::io::duplex(64 * 1024);
    // Dropping the session (the client left) aborts the demultiplexer and so ends the
    // connection, which tells the node.
    let demux = AbortOnDropHandle::new(tokio::spawn(async move {
        let mut frames = Frames::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            while let Some((k, data)) = frames.next_frame() {
                match k {
                    kind::STDOUT => out_w.write_all(&data).await.ok(),
                    kind::STDERR => err_w.write_all(&data).await.ok(),
                    kind::EXIT => return data.get(..4).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes),
                    _ => None,
                };
            }
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => frames.push(&buf[..n]),
            }
        }
    }));
    let exit = Box::pin(async move { demux.await.ok().flatten().unwrap_or(1) });
    let resize_wr = wr.clone();
    let resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>> = tty.then(|| {
        Box::new(move |cols: u16, rows: u16| {
            let wr = resize_wr.clone();
            let mut size = cols.to_be_bytes().to_vec();
            size.extend_from_slice(&rows.to_be_bytes());
            tokio::spawn(async move { send(&wr, &frame(kind::RESIZE, &size)).await });
        }) as Box<dyn Fn(u16, u16) + Send + Sync>
    });
    ExecProcess {
        stdin: Some(Box::new(FramedStdin { wr, pending: None })),
        stdout: Box::new(out_r),
        stderr: Box::new(err_r),
        exit,
        resize,
    }
}

type SharedWriter<C> = Arc<tokio::sync::Mutex<tokio::io::WriteHalf<C>>>;

/// Write a whole frame and flush it: over TLS, bytes written may otherwise wait in the
/// session's buffer for a next write that never comes (the last chunk of stdin, say).
async fn send<C: AsyncWrite>(wr: &SharedWriter<C>, bytes: &[u8]) -> std::io::Result<()> {
    let mut wr = wr.lock().await;
    wr.write_all(bytes).await?;
    wr.flush().await
}

/// Stdin as frames; shutting it down sends the end of stdin.
struct FramedStdin<C> {
    wr: SharedWriter<C>,
    /// The frame being written (its bytes are taken once; a pending write finishes first).
    pending: Option<(usize, futures::future::BoxFuture<'static, std::io::Result<()>>)>,
}

impl<C: AsyncWrite + Send + 'static> FramedStdin<C> {
    /// Write a frame of `kind` with `data`, or finish the one already underway (whose length
    /// is returned).
    fn poll_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
        kind: u8,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::future::Future;
        let (len, pending) = self.pending.get_or_insert_with(|| {
            let wr = self.wr.clone();
            let bytes = frame(kind, data);
            (data.len(), Box::pin(async move { send(&wr, &bytes).await }))
        });
        let len = *len;
        let done = std::pin::Pin::new(pending).poll(cx);
        if done.is_ready() {
            self.pending = None;
        }
        done.map_ok(|()| len)
    }
}

impl<C: AsyncWrite + Send + 'static> AsyncWrite for FramedStdin<C> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.poll_frame(cx, kind::STDIN, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_frame(cx, kind::STDIN_END, &[]).map_ok(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_json_lines() {
        let r = Request::PortForward { node: "far".into(), pod_uid: "u".into(), port: 80 };
        let text = serde_json::to_string(&r).expect("json");
        assert_eq!(text, r#"{"op":"portForward","node":"far","podUid":"u","port":80}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).expect("parse"), r);
        assert_eq!(serde_json::to_string(&Reply::default()).expect("json"), "{}");
        let failed = Reply::from_result::<()>(&Err(ApiError::BadRequest("no such container".into())));
        assert!(matches!(failed.into_result(), Err(ApiError::BadRequest(m)) if m == "no such container"));
    }

    #[test]
    fn endpoints_come_from_node_annotations() {
        let node = serde_json::json!({"metadata": {"annotations": {
            ENDPOINT_ANNOTATION: "127.0.0.1:10250", FINGERPRINT_ANNOTATION: "ABCD"}}});
        assert_eq!(
            Endpoint::of_node(&node),
            Some(Endpoint { address: "127.0.0.1:10250".into(), sha256: "abcd".into() })
        );
        assert_eq!(Endpoint::of_node(&serde_json::json!({"metadata": {}})), None);
        assert_eq!(fingerprint(b"").len(), 64);
    }

    #[tokio::test]
    async fn a_session_carries_stdin_output_resize_and_the_exit_code() {
        let (ours, mut node) = tokio::io::duplex(1024);
        let mut process = session(ours, true);
        let mut stdin = process.stdin.take().expect("stdin");
        stdin.write_all(b"typed").await.expect("stdin");
        stdin.shutdown().await.expect("end");
        if let Some(resize) = &process.resize {
            resize(80, 24);
        }
        let mut node_out = frame(kind::STDOUT, b"out");
        node_out.extend(frame(kind::STDERR, b"err"));
        node_out.extend(frame(kind::EXIT, &7i32.to_be_bytes()));
        node.write_all(&node_out).await.expect("node writes");
        let mut out = vec![0u8; 3];
        process.stdout.read_exact(&mut out).await.expect("stdout");
        assert_eq!(out, b"out");
        assert_eq!(process.exit.await, 7);
        let mut frames = Frames::default();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1024];
        while got.len() < 3 {
            let n = node.read(&mut buf).await.expect("node reads");
            frames.push(&buf[..n]);
            while let Some(f) = frames.next_frame() {
                got.push(f);
            }
        }
        assert!(got.contains(&(kind::STDIN, b"typed".to_vec())) && got.contains(&(kind::STDIN_END, vec![])));
        assert!(got.contains(&(kind::RESIZE, vec![0, 80, 0, 24])));
    }
}
