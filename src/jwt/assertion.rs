//! JWTs others sign to authenticate a client (RFC 7521, RFC 7523 2.2, OIDC Core 9):
//! a client's own assertion (`private_key_jwt`) and a workload platform's token used
//! as one (federated credentials). Pure: the caller supplies the keys, the time and,
//! for `jti` single use, the store.
//!
//! The rules: a compact JWS of at most [`MAX_ASSERTION`] bytes, no `crit`, an `alg` of
//! [`Alg::NAMES`] only (never `none` or HS*), `kid` picks the key, or every key that
//! fits the algorithm is tried when there is none. Each refusal is a [`Failed`] naming
//! the check, for the audit line; the client only ever learns `invalid_client`.

use crate::protocol::jwk::{Alg, PublicJwk};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

/// The `client_assertion_type` of a JWT assertion.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest assertion accepted (platform tokens with many claims stay well under it).
pub(crate) const MAX_ASSERTION: usize = 8 * 1024;

/// How far ahead a client assertion's `exp` may be: it is short-lived by design.
pub(crate) const MAX_AHEAD: u64 = 300;

/// Clock skew allowed on a client assertion's `nbf`, `iat` and `exp` horizon.
const LEEWAY: u64 = 5;

/// Clock skew allowed on a platform token's `nbf` and `iat`.
pub(crate) const PLATFORM_LEEWAY: u64 = 60;

/// Longest `jti` accepted.
const MAX_JTI: usize = 256;

/// Which check refused an assertion: named in the audit log, never to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failed {
    #[error("malformed")]
    Malformed,
    #[error("algorithm")]
    Algorithm,
    #[error("unknown_key")]
    UnknownKey,
    #[error("signature")]
    Signature,
    #[error("issuer")]
    Issuer,
    #[error("subject")]
    Subject,
    #[error("audience")]
    Audience,
    #[error("expiry")]
    Expired,
    #[error("expiry_too_far")]
    TooFarAhead,
    #[error("not_yet_valid")]
    NotYetValid,
    #[error("too_old")]
    TooOld,
    #[error("jti")]
    Jti,
    #[error("replayed_jti")]
    Replayed,
    #[error("claims")]
    Claims,
    #[error("keys_unavailable")]
    KeysUnavailable,
}

impl Failed {
    /// The check's name, as the audit line gives it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Issuer => "issuer",
            Self::Subject => "subject",
            Self::Audience => "audience",
            Self::Expired => "expiry",
            Self::TooFarAhead => "expiry_too_far",
            Self::NotYetValid => "not_yet_valid",
            Self::TooOld => "too_old",
            Self::Jti => "jti",
            Self::Replayed => "replayed_jti",
            Self::Claims => "claims",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// A compact JWS taken apart, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Parsed {
    alg: Alg,
    kid: Option<String>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

impl Parsed {
    /// Takes `token` apart; refuses what is not a compact JWS with an accepted `alg`.
    pub(crate) fn new(token: &str) -> Result<Self, Failed> {
        if token.len() > MAX_ASSERTION {
            return Err(Failed::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Failed::Malformed);
        };
        let decode = |part: &str| B64.decode(part).map_err(|_| Failed::Malformed);
        let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| Failed::Malformed)?;
        if header.crit.is_some() {
            return Err(Failed::Malformed);
        }
        let alg = Alg::from_name(&header.alg).ok_or(Failed::Algorithm)?;
        let claims = serde_json::from_slice(&decode(c)?).map_err(|_| Failed::Malformed)?;
        Ok(Self {
            alg,
            kid: header.kid,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: decode(s)?,
        })
    }

    /// The algorithm its header names.
    pub(crate) fn alg(&self) -> Alg {
        self.alg
    }

    /// A string claim, unverified until [`Parsed::verify`] passed.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// True when `keys` holds the key the header's `kid` names (or, without a `kid`,
    /// any key that fits the algorithm): false means the set may be out of date.
    pub(crate) fn has_key_in(&self, keys: &[PublicJwk]) -> bool {
        self.candidates(keys).next().is_some()
    }

    fn candidates<'k>(&self, keys: &'k [PublicJwk]) -> impl Iterator<Item = &'k PublicJwk> {
        let (kid, alg) = (self.kid.clone(), self.alg);
        keys.iter().filter(move |k| match &kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => k.fits(alg),
        })
    }

    /// Checks the signature with the key `kid` names, or each key that fits; the key
    /// that verified it.
    pub(crate) fn verify<'k>(&self, keys: &'k [PublicJwk]) -> Result<&'k PublicJwk, Failed> {
        let mut any = false;
        for key in self.candidates(keys) {
            any = true;
            if !key.fits(self.alg) {
                return Err(Failed::Algorithm);
            }
            if key.verifies(self.alg, self.signing_input.as_bytes(), &self.signature) {
                return Ok(key);
            }
        }
        Err(if any {
            Failed::Signature
        } else {
            Failed::UnknownKey
        })
    }

    fn number(&self, name: &str) -> Result<Option<u64>, Failed> {
        match self.claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(Failed::Claims),
        }
    }

    /// `nbf` and `iat` not after `now + leeway`.
    fn not_in_future(&self, now: u64, leeway: u64) -> Result<(), Failed> {
        for name in ["nbf", "iat"] {
            if self.number(name)?.is_some_and(|t| t > now + leeway) {
                return Err(Failed::NotYetValid);
            }
        }
        Ok(())
    }
}

