//! The memory store's refresh grants, packed: the store's bulk, laid out small.

use super::records::{decode, encode};
use crate::store::{RefreshGrant, StoreError};

/// A refresh grant as the memory store keeps it: one allocation holding the grant as
/// positional MessagePack (the bytes the file store persists for it), so a token costs
/// its table slot and that one block. Measured with a million live tokens, each
/// carrying its session as a code flow's does (`cargo bench --bench store_memory`):
/// 434 bytes of RSS per token as a struct with its strings, its session and the
/// session's sid and `amr` allocated apart; 347 with every string in one allocation
/// beside the struct; 330 as these bytes (a code flow's grant: about 120) in a 64-byte
/// slot, 280 in a 40-byte one, 220 in a block of the bytes' own size (see `pack`).
/// A use decodes them (a few hundred nanoseconds, beside a request's tens of
/// microseconds).
#[derive(Clone)]
pub(super) struct PackedRefresh(Box<[u8]>);

impl PackedRefresh {
    pub(super) fn pack(grant: &RefreshGrant) -> Result<Self, StoreError> {
        // Copied, not `into_boxed_slice`: the encoder's vector grows ahead of its bytes
        // (a code flow's 122-byte grant ends in 192 bytes of capacity), and the
        // allocator shrinks a block in place while the new size is at least half of
        // it, so the slack stayed: 64 bytes of every such token, 96 of one of 136
        // bytes in 256.
        Ok(Self(encode(grant)?.as_slice().into()))
    }

    /// The grant as the file store persists it.
    pub(super) fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(super) fn unpack(&self) -> Result<RefreshGrant, StoreError> {
        decode(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::IdentitySource;
    use crate::store::memory::packed::PackedRefresh;
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
            grant(
                &["openid", "offline_access"],
                Some("sid-1"),
                &["pwd", "otp"],
            ),
            grant(&[], None, &[]),
            grant(&["openid"], None, &["hwk"]),
            grant(&[], Some("sid-2"), &[]),
        ];
        for g in cases {
            let json = |g: &RefreshGrant| serde_json::to_string(g).expect("json");
            let want = json(&g);
            let packed = PackedRefresh::pack(&g).expect("pack");
            assert_eq!(json(&packed.unpack().expect("unpack")), want);
        }
    }

    #[test]
    fn a_packed_grant_takes_the_block_its_bytes_need() {
        // A grant of 136 to 144 bytes: its encoder's vector grew to 256.
        let sized = (0..64)
            .map(|n| {
                let mut g = grant(&["openid", "offline_access"], Some("sid-1"), &["pwd"]);
                g.subject = "u".repeat(n);
                PackedRefresh::pack(&g).expect("pack")
            })
            .find(|p| (136..=144).contains(&p.bytes().len()))
            .expect("a grant of 136 to 144 bytes");
        // SAFETY: the pointer is to a live block of the global allocator (mimalloc, as
        // the library sets it), which is all `mi_usable_size` reads.
        let usable = unsafe { libmimalloc_sys::mi_usable_size(sized.bytes().as_ptr().cast()) };
        assert!(
            usable <= 160,
            "{usable} bytes held for {}",
            sized.bytes().len()
        );
    }
}
