//! One security-relevant difference between two configs ([`Change`]: subject, id,
//! mark, words) and the list `diff` and `key_diff` build; printed by `gatehouse diff`
//! and the reload log.

use std::fmt;

/// Whether a change lets more through, less, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// More is allowed than before (a new redirect URI, a longer lifetime).
    Widens,
    /// Less is allowed than before.
    Narrows,
    /// Different, neither more nor less (another signing key, a renamed provider).
    Neutral,
    /// A credential replaced by another under the same name (a password hash, a
    /// client's secret, a signing key's material, the token key): nothing more is
    /// allowed, but whoever wrote the change now knows or holds the new one.
    /// `--fail-on widens` includes it.
    CredentialReplaced,
}

impl Mark {
    /// The mark as printed: `widens`, `narrows` or `neutral`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Widens => "widens",
            Self::Narrows => "narrows",
            Self::Neutral => "neutral",
            Self::CredentialReplaced => "credential_replaced",
        }
    }
}

/// What a change is about; changes are listed grouped in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// A `[[clients]]` entry, by id.
    Client,
    /// A `[[users]]` entry, by id (`sub`).
    User,
    /// A `[[providers]]` entry, by id.
    Provider,
    /// A signing key, by `kid`.
    Key,
    /// A custom scope, by name.
    Scope,
    /// A `[[resources]]` entry (RFC 8707), by id.
    Resource,
    /// A `[tokens]` lifetime, by field name.
    Tokens,
    /// A `[session]` lifetime, by field name.
    Session,
    /// `[store]` (read at start only: the change applies at the next restart).
    Store,
    /// A `[[trusted_issuers]]` entry, by id.
    TrustedIssuer,
    /// A `[limits]` field, by name.
    Limits,
    /// The `issuer`.
    Issuer,
    /// A `[server]` field, by name.
    Server,
    /// A `[ui]` field, by name.
    Ui,
    /// A `[federation]` field, by name.
    Federation,
    /// A `[login]` field, by name.
    Login,
    /// A `[[client_metadata_documents]]` entry, by `url_prefix`.
    ClientDocuments,
}

impl Subject {
    /// The subject as printed: `client`, `user`, `key`, `scope`, `tokens`, `session`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::User => "user",
            Self::Provider => "provider",
            Self::Key => "key",
            Self::Scope => "scope",
            Self::Resource => "resource",
            Self::Tokens => "tokens",
            Self::Session => "session",
            Self::Store => "store",
            Self::TrustedIssuer => "trusted_issuer",
            Self::Limits => "limits",
            Self::Issuer => "issuer",
            Self::Server => "server",
            Self::Ui => "ui",
            Self::Federation => "federation",
            Self::Login => "login",
            Self::ClientDocuments => "client_metadata_documents",
        }
    }
}

/// One security-relevant difference between two configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What kind of thing changed.
    pub subject: Subject,
    /// The client id, user id, key id, scope name or lifetime field.
    pub id: String,
    /// Whether the change widens, narrows or neither.
    pub mark: Mark,
    /// What changed, in words, without any secret: `redirect URI added "https://..."`.
    pub what: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {} {}: {}",
            self.mark.as_str(),
            self.subject.as_str(),
            self.id,
            self.what
        )
    }
}

#[derive(Default)]
pub(super) struct Changes(pub(super) Vec<Change>);

impl Changes {
    pub(super) fn push(&mut self, subject: Subject, id: &str, mark: Mark, what: impl Into<String>) {
        self.0.push(Change {
            subject,
            id: id.to_owned(),
            mark,
            what: what.into(),
        });
    }

    /// One line per entry of `after` not in `before` (marked `added`) and per entry of
    /// `before` not in `after` (marked `removed`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn list(
        &mut self,
        subject: Subject,
        id: &str,
        noun: &str,
        before: &[String],
        after: &[String],
        added: Mark,
        removed: Mark,
    ) {
        for item in after.iter().filter(|i| !before.contains(i)) {
            self.push(subject, id, added, format!("{noun} added {item:?}"));
        }
        for item in before.iter().filter(|i| !after.contains(i)) {
            self.push(subject, id, removed, format!("{noun} removed {item:?}"));
        }
    }

    /// A flag turned on (`on` mark) or off (the opposite).
    pub(super) fn flag(
        &mut self,
        subject: Subject,
        id: &str,
        what: &str,
        before: bool,
        after: bool,
    ) {
        if before != after {
            let (mark, state) = if after {
                (Mark::Widens, "on")
            } else {
                (Mark::Narrows, "off")
            };
            self.push(subject, id, mark, format!("{what} turned {state}"));
        }
    }
}
