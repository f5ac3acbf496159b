//! How a stored record keeps a random id (`crypto::random_id`: a refresh family, a
//! session's `sid`, an access token's `jti`): in a binary format (MessagePack, what the
//! stores write) as the 16 bytes it encodes, 18 bytes with their header where its
//! 22 characters of base64url took 23; any other string, and in a human-readable format
//! (JSON), as the string. Reading takes either, so a record written before keeps
//! decoding. Used with `#[serde(with = "id_bytes")]` (a `String`) and
//! `#[serde(with = "id_bytes::option")]` (an `Option<String>`); the field's place in the
//! record does not change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::{Error, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// The 16 bytes `id` encodes, when it is exactly the canonical base64url of 16 bytes
/// (so that writing the bytes back as base64url gives `id` again).
fn packed(id: &str) -> Option<[u8; 16]> {
    if id.len() != 22 {
        return None;
    }
    let mut out = [0; 16];
    match B64.decode_slice(id, &mut out) {
        Ok(16) => Some(out),
        _ => None,
    }
}

/// Writes `id` as its 16 bytes where it can, else as the string.
pub(crate) fn serialize<S: Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    match packed(id) {
        Some(bytes) if !s.is_human_readable() => s.serialize_bytes(&bytes),
        _ => s.serialize_str(id),
    }
}

/// Reads an id written either way.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(IdVisitor)
}

/// Takes a string as it is, and 16 bytes as the base64url id they are.
struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id: a string, or the 16 bytes of a random one")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<String, E> {
        if v.len() != 16 {
            return Err(E::invalid_length(v.len(), &self));
        }
        Ok(B64.encode(v))
    }
}

/// The same for an `Option<String>`.
pub(crate) mod option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `Some` id as [`super::serialize`] does.
    pub(crate) fn serialize<S: Serializer>(id: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_some(&super::Packed(id)),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional id written either way.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<super::Unpacked>::deserialize(d)?.map(|u| u.0))
    }

    impl Serialize for super::Packed<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::serialize(self.0, s)
        }
    }

    impl<'de> Deserialize<'de> for super::Unpacked {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::deserialize(d).map(super::Unpacked)
        }
    }
}

/// An id to write as [`serialize`] does (inside an `Option`).
struct Packed<'a>(&'a str);

/// An id read as [`deserialize`] does (inside an `Option`).
struct Unpacked(String);

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "super")]
        id: String,
        #[serde(with = "super::option")]
        sid: Option<String>,
    }

    /// The same record as written before ids were packed.
    #[derive(Serialize)]
    struct Before {
        id: String,
        sid: Option<String>,
    }

    fn record(id: &str, sid: Option<&str>) -> Record {
        Record {
            id: id.into(),
            sid: sid.map(Into::into),
        }
    }

    #[test]
    fn a_random_id_is_kept_as_its_sixteen_bytes_and_reads_back() {
        let id = crate::crypto::random_id().expect("rng");
        let sid = crate::crypto::random_id().expect("rng");
        let r = record(&id, Some(&sid));
        let bytes = rmp_serde::to_vec(&r).expect("encode");
        let before = rmp_serde::to_vec(&Before {
            id: id.clone(),
            sid: Some(sid.clone()),
        })
        .expect("encode");
        assert_eq!(bytes.len() + 10, before.len(), "5 bytes fewer an id");
        assert_eq!(rmp_serde::from_slice::<Record>(&bytes).expect("decode"), r);
        assert_eq!(rmp_serde::from_slice::<Record>(&before).expect("decode"), r);
    }

    #[test]
    fn any_other_string_is_kept_as_it_is() {
        // Not 22 characters, not base64url, and a non-canonical last character (its
        // low bits set: it would not encode back to itself).
        for id in [
            "",
            "fam",
            "a space in it 22 chars",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "ç",
        ] {
            let r = record(id, Some(id));
            let bytes = rmp_serde::to_vec(&r).expect("encode");
            assert_eq!(rmp_serde::from_slice::<Record>(&bytes).expect("decode"), r);
            let json = serde_json::to_string(&r).expect("json");
            assert_eq!(serde_json::from_str::<Record>(&json).expect("json"), r);
        }
        let r = record("AAAAAAAAAAAAAAAAAAAAAA", None);
        assert_eq!(
            rmp_serde::from_slice::<Record>(&rmp_serde::to_vec(&r).expect("encode"))
                .expect("decode"),
            r
        );
    }

    #[test]
    fn json_keeps_the_string() {
        let id = crate::crypto::random_id().expect("rng");
        let json = serde_json::to_string(&record(&id, None)).expect("json");
        assert_eq!(json, format!(r#"{{"id":"{id}","sid":null}}"#));
    }

    /// `raw` with `id`'s 16 bytes (`bin 8`, 16) written as its string (`fixstr`, 22):
    /// how a record stored before ids were packed has it.
    fn as_string_before(raw: &[u8], id: &str) -> Vec<u8> {
        let mut bin = vec![0xc4, 16];
        bin.extend_from_slice(&super::packed(id).expect("a random id"));
        let mut text = vec![0xb6];
        text.extend_from_slice(id.as_bytes());
        let at = raw
            .windows(bin.len())
            .position(|w| w == bin)
            .expect("the id is there as bytes");
        [&raw[..at], &text[..], &raw[at + bin.len()..]].concat()
    }

    #[test]
    fn a_refresh_grant_stored_with_string_ids_still_decodes() {
        use crate::store::RefreshGrant;
        let (family, sid) = (
            crate::crypto::random_id().expect("rng"),
            crate::crypto::random_id().expect("rng"),
        );
        let mut grant = crate::store::conformance::refresh_grant("f1");
        grant.family.clone_from(&family);
        grant.origin.sid = Some(sid.clone());
        let packed = rmp_serde::to_vec(&grant).expect("encode");
        let before = as_string_before(&as_string_before(&packed, &family), &sid);
        assert_eq!(before.len(), packed.len() + 10);
        for raw in [packed, before] {
            let back: RefreshGrant = rmp_serde::from_slice(&raw).expect("decode");
            assert_eq!(
                (back.family, back.origin.sid),
                (family.clone(), Some(sid.clone()))
            );
        }
    }

    #[test]
    fn bytes_of_another_length_are_refused() {
        #[derive(Serialize)]
        struct Odd {
            #[serde(with = "serde_bytes_like")]
            id: Vec<u8>,
            sid: Option<String>,
        }
        mod serde_bytes_like {
            pub(super) fn serialize<S: serde::Serializer>(
                v: &[u8],
                s: S,
            ) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(v)
            }
        }
        let bytes = rmp_serde::to_vec(&Odd {
            id: vec![1; 15],
            sid: None,
        })
        .expect("encode");
        assert!(rmp_serde::from_slice::<Record>(&bytes).is_err());
    }
}
