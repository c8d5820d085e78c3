//! libFuzzer entry of the `image` target; see `openshell_fuzz::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openshell_fuzz::image(data));
