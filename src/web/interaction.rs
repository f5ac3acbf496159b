//! The steps between an authorization request and its code: log the user in if they
//! must, ask for consent if the client needs it, then issue the code. A request waiting
//! on the user is kept in the store under a random id carried by the page's form.

use super::page;
use super::session::{self, Current};
use crate::oauth::authorize::{AuthRequest, ErrorRedirect, see_other, with_params};
use crate::registry::{BUILTIN_SCOPES, Registry};
use crate::secret::sha256;
use crate::state::AppState;
use crate::store::{CodeGrant, Session, StoreError};
use crate::tokens::access::now;
use crate::tokens::jwt::random_secret;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use std::time::Duration;

/// How long a user has to finish logging in and consenting.
const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

/// Takes `request` as far as it can go: a login page, a consent page, or the redirect
/// with a code. `fresh` is a session the user has just logged in to.
pub async fn proceed(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    request: AuthRequest,
    pending_id: Option<String>,
    fresh: Option<Current>,
) -> HttpResponse {
    match step(req, state, registry, request, pending_id, fresh).await {
        Ok(response) => response,
        Err(e) => unavailable(registry, &e),
    }
}

async fn step(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    request: AuthRequest,
    pending_id: Option<String>,
    fresh: Option<Current>,
) -> Result<HttpResponse, StoreError> {
    let Some(client) = registry.client(&request.client_id) else {
        return Ok(page::error(
            registry,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "This application is no longer registered here.",
        ));
    };
    let just_logged_in = fresh.is_some();
    let current = match fresh {
        Some(c) => Some(c),
        None => session::current(req, state, registry).await?,
    };
    let current = match current {
        Some(c) if just_logged_in || !needs_reauthentication(&request, &c.session) => c,
        _ => {
            if request.prompt.none {
                return Ok(refuse(
                    registry,
                    &request,
                    "login_required",
                    "the user is not logged in",
                )
                .await);
            }
            return login_page(req, state, registry, &request, pending_id, None).await;
        }
    };
    let granted = current.session.consents.get(&client.id);
    let consented = client.first_party
        || (!request.prompt.consent
            && request
                .scopes
                .iter()
                .all(|s| granted.is_some_and(|g| g.contains(s))));
    if !consented {
        if request.prompt.none {
            return Ok(refuse(
                registry,
                &request,
                "consent_required",
                "the user has not consented",
            )
            .await);
        }
        return consent_page(req, state, registry, &request, &current.session, pending_id).await;
    }
    issue_code(
        state,
        registry,
        &request,
        &current.session,
        pending_id.as_deref(),
    )
    .await
}

/// `prompt=login`, or a `max_age` the session's login is older than.
fn needs_reauthentication(request: &AuthRequest, session: &Session) -> bool {
    request.prompt.login
        || request
            .max_age
            .is_some_and(|max| now().saturating_sub(session.auth_time) > max)
}

async fn refuse(
    registry: &Registry,
    request: &AuthRequest,
    error: &'static str,
    description: &str,
) -> HttpResponse {
    ErrorRedirect {
        redirect_uri: request.redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: request.state.clone(),
    }
    .response(&registry.issuer)
}

/// The page for a store failure: the request cannot go on, and nothing was half done.
pub fn unavailable(registry: &Registry, e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "store failure during login");
    page::error(
        registry,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The sign-in service cannot complete this right now. Try again in a moment.",
    )
}

/// Keeps `request` in the store (once) and returns its id.
async fn remember(
    state: &AppState,
    request: &AuthRequest,
    pending_id: Option<String>,
) -> Result<String, StoreError> {
    if let Some(id) = pending_id {
        return Ok(id);
    }
    let id = random_secret().map_err(|e| StoreError(e.to_string()))?;
    let json = serde_json::to_string(request).map_err(|e| StoreError(e.to_string()))?;
    state
        .store
        .put_pending(sha256(id.as_bytes()), json, PENDING_TTL)
        .await?;
    Ok(id)
}

/// The pending request a form names, if it is still live.
pub async fn recall(
    state: &AppState,
    pending_id: Option<&str>,
) -> Result<Option<(String, AuthRequest)>, StoreError> {
    let Some(id) = pending_id else {
        return Ok(None);
    };
    let json = state.store.get_pending(sha256(id.as_bytes())).await?;
    Ok(json
        .and_then(|j| serde_json::from_str(&j).ok())
        .map(|r| (id.to_owned(), r)))
}

/// Renders a page whose form continues `request`: keeps the request in the store and
/// puts its id, the client's name and a CSRF token in the page.
async fn pending_page(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
    pending_id: Option<String>,
    template: &str,
    mut context: serde_json::Value,
) -> Result<HttpResponse, StoreError> {
    context["request_id"] = json!(remember(state, request, pending_id).await?);
    context["client_name"] = json!(
        registry
            .client(&request.client_id)
            .map_or("", |c| c.name.as_str())
    );
    Ok(page::render_form(
        req,
        registry,
        template,
        context,
        Some(&request.redirect_uri),
    ))
}

/// The login form for `request`, with `error` shown when a previous try failed.
pub async fn login_page(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
    pending_id: Option<String>,
    error: Option<(&str, &str)>,
) -> Result<HttpResponse, StoreError> {
    let (message, username) = match error {
        Some((message, username)) => (Some(message), username),
        None => (None, request.login_hint.as_deref().unwrap_or_default()),
    };
    let context = json!({"username": username, "error": message});
    pending_page(
        req,
        state,
        registry,
        request,
        pending_id,
        "login.html",
        context,
    )
    .await
}

async fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
    session: &Session,
    pending_id: Option<String>,
) -> Result<HttpResponse, StoreError> {
    let user = registry.user_by_id(&session.user_id);
    let scopes: Vec<_> = request
        .scopes
        .iter()
        .map(|s| json!({"name": s, "description": scope_description(registry, s)}))
        .collect();
    let context = json!({
        "user_name": user.map(|u| u.name.as_deref().unwrap_or(&u.username)),
        "scopes": scopes,
    });
    pending_page(
        req,
        state,
        registry,
        request,
        pending_id,
        "consent.html",
        context,
    )
    .await
}

/// What granting `scope` means, in words for the consent page.
fn scope_description<'a>(registry: &'a Registry, scope: &str) -> &'a str {
    match scope {
        "openid" => "Sign you in with your account",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Keep access while you are away",
        custom if !BUILTIN_SCOPES.contains(&custom) => {
            registry.scopes.get(custom).map_or("", String::as_str)
        }
        _ => "",
    }
}

/// Issues the code for `request` and redirects back to the client with it.
pub async fn issue_code(
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
    session: &Session,
    pending_id: Option<&str>,
) -> Result<HttpResponse, StoreError> {
    let code = random_secret().map_err(|e| StoreError(e.to_string()))?;
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request
            .redirect_uri_given
            .then(|| request.redirect_uri.clone()),
        code_challenge: request.code_challenge.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        user_id: session.user_id.clone(),
        auth_time: session.auth_time,
        issued: None,
    };
    state
        .store
        .put_code(
            sha256(code.as_bytes()),
            grant,
            registry.tokens.authorization_code_ttl,
        )
        .await?;
    if let Some(id) = pending_id {
        state.store.delete_pending(sha256(id.as_bytes())).await?;
    }
    tracing::info!(event = "code_issued", client_id = %request.client_id, user_id = %session.user_id);
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &registry.issuer));
    Ok(see_other(&with_params(&request.redirect_uri, &params)))
}
