//! Public JSON Web Keys (RFC 7517) that others sign with: a client's keys
//! (`private_key_jwt`, RFC 7523) and a workload platform's keys. Parsing accepts public
//! keys of the types gatehouse verifies and nothing else: a private member (`d`, `p`,
//! `q`, ...) or a symmetric key is refused, so a key set that would leak a secret into
//! the config is an error rather than a key. Verification is aws-lc-rs, for exactly the
//! algorithms [`Alg`] lists (never `none`, never HS*).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value, json};

/// Members that only a private (or symmetric) key has (RFC 7518 6.2.2, 6.3.2, 6.4.1;
/// RFC 8037 2).
pub(crate) const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Most keys in one key set.
pub(crate) const MAX_KEYS: usize = 32;

/// A JWS algorithm gatehouse accepts on a signature by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
    /// `EdDSA` (RFC 8037) or its RFC 9864 name `Ed25519`: the same signature.
    Ed25519,
    Rs256,
    Ps256,
}

impl Alg {
    /// The names accepted in a JWS header, in the order discovery lists them.
    pub(crate) const NAMES: [&'static str; 6] =
        ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"];

    /// The algorithm a JWS `alg` names, if accepted.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" | "Ed25519" => Self::Ed25519,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            _ => return None,
        })
    }
}

/// The key material of a public key.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// An uncompressed P-256 point (0x04 || x || y).
    P256(Vec<u8>),
    /// An uncompressed P-384 point.
    P384(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
    /// An RSA modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// One public key, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicJwk {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// Its `alg`, if it names one: then only that algorithm verifies with it.
    pub alg: Option<Alg>,
    /// The RFC 7638 thumbprint (base64url of the SHA-256): the key's identity.
    pub thumbprint: String,
    pub material: Material,
}

impl std::fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl PublicJwk {
    /// True when a signature made with `alg` may be checked with this key: the key's
    /// type fits the algorithm, and the key's own `alg`, if any, is that one.
    pub(crate) fn fits(&self, alg: Alg) -> bool {
        let by_type = matches!(
            (&self.material, alg),
            (Material::P256(_), Alg::Es256)
                | (Material::P384(_), Alg::Es384)
                | (Material::Ed25519(_), Alg::Ed25519)
                | (Material::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
        );
        by_type && self.alg.is_none_or(|own| own == alg)
    }

    /// True when `signature` over `message` verifies with this key under `alg` (false
    /// when the key does not fit the algorithm).
    pub(crate) fn verifies(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match (&self.material, alg) {
            (Material::P256(point), _) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok(),
            (Material::P384(point), _) => UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
                .verify(message, signature)
                .is_ok(),
            (Material::Ed25519(x), _) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            (Material::Rsa { n, e }, alg) => {
                let params = if alg == Alg::Ps256 {
                    &RSA_PSS_2048_8192_SHA256
                } else {
                    &RSA_PKCS1_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
        }
    }
}

/// Why a JWK or a key set is refused; the member path (`keys[0].d`) goes with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwkError {
    #[error(
        "{0}: a private key member; list public keys only (a private key never goes in the config)"
    )]
    Private(String),
    #[error("{0}: {1}")]
    Unsupported(String, String),
    #[error("{0}: {1}")]
    Malformed(String, String),
}

impl JwkError {
    /// The member path the error is about (`keys[0].d`).
    pub(crate) fn path(&self) -> &str {
        match self {
            Self::Private(p) | Self::Unsupported(p, _) | Self::Malformed(p, _) => p,
        }
    }
}

fn text<'a>(jwk: &'a Map<String, Value>, name: &str, at: &str) -> Result<&'a str, JwkError> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JwkError::Malformed(
            format!("{at}.{name}"),
            "must be a string".into(),
        )),
        None => Err(JwkError::Malformed(
            format!("{at}.{name}"),
            "is missing".into(),
        )),
    }
}

fn bytes(jwk: &Map<String, Value>, name: &str, at: &str) -> Result<Vec<u8>, JwkError> {
    let value = text(jwk, name, at)?;
    B64.decode(value).map_err(|_| {
        JwkError::Malformed(
            format!("{at}.{name}"),
            "is not base64url without padding".into(),
        )
    })
}

