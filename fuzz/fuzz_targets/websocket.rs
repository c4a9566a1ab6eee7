//! What a WebSocket client can send to exec, attach and port-forward: arbitrary bytes as
//! WebSocket frames (tungstenite's server side, as axum runs it), then every message through
//! each channel protocol's decoder. Nothing may panic, and what decodes as data must encode and
//! decode again to the same data.

#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_stream::channel::{Incoming, Protocol};
use std::io::{Cursor, Read, Write};
use tungstenite::protocol::{Role, WebSocket};

/// The client's bytes to read, and a sink for our replies (pongs, close).
struct Peer(Cursor<Vec<u8>>);

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const NAMES: [&str; 5] =
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];

fuzz_target!(|data: &[u8]| {
    let mut ws = WebSocket::from_raw_socket(Peer(Cursor::new(data.to_vec())), Role::Server, None);
    let mut messages = Vec::new();
    while let Ok(msg) = ws.read() {
        match msg {
            tungstenite::Message::Binary(b) => messages.push(b.to_vec()),
            tungstenite::Message::Text(t) => messages.push(t.as_bytes().to_vec()),
            _ => {}
        }
    }
    // The raw bytes as one message too, so the channel decoders see arbitrary input directly.
    messages.push(data.to_vec());
    for name in NAMES {
        let p = Protocol::from_name(name).expect("known protocol");
        for bytes in &messages {
            if let Ok(Incoming::Data { channel, data }) = p.decode(bytes) {
                let again = p.encode(channel, &data).into_bytes();
                assert_eq!(p.decode(&again), Ok(Incoming::Data { channel, data }), "{name}");
            }
        }
    }
});
