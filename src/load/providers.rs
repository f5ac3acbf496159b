//! The `[[providers]]`, `[federation]` and `[[users]] links` rules: upstream providers
//! validated into `upstream::provider::Provider`, their secrets read from env or files,
//! links checked against the providers, and local user ids kept out of the
//! `"<provider id>:..."` form that users accepted by rules get.

use super::report::Report;
use super::secrets::{EnvRef, parse_env_ref};
use crate::config::file::{Accept, ConfigFile, ProviderEntry, ProviderKind, RefreshMode};
use crate::config::report::Sources;
use crate::protocol::redirect_uri::check_issuer;
use crate::upstream::provider::{
    ALLOWED_ALGORITHMS, AcceptRules, ClaimNames, DEFAULT_ALGORITHMS, Endpoints, GroupRules,
    Provider, RefreshPolicy, valid_id,
};
use crate::upstream::seal::TokenKey;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The providers and the token key, validated.
pub(crate) struct Federation {
    pub(crate) providers: Vec<Provider>,
    pub(crate) token_key: Option<Arc<TokenKey>>,
}

/// Checks every `[[providers]]` entry, `[federation]`, the users' links and ids, and
/// the clients' `providers` lists.
pub(super) fn check(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Federation {
    let mut ids = HashSet::new();
    let mut providers = Vec::new();
    for (i, p) in file.providers.iter().enumerate() {
        let path = format!("providers[{i}]");
        if !valid_id(&p.id) {
            r.error(
                format!("{path}.id"),
                format!("{:?} is not a provider id: 1 to 64 of a-z, 0-9 and -", p.id),
            );
        } else if !ids.insert(p.id.as_str()) {
            r.error(
                format!("{path}.id"),
                format!("duplicate provider id {:?}", p.id),
            );
        }
        if let Some(provider) = check_provider(p, &path, base_dir, sources, r) {
            providers.push(provider);
        }
    }
    let revalidates = providers
        .iter()
        .any(|p| matches!(p.refresh, RefreshPolicy::Revalidate(_)));
    let token_key = match &file.federation.token_key {
        Some(text) => read_secret(
            Some(text),
            None,
            "federation.token_key",
            "",
            base_dir,
            sources,
            r,
        )
        .and_then(|key| match TokenKey::from_base64(&key) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                r.error(
                    "federation.token_key",
                    format!("{e} (make one with `openssl rand -base64 32`)"),
                );
                None
            }
        }),
        None => {
            if revalidates {
                r.error(
                    "federation.token_key",
                    "a provider has refresh.mode = \"revalidate\": upstream tokens are kept encrypted, so set token_key = \"${env:NAME}\" (32 bytes, base64)",
                );
            }
            None
        }
    };
    check_links(file, &ids, r);
    for (i, c) in file.clients.iter().enumerate() {
        for (j, id) in c.providers.iter().flatten().enumerate() {
            if !ids.contains(id.as_str()) {
                r.error(
                    format!("clients[{i}].providers[{j}]"),
                    format!("unknown provider {id:?}; declare it in [[providers]]"),
                );
            }
        }
    }
    Federation {
        providers,
        token_key,
    }
}

/// Links name declared providers, each upstream identity is linked at most once, a
/// user without a password has a link or a passkey, and no local id looks like a federated one.
fn check_links(file: &ConfigFile, providers: &HashSet<&str>, r: &mut Report) {
    let mut linked = HashSet::new();
    for (i, u) in file.users.iter().enumerate() {
        let path = format!("users[{i}]");
        if u.password_hash.is_none() && u.links.is_empty() && u.passkeys.is_empty() {
            r.error(
                format!("{path}.password_hash"),
                "a user needs a password_hash, passkeys, or links to sign in through a provider",
            );
        }
        for (j, link) in u.links.iter().enumerate() {
            let at = format!("{path}.links[{j}]");
            if !providers.contains(link.provider.as_str()) {
                r.error(
                    format!("{at}.provider"),
                    format!(
                        "unknown provider {:?}; declare it in [[providers]]",
                        link.provider
                    ),
                );
            }
            if link.subject.is_empty() {
                r.error(format!("{at}.subject"), "may not be empty");
            } else if !linked.insert((link.provider.as_str(), link.subject.as_str())) {
                r.error(
                    format!("{at}.subject"),
                    format!(
                        "{:?} at {:?} is linked to another user already",
                        link.subject, link.provider
                    ),
                );
            }
        }
        let id = u.id.as_deref().unwrap_or(&u.username);
        if let Some((prefix, _)) = id.split_once(':')
            && providers.contains(prefix)
        {
            let field = if u.id.is_some() { "id" } else { "username" };
            r.error(
                format!("{path}.{field}"),
                format!(
                    "{id:?} has the form \"<provider id>:...\" that users signed in through provider {prefix:?} get; choose another id"
                ),
            );
        }
    }
}

