//! SPDY/3.1 framing, as kubectl speaks it (through moby/spdystream) for exec, attach and
//! port-forward: control frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY,
//! HEADERS, WINDOW_UPDATE) and data frames, big-endian, with zlib-compressed header blocks.
//!
//! [`Decoder`] turns bytes (in any split: a WebSocket tunnel cuts frames anywhere) into
//! [`Frame`]s; [`Encoder`] turns frames into bytes. Each keeps its direction's header
//! compression state, which lasts as long as the connection.

mod dictionary;
pub mod headers;

pub use headers::{Headers, get as header};

/// The control-frame version this codec speaks (frames of other versions are read the same).
pub const VERSION: u16 = 3;
/// The flag that ends a stream's direction (data frames, SYN_STREAM, SYN_REPLY, HEADERS).
pub const FLAG_FIN: u8 = 0x01;
/// The largest payload a frame can carry (24-bit length).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;

/// RST_STREAM status codes.
pub mod status {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const STREAM_IN_USE: u32 = 8;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpdyError {
    #[error("SPDY: unknown control frame type {0}")]
    UnknownType(u16),
    #[error("SPDY: {kind} frame with a payload of {len} bytes is malformed")]
    BadLength { kind: &'static str, len: usize },
    #[error("SPDY: bad header block: {0}")]
    HeaderBlock(String),
    #[error("SPDY: stream id 0 where a stream is required")]
    StreamZero,
}

/// One SPDY frame, header blocks decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    /// `(flags, id, value)` entries.
    Settings(Vec<(u8, u32, u32)>),
    Ping(u32),
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
}

mod kind {
    pub const SYN_STREAM: u16 = 1;
    pub const SYN_REPLY: u16 = 2;
    pub const RST_STREAM: u16 = 3;
    pub const SETTINGS: u16 = 4;
    pub const PING: u16 = 6;
    pub const GOAWAY: u16 = 7;
    pub const HEADERS: u16 = 8;
    pub const WINDOW_UPDATE: u16 = 9;
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn stream_at(b: &[u8], at: usize) -> u32 {
    u32_at(b, at) & 0x7fff_ffff
}

/// Reads frames from a byte stream of one connection direction.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    inflater: headers::Inflater,
}

impl Decoder {
    /// Add received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, if one has arrived. An error leaves the connection unusable (the
    /// header compression state may be lost): the caller ends the session.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = (u32_at(&self.buf, 4) & 0x00ff_ffff) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..8 + len).collect();
        let flags = frame[4];
        let p = &frame[8..];
        if frame[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream: stream_at(&frame, 0),
                fin: flags & FLAG_FIN != 0,
                data: p.to_vec(),
            }));
        }
        let ty = u16::from_be_bytes([frame[2], frame[3]]);
        let need = |kind: &'static str, ok: bool| if ok { Ok(()) } else { Err(SpdyError::BadLength { kind, len }) };
        let fin = flags & FLAG_FIN != 0;
        let nonzero = |s: u32| if s == 0 { Err(SpdyError::StreamZero) } else { Ok(s) };
        Ok(Some(match ty {
            kind::SYN_STREAM => {
                need("SYN_STREAM", len >= 10)?;
                let headers = self.inflater.block(&p[10..])?;
                Frame::SynStream {
                    stream: nonzero(stream_at(p, 0))?,
                    associated: stream_at(p, 4),
                    priority: p[8] >> 5,
                    fin,
                    unidirectional: flags & 0x02 != 0,
                    headers,
                }
            }
            kind::SYN_REPLY => {
                need("SYN_REPLY", len >= 4)?;
                let headers = self.inflater.block(&p[4..])?;
                Frame::SynReply { stream: nonzero(stream_at(p, 0))?, fin, headers }
            }
            kind::HEADERS => {
                need("HEADERS", len >= 4)?;
                let headers = self.inflater.block(&p[4..])?;
                Frame::Headers { stream: nonzero(stream_at(p, 0))?, fin, headers }
            }
            kind::RST_STREAM => {
                need("RST_STREAM", len == 8)?;
                Frame::RstStream { stream: stream_at(p, 0), status: u32_at(p, 4) }
            }
            kind::SETTINGS => {
                need("SETTINGS", len >= 4)?;
                let n = u32_at(p, 0) as usize;
                need("SETTINGS", n.checked_mul(8).and_then(|b| b.checked_add(4)) == Some(len))?;
                Frame::Settings(
                    (0..n).map(|i| (p[4 + i * 8], u32_at(p, 4 + i * 8) & 0x00ff_ffff, u32_at(p, 8 + i * 8))).collect(),
                )
            }
            kind::PING => {
                need("PING", len == 4)?;
                Frame::Ping(u32_at(p, 0))
            }
            kind::GOAWAY => {
                // SPDY/2 GOAWAYs had no status: accept both.
                need("GOAWAY", len == 8 || len == 4)?;
                Frame::GoAway { last_stream: stream_at(p, 0), status: if len == 8 { u32_at(p, 4) } else { 0 } }
            }
            kind::WINDOW_UPDATE => {
                need("WINDOW_UPDATE", len == 8)?;
                Frame::WindowUpdate { stream: stream_at(p, 0), delta: u32_at(p, 4) & 0x7fff_ffff }
            }
            other => return Err(SpdyError::UnknownType(other)),
        }))
    }
}

