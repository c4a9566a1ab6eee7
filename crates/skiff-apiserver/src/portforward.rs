//! `pods/portforward` over SPDY/3.1 (`portforward.k8s.io`), as kubectl 1.27+ speaks it: per local
//! connection the client opens an `error` and a `data` stream with the same `requestid` and the
//! remote `port`; the node connects to that port inside the pod's network namespace (so ports
//! bound to the pod's 127.0.0.1 work too) and bytes flow both ways. An error goes on the error
//! stream (fatal for kubectl's whole session, as upstream), with the data stream closed so the
//! local client does not hang.
//!
//! kubectl's SPDY client has no flow control of its own and reads all streams in one loop: a
//! stream whose local reader stops holds up the whole session until it reads again. Nothing
//! the server sends can prevent that (kubectl never grants window updates); a reset of the data
//! stream (kubectl 1.28+ sends one when the local side ends) stops the pod's side at once.

use crate::http::Failure;
use crate::spdy_conn::{self, Event, Writer};
use axum::response::Response;
use http::HeaderMap;
use skiff_core::ApiError;
use skiff_nodeapi::NodeLink;
use skiff_stream::{channel, spdy};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub const PROTOCOL: &str = "portforward.k8s.io";

/// Where the forwarded connections go.
pub struct Target {
    pub node: String,
    pub pod: String,
    pub uid: String,
}

/// What kubectl 1.31+ offers first: its SPDY session tunnelled through a WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// WebSocket protocols, in our order of preference: the SPDY tunnel (kubectl), then the channel
/// protocols client libraries speak (kube-rs, the Python client; base64 for text-only clients).
const WS_PROTOCOLS: [&str; 4] = [TUNNEL_PROTOCOL, "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

/// The `ports` query of the channel protocol (`ports=80,8080` or repeated).
fn ports_query(raw: Option<&str>) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == "ports" {
            for p in v.split(',').filter(|p| !p.trim().is_empty()) {
                let port = p.trim().parse::<u16>().ok().filter(|p| *p > 0);
                ports.push(port.ok_or_else(|| ApiError::BadRequest(format!("invalid port {p:?}")))?);
            }
        }
    }
    if ports.is_empty() {
        return Err(ApiError::BadRequest("query parameter \"ports\" is required".into()));
    }
    Ok(ports)
}

/// The WebSocket channel protocol: for the `i`th requested port, channel `2i` carries data and
/// `2i+1` errors; each channel first says its port (2 bytes, little-endian); `[255, c]` (v5) is
/// the client closing channel `c`. One connection per port for the whole session.
async fn channels(
    socket: axum::extract::ws::WebSocket,
    protocol: channel::Protocol,
    ports: Vec<u16>,
    nodes: Arc<dyn NodeLink>,
    target: Arc<Target>,
) {
    use axum::extract::ws::{CloseFrame, Message};
    use futures::{SinkExt, StreamExt};
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    });
    let frame = move |channel: usize, data: &[u8]| spdy_conn::channel_message(protocol, channel as u8, data);
    let mut to_pod: Vec<Option<mpsc::Sender<Option<Vec<u8>>>>> = Vec::new();
    let mut pumps = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        for channel in [2 * i, 2 * i + 1] {
            let _ = out_tx.send(frame(channel, &port.to_le_bytes())).await;
        }
        match nodes.port_forward(&target.node, &target.uid, port).await {
            Ok(tcp) => {
                let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(16);
                to_pod.push(Some(tx));
                let out = out_tx.clone();
                pumps.push(tokio::spawn(async move {
                    let (mut rd, mut wr) = tokio::io::split(tcp);
                    let up = tokio::spawn(async move {
                        while let Some(Some(bytes)) = rx.recv().await {
                            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                                return;
                            }
                        }
                        let _ = wr.shutdown().await;
                    });
                    // The connection is over when the pod closes it (as upstream, which then
                    // ends the session once every port is over).
                    let mut buf = vec![0u8; 32 * 1024];
                    while let Ok(n) = rd.read(&mut buf).await {
                        if n == 0 || out.send(frame(2 * i, &buf[..n])).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                }));
            }
            Err(e) => {
                to_pod.push(None);
                let msg = format!("error forwarding port {port} to pod {}, uid {}: {e}", target.pod, target.uid);
                let _ = out_tx.send(frame(2 * i + 1, msg.as_bytes())).await;
            }
        }
    }
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let incoming = match spdy_conn::channel_input(protocol, &msg) {
                std::ops::ControlFlow::Break(()) => break,
                std::ops::ControlFlow::Continue(incoming) => incoming,
            };
            match incoming {
                Some(channel::Incoming::Close { channel: c }) => {
                    if let Some(tx) = to_pod.get_mut(usize::from(c) / 2).and_then(Option::take) {
                        let _ = tx.send(None).await;
                    }
                }
                Some(channel::Incoming::Data { channel: c, data }) if c % 2 == 0 && !data.is_empty() => {
                    let Some(Some(tx)) = to_pod.get(usize::from(c) / 2) else { continue };
                    if tx.send(Some(data)).await.is_err() {
                        to_pod[usize::from(c) / 2] = None;
                    }
                }
                _ => {}
            }
        }
    });
    let aborts: Vec<_> = pumps.iter().map(|p| p.abort_handle()).collect();
    // Over when every port's connection is over, or when the client goes.
    let stop_reader = reader.abort_handle();
    tokio::select! {
        _ = futures::future::join_all(pumps) => stop_reader.abort(),
        _ = reader => aborts.iter().for_each(|a| a.abort()),
    }
    drop(out_tx);
    let _ = writer.await;
}

