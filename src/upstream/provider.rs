//! An upstream provider as validated from `[[providers]]`: plain data the registry
//! holds, with nothing of the network in it (discovery and keys are fetched lazily by
//! `upstream::oidc` and cached beside the registry, never in it).

use crate::config::file::Accept;
use regex::Regex;
use std::collections::BTreeMap;
use std::time::Duration;

/// The ID token signature algorithms accepted when a provider lists none.
pub(crate) const DEFAULT_ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The asymmetric JWS algorithms a provider may list; `none` and HS* never (a shared
/// client secret must not be able to sign identities).
pub(crate) const ALLOWED_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Which upstream claims give the user's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub subject: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub email_verified: String,
    pub groups: String,
    /// The claim holding the user's picture URL.
    pub picture: String,
}

/// How upstream groups become gatehouse groups.
#[derive(Debug, Clone)]
pub struct GroupRules {
    /// Put before every upstream group (default `"<id>:"`).
    pub prefix: String,
    /// Only whole names matching it are kept.
    pub filter: Option<Regex>,
    /// Added to every user of the provider, as written.
    pub add: Vec<String>,
}

impl PartialEq for GroupRules {
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix
            && self.filter.as_ref().map(Regex::as_str) == other.filter.as_ref().map(Regex::as_str)
            && self.add == other.add
    }
}

/// Who may come in through `accept = "rules"`, beyond linked users.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcceptRules {
    /// Lowercase domains; empty: any.
    pub allowed_email_domains: Vec<String>,
    /// Believe emails the upstream does not mark verified.
    pub trust_email: bool,
    /// Upstream group names; empty: any.
    pub allowed_groups: Vec<String>,
    /// Claims that must have exactly these values.
    pub required_claims: BTreeMap<String, String>,
}

/// How a federated user's refresh tokens are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPolicy {
    /// A refresh family ends this long after the upstream login.
    Cap(Duration),
    /// A refresh at least this long after the upstream last vouched asks it again.
    Revalidate(Duration),
}

/// The endpoints of a provider kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// OpenID Connect: discovered from the issuer.
    Oidc { issuer: String },
    /// GitHub: the web base (authorize, access_token) and the REST API base.
    Github { web_url: String, api_url: String },
}

/// One `[[providers]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub endpoints: Endpoints,
    pub client_id: String,
    /// The client secret at the upstream (plaintext: it must be sent).
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub accept: Accept,
    pub rules: AcceptRules,
    pub claims: ClaimNames,
    pub groups: GroupRules,
    pub algorithms: Vec<String>,
    pub refresh: RefreshPolicy,
}

impl Provider {
    /// The subject of a user the rules let in: `"<id>:<upstream subject>"`.
    pub(crate) fn subject_of(&self, upstream_subject: &str) -> String {
        format!("{}:{upstream_subject}", self.id)
    }

    /// The path of its callback: one per provider (RFC 9700 4.4.2, mix-up defence).
    pub(crate) fn callback_path(&self) -> String {
        format!("/login/callback/{}", self.id)
    }
}

/// True when `id` may name a provider: `[a-z0-9-]`, 1 to 64 characters.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use crate::upstream::provider::valid_id;

    #[test]
    fn ids() {
        assert!(valid_id("corp") && valid_id("git-hub2"));
        assert!(!valid_id("") && !valid_id("Corp") && !valid_id("a:b") && !valid_id("a_b"));
        assert!(!valid_id(&"a".repeat(65)));
    }
}
