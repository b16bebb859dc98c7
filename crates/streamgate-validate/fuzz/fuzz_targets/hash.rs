//! Fuzz target: `streamgate_validate::fuzzing::hash`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamgate_validate::fuzzing::hash(data);
});
