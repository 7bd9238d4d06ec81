//! Any bytes as a flow file: the parser answers with a flow or with positioned problems,
//! never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(problems) = flows::parse_flow(
            std::path::Path::new("fuzz.yaml"),
            text,
            &connectors::Catalogue,
        ) {
            assert!(!problems.is_empty());
        }
    }
});
