//! Query strings, including label and field selectors, list options and continue tokens.
//! Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_apiserver::fuzzing::Query;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(q) = Query::parse(Some(s)) {
            let _ = skiff_apiserver::fuzzing::list_revision(&q);
        }
        let _ = skiff_apiserver::fuzzing::decode_continue(s);
        let _ = skiff_core::selector::LabelSelector::parse(s);
        let _ = skiff_core::selector::FieldSelector::parse(s);
    }
});
