//! Any text as a chart file: read, checked against the built-in datasets
//! and built into its statement, or refused with a reason, never a crash.
#![no_main]

use app::chart::dataset::builtin;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static DATASETS: LazyLock<Vec<app::chart::dataset::Dataset>> = LazyLock::new(builtin);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(definition) = app::chart::store::read_file(&text) {
        let _ = app::chart::query::build(&definition, &DATASETS, 1_800_000_000_000);
    }
});
