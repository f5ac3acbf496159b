//! gatehouse: an OAuth 2.1 / OpenID Connect authorization server whose state of record
//! is one config file. This crate builds the whole server so tests can start it
//! in-process on 127.0.0.1:0 and talk HTTP to it.

pub mod client_ip;
pub mod config;
pub mod health;
pub mod oauth;
pub mod registry;
pub mod reload;
pub mod secret;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod web;
