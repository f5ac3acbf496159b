//! The memory store's refresh grants, packed: the store's bulk, laid out small.

use crate::model::{CredentialId, Identity, IdentitySource};
use crate::store::{Origin, RefreshGrant};

/// A refresh grant as the memory store keeps it: its strings (family, client id,
/// subject, space-joined scopes) in one allocation, the rest inline, the whole boxed so the
/// hash table's free slots stay small. Measured with a million live tokens
/// (`cargo bench --bench store_memory`): 645 bytes of RSS per token stored inline as
/// `RefreshGrant`, 520 boxed, and this layout below 300.
#[derive(Clone)]
pub(super) struct PackedRefresh {
    text: Box<str>,
    /// Byte lengths of the family, client id and user id at the front of `text`.
    lens: [u32; 3],
    source: IdentitySource,
    auth_time: u64,
    issued_at: u64,
    expires_at: u64,
    credential: Option<CredentialId>,
    /// Only federated users' grants have it (a pointer's width for the others).
    federated: Option<Box<Identity>>,
    /// The resources the grant named (RFC 8707): usually none, so a thin pointer.
    #[allow(clippy::box_collection)]
    resources: Option<Box<Vec<String>>>,
    /// The session the family began in: boxed, a thin pointer.
    origin: Box<Origin>,
    /// The DPoP key a public client's token is bound to.
    dpop_jkt: Option<Box<str>>,
}

impl PackedRefresh {
    pub(super) fn pack(g: RefreshGrant) -> Self {
        let scopes = g.scopes.join(" ");
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        let lens = [len(&g.family), len(&g.client_id), len(&g.subject)];
        let text = [g.family.as_str(), &g.client_id, &g.subject, &scopes]
            .concat()
            .into_boxed_str();
        Self {
            text,
            lens,
            source: g.source,
            auth_time: g.auth_time,
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            credential: g.credential,
            federated: g.federated,
            resources: (!g.resources.is_empty()).then(|| Box::new(g.resources)),
            origin: Box::new(g.origin),
            dpop_jkt: g.dpop_jkt.map(String::into_boxed_str),
        }
    }

    pub(super) fn unpack(&self) -> RefreshGrant {
        let mut rest: &str = &self.text;
        let mut take = |n: u32| {
            let (head, tail) = rest.split_at((n as usize).min(rest.len()));
            rest = tail;
            head.to_owned()
        };
        let family = take(self.lens[0]);
        let client_id = take(self.lens[1]);
        let subject = take(self.lens[2]);
        RefreshGrant {
            family,
            client_id,
            source: self.source,
            subject,
            scopes: rest
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            auth_time: self.auth_time,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            credential: self.credential,
            federated: self.federated.clone(),
            resources: self.resources.as_deref().cloned().unwrap_or_default(),
            origin: (*self.origin).clone(),
            dpop_jkt: self.dpop_jkt.as_deref().map(str::to_owned),
        }
    }
}
