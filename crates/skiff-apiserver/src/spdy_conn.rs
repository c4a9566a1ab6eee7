//! A SPDY/3.1 server connection over an upgraded HTTP connection: a reader task that decodes
//! frames into [`Event`]s (answering PINGs itself) and a writer task that encodes frames. The
//! codec is `skiff_stream::spdy`; this module only moves bytes.
//!
//! kubectl never sends WINDOW_UPDATE, so no send window is enforced; back-pressure comes from
//! the bounded queues: a slow client fills the writer's queue and whoever feeds it waits.

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
