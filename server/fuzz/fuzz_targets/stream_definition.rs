//! Any text as a stream definition file: parsed and planned, or refused
//! with a reason, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(definitions) = server::definitions::parse_all(&[("fuzzed.toml".into(), text)]) {
        let _ = server::custom::CustomStream::plan_all(&definitions);
    }
});
