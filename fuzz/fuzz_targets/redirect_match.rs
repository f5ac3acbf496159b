//! Redirect URI rules: registration checks and matching never panic, and a match is
//! always one of the registered URIs.
#![no_main]

use gatehouse::protocol::redirect_uri::{check_issuer, check_registered, find_match};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let requested = lines.next().unwrap_or_default();
    let registered: Vec<String> = lines.map(str::to_owned).collect();
    for r in &registered {
        let _ = check_registered(r);
        let _ = check_issuer(r);
    }
    if let Some(found) = find_match(&registered, requested) {
        assert!(registered.iter().any(|r| r == found));
    }
});
