//! The relying party's checks of WebAuthn (Level 3): a passkey's COSE public key
//! (RFC 9052/9053), an assertion (§7.2, a passkey login) and a registration (§7.1, a
//! passkey enrolment). Pure: the caller supplies the expected challenge, origin and
//! RP ID, and keeps challenges single use.
//!
//! Registration accepts any attestation format but verifies no attestation statement:
//! gatehouse asks for `attestation: "none"`, and an authenticator that sends another
//! format anyway is treated as if it had sent "none" (the key is trusted because the
//! logged-in user enrolled it and an operator committed it, not because of its maker).

use crate::crypto::sha256;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ciborium::Value;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The longest credential id WebAuthn allows (§5.8.3, `credentialIdLength`).
pub(crate) const MAX_CREDENTIAL_ID: usize = 1023;

/// authenticatorData flags (§6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;
const ED: u8 = 0x80;

/// The COSE algorithms gatehouse accepts, in the order a browser is asked for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoseAlg {
    /// ECDSA on P-256 with SHA-256 (`-7`).
    Es256,
    /// EdDSA with Ed25519 (`-8`).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`-257`).
    Rs256,
}

impl CoseAlg {
    /// The COSE algorithm identifiers accepted, for `pubKeyCredParams`.
    pub(crate) const IDS: [i64; 3] = [-7, -8, -257];

    /// Its JOSE name (`ES256`, `EdDSA`, `RS256`), for the audit log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    fn from_id(id: i128) -> Option<Self> {
        match id {
            -7 => Some(Self::Es256),
            -8 => Some(Self::EdDsa),
            -257 => Some(Self::Rs256),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Material {
    /// The uncompressed point `04 || x || y`.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// A credential's public key, parsed from its COSE_Key encoding and checked against
/// its declared algorithm.
#[derive(Debug, Clone)]
pub struct CoseKey {
    alg: CoseAlg,
    material: Material,
}

/// Why a key, an assertion or a registration is refused. The message says which check
/// failed; it is for logs and the operator, never shown as a reason to a stranger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WebAuthnError {
    #[error("malformed COSE key: {0}")]
    CoseKey(String),
    #[error("unsupported COSE key: {0}")]
    Unsupported(String),
    #[error("malformed clientDataJSON: {0}")]
    ClientData(String),
    #[error("clientDataJSON type is {0:?}, expected {1:?}")]
    Type(String, &'static str),
    #[error("the challenge is not the one issued")]
    Challenge,
    #[error("origin {0:?} is not the issuer's origin")]
    Origin(String),
    #[error("the ceremony ran in a cross-origin frame")]
    CrossOrigin,
    #[error("malformed authenticator data: {0}")]
    AuthenticatorData(String),
    #[error("the RP ID hash is not that of the configured rp_id")]
    RpIdHash,
    #[error("user presence (UP) is not set")]
    UserPresence,
    #[error("user verification (UV) is not set")]
    UserVerification,
    #[error("backup state (BS) set without backup eligibility (BE)")]
    BackupState,
    #[error("malformed attestation object: {0}")]
    Attestation(String),
    #[error("the signature does not verify with the credential's key")]
    Signature,
}

impl WebAuthnError {
    /// A short name of the check that failed, for the audit log.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::CoseKey(_) | Self::Unsupported(_) => "public_key",
            Self::ClientData(_) => "client_data",
            Self::Type(..) => "type",
            Self::Challenge => "challenge",
            Self::Origin(_) => "origin",
            Self::CrossOrigin => "cross_origin",
            Self::AuthenticatorData(_) => "authenticator_data",
            Self::RpIdHash => "rp_id",
            Self::UserPresence => "user_presence",
            Self::UserVerification => "user_verification",
            Self::BackupState => "backup_state",
            Self::Attestation(_) => "attestation",
            Self::Signature => "signature",
        }
    }
}

fn key_error(message: impl Into<String>) -> WebAuthnError {
    WebAuthnError::CoseKey(message.into())
}

/// Reads exactly one CBOR item from the front of `bytes`: the item and the bytes after
/// it.
fn cbor_item(bytes: &[u8]) -> Result<(Value, &[u8]), String> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest).map_err(|e| e.to_string())?;
    Ok((value, rest))
}

