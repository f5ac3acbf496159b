//! The black-box tests: one binary, one module per area (`cargo test --test it login_flow`
//! runs one area). Each starts the real server on 127.0.0.1:0, in-process or as the
//! `gatehouse` binary, and talks to it over HTTP as a client would; `support/` holds the
//! harness (servers, browsers, Redis, upstream providers).
//!
//! Tests that need a process of their own (they read process-wide state) are the other
//! binaries in `tests/`.

mod support;

mod audit_log;
mod browser;
mod check_cli;
mod cimd;
mod cli_example;
mod client_credentials;
mod client_keys_cli;
mod cors;
mod device;
mod diff_cli;
mod discovery_and_keys;
mod docs;
mod dpop;
mod fapi;
mod federated;
mod file_store;
mod forwarded;
mod hardening;
mod include;
mod login_flow;
mod mcp;
mod networks;
mod oidc_client;
mod ops;
mod par;
mod passkeys;
mod pending;
mod private_key_jwt;
mod properties;
mod provider_restriction;
mod reload;
mod replicas;
mod resources;
mod schema;
mod second_factor;
mod service_example;
mod sessions;
mod sessions_replicas;
mod store_redis;
mod store_sentinel;
mod throttling;
mod token_lifecycle;
mod upstream_github;
mod upstream_oidc;
mod upstream_refresh;
