//! Upstream tokens kept at rest: AES-256-GCM under `[federation] token_key`, a random
//! 96-bit nonce per seal, and the provider and upstream subject as associated data, so
//! a sealed token cannot be moved to another user or provider. The sealed form is
//! base64url(nonce || ciphertext || tag).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Why a token could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error("the token key must be 32 bytes, base64")]
    BadKey,
    #[error("no random nonce could be made")]
    Random,
    #[error("the sealed token does not open under this key")]
    Open,
}

/// The key upstream tokens are sealed with, and its fingerprint (for `gatehouse diff`:
/// a domain-separated SHA-256 of the key, which does not reveal it).
pub struct TokenKey(LessSafeKey, [u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl PartialEq for TokenKey {
    /// Keys are never compared by value; two configs' keys count as different.
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

fn aad(provider: &str, subject: &str) -> Vec<u8> {
    [
        b"gatehouse upstream token v1\0",
        provider.as_bytes(),
        b"\0",
        subject.as_bytes(),
    ]
    .concat()
}

impl TokenKey {
    /// The key from its base64 text (standard or URL-safe alphabet, padded or not).
    pub(crate) fn from_base64(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .or_else(|_| B64.decode(text.trim_end_matches('=')))
            .map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadKey)?;
        let fingerprint =
            crate::crypto::sha256(&[b"gatehouse token key\0".as_slice(), &bytes].concat());
        Ok(Self(LessSafeKey::new(key), fingerprint))
    }

    /// A fingerprint of the key: equal for the same key, never the key.
    pub(crate) fn fingerprint(&self) -> &[u8; 32] {
        &self.1
    }

    /// Seals `token` for `subject` at `provider`.
    pub(crate) fn seal(
        &self,
        provider: &str,
        subject: &str,
        token: &str,
    ) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut data = token.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(provider, subject)),
                &mut data,
            )
            .map_err(|_| SealError::Random)?;
        Ok(B64.encode([nonce.as_slice(), &data].concat()))
    }

    /// Opens what `seal` made for the same provider and subject.
    pub(crate) fn open(
        &self,
        provider: &str,
        subject: &str,
        sealed: &str,
    ) -> Result<String, SealError> {
        let bytes = B64.decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut data = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad(provider, subject)), &mut data)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use crate::upstream::seal::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn seals_open_only_for_their_user_and_key() {
        let key = TokenKey::from_base64(KEY).expect("key");
        let sealed = key.seal("corp", "u1", "refresh-123").expect("seal");
        assert!(!sealed.contains("refresh-123"));
        assert_eq!(
            key.open("corp", "u1", &sealed).expect("open"),
            "refresh-123"
        );
        assert!(key.open("corp", "u2", &sealed).is_err());
        assert!(key.open("other", "u1", &sealed).is_err());
        let other = TokenKey::from_base64(&B64.encode([7u8; 32])).expect("key");
        assert!(other.open("corp", "u1", &sealed).is_err());
        assert_ne!(sealed, key.seal("corp", "u1", "refresh-123").expect("seal"));
    }

    #[test]
    fn keys_are_32_bytes() {
        assert!(TokenKey::from_base64("c2hvcnQ=").is_err());
        assert!(TokenKey::from_base64("not base64!").is_err());
    }
}
