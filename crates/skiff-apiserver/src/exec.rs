//! `pods/exec` and `pods/attach` (the same session, without a command) over SPDY/3.1 with the remote-command protocols `v5`/`v4.channel.k8s.io` (v5 over
//! SPDY is v4): the client opens an `error` stream and, as asked, `stdin`, `stdout`, `stderr` and
//! `resize`; the node runs the command; its output goes back on the streams and its end as a
//! `Status` on the error stream (`NonZeroExitCode` with the code as the cause, which kubectl turns
//! into its own exit code).

use crate::http::Failure;
use crate::nodes::{ExecRequest, NodeLink};
use crate::spdy_conn::{self, Event, Writer};
use axum::response::Response;
use http::HeaderMap;
use serde_json::{Value, json};
use skiff_core::ApiError;
use skiff_stream::spdy;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Supported protocols; the client's first one among these is chosen.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
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

/// Answer the upgrade (WebSocket or SPDY) and serve the session in the background.
pub async fn serve(
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
) -> Result<Response, Failure> {
    if spdy_conn::is_websocket(headers) {
        let (ws, protocol) = spdy_conn::websocket(headers, extensions, &PROTOCOLS).await?;
        let v5 = protocol == PROTOCOLS[0];
        return Ok(ws.on_upgrade(move |socket| websocket_session(socket, v5, nodes, request, query)));
    }
    let protocol = spdy_conn::negotiate(headers, &PROTOCOLS, "exec")?;
    spdy_conn::upgrade(extensions, protocol, move |events, writer| session(events, writer, nodes, request, query))
}

/// WebSocket: one message per write, channel byte first.
struct WsOutput(mpsc::Sender<axum::extract::ws::Message>);

#[async_trait::async_trait]
impl Output for WsOutput {
    async fn send(&self, channel: Channel, data: Vec<u8>) -> bool {
        let mut msg = Vec::with_capacity(data.len() + 1);
        msg.push(if channel == Channel::Stdout { 1 } else { 2 });
        msg.extend_from_slice(&data);
        self.0.send(axum::extract::ws::Message::Binary(msg.into())).await.is_ok()
    }
    async fn finish(&self, status: Value) {
        use axum::extract::ws::{CloseFrame, Message};
        let mut msg = vec![3u8];
        msg.extend(serde_json::to_vec(&status).unwrap_or_default());
        let _ = self.0.send(Message::Binary(msg.into())).await;
        let _ = self.0.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    }
}

/// `v5`/`v4.channel.k8s.io` over WebSocket: binary messages whose first byte is the channel
/// (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize); v5 adds `[255, 0]`, the end of stdin.
async fn websocket_session(
    socket: axum::extract::ws::WebSocket,
    v5: bool,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
) {
    use axum::extract::ws::Message;
    use futures::{SinkExt, StreamExt};
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    });
    let (input_tx, input_rx) = mpsc::channel::<Input>(16);
    tokio::spawn(async move {
        // Reading also answers the client's pings (its read deadline depends on the pongs).
        while let Some(Ok(msg)) = stream.next().await {
            let input = match msg {
                Message::Binary(b) => match (b.first(), b.get(1)) {
                    (Some(0), _) => Input::Stdin(b[1..].to_vec()),
                    (Some(4), _) => Input::Resize(b[1..].to_vec()),
                    (Some(255), Some(0)) if v5 => Input::StdinEnd,
                    _ => continue,
                },
                Message::Close(_) => break,
                _ => continue,
            };
            if input_tx.send(input).await.is_err() {
                break;
            }
        }
    });
    run(nodes, request, query.tty, input_rx, Arc::new(WsOutput(out_tx))).await;
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
    fn complete(&self, q: &ExecQuery) -> bool {
        self.error.is_some()
            && (!q.stdin || self.stdin.is_some())
            && (!q.stdout || self.stdout.is_some())
            && (!q.stderr || q.tty || self.stderr.is_some())
            && (!q.tty || self.resize.is_some())
    }
}

/// What the client sends during a session, whatever the transport.
#[derive(Debug)]
enum Input {
    Stdin(Vec<u8>),
    StdinEnd,
    Resize(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Stdout,
    Stderr,
}

/// Where a session's output goes, whatever the transport.
#[async_trait::async_trait]
trait Output: Send + Sync + 'static {
    /// Bytes on a channel; false once the client is gone.
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
            self.writer.data(e, serde_json::to_vec(&status).unwrap_or_default(), true).await;
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
) {
    let mut streams = Streams::default();
    let (input_tx, input_rx) = mpsc::channel::<Input>(16);
    let mut early: Vec<Event> = Vec::new();
    let opened = tokio::time::timeout(STREAMS_TIMEOUT, async {
        while !streams.complete(&query) {
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
    run(nodes, request, query.tty, input_rx, Arc::new(SpdyOutput { writer, streams })).await;
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
        && w.write_all(data).await.is_err()
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

    #[test]
    fn exit_codes_become_statuses_kubectl_understands() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
    }
}
