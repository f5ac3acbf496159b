//! The pages between an authorization request and its code. [`Step::proceed`] gathers
//! the facts (the request, the browser's session, the client, the kept request), asks
//! the login policy (`oauth::interaction::policy::next`) what comes next, and renders
//! that one step: the login page, a provider's authorization URL, the consent page, the
//! redirect with a code, or an error back to the client. The waiting requests are
//! `oauth::interaction::pending`; this module only turns its refusals into pages.

use super::page;
use super::session::{self, Current};
use crate::crypto::random_secret;
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::see_other;
use crate::model::BUILTIN_SCOPES;
use crate::model::Client;
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::client_document;
use crate::oauth::grants::authorization_code;
use crate::oauth::interaction::pending::{Awaiting, Kept, Pendings, Refusal, UpstreamAttempt};
use crate::oauth::interaction::policy::{self, Facts, Next, SessionFacts};
use crate::oauth::par;
use crate::oauth::target;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::Session;
use crate::throttle;
use crate::upstream::provider::{Provider, RefreshPolicy};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use std::borrow::Cow;

/// One request to a page of the login flow, with what every step needs.
pub struct Step<'a> {
    pub req: &'a HttpRequest,
    pub ip: ClientIp,
    pub state: &'a AppState,
    pub registry: &'a Registry,
}

/// True when `client` may use the session `current` (a login through a provider it
/// does not allow is as no session: the user signs in again, with a password or a
/// provider the client allows).
pub(super) fn allowed(client: &crate::model::Client, current: &Current, ip: ClientIp) -> bool {
    let ok = client.allows_identity(&current.session.identity);
    if !ok {
        tracing::info!(event = "session_not_used", client_id = %client.id, remote = %ip, reason = "provider_not_allowed", "the session signed in through a provider this client does not allow");
    }
    ok
}

impl<'a> Step<'a> {
    /// Takes `request` as far as it can go: a login page, a provider, a consent page,
    /// or the redirect with a code. `kept` is the stored request a form continues
    /// (none for a new `/authorize`); `fresh` is a session the user has just logged in
    /// to.
    pub async fn proceed(
        &self,
        request: AuthRequest,
        kept: Option<Kept>,
        fresh: Option<Current>,
    ) -> HttpResponse {
        match self.step(request, kept, fresh).await {
            Ok(response) | Err(response) => response,
        }
    }

    async fn step(
        &self,
        request: AuthRequest,
        kept: Option<Kept>,
        fresh: Option<Current>,
    ) -> Result<HttpResponse, HttpResponse> {
        let registry = self.registry;
        let client = match client_document::lookup(self.state, registry, &request.client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => {
                return Ok(page::invalid_request(
                    registry,
                    "This application is no longer registered here.",
                ));
            }
            Err(e) => return Ok(page::invalid_client(registry, &e.description)),
        };
        let current = match fresh {
            Some(c) => Some(c),
            None => self.session().await?,
        };
        let current = current.filter(|c| allowed(&client, c, self.ip));
        let session = current.as_ref().map(|c| &c.session);
        let facts = Facts {
            request: &request,
            made_at: kept.as_ref().map(|k| k.pending.created_at),
            now: self.state.clock.now(),
            session: session.map(|s| self.session_facts(s, &request, &client)),
            first_party: client.first_party,
            refreshes: client.allows_grant(crate::config::file::GrantType::RefreshToken),
            hinted: request
                .idp_hint
                .as_deref()
                .and_then(|id| registry.provider(id))
                .filter(|p| client.allows_provider(&p.id))
                .map(|p| p.id.as_str()),
            upstream_token_kept: kept
                .as_ref()
                .is_some_and(|k| k.pending.upstream_token.is_some()),
            upstream_trips: kept.as_ref().map_or(0, |k| k.pending.upstream_trips),
        };
        match (policy::next(&facts), session) {
            (Next::Login, _) => self.login_page(&request, kept, None).await,
            (Next::Upstream(id), _) => match registry.provider(&id) {
                Some(provider) => self.go_upstream(&request, kept, provider).await,
                None => self.login_page(&request, kept, None).await,
            },
            (Next::Refuse(code, why), _) => Ok(refuse(registry, &request, code, why)),
            (Next::Consent, Some(session)) => self.consent_page(&request, session, kept).await,
            (Next::Issue, Some(_)) => match current.as_ref() {
                Some(current) => self.issue_code(&request, current, kept.as_ref()).await,
                None => self.login_page(&request, kept, None).await,
            },
            (Next::Consent | Next::Issue, None) => self.login_page(&request, kept, None).await,
        }
    }

