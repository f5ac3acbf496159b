//! The grants of the token endpoint, one module each, behind one seam (Dex's
//! `server/grants`, fosite's `TokenEndpointHandler`): the endpoint parses the request,
//! authenticates the client and checks that it may use the grant, then hands the grant
//! a typed [`TokenRequest`]; the grant answers [`Granted`] or an `OAuthError`, and the
//! endpoint logs, counts and writes the response. A grant never sees `HttpRequest` or
//! builds an `HttpResponse`.
//!
//! Adding a grant: a `GrantType` variant, a module here with an `exchange` function,
//! and its line in [`exchange`].

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod federated;
pub mod refresh_token;
pub(crate) mod rotation;
pub mod token_set;

use crate::config::file::GrantType;
use crate::error::OAuthError;
use crate::http::form::Form;
use crate::model::{Client, CredentialId};
use crate::registry::Registry;
use crate::state::AppState;
use serde::Serialize;
use std::net::IpAddr;

/// A token request whose client is authenticated and allowed the grant.
pub(crate) struct TokenRequest<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) registry: &'a Registry,
    pub(crate) client: &'a Client,
    /// The fingerprint of the secret the client authenticated with (`None`: a public
    /// client): what the tokens issued record, so that they end when it is removed.
    pub(crate) credential: Option<CredentialId>,
    /// The request's parameters.
    pub(crate) form: &'a Form,
    /// Where the request came from, for the audit events a grant logs itself.
    pub(crate) remote: IpAddr,
    /// The thumbprint of the key of the request's DPoP proof (RFC 9449): the access
    /// token is bound to it (`cnf.jkt`), and so is a public client's refresh token.
    pub(crate) dpop_jkt: Option<String>,
}

/// What a grant issued, for the endpoint to answer with and log.
pub(crate) struct Granted {
    pub(crate) response: TokenResponse,
    /// The audit event (`token_issued`, `refresh_rotated`).
    pub(crate) event: &'static str,
    /// The user the tokens are for; `None` for a client's own token.
    pub(crate) user_id: Option<String>,
}

/// A successful token response (RFC 6749 5.1).
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
}

impl TokenResponse {
    /// The JSON body: the bytes `serde_json` writes for this struct (a test compares
    /// them), with each string copied whole when it needs no escaping. Tokens are
    /// base64url, and `serde_json`'s escaper reads every byte through a table: a
    /// fifth of the instructions of a client-credentials request outside the
    /// signature went to escaping strings that have nothing to escape (issue 28).
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let tokens = [
            Some(&self.access_token),
            self.id_token.as_ref(),
            self.refresh_token.as_ref(),
        ];
        let size = tokens.iter().flatten().map(|t| t.len()).sum::<usize>() + self.scope.len();
        let mut out = Vec::with_capacity(size + 128);
        out.extend_from_slice(b"{\"access_token\":");
        json_string(&mut out, &self.access_token)?;
        out.extend_from_slice(b",\"token_type\":");
        json_string(&mut out, self.token_type)?;
        out.extend_from_slice(b",\"expires_in\":");
        serde_json::to_writer(&mut out, &self.expires_in)?;
        out.extend_from_slice(b",\"scope\":");
        json_string(&mut out, &self.scope)?;
        if let Some(id_token) = &self.id_token {
            out.extend_from_slice(b",\"id_token\":");
            json_string(&mut out, id_token)?;
        }
        if let Some(refresh_token) = &self.refresh_token {
            out.extend_from_slice(b",\"refresh_token\":");
            json_string(&mut out, refresh_token)?;
        }
        out.push(b'}');
        Ok(out)
    }
}

/// `text` as a JSON string: copied between quotes when `serde_json` would escape
/// nothing in it (no control character, quote or backslash), else by `serde_json`.
fn json_string(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    // A fold without an early exit, so that the compiler checks many bytes at once.
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text)
    }
}

/// Runs `grant` for `request`: the table of grants.
pub(crate) async fn exchange(
    grant: GrantType,
    request: &TokenRequest<'_>,
) -> Result<Granted, OAuthError> {
    match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(request).await,
        GrantType::RefreshToken => refresh_token::exchange(request).await,
        GrantType::ClientCredentials => client_credentials::exchange(request).await,
        GrantType::DeviceCode => device_code::exchange(request).await,
    }
}

#[cfg(test)]
mod tests {
    use crate::oauth::grants::TokenResponse;

    #[test]
    fn the_body_is_what_serde_json_writes() {
        let plain = TokenResponse {
            access_token: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_".into(),
            token_type: "Bearer",
            expires_in: 600,
            scope: String::new(),
            id_token: None,
            refresh_token: None,
        };
        let odd = TokenResponse {
            access_token: "a\"b\\c\nd\u{1}e \u{e9}\u{7f}".into(),
            token_type: "DPoP",
            expires_in: u64::MAX,
            scope: "openid api:read".into(),
            id_token: Some("x.y.z".into()),
            refresh_token: Some("tab\there".into()),
        };
        for response in [plain, odd] {
            let expected = serde_json::to_vec(&response).expect("serde_json");
            assert_eq!(
                String::from_utf8(response.to_json().expect("to_json")).expect("utf-8"),
                String::from_utf8(expected).expect("utf-8")
            );
        }
    }
}