/// What a client assertion that passed every check leaves to do: its `jti` is to be
/// remembered until `exp` ([`crate::store::Store::remember_once`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientAssertion {
    pub(crate) jti: String,
    pub(crate) exp: u64,
}

/// True when `aud` (a string, or an array of them) names only `audiences`.
fn audience_only(aud: Option<&Value>, audiences: &[&str]) -> bool {
    let allowed = |v: &Value| v.as_str().is_some_and(|s| audiences.contains(&s));
    match aud {
        Some(Value::String(_)) => aud.is_some_and(allowed),
        Some(Value::Array(many)) => !many.is_empty() && many.iter().all(allowed),
        _ => false,
    }
}

/// FAPI 2.0 5.3.2.1 item 8: a FAPI 2.0 client's assertion names only the issuer, as
/// a string (not the token endpoint, not an array holding the issuer).
pub(crate) fn issuer_as_string(parsed: &Parsed, issuer: &str) -> Result<(), Failed> {
    match parsed.claims.get("aud") {
        Some(Value::String(aud)) if aud == issuer => Ok(()),
        _ => Err(Failed::Audience),
    }
}

/// True when `aud` names `audience` (among others).
fn audience_has(aud: Option<&Value>, audience: &str) -> bool {
    match aud {
        Some(Value::String(one)) => one == audience,
        Some(Value::Array(many)) => many.iter().any(|a| a == audience),
        _ => false,
    }
}

/// The claims of a `private_key_jwt` assertion whose signature verified: `iss` =
/// `sub` = `client_id`; `aud` only among `audiences` (the issuer, the token endpoint);
/// `exp` in the future and at most [`MAX_AHEAD`] ahead; `nbf`/`iat` not in the future;
/// a `jti`.
pub(crate) fn client_claims(
    parsed: &Parsed,
    client_id: &str,
    audiences: &[&str],
    now: u64,
) -> Result<ClientAssertion, Failed> {
    if parsed.text("iss") != Some(client_id) {
        return Err(Failed::Issuer);
    }
    if parsed.text("sub") != Some(client_id) {
        return Err(Failed::Subject);
    }
    if !audience_only(parsed.claims.get("aud"), audiences) {
        return Err(Failed::Audience);
    }
    let exp = parsed.number("exp")?.ok_or(Failed::Expired)?;
    if exp <= now {
        return Err(Failed::Expired);
    }
    if exp > now + MAX_AHEAD + LEEWAY {
        return Err(Failed::TooFarAhead);
    }
    parsed.not_in_future(now, LEEWAY)?;
    let jti = parsed.text("jti").ok_or(Failed::Jti)?;
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err(Failed::Jti);
    }
    Ok(ClientAssertion {
        jti: jti.to_owned(),
        exp,
    })
}

/// What a platform token must show, from a trusted issuer's entry and a client's
/// federated credential.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlatformRules<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    /// Longest `now - iat` accepted.
    pub(crate) max_age: u64,
    pub(crate) subject: &'a str,
    /// Claims that must equal these values.
    pub(crate) claims: &'a [(String, Value)],
}

