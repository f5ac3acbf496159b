//! The authorization request (OAuth 2.1 4.1.1, OIDC Core 3.1.2), checked: pure rules
//! from parameters and the registry to an [`AuthRequest`] or a [`Rejection`]. An unknown
//! client or an unregistered redirect URI is shown to the user as an error page and
//! never redirected; every other error goes back to the client. The `/authorize`
//! handlers and the pages that continue a request are in `web`.

use crate::config::file::GrantType;
use crate::error::{ErrorCode, OAuthError, ReturnTo};
use crate::http::form::Form;
use crate::model::Client;
use crate::oauth::target;
use crate::protocol::{pkce, redirect_uri, scope};
use crate::registry::Registry;
use serde::{Deserialize, Serialize};

/// A validated authorization request, kept while the user logs in and consents.
/// (`Default` is for tests that build one field by field.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AuthRequest {
    pub(crate) client_id: String,
    /// Where the response goes: the requested URI, which matched a registered one.
    pub(crate) redirect_uri: String,
    /// Whether the request named its `redirect_uri` (the token request must repeat it).
    pub(crate) redirect_uri_given: bool,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) code_challenge: String,
    pub(crate) prompt: Prompt,
    pub(crate) max_age: Option<u64>,
    pub(crate) login_hint: Option<String>,
    /// `idp_hint`: a provider (declared, allowed for the client) to sign in through
    /// without the login page; any other value is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idp_hint: Option<String>,
    /// The resources (RFC 8707 `resource`) the tokens are for; none: the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resources: Vec<String>,
    /// The RFC 7638 thumbprint of the DPoP key its code is bound to (RFC 9449 10):
    /// the `dpop_jkt` parameter, or the key of a proof sent with the pushed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_jkt: Option<String>,
    /// When it was pushed (RFC 9126): the id of the pushed entry, used up when its code
    /// is issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pushed: Option<String>,
    /// Its `acr_values` named the two-factor `acr` (`protocol::acr::ACR_MFA`): the
    /// login needs a second factor. Other values are ignored (OIDC Core 3.1.2.1:
    /// voluntary).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) acr_mfa: bool,
}

/// The `prompt` values gatehouse honours.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Prompt {
    pub(crate) none: bool,
    pub(crate) login: bool,
    pub(crate) consent: bool,
}

impl AuthRequest {
    /// Where an error for this request goes back to.
    pub(crate) fn return_to(&self) -> ReturnTo<'_> {
        ReturnTo {
            redirect_uri: &self.redirect_uri,
            state: self.state.as_deref(),
        }
    }
}

/// Why a request was refused, and how to tell.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Shown to the user: the client or redirect URI cannot be trusted with a redirect.
    Page(String),
    /// Sent back to the client's redirect URI (with `state`).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

/// The longest `state`, `nonce` or `login_hint` accepted, in bytes: a request waiting
/// for a login is kept in the store with them, so they are bounded like everything an
/// unauthenticated caller can make the server keep.
pub(crate) const MAX_ECHOED_LEN: usize = 1024;

/// Checks an authorization request against the registry.
pub(crate) fn validate(
    registry: &Registry,
    document: Option<&Client>,
    params: &Form,
) -> Result<AuthRequest, Rejection> {
    let (client, redirect_uri) = trusted_redirect(registry, document, params)?;
    let state = params.get("state").map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > MAX_ECHOED_LEN) {
        // Not echoed back: it is the very thing refused.
        return Err(Rejection::Redirect {
            redirect_uri,
            state: None,
            error: too_long("state"),
        });
    }
    match checked(client, params) {
        Ok(checked) => Ok(AuthRequest {
            client_id: client.id.clone(),
            redirect_uri_given: params.get("redirect_uri").is_some(),
            redirect_uri,
            state,
            nonce: params.get("nonce").map(str::to_owned),
            scopes: checked.scopes,
            resources: checked.resources,
            code_challenge: checked.code_challenge,
            prompt: checked.prompt,
            max_age: checked.max_age,
            login_hint: params.get("login_hint").map(str::to_owned),
            idp_hint: params
                .get("idp_hint")
                .filter(|id| registry.provider(id).is_some() && client.allows_provider(id))
                .map(str::to_owned),
            dpop_jkt: checked.dpop_jkt,
            pushed: None,
            acr_mfa: params
                .get("acr_values")
                .is_some_and(crate::protocol::acr::asks_mfa),
        }),
        Err(error) => Err(Rejection::Redirect {
            redirect_uri,
            state,
            error,
        }),
    }
}

