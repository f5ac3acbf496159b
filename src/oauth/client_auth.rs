//! Client authentication at the token endpoint: `client_secret_basic` (with the RFC 6749
//! 2.3.1 form-decoding of id and secret), `client_secret_post`, or a bare `client_id` for
//! public clients. Using two methods in one request is `invalid_request`.

use super::error::{ErrorCode, OAuthError};
use super::form::{Form, decode_component};
use crate::config::model::GrantType;
use crate::registry::{Client, Registry};
use crate::state::AppState;
use crate::throttle::{self, Policy, Verdict};
use actix_web::HttpRequest;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::net::IpAddr;

/// How the client presented itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP Basic with id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// `client_id` only: a public client.
    None,
}

/// The credentials a request carries, not yet checked.
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: Method,
}

/// Reads the client's credentials from the Authorization header and the form.
pub fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented, OAuthError> {
    let basic = match headers.get(AUTHORIZATION) {
        Some(value) => Some(parse_basic(value.as_bytes())?),
        None => None,
    };
    match basic {
        Some((id, secret)) => {
            if form.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method: both Basic and client_secret were sent",
                ));
            }
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                method: Method::Basic,
            })
        }
        None => {
            let Some(id) = form.get("client_id") else {
                return Err(OAuthError::invalid_client(
                    "no client authentication was included",
                    false,
                ));
            };
            let secret = form.get("client_secret").map(str::to_owned);
            let method = if secret.is_some() {
                Method::Post
            } else {
                Method::None
            };
            Ok(Presented {
                client_id: id.to_owned(),
                secret,
                method,
            })
        }
    }
}

/// Parses `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(value: &[u8]) -> Result<(String, String), OAuthError> {
    let bad =
        |why: &str| OAuthError::invalid_client(format!("malformed Basic credentials: {why}"), true);
    let text = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
    let (scheme, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("no credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            format!(
                "unsupported authentication scheme {scheme:?}; use Basic or client_secret_post"
            ),
            true,
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("not base64"))?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("no ':' between id and secret"))?;
    let id = decode_component(&decoded[..colon]).ok_or_else(|| bad("client id is not UTF-8"))?;
    let secret =
        decode_component(&decoded[colon + 1..]).ok_or_else(|| bad("secret is not UTF-8"))?;
    if id.is_empty() {
        return Err(bad("empty client id"));
    }
    Ok((id, secret))
}

/// Checks the presented credentials against the registry. Public clients pass with
/// their id alone; confidential ones must prove their secret. Failures are counted per
/// client id and per address, and past the limit refused before any hashing.
pub async fn authenticate<'r>(
    state: &AppState,
    registry: &'r Registry,
    address: IpAddr,
    presented: &Presented,
) -> Result<&'r Client, OAuthError> {
    let store = state.store.as_ref();
    let policy = Policy::client(&registry.limits, &presented.client_id, &address.to_string());
    if let Verdict::Refuse(left) = throttle::check(store, &policy)
        .await
        .map_err(OAuthError::server)?
    {
        tracing::warn!(event = "client_auth_refused", reason = "too_many_failures", client_id = %presented.client_id, remote = %address);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "client_auth").increment(1);
        return Err(OAuthError::too_many(left.as_secs().max(1)));
    }
    match check(state, registry, presented).await {
        Ok(client) => Ok(client),
        Err(e) => {
            throttle::failed(store, &policy)
                .await
                .map_err(OAuthError::server)?;
            tracing::info!(event = "client_auth_failed", client_id = %presented.client_id, remote = %address);
            Err(e)
        }
    }
}

async fn check<'r>(
    state: &AppState,
    registry: &'r Registry,
    presented: &Presented,
) -> Result<&'r Client, OAuthError> {
    let used_basic = presented.method == Method::Basic;
    let fail = || OAuthError::invalid_client("client authentication failed", used_basic);
    let client = registry.client(&presented.client_id).ok_or_else(fail)?;
    match (&presented.secret, client.public) {
        (None, true) => Ok(client),
        (Some(_), true) => Err(OAuthError::invalid_client(
            "this is a public client: send client_id without a secret",
            used_basic,
        )),
        (None, false) => Err(fail()),
        (Some(secret), false) => {
            if state
                .verifier
                .verify(&registry.verified, client, secret)
                .await
            {
                Ok(client)
            } else {
                Err(fail())
            }
        }
    }
}

/// Authenticates the client that sent `req` with `form`.
pub async fn authenticate_request<'r>(
    req: &HttpRequest,
    form: &Form,
    state: &AppState,
    registry: &'r Registry,
) -> Result<&'r Client, OAuthError> {
    let presented = presented(req.headers(), form)?;
    authenticate(state, registry, registry.client_ip(req), &presented).await
}

/// Authenticates the client of a token request and checks that it may use `grant`.
pub async fn authenticate_for<'r>(
    req: &HttpRequest,
    form: &Form,
    state: &AppState,
    registry: &'r Registry,
    grant: GrantType,
) -> Result<&'r Client, OAuthError> {
    let client = authenticate_request(req, form, state, registry).await?;
    if client.allows_grant(grant) {
        Ok(client)
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {} grant", grant.as_str()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> Result<(String, String), OAuthError> {
        parse_basic(format!("Basic {}", STANDARD.encode(raw)).as_bytes())
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            basic("my%20client:p%3Ass+word").expect("ok"),
            ("my client".into(), "p:ss word".into())
        );
        assert_eq!(
            basic("id:se:cret").expect("ok"),
            ("id".into(), "se:cret".into())
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        assert!(basic("no-colon").is_err());
        assert!(basic(":secret").is_err());
        assert!(parse_basic(b"Basic !!!").is_err());
        assert!(parse_basic(b"Bearer abc").is_err());
        assert!(parse_basic(b"Basic").is_err());
        let e = basic("%FF:x").expect_err("not UTF-8");
        assert!(e.basic_challenge);
    }
}