/// The value under integer label `label` of a COSE map, refusing a label given twice.
fn label(map: &[(Value, Value)], label: i128) -> Result<Option<&Value>, WebAuthnError> {
    let mut found = None;
    for (k, v) in map {
        if k.as_integer().map(i128::from) == Some(label) {
            if found.is_some() {
                return Err(key_error(format!("label {label} appears twice")));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

fn int_label(map: &[(Value, Value)], l: i128, name: &str) -> Result<i128, WebAuthnError> {
    match label(map, l)? {
        Some(v) => v
            .as_integer()
            .map(i128::from)
            .ok_or_else(|| key_error(format!("{name} is not an integer"))),
        None => Err(key_error(format!("{name} ({l}) is missing"))),
    }
}

fn bytes_label(map: &[(Value, Value)], l: i128, name: &str) -> Result<Vec<u8>, WebAuthnError> {
    match label(map, l)? {
        Some(v) => v
            .as_bytes()
            .cloned()
            .ok_or_else(|| key_error(format!("{name} is not a byte string"))),
        None => Err(key_error(format!("{name} ({l}) is missing"))),
    }
}

fn sized(map: &[(Value, Value)], l: i128, name: &str) -> Result<Vec<u8>, WebAuthnError> {
    let b = bytes_label(map, l, name)?;
    if b.len() != 32 {
        return Err(key_error(format!(
            "{name} must be 32 bytes, is {}",
            b.len()
        )));
    }
    Ok(b)
}

impl CoseKey {
    /// Parses a COSE_Key (exactly one CBOR map, nothing after it): `kty`, `alg` (ES256,
    /// EdDSA or RS256, and fitting `kty`), `crv`, `x`, `y`, `n`, `e` as RFC 9053 and
    /// WebAuthn §5.8.5 say; an EC point must lie on the curve.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let (value, rest) = cbor_item(bytes).map_err(key_error)?;
        if !rest.is_empty() {
            return Err(key_error("bytes after the key"));
        }
        Self::from_value(&value)
    }

    fn from_value(value: &Value) -> Result<Self, WebAuthnError> {
        let map = value.as_map().ok_or_else(|| key_error("not a CBOR map"))?;
        let kty = int_label(map, 1, "kty")?;
        let alg_id = int_label(map, 3, "alg")?;
        let alg = CoseAlg::from_id(alg_id).ok_or_else(|| {
            WebAuthnError::Unsupported(format!(
                "alg {alg_id}; use ES256 (-7), EdDSA (-8) or RS256 (-257)"
            ))
        })?;
        let material = match (kty, alg) {
            (2, CoseAlg::Es256) => {
                if int_label(map, -1, "crv")? != 1 {
                    return Err(WebAuthnError::Unsupported(
                        "ES256 needs crv P-256 (1)".into(),
                    ));
                }
                let point = [&[4u8][..], &sized(map, -2, "x")?, &sized(map, -3, "y")?].concat();
                if ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point).is_err() {
                    return Err(key_error("x and y are not a point on P-256"));
                }
                Material::P256(point)
            }
            (1, CoseAlg::EdDsa) => {
                if int_label(map, -1, "crv")? != 6 {
                    return Err(WebAuthnError::Unsupported(
                        "EdDSA needs crv Ed25519 (6)".into(),
                    ));
                }
                Material::Ed25519(sized(map, -2, "x")?)
            }
            (3, CoseAlg::Rs256) => {
                let (n, e) = (bytes_label(map, -1, "n")?, bytes_label(map, -2, "e")?);
                if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
                    return Err(key_error("n and e must be unsigned, without leading zeros"));
                }
                if !(2048..=8192).contains(&(n.len() * 8)) {
                    return Err(key_error("an RSA modulus of 2048 to 8192 bits"));
                }
                Material::Rsa { n, e }
            }
            (kty, _) => {
                return Err(key_error(format!("kty {kty} does not fit alg {alg_id}")));
            }
        };
        Ok(Self { alg, material })
    }

    /// The key's algorithm.
    pub(crate) fn alg(&self) -> CoseAlg {
        self.alg
    }

    /// True when `signature` over `message` verifies with this key (ES256: ASN.1 DER,
    /// as WebAuthn §6.5.6 has authenticators sign).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::P256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
                .verify(message, signature)
                .is_ok(),
            Material::Ed25519(x) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            Material::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }
}

/// What a ceremony must match: the challenge the server issued, the issuer's origin,
/// the RP ID, and whether user verification is required.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub(crate) challenge: &'a [u8],
    pub(crate) origin: &'a str,
    pub(crate) rp_id: &'a str,
    pub(crate) user_verification: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: Option<bool>,
}

/// §7.1 steps 7-12 / §7.2 steps 11-15: the client data's type, challenge, origin and
/// frame.
fn check_client_data(
    json: &[u8],
    kind: &'static str,
    expected: &Expected<'_>,
) -> Result<(), WebAuthnError> {
    let data: ClientData =
        serde_json::from_slice(json).map_err(|e| WebAuthnError::ClientData(e.to_string()))?;
    if data.kind != kind {
        return Err(WebAuthnError::Type(data.kind, kind));
    }
    let given = B64
        .decode(&data.challenge)
        .map_err(|_| WebAuthnError::Challenge)?;
    if !bool::from(given.ct_eq(expected.challenge)) {
        return Err(WebAuthnError::Challenge);
    }
    if data.origin != expected.origin {
        return Err(WebAuthnError::Origin(data.origin));
    }
    if data.cross_origin == Some(true) {
        return Err(WebAuthnError::CrossOrigin);
    }
    Ok(())
}