/// The client and the redirect URI its response may go to; any doubt about either is
/// an error page (RFC 6749 4.1.2.1: never redirect to an unverified URI).
fn trusted_redirect<'r>(
    registry: &'r Registry,
    document: Option<&'r Client>,
    params: &Form,
) -> Result<(&'r Client, String), Rejection> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| Rejection::Page("The request has no client_id.".into()))?;
    let document = document.filter(|c| c.id == client_id);
    let client = registry.client(client_id).or(document).ok_or_else(|| {
        Rejection::Page(format!(
            "The application {client_id:?} is not registered here."
        ))
    })?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(requested) => redirect_uri::find_match(&client.redirect_uris, requested)
            .map(|_| requested.to_owned())
            .ok_or_else(|| {
                Rejection::Page("The redirect_uri is not registered for this application.".into())
            })?,
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            [] => {
                return Err(Rejection::Page(
                    "This application has no redirect URI registered.".into(),
                ));
            }
            _ => {
                return Err(Rejection::Page(
                    "The request has no redirect_uri, and this application registers several."
                        .into(),
                ));
            }
        },
    };
    Ok((client, redirect_uri))
}

/// What the rest of the parameters ask for, once checked.
struct Checked {
    scopes: Vec<String>,
    resources: Vec<String>,
    code_challenge: String,
    prompt: Prompt,
    max_age: Option<u64>,
    dpop_jkt: Option<String>,
}

/// Checks everything but the client and redirect URI; errors go back to the client.
fn checked(client: &Client, params: &Form) -> Result<Checked, OAuthError> {
    let invalid = OAuthError::invalid_request;
    for name in ["nonce", "login_hint"] {
        if params.get(name).is_some_and(|v| v.len() > MAX_ECHOED_LEN) {
            return Err(too_long(name));
        }
    }
    if params.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(invalid("response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(invalid("only response_mode=query is supported"));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    let code_challenge = pkce_challenge(params)?;
    let scopes = requested_scopes(params.get("scope"), client)?;
    let resources = target::admitted(params, client)?;
    let prompt = prompt(params)?;
    let max_age = match params.get("max_age") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| invalid("max_age must be a number of seconds"))?,
        ),
        None => None,
    };
    let dpop_jkt = match params.get("dpop_jkt") {
        Some(jkt) if pkce::is_challenge_syntax(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(invalid(
                "dpop_jkt is not a JWK SHA-256 thumbprint (43 base64url characters)",
            ));
        }
        None => None,
    };
    Ok(Checked {
        scopes,
        resources,
        code_challenge,
        prompt,
        max_age,
        dpop_jkt,
    })
}

fn too_long(name: &str) -> OAuthError {
    OAuthError::invalid_request(format!("{name} is longer than {MAX_ECHOED_LEN} bytes"))
}

/// The PKCE challenge: required, S256 only (OAuth 2.1 4.1.1).
fn pkce_challenge(params: &Form) -> Result<String, OAuthError> {
    let invalid = OAuthError::invalid_request;
    let challenge = params
        .get("code_challenge")
        .ok_or_else(|| invalid("PKCE is required: code_challenge is missing"))?;
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(invalid(
                "code_challenge_method must be S256 (plain is not allowed)",
            ));
        }
        Some(_) => return Err(invalid("unsupported code_challenge_method; use S256")),
    }
    if !pkce::is_challenge_syntax(challenge) {
        return Err(invalid(
            "code_challenge is not a base64url SHA-256 (43 characters)",
        ));
    }
    Ok(challenge.to_owned())
}

/// The `prompt` values (OIDC Core 3.1.2.1); `none` stands alone.
fn prompt(params: &Form) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for value in params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported prompt value {value:?}"
                )));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// The scopes a request's `scope` parameter asks of `client` (its default scopes when
/// absent): `invalid_scope` for one the client is not allowed.
pub(crate) fn requested_scopes(
    requested: Option<&str>,
    client: &Client,
) -> Result<Vec<String>, OAuthError> {
    match requested {
        Some(requested) => Ok(scope::narrow(requested, &client.allowed_scopes)
            .map_err(|bad| {
                OAuthError::invalid_scope(format!("scope {bad:?} is not allowed for this client"))
            })?
            .into_iter()
            .map(str::to_owned)
            .collect()),
        None => Ok(client.default_scopes.clone()),
    }
}
