//! libFuzzer entry of the `go_documents` target; see `openshell_fuzz::go_documents`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openshell_fuzz::go_documents(data));
