//! Frame reassembly over arbitrary splits of a stream (see `ringport_fuzz::reassembly`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringport_fuzz::reassembly(data));