fn duration(text: Option<&str>, default: &str, field: &str, r: &mut Report) -> Duration {
    let text = text.unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(d) if d.as_secs() >= 1 => d,
        Ok(_) => {
            r.error(field, "must be at least one second");
            Duration::from_secs(1)
        }
        Err(e) => {
            r.error(
                field,
                format!("invalid duration {text:?} ({e}); write it like \"1h\" or \"12h\""),
            );
            Duration::from_secs(1)
        }
    }
}

fn check_provider(
    p: &ProviderEntry,
    path: &str,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<Provider> {
    let endpoints = check_endpoints(p, path, r)?;
    if p.client_id.trim().is_empty() {
        r.error(format!("{path}.client_id"), "may not be empty");
    }
    let secret = read_secret(
        p.client_secret.as_deref(),
        p.client_secret_file.as_deref(),
        &format!("{path}.client_secret"),
        &format!("{path}.client_secret_file"),
        base_dir,
        sources,
        r,
    );
    // GitHub's claims are built by `upstream::github` under the default names.
    let github_names = crate::config::file::ClaimsEntry::default();
    let c = match p.kind {
        ProviderKind::Oidc => &p.claims,
        ProviderKind::Github => &github_names,
    };
    if c.picture.trim().is_empty() {
        r.error(
            format!("{path}.claims.picture"),
            "names the upstream claim holding the picture URL; may not be empty",
        );
    }
    Some(Provider {
        id: p.id.clone(),
        name: p.name.clone().unwrap_or_else(|| p.id.clone()),
        endpoints,
        client_id: p.client_id.clone(),
        client_secret: secret.unwrap_or_default(),
        scopes: check_scopes(p, path, r),
        accept: p.accept,
        rules: check_rules(p, path, r),
        claims: ClaimNames {
            subject: c.subject.clone(),
            username: c.username.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
            email_verified: c.email_verified.clone(),
            groups: c.groups.clone(),
            picture: c.picture.clone(),
        },
        groups: check_groups(p, path, r),
        algorithms: check_algorithms(p, path, r),
        refresh: check_refresh(p, path, r),
    })
}

/// Where the provider is: an OIDC issuer (discovery), or GitHub's web and API URLs
/// (github.com's by default, GitHub Enterprise's when given). `None` without an issuer.
fn check_endpoints(p: &ProviderEntry, path: &str, r: &mut Report) -> Option<Endpoints> {
    let url = |value: &str, field: &str, r: &mut Report| {
        if let Err(e) = check_issuer(value) {
            r.error(format!("{path}.{field}"), e);
        }
        value.trim_end_matches('/').to_owned()
    };
    match p.kind {
        ProviderKind::Oidc => {
            for (field, given) in [("api_url", &p.api_url), ("web_url", &p.web_url)] {
                if given.is_some() {
                    r.error(format!("{path}.{field}"), "only a github provider has it");
                }
            }
            let Some(issuer) = &p.issuer else {
                r.error(
                    format!("{path}.issuer"),
                    "an oidc provider needs its issuer",
                );
                return None;
            };
            if let Err(e) = check_issuer(issuer) {
                r.error(format!("{path}.issuer"), e);
            }
            Some(Endpoints::Oidc {
                issuer: issuer.clone(),
            })
        }
        ProviderKind::Github => {
            if p.issuer.is_some() {
                r.error(
                    format!("{path}.issuer"),
                    "a github provider has no issuer; set web_url and api_url for GitHub Enterprise",
                );
            }
            let web_url = p.web_url.as_deref().unwrap_or("https://github.com");
            let api_url = p.api_url.as_deref().unwrap_or("https://api.github.com");
            Some(Endpoints::Github {
                web_url: url(web_url, "web_url", r),
                api_url: url(api_url, "api_url", r),
            })
        }
    }
}

/// The scopes asked of the provider: the kind's defaults, or the listed ones (an OIDC
/// provider must be asked for `openid`).
fn check_scopes(p: &ProviderEntry, path: &str, r: &mut Report) -> Vec<String> {
    let scopes = if p.scopes.is_empty() {
        match p.kind {
            ProviderKind::Oidc => vec!["openid".into(), "email".into(), "profile".into()],
            ProviderKind::Github => {
                vec!["read:user".into(), "user:email".into(), "read:org".into()]
            }
        }
    } else {
        p.scopes.clone()
    };
    if p.kind == ProviderKind::Oidc && !scopes.iter().any(|s| s == "openid") {
        r.error(
            format!("{path}.scopes"),
            "an oidc provider must be asked for openid",
        );
    }
    scopes
}

/// The rules that let an account in (`accept = "rules"`), with a warning where `accept`
/// and the rules disagree; email domains normalised (lowercase, no `@`).
fn check_rules(p: &ProviderEntry, path: &str, r: &mut Report) -> AcceptRules {
    let has_rules = !p.allowed_email_domains.is_empty()
        || !p.allowed_groups.is_empty()
        || !p.required_claims.is_empty();
    if p.accept == Accept::Linked && has_rules {
        r.warn(
            format!("{path}.accept"),
            "accept = \"linked\" lets only linked users in; the rules (allowed_email_domains, allowed_groups, required_claims) apply only with accept = \"rules\"",
        );
    }
    if p.accept == Accept::Rules && !has_rules {
        r.warn(
            format!("{path}.accept"),
            "accept = \"rules\" without any rule lets every account of this provider in",
        );
    }
    let mut domains = Vec::new();
    for (j, d) in p.allowed_email_domains.iter().enumerate() {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
            r.error(
                format!("{path}.allowed_email_domains[{j}]"),
                "not a domain name",
            );
        }
        domains.push(d);
    }
    AcceptRules {
        allowed_email_domains: domains,
        trust_email: p.trust_email,
        allowed_groups: p.allowed_groups.clone(),
        required_claims: p.required_claims.clone(),
    }
}

