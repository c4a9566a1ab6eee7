//! `pods/exec` and `pods/attach` (the same session, without a command). Over SPDY/3.1 with the
//! remote-command protocols `channel.k8s.io` and `v2`-`v5.channel.k8s.io` (v5 over SPDY is v4):
//! the client opens an `error` stream and, as asked, `stdin`, `stdout`, `stderr` and (v3+)
//! `resize`; the node runs the command; its output goes back on the streams and its end on the
//! error stream: from v4 a `Status` (`NonZeroExitCode` with the code as the cause, which kubectl
//! turns into its own exit code), before that the failure's message. Over WebSocket with the
//! channel protocols of `skiff_stream::channel`, binary or base64.

use crate::http::Failure;
use crate::spdy_conn::{self, Event, Writer};
use axum::response::Response;
use http::HeaderMap;
use serde_json::{Value, json};
use skiff_core::ApiError;
use skiff_nodeapi::{Channel, ExecRequest, NodeLink};
use skiff_stream::{channel, spdy};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Supported SPDY protocols; the client's first one among these is chosen.
const PROTOCOLS: [&str; 5] =
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];
/// Supported WebSocket protocols, ours in order of preference ("": none offered).
const WS_PROTOCOLS: [&str; 6] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
    "",
];

/// The version of a SPDY remote-command protocol (`channel.k8s.io` is 1).
fn spdy_version(protocol: &str) -> u8 {
    protocol.strip_prefix('v').and_then(|v| v.split('.').next()).and_then(|v| v.parse().ok()).unwrap_or(1)
}
/// How long the client has to open the streams it announced (as upstream).
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);

/// The exec query: `command` (repeated), `container`, `stdin`, `stdout`, `stderr`, `tty`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExecQuery {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecQuery {
    /// The query of `exec` (a command is required) or `attach` (a command is ignored).
    pub fn parse(raw: Option<&str>, attach: bool) -> Result<Self, ApiError> {
        let mut q = ExecQuery::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let flag = || matches!(v.as_ref(), "true" | "1");
            match k.as_ref() {
                "command" => q.command.push(v.into_owned()),
                "container" => q.container = Some(v.into_owned()).filter(|c| !c.is_empty()),
                "stdin" => q.stdin = flag(),
                "stdout" => q.stdout = flag(),
                "stderr" => q.stderr = flag(),
                "tty" => q.tty = flag(),
                _ => {}
            }
        }
        if attach {
            q.command.clear();
        } else if q.command.is_empty() {
            return Err(ApiError::BadRequest("you must specify at least 1 command".into()));
        }
        if !(q.stdin || q.stdout || q.stderr) {
            return Err(ApiError::BadRequest("you must specify at least one of stdin, stdout, stderr".into()));
        }
        Ok(q)
    }
}

/// The Status kubectl reads from the error stream when the command ended with `code`.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: command exited with {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
    })
}

fn failure_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500})
}

/// What the error stream carries for `status`: the JSON Status (v4+), or before v4 the
/// failure's message and nothing on success.
fn status_bytes(status: &Value, json: bool) -> Option<Vec<u8>> {
    if json {
        return serde_json::to_vec(status).ok();
    }
    (status["status"] != "Success").then(|| status["message"].as_str().unwrap_or("error").as_bytes().to_vec())
}

/// Answer the upgrade (WebSocket or SPDY) and serve the session in the background.
pub async fn serve(
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
) -> Result<Response, Failure> {
    if spdy_conn::is_websocket(headers) {
        let (ws, name) = spdy_conn::websocket(headers, extensions, &WS_PROTOCOLS).await?;
        let protocol = channel::Protocol::from_name(name)
            .ok_or_else(|| Failure(ApiError::Internal(format!("no codec for {name}"))))?;
        return Ok(ws.on_upgrade(move |socket| websocket_session(socket, protocol, nodes, request, query)));
    }
    let protocol = spdy_conn::negotiate(headers, &PROTOCOLS, "exec")?;
    let version = spdy_version(protocol);
    spdy_conn::upgrade(extensions, protocol, move |events, writer| {
        session(events, writer, nodes, request, query, version)
    })
}

/// How long a WebSocket session holds its first messages (see `websocket_session`).
const STREAMS_SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

