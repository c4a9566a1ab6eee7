//! CEL validation rules: the input is two JSON documents separated by a NUL byte, an
//! `openAPIV3Schema` (whose `x-kubernetes-validations` carry the rules) and an object. The
//! rules are checked and compiled, then evaluated on the object, once as created and once as
//! updated from itself. Nothing may panic, overflow the stack or run unbounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_core::crd;
use skiff_core::field::Path;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return };
    let (Ok(schema), Ok(obj)) = (serde_json::from_slice(a), serde_json::from_slice::<serde_json::Value>(b)) else {
        return;
    };
    let Ok(schema) = crd::parse(&schema) else { return };
    let _ = crd::cel::check(&schema, &Path::new("openAPIV3Schema"));
    let rules = crd::cel::compile(&schema);
    let _ = rules.validate(&schema, &obj, None);
    let _ = rules.validate(&schema, &obj, Some(&obj));
});
