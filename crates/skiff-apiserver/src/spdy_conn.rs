//! A SPDY/3.1 server connection over an upgraded HTTP connection, or tunnelled in a WebSocket
//! (kubectl 1.31+ port-forward): a reader task that decodes frames into [`Event`]s (answering
//! PINGs itself) and a writer task that encodes frames. The codec is `skiff_stream::spdy`; this
//! module only moves bytes.
//!
//! kubectl never sends WINDOW_UPDATE, so no send window is enforced; back-pressure comes from
//! the bounded queues: a slow client fills the writer's queue and whoever feeds it waits.
//!
//! Bulk data is framed where it is read ([`read_for_frame`], [`Writer::framed`]): the bytes from
//! the pod are read once into a buffer with room for the frame header and go out as they are,
//! with no further copy before TLS (or the WebSocket, one message per frame).

use crate::http::Failure;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use hyper_util::rt::TokioIo;
use skiff_core::ApiError;
use skiff_stream::spdy::{self, Decoder, Encoder, Frame, Headers};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames waiting to be written, at most (each up to one read's worth of data, [`BULK`]).
const OUT_QUEUE: usize = 8;

/// A frame to write: one to encode (control frames need the connection's header compressor),
/// or one already encoded.
enum Out {
    Frame(Frame),
    Encoded(Vec<u8>),
}

/// What the client did.
#[derive(Debug)]
pub enum Event {
    /// A new stream (SYN_STREAM), already answered with SYN_REPLY.
    Opened { stream: u32, headers: Headers },
    /// Data on a stream; `fin`: the client's side of it is done.
    Data { stream: u32, data: Vec<u8>, fin: bool },
    /// The client reset a stream.
    Reset { stream: u32 },
}

/// Sends frames to the client.
#[derive(Clone)]
pub struct Writer(mpsc::Sender<Out>);

impl Writer {
    /// Queue `data` for `stream` (waits while the client is slow). False once the connection is gone.
    pub async fn data(&self, stream: u32, data: Vec<u8>, fin: bool) -> bool {
        self.frame(Frame::Data { stream, fin, data }).await
    }

    /// Queue the payload in `buf` after its [`spdy::DATA_HEADER`] bytes of room (as
    /// [`read_for_frame`] gives it) for `stream`, framed in place.
    pub async fn framed(&self, stream: u32, mut buf: Vec<u8>, fin: bool) -> bool {
        if spdy::data_frame_in_place(stream, fin, &mut buf).is_none() {
            let data = buf.get(spdy::DATA_HEADER..).unwrap_or_default().to_vec();
            return self.data(stream, data, fin).await;
        }
        self.0.send(Out::Encoded(buf)).await.is_ok()
    }

    pub async fn frame(&self, frame: Frame) -> bool {
        self.0.send(Out::Frame(frame)).await.is_ok()
    }
}

/// The payload of one bulk read (what [`read_for_frame`] reads at most).
///
/// Big frames matter more than cache-sized ones: every frame costs kubectl a hand-off between
/// goroutines and a wake-up, and a big TLS write wakes it once for many records (1 MiB against
/// 128 KiB: ~15% more throughput, a fifth less server CPU).
pub const BULK: usize = 1024 * 1024;

/// Read up to [`BULK`] bytes from `from` into a buffer after [`spdy::DATA_HEADER`] bytes of
/// room, for [`Writer::framed`]; `None` at the end (or on an error).
pub async fn read_for_frame(from: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut buf = pool::take();
    buf.resize(spdy::DATA_HEADER, 0);
    // read_buf fills the spare capacity: no zeroing of memory about to be overwritten.
    match from.read_buf(&mut buf).await {
        Ok(n) if n > 0 => Some(buf),
        _ => {
            pool::give(buf);
            None
        }
    }
}

/// Bulk buffers, reused: a fresh allocation of this size costs page faults and zeroing on
/// every read (a third of the forwarding CPU when measured). Bounded, so an idle server keeps
/// little.
mod pool {
    use std::sync::Mutex;

    const KEPT: usize = 4;
    static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    pub fn take() -> Vec<u8> {
        let reused = FREE.lock().ok().and_then(|mut f| f.pop());
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(skiff_stream::spdy::DATA_HEADER + super::BULK));
        buf.clear();
        buf
    }

    pub fn give(buf: Vec<u8>) {
        if buf.capacity() == skiff_stream::spdy::DATA_HEADER + super::BULK
            && let Ok(mut free) = FREE.lock()
            && free.len() < KEPT
        {
            free.push(buf);
        }
    }

    /// A buffer as message bytes that go back to the pool when sent.
    pub struct Returned(pub Vec<u8>);

    impl AsRef<[u8]> for Returned {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Returned {
        fn drop(&mut self) {
            give(std::mem::take(&mut self.0));
        }
    }
}

/// The SPDY sub-protocol to speak: the client's first offer (`X-Stream-Protocol-Version`) among
/// `supported`. A WebSocket upgrade is refused with 400, which makes kubectl 1.30+ fall back to
/// SPDY (it tries WebSocket first and falls back on any non-101 answer).
pub fn negotiate(headers: &HeaderMap, supported: &[&'static str], what: &str) -> Result<&'static str, ApiError> {
    if is_websocket(headers) {
        return Err(ApiError::BadRequest(format!("{what} over WebSocket is not supported yet: use SPDY")));
    }
    let upgrade = headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !upgrade.eq_ignore_ascii_case("SPDY/3.1") {
        return Err(ApiError::BadRequest("Upgrade request required".into()));
    }
    let offered = headers.get_all("X-Stream-Protocol-Version").iter().filter_map(|v| v.to_str().ok());
    offered.flat_map(|v| v.split(',')).find_map(|v| supported.iter().find(|p| **p == v.trim()).copied()).ok_or_else(
        || {
            ApiError::Forbidden(format!(
                "unable to upgrade: no supported protocol: supported: {}",
                supported.join(", ")
            ))
        },
    )
}

/// Whether the request asks to upgrade to a WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// Answer `101 Switching Protocols` to SPDY/3.1 with `protocol`, and once the connection is
/// upgraded run `session` on it in the background.
pub fn upgrade<F, Fut>(extensions: &mut http::Extensions, protocol: &str, session: F) -> Result<Response, Failure>
where
    F: FnOnce(mpsc::Receiver<Event>, Writer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let on_upgrade = extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::BadRequest("the connection cannot be upgraded".into()))?;
    let audit = extensions.get::<crate::audit::Session>().cloned();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (events, writer) = start(TokioIo::new(upgraded));
                session(events, writer).await;
            }
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade"),
        }
        drop(audit);
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(axum::body::Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()).into())
}

