#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_machine_fuzz::urls::check(data));
