//! Fuzz target: `streamgate_validate::fuzzing::email`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamgate_validate::fuzzing::email(data);
});
