//! Any text as a template: it is refused with a reason, or it renders against a record —
//! never a panic, a stack overflow or a render that does not end.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        let record = serde_json::json!({
            "name": "Olena", "phone": "+380501234567",
            "items": [1, [2, [3]], {"a": {"b": "c"}}],
        });
        let _ = engine::template::render_once(source, &record);
    }
});