/// WebSocket: one message per write, in the negotiated encoding.
struct WsOutput {
    out: mpsc::Sender<axum::extract::ws::Message>,
    protocol: channel::Protocol,
}

impl WsOutput {
    async fn message(&self, channel: Channel, data: &[u8]) -> bool {
        self.out.send(spdy_conn::channel_message(self.protocol, channel.number(), data)).await.is_ok()
    }
}

#[async_trait::async_trait]
impl Output for WsOutput {
    async fn send(&self, channel: Channel, data: Vec<u8>) -> bool {
        self.message(channel, &data).await
    }
    async fn finish(&self, status: Value) {
        use axum::extract::ws::{CloseFrame, Message};
        if let Some(bytes) = status_bytes(&status, self.protocol.status_as_json()) {
            self.message(Channel::Error, &bytes).await;
        }
        let _ = self.out.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    }
}

/// Over WebSocket: channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5's close of
/// channel 0 ends stdin.
async fn websocket_session(
    socket: axum::extract::ws::WebSocket,
    protocol: channel::Protocol,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
) {
    use axum::extract::ws::Message;
    use futures::{SinkExt, StreamExt};
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    tokio::spawn(async move {
        // kubectl before 1.33 (client-go's WebSocket executor, kubernetes#131189) reads the
        // connection before it has made its streams, and drops what comes in the meantime
        // ("Unknown stream id 1, discarding message"): a fast command's output was lost. Wait
        // that instant out; the messages queue meanwhile.
        tokio::time::sleep(STREAMS_SETTLE).await;
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    });
    let output = WsOutput { out: out_tx, protocol };
    // As upstream: an empty message on the first channel we write tells the client we are set.
    let first = if query.stdout {
        Channel::Stdout
    } else if query.stderr {
        Channel::Stderr
    } else {
        Channel::Error
    };
    output.message(first, &[]).await;
    let (input_tx, input_rx) = mpsc::channel::<Input>(16);
    tokio::spawn(async move {
        // Reading also answers the client's pings (its read deadline depends on the pongs).
        while let Some(Ok(msg)) = stream.next().await {
            let input = match spdy_conn::channel_input(protocol, &msg) {
                ControlFlow::Break(()) => break,
                ControlFlow::Continue(Some(channel::Incoming::Data { channel, data })) => {
                    match Channel::from_number(channel) {
                        Some(Channel::Stdin) => Input::Stdin(data),
                        Some(Channel::Resize) => Input::Resize(data),
                        _ => continue,
                    }
                }
                ControlFlow::Continue(Some(channel::Incoming::Close { channel }))
                    if Channel::from_number(channel) == Some(Channel::Stdin) =>
                {
                    Input::StdinEnd
                }
                ControlFlow::Continue(_) => continue,
            };
            if input_tx.send(input).await.is_err() {
                break;
            }
        }
    });
    run(nodes, request, query.tty, input_rx, Arc::new(output)).await;
}

/// The streams of one session, by role.
#[derive(Default, Debug)]
struct Streams {
    error: Option<u32>,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl Streams {
    /// All the streams the query asks for came (a resize stream from v3 on).
    fn complete(&self, q: &ExecQuery, version: u8) -> bool {
        self.error.is_some()
            && (!q.stdin || self.stdin.is_some())
            && (!q.stdout || self.stdout.is_some())
            && (!q.stderr || q.tty || self.stderr.is_some())
            && (!q.tty || version < 3 || self.resize.is_some())
    }
}

/// What the client sends during a session, whatever the transport.
#[derive(Debug)]
enum Input {
    Stdin(Vec<u8>),
    StdinEnd,
    Resize(Vec<u8>),
}

/// Where a session's output goes, whatever the transport.
#[async_trait::async_trait]
trait Output: Send + Sync + 'static {
    /// Bytes on a channel (stdout or stderr); false once the client is gone.
    async fn send(&self, channel: Channel, data: Vec<u8>) -> bool;
    /// The end: outputs closed, then `status` on the error channel.
    async fn finish(&self, status: Value);
}

