//! PKCE (RFC 7636) with S256 only, as OAuth 2.1 requires of every client.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use subtle::ConstantTimeEq;

/// RFC 7636 4.1: 43 to 128 characters from the unreserved set.
fn is_verifier_syntax(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A code challenge for S256 is the unpadded base64url of a SHA-256: 43 characters.
pub fn is_challenge_syntax(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 challenge of `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    B64.encode(crate::crypto::sha256(verifier.as_bytes()))
}

/// True when `verifier` is well-formed and hashes to `challenge` (compared in constant time).
pub fn verify(verifier: &str, challenge: &str) -> bool {
    is_verifier_syntax(verifier)
        && bool::from(
            challenge_of(verifier)
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        assert!(verify(verifier, challenge));
        assert!(is_challenge_syntax(challenge));
    }

    #[test]
    fn rejects_wrong_or_malformed_verifiers() {
        let challenge = challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            &challenge
        ));
        let short = "a".repeat(42);
        assert!(!verify(&short, &challenge_of(&short)), "too short");
        let long = "a".repeat(129);
        assert!(!verify(&long, &challenge_of(&long)), "too long");
        let bad = format!("{}+", "a".repeat(43));
        assert!(
            !verify(&bad, &challenge_of(&bad)),
            "outside the unreserved set"
        );
        assert!(verify(&"a".repeat(128), &challenge_of(&"a".repeat(128))));
        assert!(!is_challenge_syntax("plain-challenge"));
    }
}
