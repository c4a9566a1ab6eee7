//! `pods/exec` over SPDY/3.1 with the remote-command protocols `v5`/`v4.channel.k8s.io` (v5 over
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
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
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
        if q.command.is_empty() {
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

/// Answer the upgrade and serve the session in the background.
pub fn serve(
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
) -> Result<Response, Failure> {
    let protocol = spdy_conn::negotiate(headers, &PROTOCOLS, "exec")?;
    spdy_conn::upgrade(extensions, protocol, move |events, writer| session(events, writer, nodes, request, query))
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

async fn session(
    mut events: mpsc::Receiver<Event>,
    writer: Writer,
    nodes: Arc<dyn NodeLink>,
    request: ExecRequest,
    query: ExecQuery,
) {
    let mut streams = Streams::default();
    let mut early_stdin: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut resize_buf: Vec<u8> = Vec::new();
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
                Some(Event::Data { stream, data, fin }) if Some(stream) == streams.stdin => {
                    early_stdin.push((data, fin))
                }
                Some(Event::Data { stream, data, .. }) if Some(stream) == streams.resize => {
                    resize_buf.extend_from_slice(&data)
                }
                Some(_) => {}
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
    let Some(error_stream) = streams.error else { return };
    let process = match nodes.exec(request).await {
        Ok(p) => p,
        Err(e) => {
            finish(&writer, &streams, failure_status(&e.to_string())).await;
            return;
        }
    };
    let mut stdin = process.stdin;
    let resize = process.resize;
    if let Some(set) = &resize {
        for (cols, rows) in take_sizes(&mut resize_buf) {
            set(cols, rows);
        }
    }
    for (data, fin) in early_stdin {
        feed(&mut stdin, &data, fin).await;
    }
    // With a TTY there is no stderr stream: both outputs go to stdout, as on a terminal.
    let err_target = if query.tty { streams.stdout } else { streams.stderr };
    let out = pump(process.stdout, streams.stdout, writer.clone());
    let err = pump(process.stderr, err_target, writer.clone());
    let exit = process.exit;
    let done_writer = writer.clone();
    let mut done = std::pin::pin!(async move {
        tokio::join!(out, err);
        exit.await
    });
    let code = loop {
        tokio::select! {
            code = &mut done => break Some(code),
            event = events.recv() => match event {
                Some(Event::Data { stream, data, fin }) if Some(stream) == streams.stdin => feed(&mut stdin, &data, fin).await,
                Some(Event::Reset { stream }) if Some(stream) == streams.stdin => stdin = None,
                Some(Event::Data { stream, data, .. }) if Some(stream) == streams.resize => {
                    resize_buf.extend_from_slice(&data);
                    for (cols, rows) in take_sizes(&mut resize_buf) {
                        if let Some(set) = &resize {
                            set(cols, rows);
                        }
                    }
                }
                Some(_) => {}
                // The client is gone: dropping the process stops it.
                None => break None,
            }
        }
    };
    if let Some(code) = code {
        for s in [streams.stdout, streams.stderr].into_iter().flatten() {
            done_writer.data(s, Vec::new(), true).await;
        }
        let status = serde_json::to_vec(&exit_status(code)).unwrap_or_default();
        done_writer.data(error_stream, status, true).await;
        let _ = done_writer.frame(spdy::Frame::GoAway { last_stream: 0, status: 0 }).await;
    }
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

/// Copy a process output to a stream (or drop it when the client did not ask for it).
async fn pump(mut from: Box<dyn AsyncRead + Send + Unpin>, to: Option<u32>, writer: Writer) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(stream) = to
                    && !writer.data(stream, buf[..n].to_vec(), false).await
                {
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

/// End a session that could not run: the status on the error stream, every output closed.
async fn finish(writer: &Writer, streams: &Streams, status: Value) {
    for s in [streams.stdout, streams.stderr].into_iter().flatten() {
        writer.data(s, Vec::new(), true).await;
    }
    if let Some(e) = streams.error {
        writer.data(e, serde_json::to_vec(&status).unwrap_or_default(), true).await;
    }
    let _ = writer.frame(spdy::Frame::GoAway { last_stream: 0, status: 0 }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_exec_queries() {
        let q = ExecQuery::parse(Some("command=sh&command=-c&command=exit+3&container=web&stdout=true&stderr=true"))
            .expect("query");
        assert_eq!(q.command, ["sh", "-c", "exit 3"]);
        assert_eq!(q.container.as_deref(), Some("web"));
        assert!(q.stdout && q.stderr && !q.stdin && !q.tty);
        assert!(ExecQuery::parse(Some("stdout=true")).is_err(), "no command");
        assert!(ExecQuery::parse(Some("command=true")).is_err(), "no stream");
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