    /// The session as the policy weighs it, for `request`.
    /// A client registered by its metadata document never counts as consented: the
    /// consent page, naming the document's host, shows at each of its sign-ins.
    fn session_facts<'s>(
        &'s self,
        session: &'s Session,
        request: &AuthRequest,
        client: &Client,
    ) -> SessionFacts<'s> {
        let granted = session.consents.get(&request.client_id);
        let allowed = session
            .consents
            .get(&target::consent_key(&request.client_id));
        let revalidating = session
            .identity
            .upstream
            .as_ref()
            .and_then(|f| self.registry.provider(&f.provider))
            .filter(|p| matches!(p.refresh, RefreshPolicy::Revalidate(_)));
        SessionFacts {
            auth_time: session.auth_time,
            consented: client.document_host.is_none()
                && request
                    .scopes
                    .iter()
                    .all(|s| granted.is_some_and(|g| g.contains(s)))
                && request
                    .resources
                    .iter()
                    .all(|r| allowed.is_some_and(|g| g.contains(r))),
            revalidating_provider: revalidating.map(|p| p.id.as_str()),
        }
    }

    /// The client `id` names, configured or registered by its metadata document (read
    /// from the cache, or fetched again); `None` when it is unknown or its document
    /// cannot be had now.
    pub async fn client(&self, id: &str) -> Option<Cow<'a, Client>> {
        client_document::lookup(self.state, self.registry, id)
            .await
            .ok()
            .flatten()
    }

    /// The browser's live session.
    pub async fn session(&self) -> Result<Option<Current>, HttpResponse> {
        session::current(self.req, self.state, self.registry)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The pending requests of this registry generation.
    pub fn pendings(&self) -> Pendings<'_> {
        Pendings::of(self.state, self.registry)
    }

    /// Sends the browser to `provider` to sign in for `request`: keeps the request
    /// under a new random id that is the `state` sent up (with the nonce, the PKCE
    /// verifier and a tag binding it to this browser), and redirects.
    pub async fn go_upstream(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        provider: &Provider,
    ) -> Result<HttpResponse, HttpResponse> {
        let id = random_secret().map_err(|e| self.unavailable(e))?;
        let binding = super::csrf::Binding::Upstream(id.clone());
        let (browser, cookie) = super::csrf::token(self.req, self.state, self.registry, &binding)
            .map_err(|e| self.unavailable(e))?;
        let callback = crate::registry::endpoint(&self.registry.issuer, &provider.callback_path());
        let upstreams = &self.state.upstreams;
        let now = self.state.clock.now();
        let started = upstreams
            .start(provider, &callback, &id, request.prompt.login, request.max_age, now)
            .await
            .map_err(|e| {
                tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = e.reason(), error = %e, client_id = %request.client_id, remote = %self.ip);
                metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "unavailable").increment(1);
                page::provider_unavailable(self.registry, &provider.name)
            })?;
        let attempt = UpstreamAttempt {
            provider: provider.id.clone(),
            nonce: started.nonce,
            pkce_verifier: started.pkce_verifier,
            browser,
        };
        let address = throttle::network(&self.registry.limits, self.ip.0).to_string();
        self.pendings()
            .send_upstream(request, kept, &address, id, attempt)
            .await
            .map_err(|r| self.refused(request, r))?;
        tracing::info!(event = "upstream_login_started", provider = %provider.id, client_id = %request.client_id, remote = %self.ip);
        let mut response = see_other(&started.url);
        if let Some(cookie) = cookie {
            let _ = response.add_cookie(&cookie);
        }
        Ok(response)
    }

    /// The page for a store (or random-number) failure: the request cannot go on, and
    /// nothing was half done.
    pub fn unavailable(&self, e: impl std::fmt::Display) -> HttpResponse {
        page::unavailable(self.registry, e)
    }

    /// The page (or the redirect to the client) for a refusal of the pending store
    /// about `request`, logged and counted where it is a limit.
    pub fn refused(&self, request: &AuthRequest, refusal: Refusal) -> HttpResponse {
        match refusal {
            Refusal::AddressFull(left) => {
                tracing::warn!(event = "rate_limited", limit = "pending_per_address", remote = %self.ip);
                metrics::counter!("gatehouse_rate_limited_total", "limit" => "pending")
                    .increment(1);
                page::too_many(
                    self.registry,
                    "Too many sign-ins",
                    "Too many unfinished sign-ins from your network. Finish one, or wait a while, then try again.",
                    left,
                )
            }
            Refusal::TotalFull => {
                tracing::warn!(event = "rate_limited", limit = "pending_total", remote = %self.ip);
                metrics::counter!("gatehouse_rate_limited_total", "limit" => "pending_total")
                    .increment(1);
                refuse(
                    self.registry,
                    request,
                    ErrorCode::TemporarilyUnavailable,
                    "too many sign-ins are in progress; try again later",
                )
            }
            Refusal::Unavailable(e) => self.unavailable(e),
            _ => page::expired_request(self.registry),
        }
    }

    /// Writes `kept` back to the store.
    pub async fn keep(&self, kept: &Kept) -> Result<(), HttpResponse> {
        let request = &kept.pending.request;
        self.pendings()
            .keep(kept)
            .await
            .map_err(|r| self.refused(request, r))
    }

    /// Takes a pending request to answer it (once: a second answer gets the
    /// expired-request page).
    pub async fn forget(&self, kept: &Kept) -> Result<(), HttpResponse> {
        let request = &kept.pending.request;
        self.pendings()
            .forget(kept)
            .await
            .map_err(|r| self.refused(request, r))
    }

    /// The pending request a form names, if it is still live.
    pub async fn recall(&self, pending_id: Option<&str>) -> Result<Option<Kept>, HttpResponse> {
        self.pendings()
            .recall(pending_id)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Renders a page whose form continues `request`: keeps the request in the store
    /// (waiting for `awaiting`) and puts its id, the client's name and a CSRF token
    /// bound to it in the page.
    async fn pending_page(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        awaiting: Awaiting,
        template: &str,
        mut context: serde_json::Value,
    ) -> Result<HttpResponse, HttpResponse> {
        let address = throttle::network(&self.registry.limits, self.ip.0).to_string();
        let id = self
            .pendings()
            .remember(request, kept, awaiting, &address)
            .await
            .map_err(|r| self.refused(request, r))?;
        let client = self.client(&request.client_id).await;
        context["client_name"] = json!(client.as_ref().map_or("", |c| c.name.as_str()));
        context["document_host"] = json!(client.as_ref().and_then(|c| c.document_host.as_deref()));
        context["request_id"] = json!(id);
        let binding = super::csrf::Binding::Pending(id);
        Ok(page::render_form(
            self.req,
            self.state,
            self.registry,
            template,
            &binding,
            context,
            Some(&request.redirect_uri),
        ))
    }

    /// The login form for `request`, with `error` shown when a previous try failed.
    pub async fn login_page(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        error: Option<(&str, &str)>,
    ) -> Result<HttpResponse, HttpResponse> {
        let (message, username) = match error {
            Some((message, username)) => (Some(message), username),
            None => (None, request.login_hint.as_deref().unwrap_or_default()),
        };
        let client = self.client(&request.client_id).await;
        let providers: Vec<_> = self
            .registry
            .providers()
            .iter()
            .filter(|p| client.as_ref().is_some_and(|c| c.allows_provider(&p.id)))
            .collect();
        let buttons: Vec<_> = providers
            .iter()
            .map(|p| json!({"id": p.id, "name": p.name}))
            .collect();
        let context = json!({"username": username, "error": message, "providers": buttons});
        let mut response = self
            .pending_page(request, kept, Awaiting::Login, "login.html", context)
            .await?;
        if !providers.is_empty() {
            // A provider's button ends at its authorization endpoint: form-action must
            // allow it, beside the client's redirect URI.
            let targets: Vec<String> = providers
                .iter()
                .map(|p| self.state.upstreams.authorization_target(p))
                .collect();
            let mut all: Vec<&str> = vec![&request.redirect_uri];
            all.extend(targets.iter().map(String::as_str));
            if let Some(csp) = crate::http::content_security_policy(&all) {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, csp);
            }
        }
        Ok(response)
    }

    async fn consent_page(
        &self,
        request: &AuthRequest,
        session: &Session,
        kept: Option<Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
        let scopes: Vec<_> = request
            .scopes
            .iter()
            .map(|s| json!({"name": s, "description": scope_description(self.registry, s)}))
            .collect();
        let context = json!({
            "user_name": session.identity.display_name(),
            "scopes": scopes,
            "resources": resources_shown(self.registry, &request.resources),
        });
        self.pending_page(request, kept, Awaiting::Consent, "consent.html", context)
            .await
    }

    /// Has the authorization-code grant issue the code for `request`, forgets the
    /// pending request, and redirects back to the client with the code.
    pub async fn issue_code(
        &self,
        request: &AuthRequest,
        current: &Current,
        kept: Option<&Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
        let session = &current.session;
        // The upstream token of the login that made this request goes to this code
        // alone (and from it to one refresh family).
        let mut identity = session.identity.clone();
        if let (Some(federation), Some(token)) = (
            identity.upstream.as_mut(),
            kept.and_then(|k| k.pending.upstream_token.as_ref()),
        ) {
            federation.token = Some(token.clone());
        }
        // Taken first: of two answers racing for one pending request, only the one
        // that took it gets a code.
        if let Some(kept) = kept {
            self.forget(kept).await?;
        }
        // A pushed request gives one code, whichever login page reload got there.
        if !par::use_up(self.state, self.registry, request)
            .await
            .map_err(|e| self.unavailable(e))?
        {
            return Err(refuse(
                self.registry,
                request,
                ErrorCode::InvalidRequest,
                "the pushed authorization request was used already",
            ));
        }
        let location = authorization_code::issue_code(
            self.state,
            self.registry,
            request,
            &identity,
            session.auth_time,
            session.origin(),
        )
        .await
        .map_err(|e| self.unavailable(e))?;
        tracing::info!(event = "code_issued", remote = %self.ip, client_id = %request.client_id, user_id = %session.identity.subject);
        self.note_client(current, &request.client_id).await?;
        Ok(see_other(&location))
    }

    /// Records in the session that `client_id` was given a code in it (once), so
    /// that its end names and tells that client.
    async fn note_client(&self, current: &Current, client_id: &str) -> Result<(), HttpResponse> {
        if current.session.clients.contains(client_id) {
            return Ok(());
        }
        let mut session = current.session.clone();
        session.clients.insert(client_id.to_owned());
        let began = session.created_at.max(session.auth_time);
        let left = (began + self.registry.session.ttl.as_secs())
            .saturating_sub(self.state.clock.now())
            .max(1);
        let left = std::time::Duration::from_secs(left);
        // Also under its sid, so that `gatehouse revoke --session` can tell its clients.
        let (kept, copy) = tokio::join!(
            self.state
                .store
                .put_session(current.key, session.clone(), left),
            crate::oauth::backchannel::remember(self.state, &session, left),
        );
        kept.and(copy).map_err(|e| self.unavailable(e))
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

/// The resources a request names, as the consent and device pages show them: each
/// one's `name` (else its URI) and its URI.
pub fn resources_shown(registry: &Registry, resources: &[String]) -> Vec<serde_json::Value> {
    resources
        .iter()
        .map(|id| {
            let name = registry.resource(id).map_or(id.as_str(), |r| &r.name);
            json!({"id": id, "name": name})
        })
        .collect()
}

/// What granting `scope` means, in words for the consent and device pages.
pub fn scope_description<'a>(registry: &'a Registry, scope: &str) -> &'a str {
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
