//! Who an upstream identity becomes, as pure functions: the claims read through the
//! provider's mapping, a linked user becoming the static user, and for
//! `accept = "rules"` the email-domain, group and claim rules, with upstream groups
//! prefixed (dex#918: an upstream team named `system:masters` must not become one).

use crate::config::file::Accept;
use crate::model::{Federation, Identity, IdentitySource, User};
use crate::upstream::provider::{ClaimNames, GroupRules, Provider};
use serde_json::{Map, Value};

/// What the upstream said about the user, read through the provider's claim names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpstreamUser {
    pub(crate) subject: String,
    pub(crate) username: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    /// What the upstream says; absent counts as not verified (dex#1405).
    pub(crate) email_verified: bool,
    /// Group names as the upstream gives them.
    pub(crate) groups: Vec<String>,
    /// The URL of the user's picture, as the upstream gives it.
    pub(crate) picture: Option<String>,
    /// Every claim, for `required_claims`.
    pub(crate) claims: Map<String, Value>,
}

/// Why an upstream identity was refused: the audit event's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("no_subject")]
    NoSubject,
    #[error("not_linked")]
    NotLinked,
    #[error("email_domain")]
    EmailDomain,
    #[error("group")]
    Group,
    #[error("required_claim")]
    RequiredClaim,
}

