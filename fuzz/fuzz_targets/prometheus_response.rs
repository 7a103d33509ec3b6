//! Prometheus HTTP API answers → a result or a typed error; the property is
//! [`canary_engine_fuzz::prometheus_response`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canary_engine_fuzz::prometheus_response(data));
