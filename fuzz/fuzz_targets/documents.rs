//! libFuzzer entry of the `documents` target; see `openshell_fuzz::documents`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openshell_fuzz::documents(data));
