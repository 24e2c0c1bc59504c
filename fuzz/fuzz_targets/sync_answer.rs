//! The device's decoding of a bureau's sync answer (zstd(postcard(SyncResponse))).
//! The body is `fieldlog_tests::fuzz::sync_answer`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::sync_answer(data));