/// A WebSocket upgrade to answer with; its session holds the request's audit until it ends.
pub struct WebSocketUpgrade {
    ws: axum::extract::ws::WebSocketUpgrade,
    audit: Option<crate::audit::Session>,
}

impl WebSocketUpgrade {
    /// The `101` response; `session` runs on the socket once the connection is upgraded.
    pub fn on_upgrade<F, Fut>(self, session: F) -> Response
    where
        F: FnOnce(axum::extract::ws::WebSocket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let audit = self.audit;
        self.ws.on_upgrade(move |socket| async move {
            session(socket).await;
            drop(audit);
        })
    }
}

/// Accept a WebSocket upgrade offering one of `supported` (`Sec-WebSocket-Protocol`): the
/// upgrade to answer with, and the protocol chosen. Anything else is a 400, which makes kubectl
/// fall back to SPDY.
pub async fn websocket(
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
    supported: &[&'static str],
) -> Result<(WebSocketUpgrade, &'static str), ApiError> {
    use axum::extract::FromRequestParts;
    let offered = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok());
    let offered: Vec<String> = offered.flat_map(|v| v.split(',')).map(|p| p.trim().to_string()).collect();
    let none_offered = offered.is_empty() && supported.contains(&"");
    let Some(protocol) =
        supported.iter().find(|p| offered.iter().any(|o| o == *p)).copied().or(none_offered.then_some(""))
    else {
        return Err(ApiError::BadRequest(format!(
            "unable to upgrade: no supported WebSocket protocol among {offered:?}: supported: {}",
            supported.join(", ")
        )));
    };
    // The extractor wants request parts: the headers and the pending upgrade are all it reads.
    let mut req = http::Request::new(());
    *req.headers_mut() = headers.clone();
    if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
        req.extensions_mut().insert(upgrade);
    }
    let (mut parts, ()) = req.into_parts();
    let ws = axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("WebSocket upgrade: {}", e.body_text())))?;
    let ws = if protocol.is_empty() { ws } else { ws.protocols([protocol]) };
    Ok((WebSocketUpgrade { ws, audit: extensions.get::<crate::audit::Session>().cloned() }, protocol))
}

