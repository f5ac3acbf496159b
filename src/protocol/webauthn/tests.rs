//! Keys made with aws-lc-rs, authenticator data and client data built by hand, and
//! every refusal.

use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};

const ORIGIN: &str = "https://login.example.com";
const RP_ID: &str = "example.com";
const CHALLENGE: &[u8] = b"0123456789abcdef0123456789abcdef";

fn expected() -> Expected<'static> {
    Expected {
        challenge: CHALLENGE,
        origin: ORIGIN,
        rp_id: RP_ID,
        user_verification: true,
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("cbor");
    out
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// A signer and its COSE_Key.
enum Signer {
    Es256(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl Signer {
    fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("p256"))
    }
    fn ed() -> Self {
        Self::Ed(Ed25519KeyPair::generate().expect("ed25519"))
    }
    fn rsa() -> Self {
        Self::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa"))
    }

    fn cose(&self) -> Vec<u8> {
        let map = match self {
            Self::Es256(k) => {
                let point = k.public_key().as_ref();
                vec![
                    (int(1), int(2)),
                    (int(3), int(-7)),
                    (int(-1), int(1)),
                    (int(-2), Value::Bytes(point[1..33].to_vec())),
                    (int(-3), Value::Bytes(point[33..].to_vec())),
                ]
            }
            Self::Ed(k) => vec![
                (int(1), int(1)),
                (int(3), int(-8)),
                (int(-1), int(6)),
                (int(-2), Value::Bytes(k.public_key().as_ref().to_vec())),
            ],
            Self::Rsa(k) => {
                let public = k.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                vec![
                    (int(1), int(3)),
                    (int(3), int(-257)),
                    (int(-1), Value::Bytes(n)),
                    (int(-2), Value::Bytes(e)),
                ]
            }
        };
        cbor(&Value::Map(map))
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Es256(k) => k.sign(&rng, message).expect("sign").as_ref().to_vec(),
            Self::Ed(k) => k.sign(message).as_ref().to_vec(),
            Self::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .expect("sign");
                sig
            }
        }
    }
}

fn client_data(kind: &str, challenge: &[u8], origin: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}"{extra}}}"#,
        B64.encode(challenge)
    )
    .into_bytes()
}

fn auth_data(rp_id: &str, flags: u8, count: u32, attested: &[u8]) -> Vec<u8> {
    let mut out = sha256(rp_id.as_bytes()).to_vec();
    out.push(flags);
    out.extend(count.to_be_bytes());
    out.extend(attested);
    out
}

/// An assertion by `signer`: (clientDataJSON, authenticatorData, signature).
fn assertion(signer: &Signer, client: Vec<u8>, auth: Vec<u8>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let sig = signer.sign(&[&auth[..], &sha256(&client)].concat());
    (client, auth, sig)
}

fn good(signer: &Signer) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let client = client_data("webauthn.get", CHALLENGE, ORIGIN, "");
    assertion(signer, client, auth_data(RP_ID, UP | UV, 7, &[]))
}

fn check(signer: &Signer, parts: &(Vec<u8>, Vec<u8>, Vec<u8>)) -> Result<Asserted, WebAuthnError> {
    let key = CoseKey::parse(&signer.cose()).expect("key parses");
    verify_assertion(&expected(), &key, &parts.0, &parts.1, &parts.2)
}

#[test]
fn each_algorithm_verifies() {
    for signer in [Signer::es256(), Signer::ed(), Signer::rsa()] {
        let asserted = check(&signer, &good(&signer)).expect("verifies");
        assert_eq!(asserted.sign_count, 7);
        assert!(asserted.user_verified);
    }
}

#[test]
fn the_parsed_key_names_its_algorithm() {
    let algs: Vec<_> = [Signer::es256(), Signer::ed(), Signer::rsa()]
        .iter()
        .map(|s| CoseKey::parse(&s.cose()).expect("parses").alg())
        .collect();
    assert_eq!(algs, [CoseAlg::Es256, CoseAlg::EdDsa, CoseAlg::Rs256]);
}