/// The fixed head of authenticator data (§6.1), checked: RP ID hash, UP, UV when
/// required, BS only with BE. Returns the flags and the sign count.
fn check_auth_data_head(data: &[u8], expected: &Expected<'_>) -> Result<(u8, u32), WebAuthnError> {
    if data.len() < 37 {
        return Err(WebAuthnError::AuthenticatorData(format!(
            "{} bytes, at least 37 expected",
            data.len()
        )));
    }
    if !bool::from(data[..32].ct_eq(&sha256(expected.rp_id.as_bytes()))) {
        return Err(WebAuthnError::RpIdHash);
    }
    let flags = data[32];
    if flags & UP == 0 {
        return Err(WebAuthnError::UserPresence);
    }
    if expected.user_verification && flags & UV == 0 {
        return Err(WebAuthnError::UserVerification);
    }
    if flags & BS != 0 && flags & BE == 0 {
        return Err(WebAuthnError::BackupState);
    }
    let count = u32::from_be_bytes([data[33], data[34], data[35], data[36]]);
    Ok((flags, count))
}

/// A verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asserted {
    /// The authenticator's signature counter (noted, not required to grow: many
    /// passkeys always send 0).
    pub(crate) sign_count: u32,
    /// The UV flag.
    pub(crate) user_verified: bool,
}

/// Verifies an assertion (§7.2, steps 11-21) made with `key`: the client data, the
/// authenticator data, and the signature over `authenticator_data ||
/// SHA-256(client_data_json)`. Finding the credential and its user, and using the
/// challenge once, is the caller's.
pub(crate) fn verify_assertion(
    expected: &Expected<'_>,
    key: &CoseKey,
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
) -> Result<Asserted, WebAuthnError> {
    check_client_data(client_data_json, "webauthn.get", expected)?;
    let (flags, sign_count) = check_auth_data_head(authenticator_data, expected)?;
    let message = [authenticator_data, &sha256(client_data_json)].concat();
    if !key.verifies(&message, signature) {
        return Err(WebAuthnError::Signature);
    }
    Ok(Asserted {
        sign_count,
        user_verified: flags & UV != 0,
    })
}

/// A verified registration: what goes into the user's `passkeys` entry.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    /// The credential id (at most 1023 bytes).
    pub(crate) credential_id: Vec<u8>,
    /// The credential public key exactly as the authenticator encoded it (COSE_Key).
    pub(crate) public_key: Vec<u8>,
    /// The key, parsed.
    pub(crate) key: CoseKey,
    /// The attestation format the authenticator named (its statement is not checked).
    pub(crate) format: String,
}

fn att_error(message: impl Into<String>) -> WebAuthnError {
    WebAuthnError::Attestation(message.into())
}

/// The `fmt` and `authData` members of an attestation object (a CBOR map).
fn attestation_parts(object: &[u8]) -> Result<(String, Vec<u8>), WebAuthnError> {
    let (value, rest) = cbor_item(object).map_err(att_error)?;
    if !rest.is_empty() {
        return Err(att_error("bytes after the attestation object"));
    }
    let map = value.as_map().ok_or_else(|| att_error("not a CBOR map"))?;
    let member = |name: &str| {
        let mut found = map.iter().filter(|(k, _)| k.as_text() == Some(name));
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Ok(v),
            (None, _) => Err(att_error(format!("{name} is missing"))),
            _ => Err(att_error(format!("{name} appears twice"))),
        }
    };
    let format = member("fmt")?
        .as_text()
        .ok_or_else(|| att_error("fmt is not text"))?
        .to_owned();
    let auth_data = member("authData")?
        .as_bytes()
        .ok_or_else(|| att_error("authData is not a byte string"))?
        .clone();
    Ok((format, auth_data))
}

/// Verifies a registration (§7.1, steps 7-22 without attestation trust, which this
/// server does not ask for): the client data (`webauthn.create`), the authenticator
/// data (AT set, the credential id, a COSE key of an accepted algorithm).
pub(crate) fn verify_registration(
    expected: &Expected<'_>,
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<Registered, WebAuthnError> {
    check_client_data(client_data_json, "webauthn.create", expected)?;
    let (format, auth_data) = attestation_parts(attestation_object)?;
    let (flags, _) = check_auth_data_head(&auth_data, expected)?;
    let bad = |m: &str| WebAuthnError::AuthenticatorData(m.to_owned());
    if flags & AT == 0 {
        return Err(bad("no attested credential data (AT not set)"));
    }
    // 37: the head; 16: the AAGUID; 2: the credential id's length.
    let body = auth_data.get(37 + 16..).ok_or_else(|| bad("too short"))?;
    let (len, body) = body.split_at_checked(2).ok_or_else(|| bad("too short"))?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if len == 0 || len > MAX_CREDENTIAL_ID {
        return Err(bad("a credential id of 1 to 1023 bytes"));
    }
    let (credential_id, body) = body.split_at_checked(len).ok_or_else(|| bad("too short"))?;
    let (value, rest) = cbor_item(body).map_err(key_error)?;
    if !rest.is_empty() && flags & ED == 0 {
        return Err(bad("bytes after the credential public key"));
    }
    let public_key = body[..body.len() - rest.len()].to_vec();
    let key = CoseKey::from_value(&value)?;
    Ok(Registered {
        credential_id: credential_id.to_vec(),
        public_key,
        key,
        format,
    })
}

#[cfg(test)]
mod tests;
