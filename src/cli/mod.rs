//! The subcommands of the `gatehouse` binary, one module each; `main.rs` holds the
//! command line (clap) and dispatches to them.

pub(crate) mod check;
pub(crate) mod diff;
pub(crate) mod hash_secret;
pub(crate) mod keygen;
pub(crate) mod revoke;
pub(crate) mod serve;
pub(crate) mod totp;