/// How upstream groups become groups here: the prefix (the provider's id and `:` by
/// default; an empty one is warned about), the filter (a regular expression), the
/// groups added.
fn check_groups(p: &ProviderEntry, path: &str, r: &mut Report) -> GroupRules {
    let prefix = p
        .groups
        .prefix
        .clone()
        .unwrap_or_else(|| format!("{}:", p.id));
    if prefix.is_empty() {
        r.warn(
            format!("{path}.groups.prefix"),
            "an empty prefix passes upstream group names through unchanged: anyone who can name a group upstream (a GitHub team) can claim any group here",
        );
    }
    let filter = match &p.groups.filter {
        Some(re) => match regex::Regex::new(re) {
            Ok(re) => Some(re),
            Err(e) => {
                r.error(
                    format!("{path}.groups.filter"),
                    format!("not a regular expression: {e}"),
                );
                None
            }
        },
        None => None,
    };
    GroupRules {
        prefix,
        filter,
        add: p.groups.add.clone(),
    }
}

/// The ID token algorithms accepted: asymmetric only, never `none` or HS*.
fn check_algorithms(p: &ProviderEntry, path: &str, r: &mut Report) -> Vec<String> {
    let Some(list) = &p.id_token_algorithms else {
        return DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect();
    };
    if list.is_empty() {
        r.error(
            format!("{path}.id_token_algorithms"),
            "must list at least one algorithm",
        );
    }
    for (j, alg) in list.iter().enumerate() {
        if !ALLOWED_ALGORITHMS.contains(&alg.as_str()) {
            r.error(
                format!("{path}.id_token_algorithms[{j}]"),
                format!(
                    "{alg:?} is not accepted: only asymmetric signatures ({}), never none or HS*",
                    ALLOWED_ALGORITHMS.join(", ")
                ),
            );
        }
    }
    list.clone()
}

