//! Argo success/failure conditions against a measurement result; the property is
//! [`canary_engine_fuzz::condition`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: canary_engine_fuzz::let_caught_panics_unwind(), |data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        canary_engine_fuzz::condition(text);
    }
});