/// A fixed-length coordinate.
fn sized(jwk: &Map<String, Value>, name: &str, at: &str, len: usize) -> Result<Vec<u8>, JwkError> {
    let b = bytes(jwk, name, at)?;
    if b.len() != len {
        return Err(JwkError::Malformed(
            format!("{at}.{name}"),
            format!("must be {len} bytes, is {}", b.len()),
        ));
    }
    Ok(b)
}

/// The material and the RFC 7638 required members of a JWK.
fn material(jwk: &Map<String, Value>, at: &str) -> Result<(Material, Value), JwkError> {
    let unsupported = |m: String| Err(JwkError::Unsupported(at.to_owned(), m));
    match text(jwk, "kty", at)? {
        "EC" => {
            let crv = text(jwk, "crv", at)?;
            let len = match crv {
                "P-256" => 32,
                "P-384" => 48,
                other => return unsupported(format!("curve {other:?}; use P-256 or P-384")),
            };
            let (x, y) = (sized(jwk, "x", at, len)?, sized(jwk, "y", at, len)?);
            let members =
                json!({"crv": crv, "kty": "EC", "x": B64.encode(&x), "y": B64.encode(&y)});
            let point = [&[4u8][..], &x, &y].concat();
            let curve = if len == 32 {
                &ECDSA_P256_SHA256_FIXED
            } else {
                &ECDSA_P384_SHA384_FIXED
            };
            if ParsedPublicKey::new(curve, &point).is_err() {
                return Err(JwkError::Malformed(
                    at.to_owned(),
                    "x and y are not a point on the curve".into(),
                ));
            }
            let m = if len == 32 {
                Material::P256(point)
            } else {
                Material::P384(point)
            };
            Ok((m, members))
        }
        "OKP" => match text(jwk, "crv", at)? {
            "Ed25519" => {
                let x = sized(jwk, "x", at, 32)?;
                let members = json!({"crv": "Ed25519", "kty": "OKP", "x": B64.encode(&x)});
                Ok((Material::Ed25519(x), members))
            }
            other => unsupported(format!("OKP curve {other:?}; use Ed25519")),
        },
        "RSA" => {
            let (n, e) = (bytes(jwk, "n", at)?, bytes(jwk, "e", at)?);
            let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
            if n.len() < 256 || n.len() > 1024 {
                return unsupported(format!(
                    "an RSA key of {} bits; use 2048 to 8192 bits",
                    n.len() * 8
                ));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(JwkError::Malformed(
                    format!("{at}.e"),
                    "is not an RSA exponent".into(),
                ));
            }
            let members = json!({"e": B64.encode(&e), "kty": "RSA", "n": B64.encode(&n)});
            Ok((Material::Rsa { n, e }, members))
        }
        "oct" => unsupported("a symmetric (oct) key: list public keys only".into()),
        other => unsupported(format!("key type {other:?}; use EC, OKP or RSA")),
    }
}

/// Parses one public JWK found at member path `at`.
pub(crate) fn parse_key(value: &Value, at: &str) -> Result<PublicJwk, JwkError> {
    let Value::Object(jwk) = value else {
        return Err(JwkError::Malformed(
            at.to_owned(),
            "must be a JSON object".into(),
        ));
    };
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(JwkError::Private(format!("{at}.{private}")));
    }
    if let Some(u) = jwk.get("use")
        && u != "sig"
    {
        return Err(JwkError::Unsupported(
            format!("{at}.use"),
            "a signing key has use \"sig\" (or none)".into(),
        ));
    }
    let (material, members) = material(jwk, at)?;
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => Some(Alg::from_name(name).ok_or_else(|| {
            JwkError::Unsupported(
                format!("{at}.alg"),
                format!("{name:?}; use one of {}", Alg::NAMES.join(", ")),
            )
        })?),
        Some(_) => {
            return Err(JwkError::Malformed(
                format!("{at}.alg"),
                "must be a string".into(),
            ));
        }
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => Some(kid.clone()),
        Some(_) => {
            return Err(JwkError::Malformed(
                format!("{at}.kid"),
                "must be a non-empty string of at most 256 bytes".into(),
            ));
        }
    };
    let key = PublicJwk {
        kid,
        alg,
        thumbprint: thumbprint(&members),
        material,
    };
    if let Some(alg) = alg
        && !key.fits(alg)
    {
        return Err(JwkError::Unsupported(
            format!("{at}.alg"),
            "names an algorithm of another key type".into(),
        ));
    }
    Ok(key)
}

