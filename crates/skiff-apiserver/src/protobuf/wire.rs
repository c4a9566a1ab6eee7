//! The protobuf wire format: varints, length-delimited payloads and skipping, with the errors
//! worded as the Go decoders generated for Kubernetes word them.

/// The deepest group nesting skipped in an unknown field.
const MAX_GROUP_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("unexpected EOF")]
    UnexpectedEof,
    #[error("proto: integer overflow")]
    IntOverflow,
    #[error("proto: negative length found during unmarshaling")]
    NegativeLength,
    #[error("proto: {message}: illegal tag {tag} (wire type {wire})")]
    IllegalTag { message: &'static str, tag: u64, wire: u8 },
    #[error("proto: {message}: wiretype end group for non-group")]
    EndGroup { message: &'static str },
    #[error("proto: illegal wireType {0}")]
    IllegalWireType(u8),
    #[error("proto: wrong wireType = {wire} for field {field}")]
    WrongWireType { wire: u8, field: &'static str },
    #[error("proto: {0}")]
    Invalid(String),
}

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const START_GROUP: u8 = 3;
pub const END_GROUP: u8 = 4;
pub const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A base-128 varint of at most ten bytes (bits past 64 are dropped, as Go does).
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(WireError::UnexpectedEof)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(WireError::IntOverflow)
    }

    /// The next field's number and wire type; `message` names the message in errors.
    pub fn key(&mut self, message: &'static str) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let (tag, wire) = (key >> 3, (key & 7) as u8);
        if wire == END_GROUP {
            return Err(WireError::EndGroup { message });
        }
        // Field numbers are at most 2^29 - 1.
        match u32::try_from(tag) {
            Ok(t) if t > 0 && t < 1 << 29 => Ok((t, wire)),
            _ => Err(WireError::IllegalTag { message, tag, wire }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(WireError::UnexpectedEof)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        // Go reads the length into an int: past 2^63 it is negative.
        if i64::try_from(len).is_err() {
            return Err(WireError::NegativeLength);
        }
        self.take(usize::try_from(len).map_err(|_| WireError::UnexpectedEof)?)
    }

    pub fn fixed64(&mut self) -> Result<[u8; 8], WireError> {
        let b = self.take(8)?;
        let mut out = [0; 8];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn fixed32(&mut self) -> Result<[u8; 4], WireError> {
        let b = self.take(4)?;
        let mut out = [0; 4];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// Skip the payload of a field that is not in the table.
    pub fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        self.skip_nested(wire, 0)
    }

    fn skip_nested(&mut self, wire: u8, depth: usize) -> Result<(), WireError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            START_GROUP if depth < MAX_GROUP_DEPTH => loop {
                let key = self.varint()?;
                let inner = (key & 7) as u8;
                if inner == END_GROUP {
                    return Ok(());
                }
                self.skip_nested(inner, depth + 1)?;
            },
            START_GROUP => Err(WireError::Invalid("exceeded maximum nesting depth".into())),
            other => Err(WireError::IllegalWireType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_and_rejects_bad_ones() {
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        assert_eq!(Reader::new(&[0xff; 9]).varint(), Err(WireError::UnexpectedEof));
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(WireError::IntOverflow));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
    }

    #[test]
    fn rejects_absurd_lengths_and_tags() {
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&huge).len_delimited(), Err(WireError::NegativeLength));
        assert_eq!(Reader::new(&[0x80, 0x01, 1]).len_delimited(), Err(WireError::UnexpectedEof));
        let err = Reader::new(&[0x02]).key("Pod").map(drop);
        assert_eq!(err.map_err(|e| e.to_string()), Err("proto: Pod: illegal tag 0 (wire type 2)".into()));
        assert_eq!(Reader::new(&[0x0c]).key("Pod"), Err(WireError::EndGroup { message: "Pod" }));
    }

    #[test]
    fn skips_groups_and_bounds_their_nesting() {
        // field 1 start group, field 2 varint 5, end group 1.
        let mut r = Reader::new(&[0x10, 0x05, 0x0c]);
        assert_eq!(r.skip(START_GROUP), Ok(()));
        assert!(r.is_empty());
        let deep = [0x0b; 64];
        assert!(Reader::new(&deep).skip(START_GROUP).is_err());
        assert_eq!(Reader::new(&[]).skip(7), Err(WireError::IllegalWireType(7)));
    }
}
