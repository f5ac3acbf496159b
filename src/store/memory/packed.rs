//! The memory store's refresh grants, packed: the store's bulk, laid out small.

use crate::model::{CredentialId, Identity, IdentitySource};
use crate::store::{Origin, RefreshGrant};

/// A refresh grant as the memory store keeps it: its strings (family, client id,
/// subject, the session's sid, space-joined scopes, space-joined `amr`) in one
/// allocation, the rest inline, the whole boxed so the hash table's free slots stay
/// small. Measured with a million live tokens, each carrying its session as a code
/// flow's does (`cargo bench --bench store_memory`): 434 bytes of RSS per token with
/// the session boxed beside the record, its sid and `amr` allocations of their own;
/// see bench/README.md for this layout's figure.
#[derive(Clone)]
pub(super) struct PackedRefresh {
    text: Box<str>,
    /// Byte lengths of the family, client id, user id, sid and scopes at the front of
    /// `text`; the `amr` values are the rest.
    lens: [u32; 5],
    /// Whether the grant names a session (a sid); the device grant's do not.
    has_sid: bool,
    source: IdentitySource,
    auth_time: u64,
    issued_at: u64,
    expires_at: u64,
    /// When the session (or the grant, without one) began: `Origin::since`.
    since: u64,
    credential: Option<CredentialId>,
    /// Only federated users' grants have it (a pointer's width for the others).
    federated: Option<Box<Identity>>,
    /// The resources the grant named (RFC 8707): usually none, so a thin pointer.
    #[allow(clippy::box_collection)]
    resources: Option<Box<Vec<String>>>,
    /// The DPoP key a public client's token is bound to.
    dpop_jkt: Option<Box<str>>,
}

impl PackedRefresh {
    /// Scope tokens (RFC 6749 3.3) and `amr` values (RFC 8176) hold no space, so each
    /// list is kept space-joined and split back.
    pub(super) fn pack(g: RefreshGrant) -> Self {
        let scopes = g.scopes.join(" ");
        let amr = g.origin.amr.join(" ");
        let sid = g.origin.sid.as_deref().unwrap_or("");
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        let lens = [
            len(&g.family),
            len(&g.client_id),
            len(&g.subject),
            len(sid),
            len(&scopes),
        ];
        let text = [
            g.family.as_str(),
            &g.client_id,
            &g.subject,
            sid,
            &scopes,
            &amr,
        ]
        .concat()
        .into_boxed_str();
        Self {
            text,
            lens,
            has_sid: g.origin.sid.is_some(),
            source: g.source,
            auth_time: g.auth_time,
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            since: g.origin.since,
            credential: g.credential,
            federated: g.federated,
            resources: (!g.resources.is_empty()).then(|| Box::new(g.resources)),
            dpop_jkt: g.dpop_jkt.map(String::into_boxed_str),
        }
    }

    pub(super) fn unpack(&self) -> RefreshGrant {
        let mut rest: &str = &self.text;
        let mut take = |n: u32| {
            let (head, tail) = rest.split_at((n as usize).min(rest.len()));
            rest = tail;
            head
        };
        let family = take(self.lens[0]).to_owned();
        let client_id = take(self.lens[1]).to_owned();
        let subject = take(self.lens[2]).to_owned();
        let sid = take(self.lens[3]);
        let scopes = take(self.lens[4]);
        let words = |list: &str| {
            list.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        RefreshGrant {
            family,
            client_id,
            source: self.source,
            subject,
            scopes: words(scopes),
            auth_time: self.auth_time,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            credential: self.credential,
            federated: self.federated.clone(),
            resources: self.resources.as_deref().cloned().unwrap_or_default(),
            origin: Origin {
                sid: self.has_sid.then(|| sid.to_owned()),
                since: self.since,
                amr: words(rest),
            },
            dpop_jkt: self.dpop_jkt.as_deref().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PackedRefresh;
    use crate::model::IdentitySource;
    use crate::store::{Origin, RefreshGrant};

    fn grant(scopes: &[&str], sid: Option<&str>, amr: &[&str]) -> RefreshGrant {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        RefreshGrant {
            family: "fam".into(),
            client_id: "spa".into(),
            source: IdentitySource::Upstream,
            subject: "corp:alice".into(),
            scopes: owned(scopes),
            auth_time: 1,
            issued_at: 2,
            expires_at: 3,
            credential: Some([7; 16]),
            federated: None,
            resources: vec!["https://api.example.com".into()],
            origin: Origin {
                sid: sid.map(str::to_owned),
                since: 4,
                amr: owned(amr),
            },
            dpop_jkt: Some("jkt".into()),
        }
    }

    #[test]
    fn a_grant_comes_back_as_it_went_in() {
        let cases = [
            grant(&["openid", "offline_access"], Some("sid-1"), &["pwd", "otp"]),
            grant(&[], None, &[]),
            grant(&["openid"], None, &["hwk"]),
            grant(&[], Some("sid-2"), &[]),
        ];
        for g in cases {
            let json = |g: &RefreshGrant| serde_json::to_string(g).expect("json");
            let want = json(&g);
            assert_eq!(json(&PackedRefresh::pack(g).unpack()), want);
        }
    }
}
