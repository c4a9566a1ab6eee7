//! Streaming protocol codecs for `exec`, `attach` and `port-forward`, as pure code: bytes in,
//! frames out, and back. No IO and no async runtime here; the API server drives them.

pub mod channel;
pub mod frames;
pub mod spdy;
