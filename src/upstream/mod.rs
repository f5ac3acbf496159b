//! Upstream login: signing users in through another OpenID provider or GitHub, the
//! one home of everything provider-facing (like Dex's `connector/`).
//!
//! - `provider`: the validated `[[providers]]` entry (plain data, in the registry);
//! - `rules`: pure functions from upstream claims to an identity (who is accepted,
//!   email domains, groups with their prefix);
//! - `seal`: the AES-GCM sealing of kept upstream tokens;
//! - `http`: the outbound client (timeouts, size limits, no redirects);
//! - `oidc` and `github`: the two kinds, each starting a login, finishing it at the
//!   callback and revalidating at a refresh;
//! - `connect`: the dispatch over kinds and the per-provider cache (discovery, keys,
//!   last error) kept beside the registry.
//!
//! The pages (`web::upstream`) and the refresh grant call `connect`; nothing here
//! renders a page.

// pub mod connect;
// pub mod github;
// pub mod http;
// pub mod oidc;
pub mod provider;
pub mod rules;
pub mod seal;