/// Parses a JWK Set (`{"keys": [...]}`); `at` prefixes the member paths.
pub(crate) fn parse_set(value: &Value, at: &str) -> Result<Vec<PublicJwk>, JwkError> {
    let path = |p: &str| {
        if at.is_empty() {
            p.to_owned()
        } else {
            format!("{at}.{p}")
        }
    };
    let Some(Value::Array(keys)) = value.get("keys") else {
        return Err(JwkError::Malformed(
            path("keys"),
            "a JWK Set is an object with a \"keys\" array".into(),
        ));
    };
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(JwkError::Malformed(
            path("keys"),
            format!("list 1 to {MAX_KEYS} keys"),
        ));
    }
    let mut out: Vec<PublicJwk> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let key = parse_key(k, &path(&format!("keys[{i}]")))?;
        if key.kid.is_some() && out.iter().any(|o| o.kid == key.kid) {
            return Err(JwkError::Malformed(
                path(&format!("keys[{i}].kid")),
                "the same kid is listed twice".into(),
            ));
        }
        out.push(key);
    }
    Ok(out)
}

/// Parses a JWK Set fetched from elsewhere (a `jwks_uri`): keys gatehouse cannot use
/// (another type, `use: enc`) are left out rather than refusing the set, as a published
/// set may hold keys for others; a private member still refuses the whole set.
pub(crate) fn parse_published(value: &Value) -> Result<Vec<PublicJwk>, JwkError> {
    let Some(Value::Array(keys)) = value.get("keys") else {
        return Err(JwkError::Malformed(
            "keys".into(),
            "no \"keys\" array".into(),
        ));
    };
    let mut out = Vec::new();
    for (i, k) in keys.iter().take(MAX_KEYS * 4).enumerate() {
        match parse_key(k, &format!("keys[{i}]")) {
            Ok(key) => out.push(key),
            Err(e @ JwkError::Private(_)) => return Err(e),
            Err(_) => {}
        }
        if out.len() == MAX_KEYS {
            break;
        }
    }
    Ok(out)
}

/// RFC 7638 thumbprint of the required members (`members`, whose keys serde_json
/// orders lexicographically).
fn thumbprint(members: &Value) -> String {
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        members.to_string().as_bytes(),
    ))
}

/// A URL gatehouse may fetch keys or discovery from: https, or http on a loopback host
/// (a sidecar, tests); no credentials, no fragment.
pub(crate) fn check_fetch_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("may not carry credentials".into());
    }
    if url.fragment().is_some() {
        return Err("may not have a fragment".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("{raw:?}: use https (http only to a loopback host)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_urls() {
        assert!(check_fetch_url("https://keys.example/jwks").is_ok());
        assert!(check_fetch_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_fetch_url("http://[::1]/jwks").is_ok());
        assert!(check_fetch_url("http://keys.example/jwks").is_err());
        assert!(check_fetch_url("https://u:p@keys.example/jwks").is_err());
        assert!(check_fetch_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = json!({"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"});
        let key = parse_key(&jwk, "k").expect("parses");
        assert_eq!(
            key.thumbprint,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn private_members_and_symmetric_keys_are_refused() {
        let ec = json!({"kty":"EC","crv":"P-256","x":B64.encode([1u8;32]),"y":B64.encode([2u8;32]),"d":"AA"});
        assert_eq!(
            parse_key(&ec, "keys[0]"),
            Err(JwkError::Private("keys[0].d".into()))
        );
        let oct = json!({"kty":"oct","k":"AAAA"});
        assert!(matches!(parse_key(&oct, "k"), Err(JwkError::Private(_))));
        let oct = json!({"kty":"oct"});
        assert!(matches!(
            parse_key(&oct, "k"),
            Err(JwkError::Unsupported(..))
        ));
    }

    #[test]
    fn names_and_fit() {
        assert_eq!(Alg::from_name("none"), None);
        assert_eq!(Alg::from_name("HS256"), None);
        assert_eq!(Alg::from_name("Ed25519"), Some(Alg::Ed25519));
        let ed = json!({"kty":"OKP","crv":"Ed25519","x":B64.encode([7u8;32])});
        let key = parse_key(&ed, "k").expect("parses");
        assert!(key.fits(Alg::Ed25519) && !key.fits(Alg::Es256));
        let bad = json!({"kty":"OKP","crv":"Ed25519","x":B64.encode([7u8;32]),"alg":"ES256"});
        assert!(parse_key(&bad, "k").is_err());
    }
}