impl Refusal {
    /// What the user is told, without naming the rule's values.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            Self::NoSubject => "The provider did not say who you are.",
            Self::NotLinked => "This account is not linked to a user here.",
            Self::EmailDomain => "This account's email address is not allowed here.",
            Self::Group | Self::RequiredClaim => "This account is not allowed here.",
        }
    }
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the user out of `claims` (an ID token's, or GitHub's as built by
/// `github`) with the provider's claim `names`.
pub(crate) fn read_claims(
    claims: Map<String, Value>,
    names: &ClaimNames,
) -> Result<UpstreamUser, Refusal> {
    let subject = text(&claims, &names.subject).ok_or(Refusal::NoSubject)?;
    let email_verified = match claims.get(&names.email_verified) {
        Some(Value::Bool(b)) => *b,
        // Some providers send it as a string (Cognito, older Okta).
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let groups = match claims.get(&names.groups) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    Ok(UpstreamUser {
        username: text(&claims, &names.username),
        name: text(&claims, &names.name),
        email: text(&claims, &names.email),
        email_verified,
        groups,
        picture: text(&claims, &names.picture),
        subject,
        claims,
    })
}

/// The upstream groups as gatehouse groups: those the filter keeps, prefixed, then the
/// groups to add.
pub(crate) fn map_groups(rules: &GroupRules, upstream: &[String]) -> Vec<String> {
    let mut out: Vec<String> = upstream
        .iter()
        .filter(|g| {
            rules.filter.as_ref().is_none_or(|re| {
                re.find(g)
                    .is_some_and(|m| m.start() == 0 && m.end() == g.len())
            })
        })
        .map(|g| format!("{}{g}", rules.prefix))
        .collect();
    for g in &rules.add {
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    out
}

/// The domain of an email address, lowercase.
fn domain(email: &str) -> Option<String> {
    let (_, d) = email.rsplit_once('@')?;
    (!d.is_empty()).then(|| d.to_ascii_lowercase())
}

/// Whether `user` passes `provider`'s rules (`accept = "rules"`).
pub(crate) fn check_rules(provider: &Provider, user: &UpstreamUser) -> Result<(), Refusal> {
    let rules = &provider.rules;
    if !rules.allowed_email_domains.is_empty() {
        let trusted = user.email_verified || rules.trust_email;
        let allowed = user
            .email
            .as_deref()
            .filter(|_| trusted)
            .and_then(domain)
            .is_some_and(|d| rules.allowed_email_domains.contains(&d));
        if !allowed {
            return Err(Refusal::EmailDomain);
        }
    }
    if !rules.allowed_groups.is_empty()
        && !user.groups.iter().any(|g| rules.allowed_groups.contains(g))
    {
        return Err(Refusal::Group);
    }
    for (claim, want) in &rules.required_claims {
        let has = match user.claims.get(claim) {
            Some(Value::String(s)) => s == want,
            Some(Value::Bool(b)) => b.to_string() == *want,
            Some(Value::Number(n)) => n.to_string() == *want,
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(want)),
            _ => false,
        };
        if !has {
            return Err(Refusal::RequiredClaim);
        }
    }
    Ok(())
}

/// Who `user` becomes: `linked` (the `[[users]]` entry linked to this upstream
/// subject, if any) as that static user; otherwise, with `accept = "rules"` and the
/// rules passed, `"<provider>:<subject>"` with prefixed groups. `federation` is the
/// record the identity carries.
pub(crate) fn admit(
    provider: &Provider,
    linked: Option<&User>,
    user: &UpstreamUser,
    federation: Federation,
) -> Result<Identity, Refusal> {
    if let Some(local) = linked {
        let mut identity = local.identity();
        identity.upstream = Some(Box::new(federation));
        return Ok(identity);
    }
    if provider.accept == Accept::Linked {
        return Err(Refusal::NotLinked);
    }
    check_rules(provider, user)?;
    Ok(Identity {
        source: IdentitySource::Upstream,
        subject: provider.subject_of(&user.subject),
        username: user
            .username
            .clone()
            .unwrap_or_else(|| user.subject.clone()),
        name: user.name.clone(),
        email: user.email.clone(),
        email_verified: user.email.is_some() && (user.email_verified || provider.rules.trust_email),
        groups: map_groups(&provider.groups, &user.groups),
        upstream: Some(Box::new(federation)),
        picture: user.picture.clone(),
    })
}

/// A user a provider vouched for, admitted: what the provider said, the `[[users]]`
/// entry linked to them (if any), and who they are here.
pub(crate) struct Admitted<'u> {
    pub(crate) user: UpstreamUser,
    pub(crate) linked: Option<&'u User>,
    pub(crate) identity: Identity,
}

/// The one admission path of an upstream identity, at a login's callback and at a
/// refresh that revalidates: `claims` read with the provider's names, the user
/// `linked` to that subject looked up, then [`admit`] with the record `federation`
/// makes for them.
pub(crate) fn admission<'u>(
    provider: &Provider,
    claims: Map<String, Value>,
    linked: impl FnOnce(&str) -> Option<&'u User>,
    federation: impl FnOnce(&UpstreamUser) -> Federation,
) -> Result<Admitted<'u>, Refusal> {
    let user = read_claims(claims, &provider.claims)?;
    let linked = linked(&user.subject);
    let identity = admit(provider, linked, &user, federation(&user))?;
    Ok(Admitted {
        user,
        linked,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::file::Accept;
    use crate::model::{Federation, IdentitySource, User};
    use crate::upstream::provider::*;
    use crate::upstream::rules::*;
    use serde_json::json;

    fn provider(accept: Accept) -> Provider {
        Provider {
            id: "corp".into(),
            name: "Corp".into(),
            endpoints: Endpoints::Oidc {
                issuer: "https://idp.example.com".into(),
            },
            client_id: "gh".into(),
            client_secret: "s".into(),
            scopes: vec!["openid".into()],
            accept,
            rules: AcceptRules::default(),
            claims: ClaimNames {
                subject: "sub".into(),
                username: "preferred_username".into(),
                name: "name".into(),
                email: "email".into(),
                email_verified: "email_verified".into(),
                groups: "groups".into(),
                picture: "picture".into(),
            },
            groups: GroupRules {
                prefix: "corp:".into(),
                filter: None,
                add: vec![],
            },
            algorithms: vec!["ES256".into()],
            refresh: RefreshPolicy::Cap(std::time::Duration::from_secs(3600)),
        }
    }

    fn user(claims: serde_json::Value) -> UpstreamUser {
        let serde_json::Value::Object(map) = claims else {
            panic!("an object")
        };
        read_claims(map, &provider(Accept::Rules).claims).expect("a subject")
    }

    fn federation() -> Federation {
        Federation {
            provider: "corp".into(),
            subject: "u1".into(),
            login_at: 5,
            checked_at: 5,
            token: None,
        }
    }

    #[test]
    fn claims_are_read_through_the_mapping() {
        let u = user(
            json!({"sub": 42, "email": "A@Corp.com", "email_verified": "true", "groups": "admins"}),
        );
        assert_eq!(u.subject, "42");
        assert!(u.email_verified);
        assert_eq!(u.groups, ["admins"]);
        assert_eq!(u.picture, None, "no picture claim, none");
        let pictured = user(json!({"sub": "1", "picture": "https://p.example.com/1.png"}));
        assert_eq!(
            pictured.picture.as_deref(),
            Some("https://p.example.com/1.png")
        );
        let missing = serde_json::Map::new();
        assert_eq!(
            read_claims(missing, &provider(Accept::Rules).claims),
            Err(Refusal::NoSubject)
        );
    }

    #[test]
    fn groups_are_filtered_prefixed_and_added() {
        let mut rules = provider(Accept::Rules).groups;
        let upstream = vec!["system:masters".to_owned(), "dev".into(), "devops".into()];
        assert_eq!(
            map_groups(&rules, &upstream),
            ["corp:system:masters", "corp:dev", "corp:devops"]
        );
        rules.filter = Some(regex::Regex::new("dev").expect("regex"));
        rules.add = vec!["staff".into()];
        assert_eq!(map_groups(&rules, &upstream), ["corp:dev", "staff"]);
    }

    #[test]
    fn email_domains_need_a_verified_email_unless_trusted() {
        let mut p = provider(Accept::Rules);
        p.rules.allowed_email_domains = vec!["corp.com".into()];
        let verified = user(json!({"sub": "1", "email": "a@CORP.com", "email_verified": true}));
        let unverified = user(json!({"sub": "1", "email": "a@corp.com"}));
        let elsewhere = user(json!({"sub": "1", "email": "a@evil.com", "email_verified": true}));
        let suffix = user(json!({"sub": "1", "email": "a@evilcorp.com", "email_verified": true}));
        assert_eq!(check_rules(&p, &verified), Ok(()));
        assert_eq!(check_rules(&p, &unverified), Err(Refusal::EmailDomain));
        assert_eq!(check_rules(&p, &elsewhere), Err(Refusal::EmailDomain));
        assert_eq!(check_rules(&p, &suffix), Err(Refusal::EmailDomain));
        p.rules.trust_email = true;
        assert_eq!(check_rules(&p, &unverified), Ok(()));
    }

    #[test]
    fn groups_and_claims_rules() {
        let mut p = provider(Accept::Rules);
        p.rules.allowed_groups = vec!["staff".into()];
        p.rules
            .required_claims
            .insert("tid".into(), "tenant-1".into());
        let good = user(json!({"sub": "1", "groups": ["staff"], "tid": "tenant-1"}));
        let other_tenant = user(json!({"sub": "1", "groups": ["staff"], "tid": "tenant-2"}));
        let no_group = user(json!({"sub": "1", "groups": ["guests"], "tid": "tenant-1"}));
        assert_eq!(check_rules(&p, &good), Ok(()));
        assert_eq!(check_rules(&p, &other_tenant), Err(Refusal::RequiredClaim));
        assert_eq!(check_rules(&p, &no_group), Err(Refusal::Group));
    }

    #[test]
    fn linked_users_become_the_static_user_and_linked_mode_refuses_others() {
        let local = User {
            id: "u-alice".into(),
            username: "alice".into(),
            password_hash: None,
            email: None,
            email_verified: false,
            name: None,
            groups: vec!["admins".into()],
            links: vec![("corp".into(), "u1".into())],
            tokens_not_before: None,
            totp: None,
            passkeys: vec![],
        };
        let u = user(json!({"sub": "u1", "groups": ["x"]}));
        let id = admit(&provider(Accept::Linked), Some(&local), &u, federation()).expect("linked");
        assert_eq!(
            (id.source, id.subject.as_str()),
            (IdentitySource::Local, "u-alice")
        );
        assert_eq!(id.groups, ["admins"]);
        assert!(id.upstream.is_some());
        assert_eq!(
            admit(&provider(Accept::Linked), None, &u, federation()),
            Err(Refusal::NotLinked)
        );
        let id = admit(&provider(Accept::Rules), None, &u, federation()).expect("rules");
        assert_eq!(
            (id.source, id.subject.as_str()),
            (IdentitySource::Upstream, "corp:u1")
        );
        assert_eq!(id.groups, ["corp:x"]);
    }
}
