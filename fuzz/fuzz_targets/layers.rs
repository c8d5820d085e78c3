//! libFuzzer entry of the `layers` target; see `openshell_fuzz::layers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openshell_fuzz::layers(data));