/// Writes frames for one connection direction.
#[derive(Default)]
pub struct Encoder {
    deflater: headers::Deflater,
}

impl Encoder {
    /// The bytes of `frame`. Data longer than a frame can carry is split into several frames
    /// (FIN only on the last).
    pub fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        match frame {
            Frame::Data { stream, fin, data } => {
                let mut chunks = data.chunks(MAX_PAYLOAD).peekable();
                if data.is_empty() {
                    data_frame(&mut out, *stream, *fin, &[]);
                }
                while let Some(chunk) = chunks.next() {
                    data_frame(&mut out, *stream, *fin && chunks.peek().is_none(), chunk);
                }
            }
            Frame::SynStream { stream, associated, priority, fin, unidirectional, headers } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&[(priority & 0x07) << 5, 0]);
                p.extend(self.deflater.block(headers));
                let flags = u8::from(*fin) | if *unidirectional { 0x02 } else { 0 };
                control(&mut out, kind::SYN_STREAM, flags, &p);
            }
            Frame::SynReply { stream, fin, headers } | Frame::Headers { stream, fin, headers } => {
                let mut p = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend(self.deflater.block(headers));
                let ty = if matches!(frame, Frame::SynReply { .. }) { kind::SYN_REPLY } else { kind::HEADERS };
                control(&mut out, ty, u8::from(*fin), &p);
            }
            Frame::RstStream { stream, status } => {
                control(&mut out, kind::RST_STREAM, 0, &pair(*stream & 0x7fff_ffff, *status));
            }
            Frame::Settings(entries) => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for (flags, id, value) in entries {
                    p.extend_from_slice(&((u32::from(*flags) << 24) | (id & 0x00ff_ffff)).to_be_bytes());
                    p.extend_from_slice(&value.to_be_bytes());
                }
                control(&mut out, kind::SETTINGS, 0, &p);
            }
            Frame::Ping(id) => control(&mut out, kind::PING, 0, &id.to_be_bytes()),
            Frame::GoAway { last_stream, status } => {
                control(&mut out, kind::GOAWAY, 0, &pair(*last_stream & 0x7fff_ffff, *status));
            }
            Frame::WindowUpdate { stream, delta } => {
                control(&mut out, kind::WINDOW_UPDATE, 0, &pair(*stream & 0x7fff_ffff, *delta & 0x7fff_ffff));
            }
        }
        out
    }
}

fn pair(a: u32, b: u32) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&a.to_be_bytes());
    p[4..].copy_from_slice(&b.to_be_bytes());
    p
}

fn length_word(flags: u8, len: usize) -> [u8; 4] {
    ((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff)).to_be_bytes()
}

fn control(out: &mut Vec<u8>, ty: u16, flags: u8, payload: &[u8]) {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&length_word(flags, payload.len()));
    out.extend_from_slice(payload);
}

fn data_frame(out: &mut Vec<u8>, stream: u32, fin: bool, data: &[u8]) {
    out.extend_from_slice(&data_header(stream, fin, data.len()));
    out.extend_from_slice(data);
}

/// Bytes before a data frame's payload.
pub const DATA_HEADER: usize = 8;

fn data_header(stream: u32, fin: bool, len: usize) -> [u8; DATA_HEADER] {
    let mut h = [0u8; DATA_HEADER];
    h[..4].copy_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    h[4..].copy_from_slice(&length_word(u8::from(fin), len));
    h
}

