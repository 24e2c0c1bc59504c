//! Admission of structured sync requests (document ids and raw change bytes), so
//! the input reaches Automerge's change decoding without going through zstd.
//! The body is `fieldlog_tests::fuzz::bureau_admit`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::bureau_admit(data));
