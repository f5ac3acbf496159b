//! gatehouse: an OAuth 2.1 / OpenID Connect authorization server whose state of record
//! is one config file. This crate builds the whole server so tests can start it
//! in-process on 127.0.0.1:0 and talk HTTP to it. `ARCHITECTURE.md` maps the modules;
//! they are listed here from the bottom layer up, and each imports only from the
//! layers below it.

/// mimalloc, for the server and for the tests that run it in-process alike: with
/// glibc's malloc, allocation was a fifth of a Redis-backed request's CPU
/// (bench/README.md, "A connection per thread, and the allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Leaves: no knowledge of OAuth flows, the registry or the store.
pub mod clock;
pub(crate) mod counters;
pub mod crypto;
pub mod error;
pub mod http;
pub(crate) mod memory;
pub mod protocol;
pub mod templates;

// The config file as written (the bottom of the config); the model, keys and
// providers built on its types; then loading: validation into the model, and the diff.
pub mod config;
pub mod jwt;
pub mod model;
pub mod upstream;

pub mod load;

// One config generation, and the runtime state beside it.
pub mod identity;
pub mod registry;
pub mod secret;
pub mod store;
pub mod throttle;

pub mod state;

// Protocol logic and its JSON endpoints, then the pages.
pub mod oauth;
pub mod web;

// Wiring: probes, metrics, reload, the operator's revocation, the server.
pub mod admin;
pub mod health;
pub mod reload;
pub mod server;
pub mod telemetry;
