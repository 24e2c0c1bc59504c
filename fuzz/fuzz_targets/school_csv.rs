//! A school registry CSV imported into a device store.
//! The body is `fieldlog_tests::fuzz::school_csv`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fieldlog_tests::fuzz::school_csv(data));
