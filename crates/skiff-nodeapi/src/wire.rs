//! The wire codec of a node's endpoint (the kubelet's port 10250, in skiff's own small protocol),
//! both ends: the API server's client (`skiff_apiserver::nodes::remote`, which adds TLS with the
//! node's certificate pinned) and the node's server (`skiff_node::link::endpoint`).
//!
//! One request per connection: a JSON [`Request`] line, a JSON [`Reply`] line, then the
//! operation's bytes — logs: the log bytes; port-forward: the forwarded bytes both ways; exec
//! and attach: frames (`skiff_stream::frames`) numbered by [`Channel`]: stdin, resizes and the
//! end of stdin to the node ([`exec_client`]), output and the exit code from it
//! ([`exec_server`]); usage: one JSON line. Where the endpoint is, and the SHA-256 of its certificate, are annotations
//! on the Node ([`Endpoint::of_node`]).

use crate::{Channel, ExecProcess, ExecRequest, LogRequest, NodeError};
use skiff_stream::frames::{Frames, frame};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::task::AbortOnDropHandle;

/// Annotations an agent with an endpoint puts on its Node.
pub const ENDPOINT_ANNOTATION: &str = "skiff.dev/node-endpoint";
pub const FINGERPRINT_ANNOTATION: &str = "skiff.dev/node-endpoint-sha256";

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
    /// The node's resource usage: after the reply, one JSON line of `NodeUsage`.
    Usage {
        node: String,
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
    pub fn from_result<T>(r: &Result<T, NodeError>) -> Reply {
        match r {
            Ok(_) => Reply::default(),
            Err(e) => Reply { error: Some(e.to_string()), code: Some(e.code()) },
        }
    }

    /// Back into the node's outcome: its message and code, as they came (500 if none came).
    pub fn into_result(self) -> Result<(), NodeError> {
        match self.error {
            None => Ok(()),
            Some(message) => Err(NodeError::Remote { message, code: self.code.unwrap_or(500) }),
        }
    }
}

/// A request line the endpoint could not read as a [`Request`].
#[derive(Debug, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(#[source] pub serde_json::Error);

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