/// Run the command, moving bytes until it ends (or the client goes: `input` closes, and dropping
/// the process stops it).
async fn run(
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    tty: bool,
    mut input: mpsc::Receiver<Input>,
    output: Arc<dyn Output>,
) {
    let started = if request.command.is_empty() { nodes.attach(request).await } else { nodes.exec(request).await };
    let process = match started {
        Ok(p) => p,
        Err(e) => return output.finish(failure_status(&e.to_string())).await,
    };
    let mut stdin = process.stdin;
    let resize = process.resize;
    let mut sizes: Vec<u8> = Vec::new();
    // With a TTY there is no stderr channel: both outputs go to stdout, as on a terminal.
    let out = pump(process.stdout, Channel::Stdout, output.clone());
    let err = pump(process.stderr, if tty { Channel::Stdout } else { Channel::Stderr }, output.clone());
    let exit = process.exit;
    let mut done = std::pin::pin!(async move {
        tokio::join!(out, err);
        exit.await
    });
    loop {
        tokio::select! {
            code = &mut done => return output.finish(exit_status(code)).await,
            event = input.recv() => match event {
                Some(Input::Stdin(data)) => feed(&mut stdin, &data, false).await,
                Some(Input::StdinEnd) => feed(&mut stdin, &[], true).await,
                Some(Input::Resize(data)) => {
                    sizes.extend_from_slice(&data);
                    for (cols, rows) in take_sizes(&mut sizes) {
                        if let Some(set) = &resize {
                            set(cols, rows);
                        }
                    }
                }
                None => return,
            }
        }
    }
}

/// SPDY: one stream per channel.
struct SpdyOutput {
    writer: Writer,
    streams: Streams,
    version: u8,
}

#[async_trait::async_trait]
impl Output for SpdyOutput {
    async fn send(&self, channel: Channel, data: Vec<u8>) -> bool {
        let stream = if channel == Channel::Stdout { self.streams.stdout } else { self.streams.stderr };
        match stream {
            Some(s) => self.writer.data(s, data, false).await,
            None => true,
        }
    }
    async fn finish(&self, status: Value) {
        for s in [self.streams.stdout, self.streams.stderr].into_iter().flatten() {
            self.writer.data(s, Vec::new(), true).await;
        }
        if let Some(e) = self.streams.error {
            let bytes = status_bytes(&status, self.version >= 4).unwrap_or_default();
            self.writer.data(e, bytes, true).await;
        }
        let _ = self.writer.frame(spdy::Frame::GoAway { last_stream: 0, status: 0 }).await;
    }
}

async fn session(
    mut events: mpsc::Receiver<Event>,
    writer: Writer,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
    version: u8,
) {
    let mut streams = Streams::default();
    let (input_tx, input_rx) = mpsc::channel::<Input>(16);
    let mut early: Vec<Event> = Vec::new();
    let opened = tokio::time::timeout(STREAMS_TIMEOUT, async {
        while !streams.complete(&query, version) {
            match events.recv().await {
                Some(Event::Opened { stream, headers }) => match spdy::header(&headers, "streamtype") {
                    Some("error") => streams.error = Some(stream),
                    Some("stdin") => streams.stdin = Some(stream),
                    Some("stdout") => streams.stdout = Some(stream),
                    Some("stderr") => streams.stderr = Some(stream),
                    Some("resize") => streams.resize = Some(stream),
                    _ => {
                        let _ =
                            writer.frame(spdy::Frame::RstStream { stream, status: spdy::status::PROTOCOL_ERROR }).await;
                    }
                },
                Some(other) => early.push(other),
                None => return false,
            }
        }
        true
    })
    .await;
    if opened != Ok(true) {
        tracing::debug!(?streams, "exec: the client did not open its streams");
        let _ = writer.frame(spdy::Frame::GoAway { last_stream: 0, status: 0 }).await;
        return;
    }
    let (stdin, resize) = (streams.stdin, streams.resize);
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut events = futures::stream::iter(early).chain(tokio_stream::wrappers::ReceiverStream::new(events));
        while let Some(event) = events.next().await {
            let input = match event {
                Event::Data { stream, data, fin } if Some(stream) == stdin => {
                    if !data.is_empty() && input_tx.send(Input::Stdin(data)).await.is_err() {
                        return;
                    }
                    if !fin {
                        continue;
                    }
                    Input::StdinEnd
                }
                Event::Reset { stream } if Some(stream) == stdin => Input::StdinEnd,
                Event::Data { stream, data, .. } if Some(stream) == resize => Input::Resize(data),
                _ => continue,
            };
            if input_tx.send(input).await.is_err() {
                return;
            }
        }
    });
    run(nodes, request, query.tty, input_rx, Arc::new(SpdyOutput { writer, streams, version })).await;
}

