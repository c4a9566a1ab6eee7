//! SPDY/3 header blocks: `count`, then `name-len name value-len value` pairs (32-bit big-endian
//! lengths), compressed with one zlib stream per direction for the whole connection, preset
//! dictionary included, and a sync flush after every block.

use super::SpdyError;
use super::dictionary::dictionary;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Name/value pairs in order. Names are lower case; several values of one name are joined by NUL.
pub type Headers = Vec<(String, String)>;

/// A decompressed block larger than this is refused: a few bytes of zlib can say gigabytes.
pub const MAX_BLOCK: usize = 256 * 1024;

/// The inflating side of a connection (what the peer sends).
pub struct Inflater(Decompress);

impl Default for Inflater {
    fn default() -> Self {
        Inflater(Decompress::new(true))
    }
}

impl Inflater {
    /// Decompress and parse one block; the stream state carries over to the next block.
    pub fn block(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let bad = |m: String| SpdyError::HeaderBlock(m);
        let mut out = Vec::with_capacity(compressed.len() * 4);
        let mut input = compressed;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK {
                    return Err(bad(format!("decompresses to more than {MAX_BLOCK} bytes")));
                }
                out.reserve(out.len().max(256));
            }
            let before_in = self.0.total_in();
            let result = self.0.decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.0.total_in() - before_in) as usize;
            input = &input[used..];
            match result {
                Ok(Status::Ok | Status::BufError) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) => break,
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0.set_dictionary(dictionary()).map_err(|e| bad(format!("setting the dictionary: {e}")))?;
                }
                Err(e) => return Err(bad(format!("bad zlib data: {e}"))),
            }
        }
        parse(&out)
    }
}

/// The deflating side of a connection (what we send).
pub struct Deflater(Compress);

impl Default for Deflater {
    fn default() -> Self {
        let mut c = Compress::new(Compression::default(), true);
        // A fresh stream accepts a dictionary before its first byte.
        let _ = c.set_dictionary(dictionary());
        Deflater(c)
    }
}

impl Deflater {
    /// Serialize and compress one block (sync-flushed, so the peer can decode it at once).
    pub fn block(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let raw = serialize(headers);
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before_in = self.0.total_in();
            // Compressing into a growing Vec cannot fail for lack of space.
            let _ = self.0.compress_vec(input, &mut out, FlushCompress::Sync);
            input = &input[(self.0.total_in() - before_in) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

fn serialize(headers: &[(String, String)]) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        for part in [name.as_bytes(), value.as_bytes()] {
            raw.extend_from_slice(&(part.len() as u32).to_be_bytes());
            raw.extend_from_slice(part);
        }
    }
    raw
}

/// Parse a decompressed block, as strictly as kubectl's own peer does: the block must be used up
/// exactly, names non-empty, lower case and unique.
pub fn parse(raw: &[u8]) -> Result<Headers, SpdyError> {
    let bad = |m: &str| SpdyError::HeaderBlock(m.to_string());
    let n = raw.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(|| bad("no count"))?;
    let mut pos = 4;
    let mut next = |what: &str| -> Result<String, SpdyError> {
        let len = raw.get(pos..pos + 4).ok_or_else(|| bad(&format!("truncated {what} length")))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let start = pos + 4;
        let bytes = raw.get(start..start.saturating_add(len)).ok_or_else(|| bad(&format!("truncated {what}")))?;
        pos = start + len;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(&format!("{what} is not UTF-8")))
    };
    let mut headers: Headers = Vec::new();
    for _ in 0..n {
        let name = next("name")?;
        let value = next("value")?;
        if name.is_empty() {
            return Err(bad("empty header name"));
        }
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("header name not in lower case"));
        }
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(bad("duplicate header name"));
        }
        headers.push((name, value));
    }
    if pos != raw.len() {
        return Err(bad("bytes after the last header"));
    }
    Ok(headers)
}

/// The value of header `name`.
pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn blocks_round_trip_over_one_stream_per_direction() {
        let (mut d, mut i) = (Deflater::default(), Inflater::default());
        let first = d.block(&h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]));
        // A dictionary stream, as kubectl's: zlib header with FDICT set, then the dictionary id.
        assert_eq!((first[0], first[1] & 0x20), (0x78, 0x20));
        assert_eq!(&first[2..6], &[0xE3, 0xC6, 0xA7, 0xC2]);
        assert_eq!(i.block(&first).expect("first"), h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]));
        let second = d.block(&h(&[("streamtype", "data")]));
        assert_eq!(i.block(&second).expect("second"), h(&[("streamtype", "data")]));
        assert_eq!(i.block(&d.block(&[])).expect("empty"), Headers::new());
    }

    #[test]
    fn inflates_blocks_compressed_without_a_dictionary() {
        // Some peers send plain zlib (78 DA ...); no dictionary is asked for then.
        let mut c = Compress::new(Compression::best(), true);
        let mut out = Vec::with_capacity(256);
        let _ = c.compress_vec(&serialize(&h(&[("a", "b")])), &mut out, FlushCompress::Sync);
        assert_eq!(Inflater::default().block(&out).expect("plain"), h(&[("a", "b")]));
    }

    #[test]
    fn refuses_malformed_blocks() {
        let mut i = Inflater::default();
        assert!(matches!(i.block(b"not zlib at all"), Err(SpdyError::HeaderBlock(_))));
        assert!(parse(&serialize(&h(&[("Upper", "x")]))).is_err());
        assert!(parse(&serialize(&h(&[("a", "1"), ("a", "2")]))).is_err());
        assert!(parse(&serialize(&h(&[("", "x")]))).is_err());
        let mut raw = serialize(&h(&[("a", "1")]));
        raw.push(0);
        assert!(parse(&raw).is_err(), "trailing bytes");
        raw.truncate(6);
        assert!(parse(&raw).is_err(), "truncated");
        let mut huge = 1u32.to_be_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&huge).is_err(), "a length beyond the block");
    }

    #[test]
    fn refuses_a_decompression_bomb() {
        let mut c = Compress::new(Compression::best(), true);
        let mut out = Vec::with_capacity(1 << 20);
        let _ = c.compress_vec(&vec![b'a'; 2 * MAX_BLOCK], &mut out, FlushCompress::Sync);
        let err = Inflater::default().block(&out).expect_err("bomb");
        assert!(err.to_string().contains("more than"), "{err}");
    }
}
