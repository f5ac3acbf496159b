//! An OpenID Connect provider, through the `openidconnect` crate: discovery and its
//! keys, the authorization request (PKCE S256, `state`, `nonce`, `prompt=login`,
//! `max_age`), the code exchange and the ID token checks (`iss`, `aud`, `azp`, `exp`,
//! `nonce`, the provider's algorithm allow-list, which never has `none` or HS*), and a
//! revalidation with the kept refresh token. What the crate lacks is added here: the
//! RFC 9207 `iss` response parameter (`check_response_iss`), and keys refetched on an
//! unknown `kid` (`connect` decides when).

use crate::upstream::http::{HttpError, Outbound};
use crate::upstream::provider::Provider;
use crate::upstream::{UpstreamError, Vouched};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreIdToken,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Discovery fields the crate does not model.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct Extra {
    /// RFC 9207: the provider puts `iss` in its authorization responses.
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for Extra {}

/// A provider's discovery document, with its keys.
pub(crate) type Metadata = ProviderMetadata<
    Extra,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The audit reason of an upstream answer that does not parse.
pub(crate) const MALFORMED: &str = "malformed_answer";

fn unavailable(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(e.to_string())
}

/// Fetches the provider's discovery document (checking that it names `issuer`) and
/// its keys.
pub(crate) async fn discover(http: &Outbound, issuer: &str) -> Result<Metadata, UpstreamError> {
    let url = IssuerUrl::new(issuer.to_owned()).map_err(unavailable)?;
    Metadata::discover_async(url, http)
        .await
        .map_err(unavailable)
}

/// Fetches the provider's keys again (a `kid` it signed with is not among them).
pub(crate) async fn refetch_keys(
    http: &Outbound,
    metadata: &Metadata,
) -> Result<Metadata, UpstreamError> {
    let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(unavailable)?;
    Ok(metadata.clone().set_jwks(jwks))
}

macro_rules! client {
    ($metadata:expr, $provider:expr, $callback:expr) => {
        CoreClient::from_provider_metadata(
            $metadata.clone(),
            ClientId::new($provider.client_id.clone()),
            Some(ClientSecret::new($provider.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new($callback.to_owned()).map_err(unavailable)?)
    };
}

/// What the callback needs to finish a login started with [`authorization_url`].
pub(crate) struct Started {
    /// Where to send the browser.
    pub(crate) url: String,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
}

/// The authorization request to the provider: PKCE S256, `state`, a fresh `nonce`,
/// and `prompt=login` / `max_age` when the client's request asked for them.
pub(crate) fn authorization_url(
    metadata: &Metadata,
    provider: &Provider,
    callback: &str,
    state: &str,
    prompt_login: bool,
    max_age: Option<u64>,
) -> Result<Started, UpstreamError> {
    let client = client!(metadata, provider, callback);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = state.to_owned();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        move || CsrfToken::new(state),
        Nonce::new_random,
    );
    for scope in &provider.scopes {
        if scope != "openid" {
            request = request.add_scope(Scope::new(scope.clone()));
        }
    }
    request = request.set_pkce_challenge(challenge);
    if prompt_login {
        request = request.add_prompt(CoreAuthPrompt::Login);
    }
    if let Some(max_age) = max_age {
        request = request.set_max_age(std::time::Duration::from_secs(max_age));
    }
    let (url, _, nonce) = request.url();
    Ok(Started {
        url: url.to_string(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// RFC 9207: when the provider advertises `iss` in its authorization responses the
/// callback must carry it, and whenever it is present it must be the provider's issuer
/// (a response from another provider, mixed up, is refused).
pub(crate) fn check_response_iss(
    metadata: &Metadata,
    iss: Option<&str>,
) -> Result<(), UpstreamError> {
    let advertised = metadata
        .additional_metadata()
        .authorization_response_iss_parameter_supported
        .unwrap_or(false);
    match iss {
        Some(iss) if iss != metadata.issuer().as_str() => Err(UpstreamError::refused(
            "wrong_iss",
            "the authorization response names another issuer",
        )),
        None if advertised => Err(UpstreamError::refused(
            "missing_iss",
            "the provider advertises iss in its responses, and this one has none",
        )),
        _ => Ok(()),
    }
}

/// The signature algorithms a provider's config allows, as the crate names them.
fn algorithms(provider: &Provider) -> Vec<CoreJwsSigningAlgorithm> {
    provider
        .algorithms
        .iter()
        .filter_map(|a| {
            Some(match a.as_str() {
                "RS256" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                "RS384" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
                "RS512" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
                "PS256" => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
                "PS384" => CoreJwsSigningAlgorithm::RsaSsaPssSha384,
                "PS512" => CoreJwsSigningAlgorithm::RsaSsaPssSha512,
                "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                "ES384" => CoreJwsSigningAlgorithm::EcdsaP384Sha384,
                "EdDSA" => CoreJwsSigningAlgorithm::EdDsa,
                _ => return None,
            })
        })
        .collect()
}

/// Tokens from the provider's token endpoint, before the ID token is checked.
pub(crate) struct Exchanged {
    id_token: Option<CoreIdToken>,
    refresh_token: Option<String>,
    access_token: String,
}

impl Exchanged {
    /// The refresh token to keep, if the provider gave one.
    pub(crate) fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }
}

fn token_error(
    e: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>,
) -> UpstreamError {
    match e {
        RequestTokenError::ServerResponse(body) => match body.error() {
            CoreErrorResponseType::Extension(code)
                if code == "temporarily_unavailable" || code == "server_error" =>
            {
                unavailable(code)
            }
            other => UpstreamError::Denied(other.to_string()),
        },
        // An answer that arrived but does not parse (an ID token without `sub`, a
        // body that is no token response) is refused, not retried: the provider
        // answered, wrongly.
        e @ RequestTokenError::Parse(..) => UpstreamError::refused(MALFORMED, e),
        other => unavailable(other),
    }
}

/// Exchanges the authorization `code` (with the PKCE verifier) at the token endpoint.
pub(crate) async fn exchange(
    http: &Outbound,
    metadata: &Metadata,
    provider: &Provider,
    callback: &str,
    code: &str,
    pkce_verifier: &str,
) -> Result<Exchanged, UpstreamError> {
    let client = client!(metadata, provider, callback);
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(unavailable)?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
        .request_async(http)
        .await
        .map_err(token_error)?;
    Ok(Exchanged {
        id_token: response.id_token().cloned(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        access_token: response.access_token().secret().clone(),
    })
}

/// The outcome of checking an ID token.
pub(crate) enum Checked {
    /// It verifies: the user's claims.
    Good(Vouched),
    /// It names a key the provider's keys do not have: refetch them and check again.
    UnknownKey,
}

/// Checks the ID token of `exchanged` (`iss`, `aud`, `azp`, `exp` at `now`, the nonce
/// when `nonce` is given, the algorithm allow-list) and returns its claims. A login
/// always has a nonce; a refresh's ID token has none to check.
pub(crate) fn check_id_token(
    metadata: &Metadata,
    provider: &Provider,
    callback: &str,
    exchanged: &Exchanged,
    nonce: Option<&str>,
    now: u64,
) -> Result<Checked, UpstreamError> {
    let client = client!(metadata, provider, callback);
    let Some(id_token) = &exchanged.id_token else {
        return Err(UpstreamError::refused(
            "no_id_token",
            "the provider sent no ID token",
        ));
    };
    let now = chrono::DateTime::from_timestamp(i64::try_from(now).unwrap_or(i64::MAX), 0)
        .unwrap_or_default();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(algorithms(provider))
        .set_time_fn(move || now);
    let verified = match nonce {
        Some(nonce) => id_token.claims(&verifier, &Nonce::new(nonce.to_owned())),
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    };
    let claims = match verified {
        Ok(c) => c,
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => return Ok(Checked::UnknownKey),
        Err(e) => {
            let reason = match &e {
                ClaimsVerificationError::InvalidNonce(_) => "wrong_nonce",
                ClaimsVerificationError::InvalidIssuer(_) => "wrong_iss",
                ClaimsVerificationError::InvalidAudience(_) => "wrong_aud",
                ClaimsVerificationError::Expired(_) => "expired_id_token",
                _ => "bad_id_token",
            };
            return Err(UpstreamError::refused(reason, e));
        }
    };
    let auth_time = claims
        .auth_time()
        .and_then(|t| u64::try_from(t.timestamp()).ok());
    // The claims the crate does not model (groups, a tenant id) are read from the
    // payload it has just verified.
    let raw = id_token.to_string();
    let payload = raw
        .split('.')
        .nth(1)
        .and_then(|p| B64.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .ok_or_else(|| UpstreamError::refused("bad_id_token", "unreadable payload"))?;
    Ok(Checked::Good(Vouched {
        claims: payload,
        token: exchanged.refresh_token.clone(),
        auth_time,
    }))
}

/// Asks the provider again with the kept refresh token: the new tokens (the refresh
/// token may have rotated). `invalid_grant` and the like are [`UpstreamError::Denied`].
pub(crate) async fn refresh(
    http: &Outbound,
    metadata: &Metadata,
    provider: &Provider,
    callback: &str,
    refresh_token: &str,
) -> Result<Exchanged, UpstreamError> {
    let client = client!(metadata, provider, callback);
    let token = RefreshToken::new(refresh_token.to_owned());
    let response = client
        .exchange_refresh_token(&token)
        .map_err(unavailable)?
        .request_async(http)
        .await
        .map_err(token_error)?;
    Ok(Exchanged {
        id_token: response.id_token().cloned(),
        refresh_token: Some(
            response
                .refresh_token()
                .map_or_else(|| refresh_token.to_owned(), |t| t.secret().clone()),
        ),
        access_token: response.access_token().secret().clone(),
    })
}

/// The provider's userinfo for `exchanged`'s access token (a refresh without an ID
/// token), when it has the endpoint.
pub(crate) async fn userinfo(
    http: &Outbound,
    metadata: &Metadata,
    exchanged: &Exchanged,
) -> Result<Map<String, Value>, UpstreamError> {
    let Some(url) = metadata.userinfo_endpoint() else {
        return Err(UpstreamError::refused(
            "no_id_token",
            "no ID token and no userinfo endpoint",
        ));
    };
    let bearer = format!("Bearer {}", exchanged.access_token);
    let (status, body) = http
        .get(
            url.as_str(),
            &[("authorization", &bearer), ("accept", "application/json")],
        )
        .await
        .map_err(unavailable)?;
    match status {
        200 => serde_json::from_slice(&body).map_err(|e| UpstreamError::refused(MALFORMED, e)),
        401 | 403 => Err(UpstreamError::Denied(format!("userinfo answered {status}"))),
        _ => Err(unavailable(format!("userinfo answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::upstream::oidc::*;

    fn metadata(advertises: Option<bool>) -> Metadata {
        let doc = serde_json::json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/authorize",
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "authorization_response_iss_parameter_supported": advertises,
        });
        serde_json::from_value(doc).expect("metadata")
    }

    #[test]
    fn the_response_iss_is_required_when_advertised_and_checked_when_present() {
        let (yes, no) = (metadata(Some(true)), metadata(None));
        assert!(check_response_iss(&yes, Some("https://idp.example.com")).is_ok());
        assert!(check_response_iss(&yes, None).is_err());
        assert!(check_response_iss(&yes, Some("https://evil.example.com")).is_err());
        assert!(check_response_iss(&no, None).is_ok());
        assert!(check_response_iss(&no, Some("https://evil.example.com")).is_err());
    }
}
