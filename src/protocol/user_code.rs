//! User codes of the device grant (RFC 8628 6.1): 8 characters from 20 consonants
//! (no vowels, so no words; no look-alikes), about 34.6 bits, shown as `XXXX-XXXX` and
//! read back case-insensitively with or without the dash and spaces.

/// The characters a user code is made of.
pub(crate) const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// How many characters a user code has.
pub(crate) const LEN: usize = 8;

/// The user code drawn from `random` bytes, in its canonical form (no dash), or `None`
/// when the bytes did not give enough unbiased characters (each byte below 240 gives
/// one; draw more bytes and try again).
pub(crate) fn from_random(random: &[u8]) -> Option<String> {
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let code: String = random
        .iter()
        .filter(|b| **b < limit)
        .take(LEN)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    (code.len() == LEN).then_some(code)
}

/// `code` (canonical) as the user is shown it: `XXXX-XXXX`.
pub(crate) fn display(code: &str) -> String {
    let (head, tail) = code.split_at(code.len().min(LEN / 2));
    format!("{head}-{tail}")
}

/// What the user typed, in canonical form: upper case, dashes and spaces dropped;
/// `None` unless that is 8 characters of the alphabet.
pub(crate) fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_in_any_case_with_or_without_the_dash() {
        assert_eq!(normalize("wdjb-mjht").as_deref(), Some("WDJBMJHT"));
        assert_eq!(normalize("WDJBMJHT").as_deref(), Some("WDJBMJHT"));
        assert_eq!(normalize(" wdjb mjht ").as_deref(), Some("WDJBMJHT"));
        assert_eq!(
            normalize("WDJB-MJHA"),
            None,
            "a vowel is not in the alphabet"
        );
        assert_eq!(normalize("WDJB-MJH"), None);
        assert_eq!(normalize("WDJB-MJHTT"), None);
        assert_eq!(normalize("ẞDJB-MJHT"), None);
        assert_eq!(display("WDJBMJHT"), "WDJB-MJHT");
    }

    #[test]
    fn drawn_codes_use_the_alphabet_without_bias() {
        assert_eq!(
            from_random(&[0, 1, 2, 3, 19, 20, 239, 40]).as_deref(),
            Some("BCDFZBZB")
        );
        assert_eq!(from_random(&[240, 255, 0, 0, 0, 0, 0, 0]), None);
        let code = from_random(&[250, 0, 1, 2, 3, 4, 5, 6, 7]).expect("enough bytes");
        assert_eq!(code, "BCDFGHJK");
        assert!(normalize(&code).is_some());
    }
}