/// Write `value` as one JSON line, and flush it.
pub async fn write_line(to: &mut (impl AsyncWrite + Unpin), value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    to.write_all(&line).await?;
    to.flush().await
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

/// The API server's end of an exec or attach session over `conn` (after the reply), as a
/// process: stdin and resizes become frames to the node, its output and exit frames become the
/// streams and the exit code.
pub fn exec_client<C: AsyncRead + AsyncWrite + Send + 'static>(conn: C, tty: bool) -> ExecProcess {
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
                match Channel::from_number(k) {
                    Some(Channel::Stdout) => out_w.write_all(&data).await.ok(),
                    Some(Channel::Stderr) => err_w.write_all(&data).await.ok(),
                    Some(Channel::Error) => {
                        return data.get(..4).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes);
                    }
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
            tokio::spawn(async move { send(&wr, &frame(Channel::Resize.number(), &size)).await });
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

/// The node's end of an exec or attach session: answer with how starting the process went;
/// then frames from the API server drive it, and its output and exit go back as frames. When
/// the API server goes, the process is dropped (which ends an exec'd command).
pub async fn exec_server<C: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    mut conn: C,
    process: Result<ExecProcess, NodeError>,
) {
    if write_line(&mut conn, &Reply::from_result(&process)).await.is_err() {
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
                match Channel::from_number(k) {
                    Some(Channel::Stdin) => {
                        if let Some(w) = stdin.as_mut()
                            && (w.write_all(&data).await.is_err() || w.flush().await.is_err())
                        {
                            stdin = None;
                        }
                    }
                    Some(Channel::StdinEnd) => {
                        if let Some(mut w) = stdin.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    Some(Channel::Resize) => {
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
        tokio::join!(pump(stdout, Channel::Stdout, wr.clone()), pump(stderr, Channel::Stderr, wr.clone()));
        let code = exit.await;
        let mut wr = wr.lock().await;
        let _ = wr.write_all(&frame(Channel::Error.number(), &code.to_be_bytes())).await;
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
    channel: Channel,
    to: Arc<tokio::sync::Mutex<tokio::io::WriteHalf<impl AsyncWrite>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // Flushed per frame: over TLS, output could otherwise wait for more output.
                let mut to = to.lock().await;
                if to.write_all(&frame(channel.number(), &buf[..n])).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
        }
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
    /// Write a frame on `channel` with `data`, or finish the one already underway (whose length
    /// is returned).
    fn poll_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
        channel: Channel,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::future::Future;
        let (len, pending) = self.pending.get_or_insert_with(|| {
            let wr = self.wr.clone();
            let bytes = frame(channel.number(), data);
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
        self.poll_frame(cx, Channel::Stdin, buf)
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
        self.poll_frame(cx, Channel::StdinEnd, &[]).map_ok(|_| ())
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
        let failed = Reply::from_result::<()>(&Err(NodeError::refused("no such container")));
        assert_eq!(failed.code, Some(400));
        let back = failed.into_result().expect_err("failed");
        assert!(matches!(&back, NodeError::Remote { code: 400, .. }) && back.to_string() == "no such container");
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
        let mut process = exec_client(ours, true);
        let mut stdin = process.stdin.take().expect("stdin");
        stdin.write_all(b"typed").await.expect("stdin");
        stdin.shutdown().await.expect("end");
        if let Some(resize) = &process.resize {
            resize(80, 24);
        }
        let mut node_out = frame(Channel::Stdout.number(), b"out");
        node_out.extend(frame(Channel::Stderr.number(), b"err"));
        node_out.extend(frame(Channel::Error.number(), &7i32.to_be_bytes()));
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
        assert!(got.contains(&(Channel::Stdin.number(), b"typed".to_vec())));
        assert!(got.contains(&(Channel::StdinEnd.number(), vec![])));
        assert!(got.contains(&(Channel::Resize.number(), vec![0, 80, 0, 24])));
    }

    #[tokio::test]
    async fn the_node_end_serves_a_process_to_the_client_end() {
        let (api, node) = tokio::io::duplex(4096);
        let (mut typed, stdin) = tokio::io::duplex(64);
        let (mut printed, stdout) = tokio::io::duplex(64);
        let process = ExecProcess {
            stdin: Some(Box::new(stdin)),
            stdout: Box::new(stdout),
            stderr: Box::new(tokio::io::empty()),
            exit: Box::pin(async { 3 }),
            resize: None,
        };
        let server = tokio::spawn(exec_server(node, Ok(process)));
        let (rd, mut wr) = tokio::io::split(api);
        let mut rd = tokio::io::BufReader::new(rd);
        let reply = read_line(&mut rd).await.expect("reply");
        assert_eq!(reply, b"{}");
        wr.write_all(&frame(Channel::Stdin.number(), b"in")).await.expect("stdin frame");
        let mut got = [0u8; 2];
        typed.read_exact(&mut got).await.expect("stdin reached the process");
        assert_eq!(&got, b"in");
        printed.write_all(b"hello").await.expect("output");
        drop(printed);
        let mut frames = Frames::default();
        let mut buf = vec![0u8; 1024];
        let mut seen = Vec::new();
        while !seen.iter().any(|(k, _)| *k == Channel::Error.number()) {
            let n = rd.read(&mut buf).await.expect("frames");
            assert!(n > 0, "ended early: {seen:?}");
            frames.push(&buf[..n]);
            seen.extend(std::iter::from_fn(|| frames.next_frame()));
        }
        assert!(seen.contains(&(Channel::Stdout.number(), b"hello".to_vec())));
        assert!(seen.contains(&(Channel::Error.number(), 3i32.to_be_bytes().to_vec())));
        drop(wr);
        server.await.expect("server ends");
    }
}
