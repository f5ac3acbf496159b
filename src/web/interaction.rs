//! The steps between an authorization request and its code: log the user in if they
//! must, ask for consent if the client needs it, then have the authorization-code grant
//! issue the code. A request waiting on the user is kept in the store under a random
//! id carried by the page's form.

use super::page;
use super::session::{self, Current};
use crate::crypto::{random_secret, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::see_other;
use crate::model::BUILTIN_SCOPES;
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::grants::authorization_code;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::Session;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use std::time::Duration;

/// How long a user has to finish logging in and consenting.
const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

/// One request to a page of the login flow, with what every step needs.
pub struct Step<'a> {
    pub req: &'a HttpRequest,
    pub ip: ClientIp,
    pub state: &'a AppState,
    pub registry: &'a Registry,
}

impl Step<'_> {
    /// Takes `request` as far as it can go: a login page, a consent page, or the
    /// redirect with a code. `fresh` is a session the user has just logged in to.
    pub async fn proceed(
        &self,
        request: AuthRequest,
        pending_id: Option<String>,
        fresh: Option<Current>,
    ) -> HttpResponse {
        match self.step(request, pending_id, fresh).await {
            Ok(response) | Err(response) => response,
        }
    }

    async fn step(
        &self,
        request: AuthRequest,
        pending_id: Option<String>,
        fresh: Option<Current>,
    ) -> Result<HttpResponse, HttpResponse> {
        let registry = self.registry;
        let Some(client) = registry.client(&request.client_id) else {
            return Ok(page::invalid_request(
                registry,
                "This application is no longer registered here.",
            ));
        };
        let just_logged_in = fresh.is_some();
        let current = match fresh {
            Some(c) => Some(c),
            None => session::current(self.req, self.state, registry)
                .await
                .map_err(|e| self.unavailable(e))?,
        };
        let current = match current {
            Some(c) if just_logged_in || !self.needs_reauthentication(&request, &c.session) => c,
            _ => {
                if request.prompt.none {
                    return Ok(refuse(
                        registry,
                        &request,
                        ErrorCode::LoginRequired,
                        "the user is not logged in",
                    ));
                }
                return self.login_page(&request, pending_id, None).await;
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
                    ErrorCode::ConsentRequired,
                    "the user has not consented",
                ));
            }
            return self
                .consent_page(&request, &current.session, pending_id)
                .await;
        }
        self.issue_code(&request, &current.session, pending_id.as_deref())
            .await
    }

    /// `prompt=login`, or a `max_age` the session's login is older than.
    fn needs_reauthentication(&self, request: &AuthRequest, session: &Session) -> bool {
        request.prompt.login
            || request
                .max_age
                .is_some_and(|max| self.state.clock.now().saturating_sub(session.auth_time) > max)
    }

    /// The page for a store (or random-number) failure: the request cannot go on, and
    /// nothing was half done.
    pub fn unavailable(&self, e: impl std::fmt::Display) -> HttpResponse {
        page::unavailable(self.registry, e)
    }

    /// Keeps `request` in the store (once) and returns its id.
    async fn remember(
        &self,
        request: &AuthRequest,
        pending_id: Option<String>,
    ) -> Result<String, HttpResponse> {
        if let Some(id) = pending_id {
            return Ok(id);
        }
        let id = random_secret().map_err(|e| self.unavailable(e))?;
        let json = serde_json::to_string(request).map_err(|e| self.unavailable(e))?;
        self.state
            .store
            .put_pending(sha256(id.as_bytes()), json, PENDING_TTL)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(id)
    }

    /// Renders a page whose form continues `request`: keeps the request in the store
    /// and puts its id, the client's name and a CSRF token in the page.
    async fn pending_page(
        &self,
        request: &AuthRequest,
        pending_id: Option<String>,
        template: &str,
        mut context: serde_json::Value,
    ) -> Result<HttpResponse, HttpResponse> {
        context["request_id"] = json!(self.remember(request, pending_id).await?);
        context["client_name"] = json!(
            self.registry
                .client(&request.client_id)
                .map_or("", |c| c.name.as_str())
        );
        Ok(page::render_form(
            self.req,
            self.registry,
            template,
            context,
            Some(&request.redirect_uri),
        ))
    }

    /// The login form for `request`, with `error` shown when a previous try failed.
    pub async fn login_page(
        &self,
        request: &AuthRequest,
        pending_id: Option<String>,
        error: Option<(&str, &str)>,
    ) -> Result<HttpResponse, HttpResponse> {
        let (message, username) = match error {
            Some((message, username)) => (Some(message), username),
            None => (None, request.login_hint.as_deref().unwrap_or_default()),
        };
        let context = json!({"username": username, "error": message});
        self.pending_page(request, pending_id, "login.html", context)
            .await
    }

    async fn consent_page(
        &self,
        request: &AuthRequest,
        session: &Session,
        pending_id: Option<String>,
    ) -> Result<HttpResponse, HttpResponse> {
        let scopes: Vec<_> = request
            .scopes
            .iter()
            .map(|s| json!({"name": s, "description": scope_description(self.registry, s)}))
            .collect();
        let context = json!({
            "user_name": session.identity.display_name(),
            "scopes": scopes,
        });
        self.pending_page(request, pending_id, "consent.html", context)
            .await
    }

    /// Has the authorization-code grant issue the code for `request`, forgets the
    /// pending request, and redirects back to the client with the code.
    pub async fn issue_code(
        &self,
        request: &AuthRequest,
        session: &Session,
        pending_id: Option<&str>,
    ) -> Result<HttpResponse, HttpResponse> {
        let location = authorization_code::issue_code(
            self.state,
            self.registry,
            request,
            &session.identity,
            session.auth_time,
        )
        .await
        .map_err(|e| self.unavailable(e))?;
        if let Some(id) = pending_id {
            self.state
                .store
                .delete_pending(sha256(id.as_bytes()))
                .await
                .map_err(|e| self.unavailable(e))?;
        }
        tracing::info!(event = "code_issued", remote = %self.ip, client_id = %request.client_id, user_id = %session.identity.subject);
        Ok(see_other(&location))
    }

    /// The pending request a form names, if it is still live.
    pub async fn recall(
        &self,
        pending_id: Option<&str>,
    ) -> Result<Option<(String, AuthRequest)>, HttpResponse> {
        let Some(id) = pending_id else {
            return Ok(None);
        };
        let json = self
            .state
            .store
            .get_pending(sha256(id.as_bytes()))
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .map(|r| (id.to_owned(), r)))
    }
}

/// The redirect telling the client why `request` could not go on.
pub fn refuse(
    registry: &Registry,
    request: &AuthRequest,
    code: ErrorCode,
    description: &str,
) -> HttpResponse {
    OAuthError::new(code, description).redirect(&request.return_to(), &registry.issuer)
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
