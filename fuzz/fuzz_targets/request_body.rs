//! Request bodies: JSON, YAML or protobuf, decoded as every served kind, then defaulted and
//! validated. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_apiserver::fuzzing::{FieldValidation, decode_body, duplicate_fields, parse_body};
use skiff_core::kinds;

fuzz_target!(|data: &[u8]| {
    let content_type = match data.first() {
        Some(b'k') => "application/vnd.kubernetes.protobuf",
        Some(b'{') => "application/json",
        _ => "application/yaml",
    };
    let duplicates = duplicate_fields(data, content_type);
    let Ok(raw) = parse_body(data, content_type, true) else { return };
    for kind in kinds::all() {
        if let Ok((mut obj, _)) = decode_body(*kind, &raw, &duplicates, FieldValidation::Strict) {
            kind.default(&mut obj);
            kind.prepare_create(&mut obj);
            let _ = kind.validate(&obj);
            let _ = kind.validate_update(&obj, &obj);
            let _ = kind.cells(&obj, skiff_core::time::parse(Some("2026-01-01T00:00:00Z")).unwrap_or_default());
        }
    }
});