/// What a refresh owes the provider: a cap from the upstream login (12h by default),
/// or a revalidation every so often (1h by default); each mode's own field only.
fn check_refresh(p: &ProviderEntry, path: &str, r: &mut Report) -> RefreshPolicy {
    let refresh_path = format!("{path}.refresh");
    match p.refresh.mode {
        RefreshMode::Cap => {
            if p.refresh.every.is_some() {
                r.error(
                    format!("{refresh_path}.every"),
                    "only mode = \"revalidate\" has it",
                );
            }
            RefreshPolicy::Cap(duration(
                p.refresh.max_age.as_deref(),
                "12h",
                &format!("{refresh_path}.max_age"),
                r,
            ))
        }
        RefreshMode::Revalidate => {
            if p.refresh.max_age.is_some() {
                r.error(
                    format!("{refresh_path}.max_age"),
                    "only mode = \"cap\" has it",
                );
            }
            RefreshPolicy::Revalidate(duration(
                p.refresh.every.as_deref(),
                "1h",
                &format!("{refresh_path}.every"),
                r,
            ))
        }
    }
}

/// Reads a secret given as `value` (`${env:NAME}`, or a literal, warned about) or as a
/// file `file` (trailing newline trimmed); exactly one of them.
pub(super) fn read_secret(
    value: Option<&str>,
    file: Option<&str>,
    value_field: &str,
    file_field: &str,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Option<String> {
    let secret = match (value, file) {
        (Some(_), Some(_)) => {
            r.error(
                file_field,
                "give one of the secret and the secret file, not both",
            );
            return None;
        }
        (None, None) => {
            r.error(value_field, "needs \"${env:NAME}\" (or the _file form)");
            return None;
        }
        (Some(value), None) => {
            match parse_env_ref(value) {
                EnvRef::Name(name) if sources.is_offline() => crate::load::offline::value(name),
                EnvRef::Name(name) => match std::env::var(name) {
                    Ok(v) => {
                        sources.note(name.as_bytes(), v.as_bytes());
                        v
                    }
                    Err(_) => {
                        r.error(
                            value_field,
                            format!("environment variable {name} is not set"),
                        );
                        return None;
                    }
                },
                EnvRef::Malformed => {
                    r.error(value_field, "malformed reference; write \"${env:NAME}\"");
                    return None;
                }
                EnvRef::Literal => {
                    r.warn(value_field, "a literal secret in the config file; use \"${env:NAME}\" or the _file form");
                    value.to_owned()
                }
            }
        }
        (None, Some(name)) => {
            let full = base_dir.join(name);
            if sources.is_offline() {
                return Some(crate::load::offline::value(&full.to_string_lossy()));
            }
            match sources.read(&full) {
                Ok(text) => text.trim_end_matches(['\n', '\r']).to_owned(),
                Err(e) => {
                    r.error(file_field, format!("cannot read {}: {e}", full.display()));
                    return None;
                }
            }
        }
    };
    if secret.is_empty() {
        r.error(value_field, "the secret is empty");
        return None;
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use crate::load::check_text;
    use crate::upstream::provider::RefreshPolicy;
    use std::path::Path;
    use std::time::Duration;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$wAAo5/DFEiVnZ8vmHGRgUg$s4AnLZrkvdbf3DYedBaibN1NmuvfqJHnN2UpW7gb+6M";

    fn config(provider: &str, rest: &str) -> String {
        format!(
            "issuer = \"http://127.0.0.1:9\"\n{rest}\n[[providers]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"gh\"\nclient_secret = \"literal\"\n{provider}\n"
        )
    }

    /// The errors (`path: message`) and warnings of a config.
    fn issues(text: &str) -> (Vec<String>, Vec<String>) {
        match check_text(Path::new("/nonexistent/g.toml"), text) {
            Ok(loaded) => (
                vec![],
                loaded
                    .warnings
                    .iter()
                    .map(|d| d.issue.path.clone())
                    .collect(),
            ),
            Err(rejected) => (
                rejected
                    .diagnostics
                    .iter()
                    .filter(|d| d.issue.is_error())
                    .map(|d| format!("{}: {}", d.issue.path, d.issue.message))
                    .collect(),
                vec![],
            ),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        issues(text).0
    }

    #[test]
    fn a_provider_validates_with_its_defaults() {
        let loaded = check_text(
            Path::new("/nonexistent/g.toml"),
            &config(
                "accept = \"rules\"\nallowed_email_domains = [\"Corp.com\"]",
                "",
            ),
        )
        .unwrap_or_else(|r| panic!("{r}"));
        let p = &loaded.config.providers[0];
        assert_eq!(p.groups.prefix, "corp:");
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert_eq!(p.rules.allowed_email_domains, ["corp.com"]);
        assert_eq!(
            p.refresh,
            RefreshPolicy::Cap(Duration::from_secs(12 * 3600))
        );
        assert!(!p.algorithms.iter().any(|a| a.starts_with("HS")));
    }

    #[test]
    fn accept_is_required() {
        let text = config("", "");
        let e = errors(&text);
        assert!(e.iter().any(|e| e.contains("accept")), "{e:?}");
    }

    #[test]
    fn bad_providers_are_refused_with_their_field() {
        for (provider, field) in [
            (
                "accept = \"linked\"\nid_token_algorithms = [\"none\"]",
                "providers[0].id_token_algorithms[0]",
            ),
            (
                "accept = \"linked\"\nid_token_algorithms = [\"HS256\"]",
                "providers[0].id_token_algorithms[0]",
            ),
            (
                "accept = \"linked\"\ngroups = { filter = \"(\" }",
                "providers[0].groups.filter",
            ),
            (
                "accept = \"linked\"\nrefresh = { mode = \"revalidate\", every = \"1h\" }",
                "federation.token_key",
            ),
            (
                "accept = \"linked\"\nrefresh = { mode = \"cap\", every = \"1h\" }",
                "providers[0].refresh.every",
            ),
            (
                "accept = \"linked\"\napi_url = \"https://api.example.com\"",
                "providers[0].api_url",
            ),
        ] {
            let e = errors(&config(provider, ""));
            assert!(e.iter().any(|e| e.starts_with(field)), "{provider}: {e:?}");
        }
        let bad_id = config("accept = \"linked\"", "").replace("id = \"corp\"", "id = \"Corp_1\"");
        assert!(
            errors(&bad_id)
                .iter()
                .any(|e| e.starts_with("providers[0].id"))
        );
        let http = config("accept = \"linked\"", "")
            .replace("https://idp.example.com", "http://idp.example.com");
        assert!(
            errors(&http)
                .iter()
                .any(|e| e.starts_with("providers[0].issuer"))
        );
        let loopback = config("accept = \"linked\"", "")
            .replace("https://idp.example.com", "http://127.0.0.1:7000");
        assert!(errors(&loopback).is_empty());
    }

    #[test]
    fn links_users_and_clients() {
        let users = format!(
            "[[users]]\nusername = \"alice\"\nlinks = [{{ provider = \"corp\", subject = \"a1\" }}]\n[[users]]\nusername = \"bob\"\npassword_hash = \"{HASH}\"\nlinks = [{{ provider = \"corp\", subject = \"a1\" }}, {{ provider = \"nope\", subject = \"b\" }}]\n[[users]]\nusername = \"carol\"\n[[users]]\nid = \"corp:x\"\nusername = \"dave\"\npassword_hash = \"{HASH}\"\n[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [\"https://web.example.com/cb\"]\nproviders = [\"corp\", \"missing\"]\n"
        );
        let e = errors(&config("accept = \"linked\"", &users));
        for field in [
            "users[1].links[0].subject: \"a1\" at \"corp\" is linked to another user",
            "users[1].links[1].provider",
            "users[2].password_hash",
            "users[3].id: \"corp:x\" has the form",
            "clients[0].providers[1]",
        ] {
            assert!(e.iter().any(|e| e.starts_with(field)), "{field}: {e:?}");
        }
        assert!(!e.iter().any(|e| e.starts_with("users[0]")), "{e:?}");
    }

    #[test]
    fn an_empty_prefix_and_rule_mismatches_warn() {
        let (e, w) = issues(&config(
            "accept = \"rules\"\ngroups = { prefix = \"\" }",
            "",
        ));
        assert!(e.is_empty(), "{e:?}");
        assert!(
            w.contains(&"providers[0].groups.prefix".to_owned()),
            "{w:?}"
        );
        assert!(w.contains(&"providers[0].accept".to_owned()), "{w:?}");
    }
}
