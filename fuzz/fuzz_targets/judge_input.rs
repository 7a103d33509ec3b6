//! `canary judge`'s JSON input: parsed, judged and printed; the property is
//! [`canary_engine_fuzz::judge_input`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        canary_engine_fuzz::judge_input(text);
    }
});