#[test]
fn client_data_refusals() {
    let signer = Signer::es256();
    type Refusal = fn(&WebAuthnError) -> bool;
    let cases: [(Vec<u8>, Refusal); 7] = [
        (client_data("webauthn.create", CHALLENGE, ORIGIN, ""), |e| {
            matches!(e, WebAuthnError::Type(..))
        }),
        (
            client_data("webauthn.get", b"another challenge", ORIGIN, ""),
            |e| *e == WebAuthnError::Challenge,
        ),
        (
            client_data("webauthn.get", CHALLENGE, "https://evil.example.com", ""),
            |e| matches!(e, WebAuthnError::Origin(_)),
        ),
        (
            client_data(
                "webauthn.get",
                CHALLENGE,
                "https://login.example.com:8443",
                "",
            ),
            |e| matches!(e, WebAuthnError::Origin(_)),
        ),
        (
            client_data("webauthn.get", CHALLENGE, ORIGIN, r#","crossOrigin":true"#),
            |e| *e == WebAuthnError::CrossOrigin,
        ),
        (b"{not json".to_vec(), |e| {
            matches!(e, WebAuthnError::ClientData(_))
        }),
        (
            br#"{"type":"webauthn.get","challenge":"!!","origin":"x"}"#.to_vec(),
            |e| *e == WebAuthnError::Challenge,
        ),
    ];
    for (client, refusal) in cases {
        let parts = assertion(&signer, client.clone(), auth_data(RP_ID, UP | UV, 0, &[]));
        let e = check(&signer, &parts).expect_err("refused");
        assert!(refusal(&e), "{}: {e:?}", String::from_utf8_lossy(&client));
    }
    let same_origin = client_data("webauthn.get", CHALLENGE, ORIGIN, r#","crossOrigin":false"#);
    let parts = assertion(&signer, same_origin, auth_data(RP_ID, UP | UV, 0, &[]));
    assert!(check(&signer, &parts).is_ok());
}

#[test]
fn authenticator_data_refusals() {
    let signer = Signer::ed();
    let cases: [(Vec<u8>, WebAuthnError); 4] = [
        (
            auth_data("other.example", UP | UV, 0, &[]),
            WebAuthnError::RpIdHash,
        ),
        (
            auth_data("login.example.com", UP | UV, 0, &[]),
            WebAuthnError::RpIdHash,
        ),
        (auth_data(RP_ID, UV, 0, &[]), WebAuthnError::UserPresence),
        (
            auth_data(RP_ID, UP, 0, &[]),
            WebAuthnError::UserVerification,
        ),
    ];
    for (auth, refusal) in cases {
        let client = client_data("webauthn.get", CHALLENGE, ORIGIN, "");
        let parts = assertion(&signer, client, auth);
        assert_eq!(check(&signer, &parts), Err(refusal));
    }
    let client = client_data("webauthn.get", CHALLENGE, ORIGIN, "");
    let parts = assertion(&signer, client, auth_data(RP_ID, UP | UV | BS, 0, &[]));
    assert_eq!(check(&signer, &parts), Err(WebAuthnError::BackupState));
    let short = assertion(&signer, good(&signer).0, vec![0; 36]);
    assert!(matches!(
        check(&signer, &short),
        Err(WebAuthnError::AuthenticatorData(_))
    ));
    // Without user verification required, UP alone passes.
    let key = CoseKey::parse(&signer.cose()).expect("key");
    let lax = Expected {
        user_verification: false,
        ..expected()
    };
    let (c, a, s) = assertion(&signer, good(&signer).0, auth_data(RP_ID, UP, 0, &[]));
    assert!(
        !verify_assertion(&lax, &key, &c, &a, &s)
            .expect("ok")
            .user_verified
    );
}

#[test]
fn signature_refusals() {
    let signer = Signer::es256();
    let (client, auth, sig) = good(&signer);
    // Another key, a changed byte of the signed data, a truncated signature.
    let other = Signer::es256();
    assert_eq!(
        check(&other, &(client.clone(), auth.clone(), sig.clone())),
        Err(WebAuthnError::Signature)
    );
    let mut counted = auth.clone();
    counted[36] ^= 1;
    assert_eq!(
        check(&signer, &(client.clone(), counted, sig.clone())),
        Err(WebAuthnError::Signature)
    );
    let changed = client_data("webauthn.get", CHALLENGE, ORIGIN, r#","extra":1"#);
    assert_eq!(
        check(&signer, &(changed, auth.clone(), sig.clone())),
        Err(WebAuthnError::Signature)
    );
    assert_eq!(
        check(&signer, &(client, auth, sig[..sig.len() - 1].to_vec())),
        Err(WebAuthnError::Signature)
    );
}

#[test]
fn a_key_of_another_algorithm_does_not_verify() {
    // An Ed25519 signature against an ES256 key, and the other way round.
    let (es, ed) = (Signer::es256(), Signer::ed());
    assert_eq!(check(&es, &good(&ed)), Err(WebAuthnError::Signature));
    assert_eq!(check(&ed, &good(&es)), Err(WebAuthnError::Signature));
}

fn cose_with(entries: Vec<(Value, Value)>) -> Result<CoseKey, WebAuthnError> {
    CoseKey::parse(&cbor(&Value::Map(entries)))
}

#[test]
fn malformed_and_mismatched_keys_are_refused() {
    let Signer::Es256(k) = Signer::es256() else {
        unreachable!()
    };
    let point = k.public_key().as_ref().to_vec();
    let (x, y) = (
        Value::Bytes(point[1..33].to_vec()),
        Value::Bytes(point[33..].to_vec()),
    );
    let ec = |kty: i64, alg: i64, crv: i64, y: Value| {
        vec![
            (int(1), int(kty)),
            (int(3), int(alg)),
            (int(-1), int(crv)),
            (int(-2), x.clone()),
            (int(-3), y),
        ]
    };
    assert!(cose_with(ec(2, -7, 1, y.clone())).is_ok());
    // alg and kty disagree; an alg we do not accept; another curve.
    assert!(matches!(
        cose_with(ec(2, -8, 1, y.clone())),
        Err(WebAuthnError::CoseKey(_))
    ));
    assert!(matches!(
        cose_with(ec(1, -7, 1, y.clone())),
        Err(WebAuthnError::CoseKey(_))
    ));
    assert!(matches!(
        cose_with(ec(2, -35, 1, y.clone())),
        Err(WebAuthnError::Unsupported(_))
    ));
    assert!(matches!(
        cose_with(ec(2, -7, 2, y.clone())),
        Err(WebAuthnError::Unsupported(_))
    ));
    // Not on the curve; a short coordinate; a missing member; a label twice.
    let mut off = point[33..].to_vec();
    off[31] ^= 1;
    assert!(matches!(
        cose_with(ec(2, -7, 1, Value::Bytes(off))),
        Err(WebAuthnError::CoseKey(_))
    ));
    assert!(cose_with(ec(2, -7, 1, Value::Bytes(vec![1; 31]))).is_err());
    let mut missing = ec(2, -7, 1, y.clone());
    missing.pop();
    assert!(cose_with(missing).is_err());
    let mut twice = ec(2, -7, 1, y.clone());
    twice.push((int(3), int(-7)));
    assert!(cose_with(twice).is_err());
    // Not a map; trailing bytes; not CBOR at all; no alg.
    assert!(CoseKey::parse(&cbor(&int(3))).is_err());
    let mut trailing = cbor(&Value::Map(ec(2, -7, 1, y.clone())));
    trailing.push(0);
    assert!(CoseKey::parse(&trailing).is_err());
    assert!(CoseKey::parse(b"\xff\xff").is_err());
    assert!(CoseKey::parse(&[]).is_err());
    let no_alg: Vec<_> = ec(2, -7, 1, y)
        .into_iter()
        .filter(|(k, _)| *k != int(3))
        .collect();
    assert!(cose_with(no_alg).is_err());
}

/// An attestation object "none" for `signer` under credential id `id`.
fn attestation(signer: &Signer, id: &[u8], rp_id: &str, flags: u8, fmt: &str) -> Vec<u8> {
    let mut attested = vec![0u8; 16];
    attested.extend((id.len() as u16).to_be_bytes());
    attested.extend(id);
    attested.extend(signer.cose());
    let auth = auth_data(rp_id, flags, 0, &attested);
    cbor(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text(fmt.into())),
        (Value::Text("attStmt".into()), Value::Map(vec![])),
        (Value::Text("authData".into()), Value::Bytes(auth)),
    ]))
}

