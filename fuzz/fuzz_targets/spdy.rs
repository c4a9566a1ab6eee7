//! The SPDY/3.1 decoder on arbitrary bytes, fed in arbitrary splits: it must never panic, and
//! every frame it decodes must encode and decode again to the same frame.

#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_stream::spdy::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let step = usize::from(split).max(1);
    let mut dec = Decoder::default();
    let mut frames = Vec::new();
    'feed: for chunk in bytes.chunks(step) {
        dec.push(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    // One encoder and one decoder for the whole sequence, as on a connection.
    let (mut enc, mut again) = (Encoder::default(), Decoder::default());
    for f in frames {
        again.push(&enc.encode(&f));
        let g = again.next_frame().expect("re-encoded frames decode").expect("a whole frame");
        assert_eq!(g, f);
    }
});
