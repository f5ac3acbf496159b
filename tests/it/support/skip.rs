//! One rule for a test whose real dependency (Chromium, chromedriver, redis-server, the
//! npm packages) is missing on this machine: with `CI` set (to anything) the test
//! fails, since CI must install what the tests need; elsewhere it is skipped and says
//! so in the normal `cargo test` output, not only under `--nocapture`.

use std::io::Write;

/// Fails the calling test under CI; elsewhere prints a `SKIPPED` line past the test
/// harness's output capture (which takes only `print!`/`eprint!`) and returns, so the
/// test can return early. `test` names the test, `what` the missing piece and how to
/// install it.
pub fn missing(test: &str, what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI must provide {what}"
    );
    let line = format!("SKIPPED {test}: {what} is missing (with CI set this fails)\n");
    // Written straight to the process's stderr: libtest captures only the print macros.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
