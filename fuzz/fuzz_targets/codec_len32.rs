//! The `len32` codec: decode and encode (see `ringport_fuzz::codec`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ringport_fuzz::codec(ringport::server::CodecKind::Len32, data)
});
