//! Config text, as TOML and as YAML: parsing, locating and validating never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // A directory that does not exist: referenced files fail to read, as they may.
        let _ = gatehouse::load::check_text(Path::new("/nonexistent-gatehouse-fuzz/c.toml"), text);
        let _ = gatehouse::load::check_text(Path::new("/nonexistent-gatehouse-fuzz/c.yaml"), text);
    }
});