/// `data` on `channel` as a WebSocket message in `protocol`'s encoding.
pub fn channel_message(
    protocol: skiff_stream::channel::Protocol,
    channel: u8,
    data: &[u8],
) -> axum::extract::ws::Message {
    use axum::extract::ws::Message;
    match protocol.encode(channel, data) {
        skiff_stream::channel::Outgoing::Binary(b) => Message::Binary(b.into()),
        skiff_stream::channel::Outgoing::Text(t) => Message::Text(t.into()),
    }
}

/// What a client's WebSocket message says in `protocol`: `Break` when the client closes;
/// nothing for a message that carries no channel data (a ping; a malformed one, logged).
pub fn channel_input(
    protocol: skiff_stream::channel::Protocol,
    msg: &axum::extract::ws::Message,
) -> std::ops::ControlFlow<(), Option<skiff_stream::channel::Incoming>> {
    use axum::extract::ws::Message;
    use std::ops::ControlFlow;
    let decoded = match msg {
        Message::Binary(b) => protocol.decode(b),
        Message::Text(t) => protocol.decode(t.as_bytes()),
        Message::Close(_) => return ControlFlow::Break(()),
        _ => return ControlFlow::Continue(None),
    };
    match decoded {
        Ok(incoming) => ControlFlow::Continue(Some(incoming)),
        Err(e) => {
            tracing::debug!(error = %e, "a WebSocket message that is not the channel protocol");
            ControlFlow::Continue(None)
        }
    }
}

/// Where a connection's bytes come from.
trait Source: Send + 'static {
    /// Add what comes next to `dec`; false at the end.
    fn fill(&mut self, dec: &mut Decoder) -> impl std::future::Future<Output = bool> + Send;
}

/// Where a connection's encoded frames go.
trait Sink: Send + 'static {
    /// False once the client is gone. What is put may wait in a buffer until [`Sink::flush`].
    fn put(&mut self, bytes: Vec<u8>) -> impl std::future::Future<Output = bool> + Send;
    /// Write out whatever `put` left buffered (TLS keeps encrypted records until then).
    fn flush(&mut self) -> impl std::future::Future<Output = bool> + Send;
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

struct StreamSource<R>(R, Vec<u8>);

impl<R: AsyncRead + Unpin + Send + 'static> Source for StreamSource<R> {
    async fn fill(&mut self, dec: &mut Decoder) -> bool {
        match self.0.read(&mut self.1).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                dec.push(&self.1[..n]);
                true
            }
        }
    }
}

struct StreamSink<W>(W);

impl<W: AsyncWrite + Unpin + Send + 'static> Sink for StreamSink<W> {
    async fn put(&mut self, bytes: Vec<u8>) -> bool {
        let ok = self.0.write_all(&bytes).await.is_ok();
        pool::give(bytes);
        ok
    }
    async fn flush(&mut self) -> bool {
        self.0.flush().await.is_ok()
    }
    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

type WsStream = futures::stream::SplitStream<axum::extract::ws::WebSocket>;
type WsSink = futures::stream::SplitSink<axum::extract::ws::WebSocket, axum::extract::ws::Message>;

/// The tunnel (kubectl 1.31+): the SPDY byte stream in binary messages, their boundaries
/// meaningless, empty ones possible.
struct WsSource(WsStream);

