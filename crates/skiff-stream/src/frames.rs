//! Length-prefixed frames: a kind byte, a big-endian `u32` length, the bytes. How a pod's shim
//! sends a container's output to an attach session, and how the API server and a remote node
//! agent carry an exec or attach session (stdin, output, resize, exit) over one connection.

/// One frame's bytes.
pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    out.push(kind);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Frames reassembled from bytes as they come.
#[derive(Default)]
pub struct Frames(Vec<u8>);

impl Frames {
    pub fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has come.
    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let len = u32::from_be_bytes(self.0.get(1..5)?.try_into().ok()?) as usize;
        if self.0.len() < 5 + len {
            return None;
        }
        let kind = self.0[0];
        let data = self.0[5..5 + len].to_vec();
        self.0.drain(..5 + len);
        Some((kind, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut bytes = frame(1, b"hello");
        bytes.extend(frame(2, b""));
        bytes.extend(frame(2, &[7u8; 70_000]));
        for chunk in [1, 3, 4096] {
            let mut frames = Frames::default();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                frames.push(piece);
                while let Some(f) = frames.next_frame() {
                    got.push(f);
                }
            }
            assert_eq!(got, vec![(1, b"hello".to_vec()), (2, vec![]), (2, vec![7u8; 70_000])]);
        }
    }
}