/// Make `buf` — [`DATA_HEADER`] bytes of room, then the payload — a whole data frame, in place:
/// what a hot path uses to send bytes it read without copying them. `None` if the payload is
/// too long for one frame.
pub fn data_frame_in_place(stream: u32, fin: bool, buf: &mut [u8]) -> Option<()> {
    let len = buf.len().checked_sub(DATA_HEADER).filter(|l| *l <= MAX_PAYLOAD)?;
    buf[..DATA_HEADER].copy_from_slice(&data_header(stream, fin, len));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_framed_in_place_is_what_the_encoder_writes() {
        let mut buf = vec![0u8; DATA_HEADER];
        buf.extend_from_slice(b"payload");
        data_frame_in_place(5, true, &mut buf).expect("fits");
        let frame = Frame::Data { stream: 5, fin: true, data: b"payload".to_vec() };
        assert_eq!(buf, Encoder::default().encode(&frame));
        assert!(data_frame_in_place(1, false, &mut [0u8; 3]).is_none(), "no room for the header");
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn every_frame() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply { stream: 1, fin: false, headers: h(&[]) },
            Frame::Data { stream: 1, fin: false, data: b"hello".to_vec() },
            Frame::Data { stream: 3, fin: true, data: vec![] },
            Frame::Headers { stream: 3, fin: true, headers: h(&[("a", "b")]) },
            Frame::RstStream { stream: 5, status: status::CANCEL },
            Frame::Settings(vec![(0, 4, 100), (1, 7, 65536)]),
            Frame::Ping(7),
            Frame::WindowUpdate { stream: 0, delta: 65536 },
            Frame::GoAway { last_stream: 5, status: 0 },
        ]
    }

    #[test]
    fn every_frame_type_round_trips_in_any_split() {
        let mut enc = Encoder::default();
        let bytes: Vec<u8> = every_frame().iter().flat_map(|f| enc.encode(f)).collect();
        // Whole, and one byte at a time (as a WebSocket tunnel may cut them).
        for step in [bytes.len(), 1, 3] {
            let mut dec = Decoder::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(step) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().expect("frame") {
                    got.push(f);
                }
            }
            assert_eq!(got, every_frame(), "split {step}");
            assert_eq!(dec.buffered(), 0);
        }
    }

    #[test]
    fn decodes_bytes_laid_out_as_the_spec_says() {
        // PING 7 and a 2-byte DATA frame with FIN on stream 3, written out by hand.
        let mut dec = Decoder::default();
        dec.push(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 7]);
        dec.push(&[0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x02, b'h', b'i']);
        assert_eq!(dec.next_frame(), Ok(Some(Frame::Ping(7))));
        assert_eq!(dec.next_frame(), Ok(Some(Frame::Data { stream: 3, fin: true, data: b"hi".to_vec() })));
        assert_eq!(dec.next_frame(), Ok(None));
        assert_eq!(Encoder::default().encode(&Frame::Ping(7)), [0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 7]);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let cases: &[&[u8]] = &[
            &[0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 0],             // unknown type 10 (CREDENTIAL)
            &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 3, 1, 2, 3],    // PING of 3 bytes
            &[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 4, 0, 0, 0, 1], // short RST_STREAM
            &[0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0, 0, 0, 9], // SETTINGS count beyond the payload
            &[0x80, 0x03, 0x00, 0x01, 0, 0, 0, 4, 0, 0, 0, 1], // SYN_STREAM too short
            &[0x80, 0x03, 0x00, 0x02, 0, 0, 0, 6, 0, 0, 0, 1, 0xde, 0xad], // SYN_REPLY with bad zlib
            &[0x80, 0x03, 0x00, 0x02, 0, 0, 0, 4, 0, 0, 0, 0], // SYN_REPLY for stream 0
        ];
        for case in cases {
            let mut dec = Decoder::default();
            dec.push(case);
            assert!(dec.next_frame().is_err(), "{case:?}");
        }
        // A frame announced longer than what arrived is simply incomplete.
        let mut dec = Decoder::default();
        dec.push(&[0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(dec.next_frame(), Ok(None));
    }

    #[test]
    fn large_data_is_split_into_frames() {
        let data = vec![7u8; MAX_PAYLOAD + 10];
        let bytes = Encoder::default().encode(&Frame::Data { stream: 1, fin: true, data: data.clone() });
        let mut dec = Decoder::default();
        dec.push(&bytes);
        let first = dec.next_frame().expect("ok").expect("first");
        let second = dec.next_frame().expect("ok").expect("second");
        assert!(matches!(first, Frame::Data { fin: false, ref data, .. } if data.len() == MAX_PAYLOAD));
        assert!(matches!(second, Frame::Data { fin: true, ref data, .. } if data.len() == 10));
    }
}