/// Answer the upgrade (a WebSocket tunnel or SPDY) and serve the session in the background.
pub async fn serve(
    headers: &HeaderMap,
    query: Option<&str>,
    extensions: &mut http::Extensions,
    nodes: Arc<dyn NodeLink>,
    target: Target,
) -> Result<Response, Failure> {
    if spdy_conn::is_websocket(headers) {
        let (ws, protocol) = spdy_conn::websocket(headers, extensions, &WS_PROTOCOLS).await?;
        let target = Arc::new(target);
        if protocol == TUNNEL_PROTOCOL {
            return Ok(ws.on_upgrade(move |socket| async move {
                let (events, writer) = spdy_conn::start_tunnel(socket);
                session(events, writer, nodes, target).await;
            }));
        }
        let ports = ports_query(query)?;
        let protocol = channel::Protocol::from_name(protocol)
            .ok_or_else(|| Failure(ApiError::Internal(format!("no codec for {protocol}"))))?;
        return Ok(ws.on_upgrade(move |socket| channels(socket, protocol, ports, nodes, target)));
    }
    let protocol = spdy_conn::negotiate(headers, &[PROTOCOL], "port-forward")?;
    spdy_conn::upgrade(extensions, protocol, move |events, writer| session(events, writer, nodes, Arc::new(target)))
}

/// One `requestid`'s pair of streams.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: Option<u16>,
    /// Client bytes for the pod connection (`None`: the client is done sending).
    to_pod: Option<mpsc::Sender<Option<Vec<u8>>>>,
    /// Stops the forwarding (the client reset a stream of the pair: it wants no more data).
    stop: Option<tokio::task::AbortHandle>,
}

async fn session(mut events: mpsc::Receiver<Event>, writer: Writer, nodes: Arc<dyn NodeLink>, target: Arc<Target>) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut request_of: HashMap<u32, String> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Opened { stream, headers } => {
                let request = spdy::header(&headers, "requestid").unwrap_or("").to_string();
                let pair = pairs.entry(request.clone()).or_default();
                request_of.insert(stream, request);
                match spdy::header(&headers, "streamtype") {
                    Some("error") => pair.error = Some(stream),
                    Some("data") => pair.data = Some(stream),
                    other => {
                        tracing::debug!(streamtype = ?other, "port-forward: unknown stream type");
                        let _ =
                            writer.frame(spdy::Frame::RstStream { stream, status: spdy::status::PROTOCOL_ERROR }).await;
                        continue;
                    }
                }
                let port = spdy::header(&headers, "port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
                pair.port = pair.port.or(port);
                if let (Some(error), Some(data), None) = (pair.error, pair.data, &pair.to_pod) {
                    let (tx, rx) = mpsc::channel(16);
                    pair.to_pod = Some(tx);
                    let port = pair.port;
                    let task =
                        tokio::spawn(forward(nodes.clone(), target.clone(), port, error, data, writer.clone(), rx));
                    pair.stop = Some(task.abort_handle());
                }
            }
            Event::Data { stream, data, fin } => {
                let Some(pair) = request_of.get(&stream).and_then(|r| pairs.get_mut(r)) else { continue };
                if pair.data != Some(stream) {
                    continue; // the client only half-closes its error stream
                }
                if let Some(tx) = &pair.to_pod {
                    if !data.is_empty() && tx.send(Some(data)).await.is_err() {
                        pair.to_pod = None;
                    }
                    if fin && let Some(tx) = pair.to_pod.take() {
                        let _ = tx.send(None).await;
                    }
                }
            }
            Event::Reset { stream } => {
                // The client gave up on this connection (kubectl 1.28+ resets the data stream
                // when its local side ends): close the pod's side too and send nothing more on
                // it, which would only hold up the other streams; end the error stream, which
                // kubectl still reads to its end.
                if let Some(request) = request_of.remove(&stream)
                    && let Some(pair) = pairs.remove(&request)
                {
                    if let Some(stop) = pair.stop {
                        stop.abort();
                    }
                    request_of.retain(|_, r| *r != request);
                    if let Some(error) = pair.error.filter(|e| *e != stream) {
                        let writer = writer.clone();
                        tokio::spawn(async move { writer.data(error, Vec::new(), true).await });
                    }
                }
            }
        }
    }
}

/// One forwarded connection: connect in the pod, then copy both ways until both sides are done.
async fn forward(
    nodes: Arc<dyn NodeLink>,
    target: Arc<Target>,
    port: Option<u16>,
    error_stream: u32,
    data_stream: u32,
    writer: Writer,
    mut from_client: mpsc::Receiver<Option<Vec<u8>>>,
) {
    let connected = match port {
        Some(port) => nodes.port_forward(&target.node, &target.uid, port).await.map_err(|e| e.to_string()),
        None => Err("invalid port".to_string()),
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(e) => {
            let msg = format!(
                "error forwarding port {} to pod {}, uid {}: {e}",
                port.unwrap_or_default(),
                target.pod,
                target.uid
            );
            writer.data(data_stream, Vec::new(), true).await;
            writer.data(error_stream, msg.into_bytes(), true).await;
            return;
        }
    };
    let (mut rd, mut wr) = tokio::io::split(tcp);
    let up = async move {
        while let Some(Some(bytes)) = from_client.recv().await {
            // Flushed: the pod's side may be a TLS tunnel to a remote node.
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    };
    let down = async {
        while let Some(buf) = spdy_conn::read_for_frame(&mut rd).await {
            if !writer.framed(data_stream, buf, false).await {
                return;
            }
        }
        writer.data(data_stream, Vec::new(), true).await;
        writer.data(error_stream, Vec::new(), true).await;
    };
    tokio::join!(up, down);
}
