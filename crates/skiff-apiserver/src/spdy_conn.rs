//! A SPDY/3.1 server connection over an upgraded HTTP connection: a reader task that decodes
//! frames into [`Event`]s (answering PINGs itself) and a writer task that encodes frames. The
//! codec is `skiff_stream::spdy`; this module only moves bytes.
//!
//! kubectl never sends WINDOW_UPDATE, so no send window is enforced; back-pressure comes from
//! the bounded queues: a slow client fills the writer's queue and whoever feeds it waits.

use crate::http::Failure;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use hyper_util::rt::TokioIo;
use skiff_core::ApiError;
use skiff_stream::spdy::{Decoder, Encoder, Frame, Headers};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames waiting to be written, at most (each up to one read's worth of data).
const OUT_QUEUE: usize = 64;

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
pub struct Writer(mpsc::Sender<Frame>);

impl Writer {
    /// Queue `data` for `stream` (waits while the client is slow). False once the connection is gone.
    pub async fn data(&self, stream: u32, data: Vec<u8>, fin: bool) -> bool {
        self.0.send(Frame::Data { stream, fin, data }).await.is_ok()
    }

    pub async fn frame(&self, frame: Frame) -> bool {
        self.0.send(frame).await.is_ok()
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
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (events, writer) = start(TokioIo::new(upgraded));
                session(events, writer).await;
            }
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(axum::body::Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()).into())
}

/// Accept a WebSocket upgrade offering one of `supported` (`Sec-WebSocket-Protocol`): the
/// upgrade to answer with, and the protocol chosen. Anything else is a 400, which makes kubectl
/// fall back to SPDY.
pub async fn websocket(
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
    supported: &[&'static str],
) -> Result<(axum::extract::ws::WebSocketUpgrade, &'static str), ApiError> {
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
    Ok((if protocol.is_empty() { ws } else { ws.protocols([protocol]) }, protocol))
}

/// A WebSocket carrying a byte stream (kubectl 1.31+ tunnels its SPDY session this way: binary
/// messages, boundaries meaningless, empty ones possible) as an `AsyncRead + AsyncWrite`.
pub fn tunnel(socket: axum::extract::ws::WebSocket) -> tokio::io::DuplexStream {
    use axum::extract::ws::{CloseFrame, Message};
    use futures::{SinkExt, StreamExt};
    let (ours, theirs) = tokio::io::duplex(1024 * 1024);
    let (mut from_pipe, mut to_pipe) = tokio::io::split(ours);
    let (mut sink, mut stream) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(b) if to_pipe.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_pipe.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = from_pipe.read(&mut buf).await {
            if n == 0 || sink.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                break;
            }
        }
        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    });
    theirs
}

/// Start serving the SPDY connection on `io`. Events end (the receiver yields `None`) when the
/// client goes away, sends GOAWAY, or sends something undecodable.
pub fn start<T>(io: T) -> (mpsc::Receiver<Event>, Writer)
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(OUT_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel::<Event>(OUT_QUEUE);
    tokio::spawn(async move {
        let mut enc = Encoder::default();
        while let Some(frame) = out_rx.recv().await {
            let goaway = matches!(frame, Frame::GoAway { .. });
            if wr.write_all(&enc.encode(&frame)).await.is_err() || goaway {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let writer = Writer(out_tx);
    let replies = writer.clone();
    tokio::spawn(async move {
        let mut dec = Decoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        'read: loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            dec.push(&buf[..n]);
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