/// The terminal sizes in `buf` (JSON lines `{"Width":80,"Height":24}`), leaving a partial line.
fn take_sizes(buf: &mut Vec<u8>) -> Vec<(u16, u16)> {
    let mut sizes = Vec::new();
    while let Some(end) = buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buf.drain(..=end).collect();
        if let Ok(v) = serde_json::from_slice::<Value>(&line) {
            let dim = |k: &str| v[k].as_u64().and_then(|n| u16::try_from(n).ok());
            if let (Some(w), Some(h)) = (dim("Width"), dim("Height")) {
                sizes.push((w, h));
            }
        }
    }
    sizes
}

/// Copy a process output to a channel.
async fn pump(mut from: Box<dyn AsyncRead + Send + Unpin>, to: Channel, output: Arc<dyn Output>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !output.send(to, buf[..n].to_vec()).await {
                    return;
                }
            }
        }
    }
}

async fn feed(stdin: &mut Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>, data: &[u8], fin: bool) {
    if let Some(w) = stdin.as_mut()
        && !data.is_empty()
        && (w.write_all(data).await.is_err() || w.flush().await.is_err())
    {
        *stdin = None;
    }
    if fin && let Some(mut w) = stdin.take() {
        let _ = w.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_nodeapi::{ExecProcess, NodeError};

    #[test]
    fn parses_kubectl_exec_queries() {
        let q =
            ExecQuery::parse(Some("command=sh&command=-c&command=exit+3&container=web&stdout=true&stderr=true"), false)
                .expect("query");
        assert_eq!(q.command, ["sh", "-c", "exit 3"]);
        assert_eq!(q.container.as_deref(), Some("web"));
        assert!(q.stdout && q.stderr && !q.stdin && !q.tty);
        assert!(ExecQuery::parse(Some("stdout=true"), false).is_err(), "no command");
        assert!(ExecQuery::parse(Some("command=true"), false).is_err(), "no stream");
        let attach = ExecQuery::parse(Some("container=web&stdin=true&stdout=true&tty=true"), true).expect("attach");
        assert!(attach.command.is_empty() && attach.stdin && attach.tty);
    }

    #[test]
    fn resize_messages_are_json_lines() {
        let mut buf = b"{\"Width\":101,\"Height\":33}\n{\"Width\":80,".to_vec();
        assert_eq!(take_sizes(&mut buf), vec![(101, 33)]);
        buf.extend_from_slice(b"\"Height\":24}\nnot json\n");
        assert_eq!(take_sizes(&mut buf), vec![(80, 24)]);
        assert!(buf.is_empty());
    }

    /// A node whose commands print `out`, read stdin into `out` too, and end with `code`.
    struct FakeNode {
        code: i32,
    }

    #[async_trait::async_trait]
    impl NodeLink for FakeNode {
        async fn logs(&self, _: skiff_nodeapi::LogRequest) -> Result<skiff_nodeapi::LogStream, NodeError> {
            Err(NodeError::refused("no logs"))
        }
        async fn port_forward(&self, _: &str, _: &str, _: u16) -> Result<Box<dyn skiff_nodeapi::Tunnel>, NodeError> {
            Err(NodeError::refused("no ports"))
        }
        async fn exec(&self, request: ExecRequest) -> Result<ExecProcess, NodeError> {
            let (stdin_w, mut stdin_r) = tokio::io::duplex(1024);
            let (mut out_w, out_r) = tokio::io::duplex(1024);
            let code = self.code;
            let stdin = request.stdin;
            // Runs on its own, as a process would: the session reads its output before its end.
            let process = tokio::spawn(async move {
                out_w.write_all(format!("ran {}\n", request.command.join(" ")).as_bytes()).await.ok();
                if stdin {
                    tokio::io::copy(&mut stdin_r, &mut out_w).await.ok();
                }
            });
            let exit = Box::pin(async move {
                process.await.ok();
                code
            });
            Ok(ExecProcess {
                stdin: Some(Box::new(stdin_w)),
                stdout: Box::new(out_r),
                stderr: Box::new(tokio::io::empty()),
                exit,
                resize: None,
            })
        }
        async fn attach(&self, _: ExecRequest) -> Result<ExecProcess, NodeError> {
            Err(NodeError::refused("no attach"))
        }
        async fn usage(&self, _: &str) -> Result<skiff_nodeapi::NodeUsage, NodeError> {
            Err(NodeError::refused("no usage"))
        }
    }

    /// Run one SPDY exec session of `protocol` (stdin "typed", stdout) against a node exiting
    /// with `code`: what came on stdout, and on the error stream.
    async fn spdy_exec(protocol: &str, code: i32, tty: bool) -> (Vec<u8>, Vec<u8>) {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let (events, writer) = spdy_conn::start(server);
        let query = ExecQuery { command: vec!["cat".into()], stdin: true, stdout: true, tty, ..Default::default() };
        let request = ExecRequest {
            node: "n".into(),
            pod_uid: "u".into(),
            container: "c".into(),
            command: query.command.clone(),
            stdin: true,
            tty,
        };
        let version = spdy_version(protocol);
        tokio::spawn(session(events, writer, Arc::new(FakeNode { code }), request, query, version));
        let (mut rd, mut wr) = tokio::io::split(client);
        let mut enc = spdy::Encoder::default();
        let mut types = vec![(1, "error"), (3, "stdin"), (5, "stdout")];
        if tty && version >= 3 {
            types.push((7, "resize"));
        }
        for (stream, kind) in types {
            let headers = vec![("streamtype".to_string(), kind.to_string())];
            let syn = spdy::Frame::SynStream {
                stream,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers,
            };
            wr.write_all(&enc.encode(&syn)).await.expect("write");
        }
        wr.write_all(&enc.encode(&spdy::Frame::Data { stream: 3, fin: true, data: b"typed".to_vec() }))
            .await
            .expect("write");
        let mut dec = spdy::Decoder::default();
        let (mut stdout, mut error, mut buf) = (Vec::new(), Vec::new(), vec![0u8; 4096]);
        let mut error_done = false;
        while !error_done {
            let n =
                tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await.expect("in time").expect("read");
            assert!(n > 0, "{protocol}: the session ended before the error stream");
            dec.push(&buf[..n]);
            while let Some(frame) = dec.next_frame().expect("valid frames") {
                match frame {
                    spdy::Frame::Data { stream: 5, data, .. } => stdout.extend(data),
                    spdy::Frame::Data { stream: 1, data, fin } => {
                        error.extend(data);
                        error_done |= fin;
                    }
                    _ => {}
                }
            }
        }
        (stdout, error)
    }

    #[tokio::test]
    async fn every_spdy_protocol_version_runs_a_command() {
        for protocol in PROTOCOLS {
            let (stdout, error) = spdy_exec(protocol, 0, false).await;
            assert_eq!(stdout, b"ran cat\ntyped", "{protocol}");
            let v4 = spdy_version(protocol) >= 4;
            // Success: a Status from v4 on, nothing before.
            assert_eq!(error.is_empty(), !v4, "{protocol}: {}", String::from_utf8_lossy(&error));
            let (_, error) = spdy_exec(protocol, 7, false).await;
            let text = String::from_utf8_lossy(&error);
            if v4 {
                let status: Value = serde_json::from_slice(&error).expect("a JSON Status");
                assert_eq!(status["details"]["causes"][0]["message"], "7", "{protocol}");
            } else {
                assert_eq!(text, "command terminated with non-zero exit code: command exited with 7", "{protocol}");
            }
            // A terminal: v3+ wait for the resize stream, v1-v2 have none.
            let (stdout, _) = spdy_exec(protocol, 0, true).await;
            assert_eq!(stdout, b"ran cat\ntyped", "{protocol} with a terminal");
        }
        assert_eq!(spdy_version("channel.k8s.io"), 1);
        assert_eq!(spdy_version("v3.channel.k8s.io"), 3);
    }

    #[test]
    fn exit_codes_become_statuses_kubectl_understands() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
    }
}
