//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits,
//! 30-second steps from T0 = 0, the way every authenticator app reads an `otpauth://`
//! URI. Pure: the secret, the time and the typed code in; the step it matched out.
//! Single use and failure counting are the caller's (the store, `throttle`).

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

/// Seconds per step (RFC 6238 X).
pub const STEP_SECONDS: u64 = 30;

/// Digits of a code.
pub(crate) const DIGITS: u32 = 6;

/// Steps either side of now whose codes are accepted (clock drift, a code typed as
/// the step turns): RFC 6238 5.2 recommends at most one.
pub(crate) const DRIFT_STEPS: u64 = 1;

/// The fewest secret bytes accepted (RFC 4226 4: at least 128 bits, 160 recommended).
pub(crate) const MIN_SECRET_BYTES: usize = 16;

/// The bytes `gatehouse totp new` makes: 160 bits, RFC 4226's recommendation.
pub const NEW_SECRET_BYTES: usize = 20;

/// Why a configured secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not RFC 4648 base32.
    #[error("not base32 (RFC 4648: the letters A-Z and digits 2-7, padding optional)")]
    NotBase32,
    /// Fewer than [`MIN_SECRET_BYTES`] bytes.
    #[error(
        "the secret is {0} bytes; at least {MIN_SECRET_BYTES} (128 bits) are needed (`gatehouse totp new` makes 20)"
    )]
    TooShort(usize),
}

/// A TOTP secret: its bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret written in base32 (case-insensitive, `=` padding optional, spaces
    /// between groups allowed), at least [`MIN_SECRET_BYTES`] long.
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        let mut normal: String = text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        while normal.ends_with('=') {
            normal.pop();
        }
        let bytes = data_encoding::BASE32_NOPAD
            .decode(normal.as_bytes())
            .map_err(|_| SecretError::NotBase32)?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// A secret of these bytes (tests, `gatehouse totp new`).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The secret in base32 without padding, as an `otpauth://` URI carries it.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The code of `step` with `digits` digits (RFC 4226 5.3: dynamic truncation).
    pub fn code_of_step(&self, step: u64, digits: u32) -> u32 {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let mac = hmac::sign(&key, &step.to_be_bytes());
        let mac = mac.as_ref();
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            mac[offset] & 0x7f,
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]);
        binary % 10u32.pow(digits)
    }

    /// The 6-digit code at Unix time `now`, zero-padded.
    #[cfg(test)]
    pub(crate) fn code_at(&self, now: u64) -> String {
        format_code(self.code_of_step(step_of(now), DIGITS))
    }

    /// The step whose code `typed` is, among now's and [`DRIFT_STEPS`] either side;
    /// `None` when it is none of them or is not six digits. Every candidate is
    /// compared, in constant time, whatever matched first.
    pub(crate) fn verify(&self, typed: &str, now: u64) -> Option<u64> {
        let typed = typed.trim();
        if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_of(now);
        let mut matched = None;
        for step in current.saturating_sub(DRIFT_STEPS)..=current + DRIFT_STEPS {
            let expected = format_code(self.code_of_step(step, DIGITS));
            if bool::from(expected.as_bytes().ct_eq(typed.as_bytes())) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }
}

/// The step of Unix time `now` (T0 = 0).
pub fn step_of(now: u64) -> u64 {
    now / STEP_SECONDS
}

/// When a code of `step` stops being accepted (Unix seconds): the end of the last step
/// that still takes it. How long its single use must be remembered.
pub(crate) fn accepted_until(step: u64) -> u64 {
    (step + DRIFT_STEPS + 1) * STEP_SECONDS
}

fn format_code(code: u32) -> String {
    format!("{code:0width$}", width = DIGITS as usize)
}

/// The `otpauth://totp/` URI (Key Uri Format) an authenticator app reads, for
/// `account` at `issuer` (both percent-encoded).
pub fn otpauth_uri(secret: &Secret, issuer: &str, account: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let issuer = utf8_percent_encode(issuer, NON_ALPHANUMERIC).to_string();
    let account = utf8_percent_encode(account, NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        secret.to_base32()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the ASCII secret "12345678901234567890",
    /// eight digits.
    #[test]
    fn rfc_6238_appendix_b_sha1() {
        let secret = Secret::from_bytes(b"12345678901234567890");
        let vectors = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (time, code) in vectors {
            assert_eq!(secret.code_of_step(step_of(time), 8), code, "T = {time}");
            // Six digits are the last six of the eight.
            assert_eq!(
                secret.code_at(time),
                format!("{:06}", code % 1_000_000),
                "T = {time}"
            );
        }
    }

    #[test]
    fn the_steps_either_side_are_accepted_and_no_further() {
        let secret = Secret::from_bytes(b"12345678901234567890");
        let now = 1_111_111_111;
        let step = step_of(now);
        let at = |s: u64| format_code(secret.code_of_step(s, DIGITS));
        assert_eq!(secret.verify(&at(step), now), Some(step));
        assert_eq!(secret.verify(&at(step - 1), now), Some(step - 1));
        assert_eq!(secret.verify(&at(step + 1), now), Some(step + 1));
        assert_eq!(secret.verify(&at(step - 2), now), None);
        assert_eq!(secret.verify(&at(step + 2), now), None);
        assert_eq!(secret.verify(&format!(" {} ", at(step)), now), Some(step));
        for bad in ["", "12345", "1234567", "abcdef", "12 456", "+12345"] {
            assert_eq!(secret.verify(bad, now), None, "{bad:?}");
        }
        assert_eq!(accepted_until(step), (step + 2) * STEP_SECONDS);
    }

    #[test]
    fn secrets_are_base32_of_at_least_128_bits() {
        let twenty = Secret::from_bytes(b"12345678901234567890");
        let text = twenty.to_base32();
        assert_eq!(text, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let cases = [
            (text.clone(), Ok(twenty.clone())),
            (text.to_lowercase(), Ok(twenty.clone())),
            (
                "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ".to_owned(),
                Ok(twenty.clone()),
            ),
            // 16 bytes: 26 characters, padded to 32.
            (
                format!("{}======", Secret::from_bytes(&[7; 16]).to_base32()),
                Ok(Secret::from_bytes(&[7; 16])),
            ),
            (
                Secret::from_bytes(&[7; 15]).to_base32(),
                Err(SecretError::TooShort(15)),
            ),
            (
                "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ".to_owned(),
                Err(SecretError::NotBase32),
            ),
            ("not base32 at all!".to_owned(), Err(SecretError::NotBase32)),
            (String::new(), Err(SecretError::TooShort(0))),
        ];
        for (text, expect) in cases {
            assert_eq!(Secret::from_base32(&text), expect, "{text:?}");
        }
        assert_eq!(format!("{twenty:?}"), "Secret(..)");
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let secret = Secret::from_bytes(b"12345678901234567890");
        assert_eq!(
            otpauth_uri(&secret, "Example Co", "alice"),
            "otpauth://totp/Example%20Co:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }
}
