//! Authentication context: the RFC 8176 `amr` values a login records and the `acr`
//! (OIDC Core 2) an ID token states from them. gatehouse defines two classes: one
//! factor ([`ACR_PWD`]) and two ([`ACR_MFA`]); docs/protocol.md lists them and
//! discovery advertises them (`acr_values_supported`).

/// `acr` of a login with one factor (a password).
pub(crate) const ACR_PWD: &str = "urn:gatehouse:acr:pwd";

/// `acr` of a login with two factors (a password and a one-time code, or a passkey
/// with user verification).
pub(crate) const ACR_MFA: &str = "urn:gatehouse:acr:mfa";

/// Every `acr` value gatehouse states, weakest first: `acr_values_supported`.
pub(crate) const ACR_VALUES: [&str; 2] = [ACR_PWD, ACR_MFA];

/// RFC 8176 `amr`: a password.
pub(crate) const AMR_PWD: &str = "pwd";
/// RFC 8176 `amr`: a one-time password (TOTP).
pub(crate) const AMR_OTP: &str = "otp";
/// RFC 8176 `amr`: proof of possession of a software-secured key (a passkey: without
/// attestation nothing proves it is held in hardware).
pub(crate) const AMR_SWK: &str = "swk";
/// RFC 8176 `amr`: more than one factor.
pub(crate) const AMR_MFA: &str = "mfa";

/// The `acr` a login whose methods were `amr` reaches: [`ACR_MFA`] with `mfa`,
/// [`ACR_PWD`] with a password alone, none when gatehouse does not know how the user
/// authenticated (a login through an upstream provider, the device grant).
pub(crate) fn acr_of(amr: &[String]) -> Option<&'static str> {
    if amr.iter().any(|m| m == AMR_MFA) {
        Some(ACR_MFA)
    } else if amr.iter().any(|m| m == AMR_PWD) {
        Some(ACR_PWD)
    } else {
        None
    }
}

/// True when the request's `acr_values` (space-separated, in order of preference)
/// names [`ACR_MFA`]. Other values are ignored: `acr_values` is a voluntary request
/// (OIDC Core 3.1.2.1), and the ID token's `acr` says what was done.
pub(crate) fn asks_mfa(acr_values: &str) -> bool {
    acr_values.split(' ').any(|v| v == ACR_MFA)
}

/// The methods of a login after a second factor of method `method` (`otp`): those
/// before, the method, and `mfa`, each once.
pub(crate) fn with_second_factor(amr: &[String], method: &str) -> Vec<String> {
    let mut out: Vec<String> = amr.to_vec();
    for m in [method, AMR_MFA] {
        if !out.iter().any(|x| x == m) {
            out.push(m.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn acr_follows_amr() {
        let cases: [(&[&str], Option<&str>); 5] = [
            (&["pwd"], Some(ACR_PWD)),
            (&["pwd", "otp", "mfa"], Some(ACR_MFA)),
            (&["hwk", "mfa"], Some(ACR_MFA)),
            (&[], None),
            (&["otp"], None),
        ];
        for (amr, acr) in cases {
            assert_eq!(acr_of(&owned(amr)), acr, "{amr:?}");
        }
    }

    #[test]
    fn acr_values_name_mfa_exactly() {
        assert!(asks_mfa(ACR_MFA));
        assert!(asks_mfa(&format!("{ACR_PWD} {ACR_MFA}")));
        assert!(!asks_mfa(ACR_PWD));
        assert!(!asks_mfa(""));
        assert!(!asks_mfa("urn:gatehouse:acr:mfa2 mfa"));
    }

    #[test]
    fn a_second_factor_adds_its_method_and_mfa_once() {
        assert_eq!(
            with_second_factor(&owned(&["pwd"]), AMR_OTP),
            owned(&["pwd", "otp", "mfa"])
        );
        assert_eq!(
            with_second_factor(&owned(&["pwd", "otp", "mfa"]), AMR_OTP),
            owned(&["pwd", "otp", "mfa"])
        );
    }
}
