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
//! - `jwks`: public key sets of others (clients' `jwks_uri`, trusted workload
//!   issuers), fetched within limits and cached;
//! - `document`: fetching Client ID Metadata Documents (the address checks, the
//!   limits) and the cache of those read;
//! - `logout`: POSTing back-channel logout tokens to clients, bounded in time and
//!   in number at once;
//! - `connect`: the dispatch over kinds and the per-provider cache (discovery, keys,
//!   last error) kept beside the registry.
//!
//! The pages (`web::upstream`) and the refresh grant call `connect`; nothing here
//! renders a page.

pub mod connect;
pub mod document;
pub mod github;
pub mod http;
pub mod jwks;
pub mod logout;
pub mod oidc;
pub mod provider;
pub mod rules;
pub mod seal;

use serde_json::{Map, Value};

/// What an upstream said at a login or a revalidation.
pub(crate) struct Vouched {
    /// The user's claims (an ID token's, verified; GitHub's, as `github` builds them).
    pub(crate) claims: Map<String, Value>,
    /// The token to ask again with at a revalidation: an upstream refresh token
    /// (GitHub: the access token), when it gave one.
    pub(crate) token: Option<String>,
    /// When the user authenticated at the upstream (`auth_time`), if it says.
    pub(crate) auth_time: Option<u64>,
}

/// Why an upstream step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The upstream could not be reached, timed out or answered nonsense: nothing is
    /// decided, a retry may work (a refresh answers `temporarily_unavailable`).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The answer failed a check (state, issuer, signature, nonce, audience): `reason`
    /// is the audit event's.
    #[error("{reason}: {detail}")]
    Refused {
        reason: &'static str,
        detail: String,
    },
    /// The upstream says no: the user denied, or a refresh token it no longer honours.
    #[error("the provider refused: {0}")]
    Denied(String),
}

impl UpstreamError {
    /// The `reason` of the audit event.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "upstream_unavailable",
            Self::Refused { reason, .. } => reason,
            Self::Denied(_) => "upstream_denied",
        }
    }

    pub(crate) fn refused(reason: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Refused {
            reason,
            detail: detail.to_string(),
        }
    }
}
