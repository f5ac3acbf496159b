//! `gatehouse check`: validates config files and prints every problem as
//! `FILE:LINE:COLUMN: field.path: message`.

use gatehouse::config::Severity;
use gatehouse::load;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `--offline` means for the files and env values a config references.
pub(crate) fn referenced(offline: bool) -> load::Referenced {
    if offline {
        load::Referenced::Opaque
    } else {
        load::Referenced::Read
    }
}

/// Checks each of `paths`; a failure when any is rejected.
pub(crate) fn check(paths: &[PathBuf], referenced: load::Referenced) -> ExitCode {
    let mut failed = false;
    let offline = match referenced {
        load::Referenced::Opaque => " (offline: referenced secrets, keys and env values not read)",
        load::Referenced::Read => "",
    };
    for path in paths {
        match load::load_as(path, referenced) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    println!("{warning}");
                }
                let c = &loaded.config;
                let included = match loaded.included.len() {
                    0 => String::new(),
                    n => format!(", {n} included files"),
                };
                println!(
                    "{}: ok: {} clients, {} users, {} keys, {} custom scopes, {} warnings{included}{offline}",
                    path.display(),
                    c.clients.len(),
                    c.users.len(),
                    c.keys.len(),
                    c.scopes.len(),
                    loaded.warnings.len()
                );
            }
            Err(rejected) => {
                failed = true;
                print_rejected(&path.display().to_string(), &rejected);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints every diagnostic of a rejected config, then `NAME: N error(s)`.
pub(crate) fn print_rejected(name: &str, rejected: &load::Rejected) {
    for d in &rejected.diagnostics {
        println!("{d}");
    }
    let errors = rejected
        .diagnostics
        .iter()
        .filter(|d| d.issue.severity == Severity::Error)
        .count();
    println!("{name}: {errors} error(s)");
}
