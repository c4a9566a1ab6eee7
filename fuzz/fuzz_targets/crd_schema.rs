//! CustomResourceDefinition schemas and the objects validated against them: the input is two
//! JSON documents separated by a NUL byte, an `openAPIV3Schema` and an object. The schema is
//! parsed and checked; when it parses, the object is pruned, defaulted and validated. Nothing
//! may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_core::crd;
use skiff_core::field::Path;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return };
    let (Ok(schema), Ok(mut obj)) = (serde_json::from_slice(a), serde_json::from_slice::<serde_json::Value>(b)) else {
        return;
    };
    let Ok(mut schema) = crd::parse(&schema) else { return };
    let _ = crd::check_schema(&schema, &Path::new("openAPIV3Schema"), &crd::CheckOptions::default());
    schema.prune_defaults();
    let _ = crd::prune(&mut obj, &schema, true);
    crd::prune_nulls(&mut obj, &schema);
    crd::apply_defaults(&mut obj, &schema);
    let _ = crd::validate_object(&schema, &obj);
});
