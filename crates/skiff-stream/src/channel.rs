//! Kubernetes' WebSocket channel protocols (`channel.k8s.io` and its versions): every message
//! is one channel's bytes, the channel number first — as a byte in the binary encodings, as an
//! ASCII digit followed by base64 in the `base64.` ones (for clients that can only send text).
//! `v5` adds a close signal: the message `[255, channel]` ends what the client sends on that
//! channel. Before `v4` the error channel carries a plain message rather than a JSON Status.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How channel messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Binary,
    Base64,
}

/// A negotiated channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// 1 (`channel.k8s.io`), 4 or 5.
    pub version: u8,
    pub encoding: Encoding,
}

impl Protocol {
    /// The protocol a WebSocket subprotocol name stands for; `""` (none offered) is binary v1,
    /// as upstream treats it.
    pub fn from_name(name: &str) -> Option<Protocol> {
        let (version, encoding) = match name {
            "" | "channel.k8s.io" => (1, Encoding::Binary),
            "base64.channel.k8s.io" => (1, Encoding::Base64),
            "v4.channel.k8s.io" => (4, Encoding::Binary),
            "v4.base64.channel.k8s.io" => (4, Encoding::Base64),
            "v5.channel.k8s.io" => (5, Encoding::Binary),
            _ => return None,
        };
        Some(Protocol { version, encoding })
    }

    /// Whether the error channel carries a JSON `Status` (v4+) rather than a plain message.
    pub fn status_as_json(&self) -> bool {
        self.version >= 4
    }

    /// One outgoing message: `data` on `channel`.
    pub fn encode(&self, channel: u8, data: &[u8]) -> Outgoing {
        match self.encoding {
            Encoding::Binary => {
                let mut m = Vec::with_capacity(data.len() + 1);
                m.push(channel);
                m.extend_from_slice(data);
                Outgoing::Binary(m)
            }
            Encoding::Base64 => {
                let mut m = String::with_capacity(data.len().div_ceil(3) * 4 + 1);
                m.push(char::from(b'0'.wrapping_add(channel)));
                STANDARD.encode_string(data, &mut m);
                Outgoing::Text(m)
            }
        }
    }

    /// One incoming message (binary or text: the protocol says how to read it).
    pub fn decode(&self, message: &[u8]) -> Result<Incoming, ChannelError> {
        let (&first, rest) = message.split_first().ok_or(ChannelError::Empty)?;
        if self.version >= 5 && first == 255 {
            return match rest {
                [channel] => Ok(Incoming::Close { channel: *channel }),
                _ => Err(ChannelError::BadClose),
            };
        }
        match self.encoding {
            Encoding::Binary => Ok(Incoming::Data { channel: first, data: rest.to_vec() }),
            Encoding::Base64 => {
                let channel = first.checked_sub(b'0').filter(|c| *c <= 9).ok_or(ChannelError::BadChannel(first))?;
                let data = STANDARD.decode(rest).map_err(|_| ChannelError::BadBase64)?;
                Ok(Incoming::Data { channel, data })
            }
        }
    }
}

/// A message to send, as the WebSocket message type the encoding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Binary(Vec<u8>),
    Text(String),
}

impl Outgoing {
    /// The message's bytes, whatever its type.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Outgoing::Binary(b) => b,
            Outgoing::Text(t) => t.into_bytes(),
        }
    }
}

/// What a client message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Data {
        channel: u8,
        data: Vec<u8>,
    },
    /// v5: the client sends nothing more on `channel`.
    Close {
        channel: u8,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelError {
    #[error("an empty message names no channel")]
    Empty,
    #[error("a close message must name exactly one channel")]
    BadClose,
    #[error("{0:#04x} is not a base64 channel digit")]
    BadChannel(u8),
    #[error("the message is not valid base64")]
    BadBase64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_versions_and_encodings() {
        let p = |n| Protocol::from_name(n).expect(n);
        assert_eq!(p("v5.channel.k8s.io"), Protocol { version: 5, encoding: Encoding::Binary });
        assert_eq!(p("v4.base64.channel.k8s.io"), Protocol { version: 4, encoding: Encoding::Base64 });
        assert_eq!(p("base64.channel.k8s.io"), Protocol { version: 1, encoding: Encoding::Base64 });
        assert_eq!(p(""), p("channel.k8s.io"));
        assert!(!p("channel.k8s.io").status_as_json() && p("v4.channel.k8s.io").status_as_json());
        assert_eq!(Protocol::from_name("v6.channel.k8s.io"), None);
    }

    #[test]
    fn binary_and_base64_round_trip() {
        for name in ["v5.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io"] {
            let p = Protocol::from_name(name).expect(name);
            for data in [&b""[..], b"hello", &[0u8, 255, 3, 7][..]] {
                let bytes = p.encode(2, data).into_bytes();
                assert_eq!(p.decode(&bytes), Ok(Incoming::Data { channel: 2, data: data.to_vec() }), "{name}");
            }
        }
        let b64 = Protocol::from_name("base64.channel.k8s.io").expect("b64");
        assert_eq!(b64.encode(1, b"hi"), Outgoing::Text("1aGk=".into()));
        assert_eq!(b64.decode(b"0aGk="), Ok(Incoming::Data { channel: 0, data: b"hi".to_vec() }));
    }

    #[test]
    fn close_signals_only_in_v5() {
        let v5 = Protocol::from_name("v5.channel.k8s.io").expect("v5");
        let v4 = Protocol::from_name("v4.channel.k8s.io").expect("v4");
        assert_eq!(v5.decode(&[255, 0]), Ok(Incoming::Close { channel: 0 }));
        assert_eq!(v5.decode(&[255]), Err(ChannelError::BadClose));
        assert_eq!(v4.decode(&[255, 0]), Ok(Incoming::Data { channel: 255, data: vec![0] }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let b64 = Protocol::from_name("v4.base64.channel.k8s.io").expect("b64");
        assert_eq!(b64.decode(b""), Err(ChannelError::Empty));
        assert_eq!(b64.decode(b"x"), Err(ChannelError::BadChannel(b'x')));
        assert_eq!(b64.decode(b"0!!!"), Err(ChannelError::BadBase64));
    }
}
