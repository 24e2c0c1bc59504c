//! A bundle file imported into a device store.
//! The body is `fieldlog_tests::fuzz::bundle_import`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::bundle_import(data));
