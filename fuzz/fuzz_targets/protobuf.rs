//! Protobuf request bodies: the first byte picks a served kind, the rest is the object's
//! message, wrapped in the `k8s\0` + `runtime.Unknown` envelope as clients send it (and, for
//! envelope bugs, the input unwrapped too). Decoded objects go on through the kind's
//! decoding, defaulting and validation. Nothing may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_apiserver::fuzzing::{FieldValidation, decode_body, decode_protobuf};
use skiff_core::kinds;

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn field(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(tag << 3 | 2);
    varint(payload.len(), out);
    out.extend_from_slice(payload);
}

fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    field(1, b"v1", &mut type_meta);
    field(2, kind.as_bytes(), &mut type_meta);
    let mut out = b"k8s\0".to_vec();
    field(1, &type_meta, &mut out);
    field(2, raw, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, raw)) = data.split_first() else { return };
    let all = kinds::all();
    let kind = all[usize::from(pick) % all.len()];
    let _ = decode_protobuf(&[b"k8s\0", raw].concat());
    let Ok(obj) = decode_protobuf(&envelope(kind.info().kind, raw)) else { return };
    if let Ok((mut obj, _)) = decode_body(kind, &obj, &[], FieldValidation::Strict) {
        kind.default(&mut obj);
        kind.prepare_create(&mut obj);
        let _ = kind.validate(&obj);
        let _ = kind.cells(&obj, skiff_core::time::parse(Some("2026-01-01T00:00:00Z")).unwrap_or_default());
    }
});