#[test]
fn a_registration_gives_the_credential_and_its_key() {
    let signer = Signer::ed();
    let client = client_data("webauthn.create", CHALLENGE, ORIGIN, "");
    let object = attestation(&signer, b"cred-1", RP_ID, UP | UV | AT, "none");
    let got = verify_registration(&expected(), &client, &object).expect("registers");
    assert_eq!(got.credential_id, b"cred-1");
    assert_eq!(got.public_key, signer.cose());
    assert_eq!(got.format, "none");
    // The key it gives verifies the signer's assertions.
    let parts = good(&signer);
    assert!(verify_assertion(&expected(), &got.key, &parts.0, &parts.1, &parts.2).is_ok());
    // Another format: the statement is ignored.
    let packed = attestation(&signer, b"cred-1", RP_ID, UP | UV | AT, "packed");
    assert_eq!(
        verify_registration(&expected(), &client, &packed)
            .expect("ok")
            .format,
        "packed"
    );
}

#[test]
fn registration_refusals() {
    let signer = Signer::es256();
    let create = client_data("webauthn.create", CHALLENGE, ORIGIN, "");
    let get = client_data("webauthn.get", CHALLENGE, ORIGIN, "");
    let ok = attestation(&signer, b"id", RP_ID, UP | UV | AT, "none");
    let refused = |client: &[u8], object: &[u8]| {
        verify_registration(&expected(), client, object).expect_err("refused")
    };
    assert!(matches!(refused(&get, &ok), WebAuthnError::Type(..)));
    let wrong = client_data("webauthn.create", b"nope", ORIGIN, "");
    assert_eq!(refused(&wrong, &ok), WebAuthnError::Challenge);
    let elsewhere = client_data("webauthn.create", CHALLENGE, "http://login.example.com", "");
    assert!(matches!(refused(&elsewhere, &ok), WebAuthnError::Origin(_)));
    let other_rp = attestation(&signer, b"id", "example.org", UP | UV | AT, "none");
    assert_eq!(refused(&create, &other_rp), WebAuthnError::RpIdHash);
    let no_uv = attestation(&signer, b"id", RP_ID, UP | AT, "none");
    assert_eq!(refused(&create, &no_uv), WebAuthnError::UserVerification);
    let no_up = attestation(&signer, b"id", RP_ID, UV | AT, "none");
    assert_eq!(refused(&create, &no_up), WebAuthnError::UserPresence);
    let no_at = attestation(&signer, b"id", RP_ID, UP | UV, "none");
    assert!(matches!(
        refused(&create, &no_at),
        WebAuthnError::AuthenticatorData(_)
    ));
    let long_id = attestation(&signer, &[7; 1024], RP_ID, UP | UV | AT, "none");
    assert!(matches!(
        refused(&create, &long_id),
        WebAuthnError::AuthenticatorData(_)
    ));
    assert!(matches!(
        refused(&create, b"\xa0"),
        WebAuthnError::Attestation(_)
    ));
    assert!(matches!(
        refused(&create, b"junk"),
        WebAuthnError::Attestation(_)
    ));
}
