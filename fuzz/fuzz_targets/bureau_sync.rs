//! The bureau's sync request decoding and admission: the input is the wire body
//! (zstd(postcard(SyncRequest))) of an enrolled device.
//! The body is `fieldlog_tests::fuzz::bureau_sync`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::bureau_sync(data));
