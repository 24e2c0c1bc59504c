//! The bureau's blob endpoints (HEAD/PATCH/GET `/v1/blobs/<sha256>`) through its
//! router: the input picks method, blob, header values and body.
//! The body is `fieldlog_tests::fuzz::blob_headers`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::blob_headers(data));
