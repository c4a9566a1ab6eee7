//! A CustomResourceDefinition and a custom resource of it: the input is two JSON documents
//! separated by a NUL byte. The definition is validated as the CRD kind does and turned into
//! its served kinds (printer columns' JSONPaths, scale paths, selectable fields, schema, CEL
//! rules); the object is decoded, defaulted, validated, printed as a Table row, scaled and
//! converted through every served version. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_core::kinds::{self, custom};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return };
    let (Ok(crd), Ok(raw)) = (serde_json::from_slice(a), serde_json::from_slice::<serde_json::Value>(b)) else {
        return;
    };
    let _ = skiff_core::jsonpath::JsonPath::parse(&String::from_utf8_lossy(a));
    let crds = kinds::CUSTOM_RESOURCE_DEFINITIONS;
    let Ok(crd) = crds.normalize(&crd) else { return };
    if !crds.validate(&crd).is_empty() {
        return;
    }
    for kind in custom::kinds_of(&crd) {
        let Ok(mut obj) = kind.normalize(&raw) else { continue };
        kind.default(&mut obj);
        let _ = kind.validate(&obj);
        let _ = kind.validate_update(&obj, &obj);
        let _ = kind.cells(&obj, jiff::Timestamp::UNIX_EPOCH);
        let _ = kind.scale(&obj);
        let _ = kind.set_replicas(&mut obj.clone(), 3);
        kind.to_stored(&mut obj);
        for other in custom::kinds_of(&crd) {
            other.to_served(&mut obj.clone());
        }
    }
});