/// The claims of a platform token whose signature verified, against `rules`: `iss`,
/// `aud` containing the audience, `exp` in the future, `nbf`/`iat` not in the future
/// (60 s leeway), `iat` within the age, `sub` and every listed claim equal. No `jti`
/// rule: a platform token is reusable within its lifetime.
pub(crate) fn platform_claims(
    parsed: &Parsed,
    rules: &PlatformRules<'_>,
    now: u64,
) -> Result<(), Failed> {
    if parsed.text("iss") != Some(rules.issuer) {
        return Err(Failed::Issuer);
    }
    if !audience_has(parsed.claims.get("aud"), rules.audience) {
        return Err(Failed::Audience);
    }
    let exp = parsed.number("exp")?.ok_or(Failed::Expired)?;
    if exp <= now {
        return Err(Failed::Expired);
    }
    parsed.not_in_future(now, PLATFORM_LEEWAY)?;
    let iat = parsed.number("iat")?.ok_or(Failed::TooOld)?;
    if now.saturating_sub(iat) > rules.max_age {
        return Err(Failed::TooOld);
    }
    if parsed.text("sub") != Some(rules.subject) {
        return Err(Failed::Subject);
    }
    if rules
        .claims
        .iter()
        .any(|(name, want)| parsed.claims.get(name) != Some(want))
    {
        return Err(Failed::Claims);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string()),
            B64.encode(b"sig")
        )
    }

    fn claims(extra: &Value) -> Value {
        let mut c = json!({"iss": "c", "sub": "c", "aud": "https://as", "exp": 1100, "jti": "j"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    fn check(extra: Value) -> Result<ClientAssertion, Failed> {
        let t = token(&json!({"alg": "ES256"}), &claims(&extra));
        client_claims(
            &Parsed::new(&t)?,
            "c",
            &["https://as", "https://as/token"],
            1000,
        )
    }

    #[test]
    fn algorithms_outside_the_list_are_refused() {
        for alg in ["none", "HS256", "RS512", ""] {
            let t = token(&json!({"alg": alg}), &claims(&json!({})));
            assert_eq!(Parsed::new(&t).err(), Some(Failed::Algorithm), "{alg}");
        }
        let t = token(&json!({"alg": "ES256", "crit": ["x"]}), &claims(&json!({})));
        assert_eq!(Parsed::new(&t).err(), Some(Failed::Malformed));
    }

    #[test]
    fn client_assertion_rules() {
        assert!(check(json!({})).is_ok());
        assert!(check(json!({"aud": ["https://as", "https://as/token"]})).is_ok());
        assert_eq!(
            check(json!({"aud": ["https://as", "x"]})),
            Err(Failed::Audience)
        );
        assert_eq!(check(json!({"aud": []})), Err(Failed::Audience));
        assert_eq!(
            check(json!({"aud": "https://other"})),
            Err(Failed::Audience)
        );
        assert_eq!(check(json!({"iss": "d"})), Err(Failed::Issuer));
        assert_eq!(check(json!({"sub": "d"})), Err(Failed::Subject));
        assert_eq!(check(json!({"exp": 1000})), Err(Failed::Expired));
        assert_eq!(check(json!({"exp": 1000 + 306})), Err(Failed::TooFarAhead));
        assert_eq!(check(json!({"exp": "1100"})), Err(Failed::Claims));
        assert_eq!(check(json!({"nbf": 1010})), Err(Failed::NotYetValid));
        assert_eq!(check(json!({"jti": ""})), Err(Failed::Jti));
        assert_eq!(check(json!({"jti": 5})), Err(Failed::Jti));
    }

    #[test]
    fn platform_rules() {
        let extra = [("repository_owner".to_owned(), json!("acme"))];
        let rules = PlatformRules {
            issuer: "https://tokens",
            audience: "https://as",
            max_age: 3600,
            subject: "repo:acme/x",
            claims: &extra,
        };
        let base = json!({"iss": "https://tokens", "sub": "repo:acme/x", "aud": ["a", "https://as"],
            "exp": 11000, "iat": 9990, "repository_owner": "acme"});
        let run = |patch: Value| {
            let mut c = base.clone();
            if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
                for (k, v) in p {
                    c.insert(k.clone(), v.clone());
                }
            }
            let t = token(&json!({"alg": "RS256"}), &c);
            platform_claims(&Parsed::new(&t).expect("parses"), &rules, 10000)
        };
        assert_eq!(run(json!({})), Ok(()));
        assert_eq!(run(json!({"iat": 10000 - 3601})), Err(Failed::TooOld));
        assert_eq!(run(json!({"iat": 10061})), Err(Failed::NotYetValid));
        assert_eq!(
            run(json!({"repository_owner": "evil"})),
            Err(Failed::Claims)
        );
        assert_eq!(run(json!({"aud": "a"})), Err(Failed::Audience));
        assert_eq!(run(json!({"sub": "repo:acme/y"})), Err(Failed::Subject));
        assert_eq!(run(json!({"exp": 9999})), Err(Failed::Expired));
    }

    #[test]
    fn a_fapi2_assertion_names_the_issuer_as_a_string_only() {
        let parsed = |aud: Value| {
            Parsed::new(&token(
                &json!({"alg": "ES256"}),
                &claims(&json!({"aud": aud})),
            ))
            .expect("parsed")
        };
        assert_eq!(
            issuer_as_string(&parsed(json!("https://as")), "https://as"),
            Ok(())
        );
        for refused in [
            json!("https://as/token"),
            json!(["https://as"]),
            json!("https://as/"),
            json!(null),
        ] {
            assert_eq!(
                issuer_as_string(&parsed(refused.clone()), "https://as"),
                Err(Failed::Audience),
                "{refused}"
            );
        }
    }
}
