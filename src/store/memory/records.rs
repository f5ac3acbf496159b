//! The memory store's entries as bytes ([`Record`], named by [`Kind`]): what the file
//! store (`store::file`) persists after each change and reads back at start.

use super::entry::{Entry, Millis};
use crate::store::{Key, StoreError};
use dashmap::DashMap;

/// A kind of entry the memory store keeps: how the file store (`store::file`) names
/// the entry it persists after each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Code = b'c',
    Refresh = b'r',
    Family = b'f',
    Jti = b'j',
    NotBefore = b'b',
    Session = b's',
    Pending = b'p',
    Failure = b'n',
    Device = b'd',
    UserCode = b'u',
    Secret = b'k',
    Remembered = b'o',
    /// One member of a session index: its id is [`index_member_id`]'s.
    IndexMember = b'x',
}

impl Kind {
    /// Every kind, for reading them back.
    pub(crate) const ALL: [Kind; 13] = [
        Kind::Code,
        Kind::Refresh,
        Kind::Family,
        Kind::Jti,
        Kind::NotBefore,
        Kind::Session,
        Kind::Pending,
        Kind::Failure,
        Kind::Device,
        Kind::UserCode,
        Kind::Secret,
        Kind::Remembered,
        Kind::IndexMember,
    ];

    /// The kind whose tag byte is `tag`.
    pub(crate) fn from_tag(tag: u8) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| *k as u8 == tag)
    }
}

/// One entry as bytes: its expiry on the store's clock ([`NEVER`] for the shared
/// secrets), its used flag, and its value (positional MessagePack, a string's bytes, or
/// a key's 32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) expires: Millis,
    pub(crate) used: bool,
    pub(crate) payload: Vec<u8>,
}

/// The expiry of what never expires (the shared secrets).
pub(crate) const NEVER: Millis = u64::MAX;

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(value).map_err(|e| StoreError(format!("encoding a stored value: {e}")))
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(payload)
        .map_err(|e| StoreError(format!("a stored value does not decode: {e}")))
}

/// The id of the member `sid` of the session index `name`: the name's length (4 bytes,
/// big-endian), the name, the sid; no separator either could hold.
pub(crate) fn index_member_id(name: &str, sid: &str) -> Vec<u8> {
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    let mut id = Vec::with_capacity(4 + name.len() + sid.len());
    id.extend_from_slice(&len.to_be_bytes());
    id.extend_from_slice(name.as_bytes());
    id.extend_from_slice(sid.as_bytes());
    id
}

/// The index name and sid of an [`index_member_id`].
pub(super) fn index_member_of(id: &[u8]) -> Result<(String, String), StoreError> {
    let bad = || StoreError("a stored index member does not decode".into());
    let (len, rest) = id.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad())?;
    if rest.len() < len {
        return Err(bad());
    }
    let (name, sid) = rest.split_at(len);
    Ok((name_of(name)?, name_of(sid)?))
}

pub(super) fn key_of(id: &[u8]) -> Result<Key, StoreError> {
    id.try_into()
        .map_err(|_| StoreError("a stored key is not 32 bytes".into()))
}

pub(super) fn name_of(id: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(id.to_vec()).map_err(|_| StoreError("a stored name is not UTF-8".into()))
}

/// The record of `map[key]`, live or not (`None`: absent).
pub(super) fn export_from<K, Q, T>(
    map: &DashMap<K, Entry<T>>,
    key: &Q,
    encode: impl FnOnce(&T) -> Result<Vec<u8>, StoreError>,
) -> Result<Option<Record>, StoreError>
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
{
    map.get(key)
        .map(|e| {
            Ok(Record {
                expires: e.expires(),
                used: e.used(),
                payload: encode(&e.value)?,
            })
        })
        .transpose()
}

pub(super) fn import_into<K: Eq + std::hash::Hash, T>(
    map: &DashMap<K, Entry<T>>,
    key: K,
    record: &Record,
    value: T,
) {
    map.insert(key, Entry::at(value, record.expires, record.used));
}
