//! The authorization endpoint (OAuth 2.1 4.1.1, OIDC Core 3.1.2): GET with a query, or a
//! POSTed form. An unknown client or an unregistered redirect URI is shown to the user as
//! an error page and never redirected; every other error goes back to the client.

use super::form::Form;
use super::{pkce, redirect_uri, scope};
use crate::config::model::GrantType;
use crate::registry::Registry;
use crate::state::AppState;
use crate::web::{interaction, page};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// A validated authorization request, kept while the user logs in and consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    /// Where the response goes: the requested URI, which matched a registered one.
    pub redirect_uri: String,
    /// Whether the request named its `redirect_uri` (the token request must repeat it).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
}

/// The `prompt` values gatehouse honours.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// Why a request was refused, and how to tell.
#[derive(Debug)]
pub enum Rejection {
    /// Shown to the user: the client or redirect URI cannot be trusted with a redirect.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect(ErrorRedirect),
}

/// An error response for the client (RFC 6749 4.1.2.1, with `iss` per RFC 9207).
#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
}

/// Checks an authorization request against the registry.
pub fn validate(registry: &Registry, params: &Form) -> Result<AuthRequest, Rejection> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| Rejection::Page("The request has no client_id.".into()))?;
    let client = registry.client(client_id).ok_or_else(|| {
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
    let state = params.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description: description.to_owned(),
            state: state.clone(),
        })
    };
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let challenge = params.get("code_challenge").ok_or_else(|| {
        fail(
            "invalid_request",
            "PKCE is required: code_challenge is missing",
        )
    })?;
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not allowed)",
            ));
        }
        Some(_) => {
            return Err(fail(
                "invalid_request",
                "unsupported code_challenge_method; use S256",
            ));
        }
    }
    if !pkce::is_challenge_syntax(challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 (43 characters)",
        ));
    }
    let scopes: Vec<String> = match params.get("scope") {
        Some(requested) => scope::narrow(requested, &client.allowed_scopes)
            .map_err(|bad| {
                fail(
                    "invalid_scope",
                    &format!("scope {bad:?} is not allowed for this client"),
                )
            })?
            .into_iter()
            .map(str::to_owned)
            .collect(),
        None => client.default_scopes.clone(),
    };
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
                return Err(fail(
                    "invalid_request",
                    &format!("unsupported prompt value {value:?}"),
                ));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| fail("invalid_request", "max_age must be a number of seconds"))?,
        ),
        None => None,
    };
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri_given: params.get("redirect_uri").is_some(),
        redirect_uri,
        state,
        nonce: params.get("nonce").map(str::to_owned),
        scopes,
        code_challenge: challenge.to_owned(),
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
    })
}

/// `uri` with `params` added to its query (keeping any query it has).
pub fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    page::secured(HttpResponse::SeeOther(), None)
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

impl ErrorRedirect {
    /// The redirect carrying this error, `state` and `iss`.
    pub fn response(&self, issuer: &str) -> HttpResponse {
        let mut params = vec![
            ("error", self.error),
            ("error_description", self.description.as_str()),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        see_other(&with_params(&self.redirect_uri, &params))
    }
}

/// `GET /authorize`.
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let form = Form::parse(req.query_string().as_bytes());
    handle(&req, form, &state).await
}

/// `POST /authorize` (a form, OIDC Core 3.1.2.1).
pub async fn post(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    handle(&req, Form::parse(&body), &state).await
}

async fn handle(
    req: &HttpRequest,
    form: Result<Form, super::error::OAuthError>,
    state: &AppState,
) -> HttpResponse {
    let registry = state.snapshot();
    let form = match form {
        Ok(f) => f,
        Err(e) => {
            return page::error(
                &registry,
                StatusCode::BAD_REQUEST,
                "Invalid request",
                &e.description,
            );
        }
    };
    match validate(&registry, &form) {
        Ok(request) => interaction::proceed(req, state, &registry, request, None, None).await,
        Err(Rejection::Page(message)) => page::error(
            &registry,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &message,
        ),
        Err(Rejection::Redirect(r)) => r.response(&registry.issuer),
    }
}
