//! `[server]` and `[ui]`, resolved: the listeners, the proxies believed, the admin
//! listener's token (read from its file and kept as a hash) and the page templates.

use super::report::Report;
use crate::config::file::ConfigFile;
use crate::config::report::Sources;
use crate::http::client_ip::Cidr;
use crate::templates::Templates;
use std::net::SocketAddr;
use std::path::Path;

/// `[server]`, resolved: where to listen and whom to believe about addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// The admin listener for /metrics and the probes (read at start only).
    pub admin_bind: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The SHA-256 of the token of `admin_token_file`, which `gatehouse revoke`
    /// presents to the admin listener.
    pub admin_token: Option<AdminToken>,
    /// RFC 9126 for every client: `/authorize` only with a pushed request.
    pub require_par: bool,
    /// RFC 9449 server-provided nonces.
    pub dpop_nonce: bool,
}

/// The SHA-256 of the admin listener's token: compared in constant time, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub [u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// True when `presented` is the token, compared in constant time (of its hash).
    pub(crate) fn accepts(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(crate::crypto::sha256(presented.as_bytes()).ct_eq(&self.0))
    }
}

/// The shortest admin token accepted.
const MIN_ADMIN_TOKEN: usize = 32;

/// `[server] admin_token_file`, read (through `sources`, so a change reloads) and
/// hashed; an issue when it cannot be read, is short, or there is no admin listener.
pub(super) fn admin_token(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<AdminToken> {
    let name = file.server.admin_token_file.as_ref()?;
    let path = "server.admin_token_file";
    if file.server.admin_bind.is_none() {
        r.error(
            path,
            "needs admin_bind: revocations are taken on the admin listener only",
        );
    }
    let text = match sources.read(&base_dir.join(name)) {
        Ok(text) => text,
        Err(e) => {
            r.error(path, format!("cannot read {name:?}: {e}"));
            return None;
        }
    };
    let token = text.trim_end_matches(['\n', '\r']);
    if token.chars().count() < MIN_ADMIN_TOKEN || token.chars().any(char::is_whitespace) {
        r.error(
            path,
            format!(
                "{name:?} must hold one token of at least {MIN_ADMIN_TOKEN} characters without whitespace (`gatehouse hash-secret --generate` makes one)"
            ),
        );
        return None;
    }
    Some(AdminToken(crate::crypto::sha256(token.as_bytes())))
}

/// `[ui]`, resolved: the product name and the compiled page templates.
pub struct UiSettings {
    pub product_name: String,
    pub templates: Templates,
    /// `[ui] templates_dir` as written, for `gatehouse diff`.
    pub templates_dir: Option<String>,
}

/// The built-in page templates, with any of the same name from `[ui] templates_dir`.
pub(super) fn load_templates(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Templates> {
    let dir = file.ui.templates_dir.as_ref().map(|d| base_dir.join(d));
    if let Some(dir) = &dir {
        for name in Templates::names() {
            let path = dir.join(name);
            if !path.is_file() {
                sources.may_appear(path);
            }
        }
    }
    match Templates::load(dir.as_deref(), |path| sources.read(path)) {
        Ok(t) => Some(t),
        Err(problems) => {
            for problem in problems {
                r.error("ui.templates_dir", problem);
            }
            None
        }
    }
}
