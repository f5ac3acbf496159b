//! Pure protocol rules, with no I/O: PKCE, redirect-URI registration and matching,
//! web origins (CORS), scope narrowing, resource indicators, device user codes, public JWKs
//! of others and their signatures, DPoP proofs, Client ID Metadata Documents, TOTP codes
//! (RFC 6238), the authentication context (`amr`, `acr`) and WebAuthn assertions and
//! registrations (passkeys). Unit- and
//! property-tested, fuzzed.

pub mod acr;
pub mod client_metadata;
pub mod dpop;
pub mod jwk;
pub mod origin;
pub mod pkce;
pub mod redirect_uri;
pub mod resource;
pub mod scope;
pub mod totp;
pub mod user_code;
pub mod webauthn;
