//! Photo ingest: a JPEG/PNG/WebP (or anything else) decoded, resized and encoded.
//! The body is `fieldlog_tests::fuzz::photo_decode`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::photo_decode(data));