impl Source for WsSource {
    async fn fill(&mut self, dec: &mut Decoder) -> bool {
        use axum::extract::ws::Message;
        use futures::StreamExt;
        loop {
            match self.0.next().await {
                Some(Ok(Message::Binary(b))) => {
                    dec.push(&b);
                    return true;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// One message per frame (a `Vec` becomes the message without a copy).
struct WsSinkOut(WsSink);

impl Sink for WsSinkOut {
    async fn put(&mut self, bytes: Vec<u8>) -> bool {
        use futures::SinkExt;
        let bytes = bytes::Bytes::from_owner(pool::Returned(bytes));
        self.0.feed(axum::extract::ws::Message::Binary(bytes)).await.is_ok()
    }
    async fn flush(&mut self) -> bool {
        use futures::SinkExt;
        SinkExt::flush(&mut self.0).await.is_ok()
    }
    async fn close(&mut self) {
        use axum::extract::ws::{CloseFrame, Message};
        use futures::SinkExt;
        let _ = self.0.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    }
}

/// Start serving the SPDY connection on `io`. Events end (the receiver yields `None`) when the
/// client goes away, sends GOAWAY, or sends something undecodable.
pub fn start<T>(io: T) -> (mpsc::Receiver<Event>, Writer)
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    serve(StreamSource(rd, vec![0u8; 64 * 1024]), StreamSink(wr))
}

/// Start serving a SPDY connection tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`).
pub fn start_tunnel(socket: axum::extract::ws::WebSocket) -> (mpsc::Receiver<Event>, Writer) {
    use futures::StreamExt;
    let (sink, stream) = socket.split();
    serve(WsSource(stream), WsSinkOut(sink))
}

fn serve(mut source: impl Source, mut sink: impl Sink) -> (mpsc::Receiver<Event>, Writer) {
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(OUT_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel::<Event>(OUT_QUEUE);
    tokio::spawn(async move {
        let mut enc = Encoder::default();
        while let Some(out) = out_rx.recv().await {
            let (bytes, goaway) = match out {
                Out::Frame(frame) => (enc.encode(&frame), matches!(frame, Frame::GoAway { .. })),
                Out::Encoded(bytes) => (bytes, false),
            };
            // Flush once the queue runs dry: a burst goes out in big writes, and nothing waits
            // in a buffer for a next frame that may never come.
            if !sink.put(bytes).await || goaway || (out_rx.is_empty() && !sink.flush().await) {
                break;
            }
        }
        sink.close().await;
    });
    let writer = Writer(out_tx);
    let replies = writer.clone();
    tokio::spawn(async move {
        let mut dec = Decoder::default();
        'read: while source.fill(&mut dec).await {
            loop {
                let frame = match dec.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "SPDY: ending the connection");
                        let _ = replies.frame(Frame::GoAway { last_stream: 0, status: 1 }).await;
                        break 'read;
                    }
                };
                let event = match frame {
                    Frame::SynStream { stream, headers, .. } => {
                        let reply = Frame::SynReply { stream, fin: false, headers: Vec::new() };
                        if !replies.frame(reply).await {
                            break 'read;
                        }
                        Event::Opened { stream, headers }
                    }
                    Frame::Data { stream, fin, data } => Event::Data { stream, data, fin },
                    Frame::RstStream { stream, .. } => Event::Reset { stream },
                    // Echo the client's pings (odd ids); ours would be even and we send none.
                    Frame::Ping(id) => {
                        let _ = replies.frame(Frame::Ping(id)).await;
                        continue;
                    }
                    Frame::GoAway { .. } => break 'read,
                    // No flow control is enforced (see the module docs); headers after open carry nothing we use.
                    Frame::Settings(_)
                    | Frame::WindowUpdate { .. }
                    | Frame::Headers { .. }
                    | Frame::SynReply { .. } => {
                        continue;
                    }
                };
                if ev_tx.send(event).await.is_err() {
                    break 'read;
                }
            }
        }
    });
    (ev_rx, writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_clients_first_supported_protocol() {
        const SUPPORTED: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
        let mut h = HeaderMap::new();
        assert!(negotiate(&h, &SUPPORTED, "exec").is_err());
        h.insert(header::UPGRADE, "websocket".parse().expect("v"));
        assert!(matches!(negotiate(&h, &SUPPORTED, "exec"), Err(ApiError::BadRequest(m)) if m.contains("WebSocket")));
        h.insert(header::UPGRADE, "SPDY/3.1".parse().expect("v"));
        assert!(matches!(negotiate(&h, &SUPPORTED, "exec"), Err(ApiError::Forbidden(_))));
        for offer in ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"] {
            h.append("X-Stream-Protocol-Version", offer.parse().expect("v"));
        }
        assert_eq!(negotiate(&h, &SUPPORTED, "exec").ok(), Some("v5.channel.k8s.io"));
        h.remove("X-Stream-Protocol-Version");
        h.insert("X-Stream-Protocol-Version", "v4.channel.k8s.io, v3.channel.k8s.io".parse().expect("v"));
        assert_eq!(negotiate(&h, &SUPPORTED, "exec").ok(), Some("v4.channel.k8s.io"));
    }
}
