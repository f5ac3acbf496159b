//! The identity seam: the one place that turns a stored identity snapshot back into
//! the user as the serving config knows them. Sessions, codes and refresh grants carry
//! an [`Identity`]; before it is used for a token or a page, `current` brings it up to
//! date (a local user's new name or groups apply at once) and ends it when its source
//! no longer knows the user (a user removed from the config loses its sessions and
//! refresh tokens at the next reload).
//!
//! Sources: `Local` (a `[[users]]` entry, also when signed in through a linked
//! upstream identity: the link must still be in the config) and `Upstream` (someone a
//! provider's rules let in: the provider must still be there and still accept by
//! rules; the claims are the snapshot of the upstream login or its last
//! revalidation).

use crate::config::file::Accept;
use crate::model::{Identity, IdentitySource};
use crate::registry::Registry;

/// The identity as of now, or `None` when its user is gone (removed, unlinked, or its
/// provider removed or no longer accepting it).
pub(crate) fn current(registry: &Registry, identity: &Identity) -> Option<Identity> {
    match (identity.source, &identity.upstream) {
        (IdentitySource::Local, None) => by_subject(registry, identity.source, &identity.subject),
        (IdentitySource::Local, Some(federation)) => {
            let user = registry.linked_user(&federation.provider, &federation.subject)?;
            if user.id != identity.subject {
                return None;
            }
            let mut now = user.identity();
            now.upstream = Some(federation.clone());
            Some(now)
        }
        (IdentitySource::Upstream, federation) => {
            let federation = federation.as_ref()?;
            let provider = registry.provider(&federation.provider)?;
            let still = provider.accept == Accept::Rules
                && identity.subject == provider.subject_of(&federation.subject)
                // Linked since: the static user it is now takes over at the next login.
                && registry
                    .linked_user(&federation.provider, &federation.subject)
                    .is_none();
            still.then(|| identity.clone())
        }
    }
}

/// The identity with `subject` from `source`, as the serving config knows it. For an
/// upstream subject that is only who it is (`sub` and the upstream subject as the
/// username): its claims live in the snapshot `current` is given.
pub(crate) fn by_subject(
    registry: &Registry,
    source: IdentitySource,
    subject: &str,
) -> Option<Identity> {
    match source {
        IdentitySource::Local => registry.user_by_id(subject).map(|u| u.identity()),
        IdentitySource::Upstream => {
            let (id, upstream) = subject.split_once(':')?;
            let provider = registry.provider(id)?;
            (provider.accept == Accept::Rules && registry.linked_user(id, upstream).is_none())
                .then(|| Identity::bare(source, subject.to_owned(), upstream.to_owned()))
        }
    }
}

/// The user an access token's `sub` names: a local user, or one a provider's rules
/// let in (`"<provider id>:..."`, a form `check` keeps local ids out of).
pub(crate) fn by_token_subject(registry: &Registry, subject: &str) -> Option<Identity> {
    by_subject(registry, IdentitySource::Local, subject)
        .or_else(|| by_subject(registry, IdentitySource::Upstream, subject))
}

#[cfg(test)]
mod tests {
    use crate::identity::{by_token_subject, current};
    use crate::load::check_text;
    use crate::model::{Federation, IdentitySource};
    use crate::registry::Registry;
    use crate::upstream::rules::{admit, read_claims};

    fn registry(accept: &str, link: bool) -> Registry {
        let links = if link {
            "links = [{ provider = \"corp\", subject = \"u1\" }]"
        } else {
            "password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0hBjGbGFQ1ZnTgiTvtFVmAyG5mPMVYVC0QPcXkmOqQc\""
        };
        let text = format!(
            "issuer = \"http://127.0.0.1:9\"\n[[providers]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\naccept = \"{accept}\"\n[[users]]\nid = \"u-alice\"\nusername = \"alice\"\n{links}\n"
        );
        let loaded = check_text(std::path::Path::new("/nonexistent/g.toml"), &text)
            .unwrap_or_else(|r| panic!("{r}"));
        Registry::new(loaded.config, 1, std::time::SystemTime::now(), None)
    }

    fn signed_in(registry: &Registry) -> crate::model::Identity {
        let provider = registry.provider("corp").expect("provider");
        let serde_json::Value::Object(claims) = serde_json::json!({"sub": "u1", "groups": ["g"]})
        else {
            panic!("an object")
        };
        let user = read_claims(claims, &provider.claims).expect("claims");
        let federation = Federation {
            provider: "corp".into(),
            subject: "u1".into(),
            login_at: 1,
            checked_at: 1,
            token: None,
        };
        admit(
            provider,
            registry.linked_user("corp", "u1"),
            &user,
            federation,
        )
        .expect("admitted")
    }

    #[test]
    fn a_linked_identity_lasts_as_long_as_its_link() {
        let linked = registry("linked", true);
        let alice = signed_in(&linked);
        assert_eq!(
            (alice.source, alice.subject.as_str()),
            (IdentitySource::Local, "u-alice")
        );
        assert!(current(&linked, &alice).is_some_and(|i| i.upstream.is_some()));
        // The link is removed in a commit: the sessions and families made through it end.
        assert!(current(&registry("linked", false), &alice).is_none());
    }

    #[test]
    fn a_rules_identity_lasts_while_its_provider_accepts_by_rules_and_it_is_unlinked() {
        let rules = registry("rules", false);
        let outsider = signed_in(&rules);
        assert_eq!(outsider.subject, "corp:u1");
        assert_eq!(current(&rules, &outsider).as_ref(), Some(&outsider));
        assert_eq!(
            by_token_subject(&rules, "corp:u1").map(|i| i.source),
            Some(IdentitySource::Upstream)
        );
        assert!(
            current(&registry("linked", false), &outsider).is_none(),
            "accept is linked now"
        );
        assert!(
            current(&registry("rules", true), &outsider).is_none(),
            "linked since: the static user takes over"
        );
        assert!(by_token_subject(&rules, "other:u1").is_none());
    }
}
