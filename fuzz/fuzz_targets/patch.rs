//! Patches: the input is two JSON documents separated by a NUL byte, an object and a patch,
//! applied as strategic merge, JSON merge and JSON patch. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_core::patch::{PatchType, apply};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return };
    let (Ok(obj), Ok(patch)) = (serde_json::from_slice(a), serde_json::from_slice(b)) else { return };
    for t in [PatchType::Strategic, PatchType::Merge, PatchType::Json] {
        let _ = apply("Pod", t, &obj, &patch);
    }
    let now = skiff_core::time::parse(Some("2026-01-01T00:00:00Z")).unwrap_or_default();
    let _ = skiff_core::managed::apply(&obj, &patch, "fuzz", false, now);
});
