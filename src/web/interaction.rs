//! The steps between an authorization request and its code: log the user in if they
//! must, ask for consent if the client needs it, then have the authorization-code grant
//! issue the code.
//!
//! A request waiting on the user is kept in the store ([`Pending`]) under a random id
//! carried by the page's form, with the step it waits for: a request that waits for a
//! login goes on only through a login, and a request that asked for a fresh one
//! (`prompt=login`, `max_age`) goes on only with a login made after it (so the code's
//! `auth_time` is the login that satisfied it). How many requests wait is bounded per
//! address and in all (`[limits] pending_per_address`, `pending_total`), and each
//! waits `[session] pending_ttl` at most.

use super::page;
use super::session::{self, Current};
use crate::crypto::{random_secret, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::see_other;
use crate::model::BUILTIN_SCOPES;
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::grants::authorization_code;
use crate::oauth::target;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::Session;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The counter of requests waiting from all addresses together.
const PENDING_ALL: &str = "pending:all";

/// What a pending request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Awaiting {
    /// The user to log in (the login page was shown).
    Login,
    /// The user to allow or deny the client (the consent page was shown).
    Consent,
    /// An upstream provider's callback (the browser was sent there).
    Upstream,
}

/// A login sent to an upstream provider, kept with its request until the callback.
#[derive(Clone, Serialize, Deserialize)]
pub struct UpstreamAttempt {
    /// The provider the browser was sent to: the callback's path must name it.
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The CSRF tag of the browser's cookie and the `state`: the callback must come
    /// back to the browser that started it.
    pub browser: String,
}

impl std::fmt::Debug for UpstreamAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAttempt")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// An authorization request kept while the user logs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The validated request, as `/authorize` received it.
    pub request: AuthRequest,
    /// The step it waits for: only that step's form may take it further.
    pub awaiting: Awaiting,
    /// When the request was made (Unix seconds): a fresh login it asked for must be at
    /// or after this second.
    pub created_at: u64,
    /// The address that made it, whose pending count it is in.
    pub address: String,
    /// While `awaiting` an upstream callback: what the callback checks and needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamAttempt>,
    /// After an upstream login with `refresh.mode = "revalidate"`: the sealed upstream
    /// token, handed to the one code this request gets (so one refresh family holds
    /// it; the session never does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_token: Option<String>,
}

/// A pending request as read back from the store, with its id.
pub struct Kept {
    /// The random id the page's form carries (the store key is its SHA-256).
    pub id: String,
    /// What was kept under it.
    pub pending: Pending,
}

/// One request to a page of the login flow, with what every step needs.
pub struct Step<'a> {
    pub req: &'a HttpRequest,
    pub ip: ClientIp,
    pub state: &'a AppState,
    pub registry: &'a Registry,
}

impl Step<'_> {
    /// Takes `request` as far as it can go: a login page, a consent page, or the
    /// redirect with a code. `kept` is the stored request a form continues (none for a
    /// new `/authorize`); `fresh` is a session the user has just logged in to.
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
        let Some(client) = registry.client(&request.client_id) else {
            return Ok(page::invalid_request(
                registry,
                "This application is no longer registered here.",
            ));
        };
        let current = match fresh {
            Some(c) => Some(c),
            None => self.session().await?,
        };
        let made_at = kept.as_ref().map(|k| k.pending.created_at);
        let current = match current {
            Some(c) if !self.needs_reauthentication(&request, made_at, &c.session) => c,
            _ => {
                if request.prompt.none {
                    return Ok(refuse(
                        registry,
                        &request,
                        ErrorCode::LoginRequired,
                        "the user is not logged in",
                    ));
                }
                if let Some(provider) = request
                    .idp_hint
                    .as_deref()
                    .and_then(|id| registry.provider(id))
                {
                    return self.go_upstream(&request, kept, provider).await;
                }
                return self.login_page(&request, kept, None).await;
            }
        };
        if let Some(provider) =
            self.needs_own_upstream_token(client, &current.session, kept.as_ref())
        {
            if request.prompt.none {
                return Ok(refuse(
                    registry,
                    &request,
                    ErrorCode::LoginRequired,
                    "a new sign-in at the provider is needed",
                ));
            }
            return self.go_upstream(&request, kept, provider).await;
        }
        let granted = current.session.consents.get(&client.id);
        let allowed = current
            .session
            .consents
            .get(&target::consent_key(&client.id));
        let consented = client.first_party
            || (!request.prompt.consent
                && request
                    .scopes
                    .iter()
                    .all(|s| granted.is_some_and(|g| g.contains(s)))
                && request
                    .resources
                    .iter()
                    .all(|r| allowed.is_some_and(|g| g.contains(r))));
        if !consented {
            if request.prompt.none {
                return Ok(refuse(
                    registry,
                    &request,
                    ErrorCode::ConsentRequired,
                    "the user has not consented",
                ));
            }
            return self.consent_page(&request, &current.session, kept).await;
        }
        self.issue_code(&request, &current.session, kept.as_ref())
            .await
    }

    /// The browser's live session.
    pub async fn session(&self) -> Result<Option<Current>, HttpResponse> {
        session::current(self.req, self.state, self.registry)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Whether `session` is too old for `request`, made at `made_at` (`None`: being
    /// made now). `prompt=login` wants a login at or after the request's second: a new
    /// request always asks, a kept one accepts a login made since. `max_age` wants a
    /// login at most that many seconds old.
    pub fn needs_reauthentication(
        &self,
        request: &AuthRequest,
        made_at: Option<u64>,
        session: &Session,
    ) -> bool {
        let stale_for_prompt =
            request.prompt.login && made_at.is_none_or(|made| session.auth_time < made);
        let too_old = request
            .max_age
            .is_some_and(|max| self.state.clock.now().saturating_sub(session.auth_time) > max);
        stale_for_prompt || too_old
    }

    /// The provider to go back to when `session` was signed in through one that
    /// revalidates and this request would give `client` a refresh family without an
    /// upstream token of its own: each family gets its own (one upstream token is
    /// never shared, deckhouse#21615), and the upstream's session makes it quick.
    fn needs_own_upstream_token(
        &self,
        client: &crate::model::Client,
        session: &Session,
        kept: Option<&Kept>,
    ) -> Option<&crate::upstream::provider::Provider> {
        let federation = session.identity.upstream.as_ref()?;
        let provider = self.registry.provider(&federation.provider)?;
        let revalidates = matches!(
            provider.refresh,
            crate::upstream::provider::RefreshPolicy::Revalidate(_)
        );
        let has_token = kept.is_some_and(|k| k.pending.upstream_token.is_some());
        (revalidates
            && client.allows_grant(crate::config::file::GrantType::RefreshToken)
            && !has_token)
            .then_some(provider)
    }

    /// Sends the browser to `provider` to sign in for `request`: keeps the request
    /// under a new random id that is the `state` sent up (with the nonce, the PKCE
    /// verifier and a tag binding it to this browser), and redirects.
    pub async fn go_upstream(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        provider: &crate::upstream::provider::Provider,
    ) -> Result<HttpResponse, HttpResponse> {
        let now = self.state.clock.now();
        let id = random_secret().map_err(|e| self.unavailable(e))?;
        let (browser, cookie) = super::csrf::token(
            self.req,
            self.state,
            self.registry,
            &super::csrf::Binding::Upstream(id.clone()),
        )
        .map_err(|e| self.unavailable(e))?;
        let callback = crate::registry::endpoint(&self.registry.issuer, &provider.callback_path());
        let started = match self
            .state
            .upstreams
            .start(
                provider,
                &callback,
                &id,
                request.prompt.login,
                request.max_age,
                now,
            )
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = e.reason(), error = %e, client_id = %request.client_id, remote = %self.ip);
                metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "unavailable").increment(1);
                return Err(page::error(
                    self.registry,
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in unavailable",
                    &format!(
                        "{} cannot be reached right now. Try again in a moment.",
                        provider.name
                    ),
                ));
            }
        };
        let (created_at, address, old) = match kept {
            Some(k) => (k.pending.created_at, k.pending.address, Some(k.id)),
            None => {
                self.admit(request).await?;
                (now, self.ip.to_string(), None)
            }
        };
        let moved = Kept {
            id,
            pending: Pending {
                request: request.clone(),
                awaiting: Awaiting::Upstream,
                created_at,
                address,
                upstream: Some(UpstreamAttempt {
                    provider: provider.id.clone(),
                    nonce: started.nonce,
                    pkce_verifier: started.pkce_verifier,
                    browser,
                }),
                upstream_token: None,
            },
        };
        self.keep(&moved).await?;
        if let Some(old) = old {
            // Moved, not answered: the counts stay as they are.
            self.state
                .store
                .delete_pending(sha256(old.as_bytes()))
                .await
                .map_err(|e| self.unavailable(e))?;
        }
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

    /// Keeps `request` in the store, waiting for `awaiting`, and returns its id: a new
    /// entry (within the caps) when it is not kept yet, else the kept one, updated when
    /// it now waits for another step.
    async fn remember(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        awaiting: Awaiting,
    ) -> Result<String, HttpResponse> {
        match kept {
            Some(k) if k.pending.awaiting == awaiting => Ok(k.id),
            Some(mut k) => {
                k.pending.awaiting = awaiting;
                self.keep(&k).await?;
                Ok(k.id)
            }
            None => {
                self.admit(request).await?;
                let kept = Kept {
                    id: random_secret().map_err(|e| self.unavailable(e))?,
                    pending: Pending {
                        request: request.clone(),
                        awaiting,
                        created_at: self.state.clock.now(),
                        address: self.ip.to_string(),
                        upstream: None,
                        upstream_token: None,
                    },
                };
                self.keep(&kept).await?;
                Ok(kept.id)
            }
        }
    }

    /// Counts a new pending request against the caps: 429 past the address's, and
    /// `temporarily_unavailable` back to the client past the total.
    async fn admit(&self, request: &AuthRequest) -> Result<(), HttpResponse> {
        let store = self.state.store.as_ref();
        let limits = &self.registry.limits;
        let ttl = self.registry.session.pending_ttl;
        let counter = pending_counter(&self.ip.to_string());
        let (mine, left) = store
            .add_failure(&counter, ttl)
            .await
            .map_err(|e| self.unavailable(e))?;
        if mine > limits.pending_per_address {
            // Refused, so not pending: the count stays that of the requests kept.
            store
                .take_back_failure(&counter)
                .await
                .map_err(|e| self.unavailable(e))?;
            tracing::warn!(event = "rate_limited", limit = "pending_per_address", remote = %self.ip);
            metrics::counter!("gatehouse_rate_limited_total", "limit" => "pending").increment(1);
            return Err(page::too_many(
                self.registry,
                "Too many sign-ins",
                "Too many unfinished sign-ins from your network. Finish one, or wait a while, then try again.",
                left,
            ));
        }
        let (all, _) = store
            .add_failure(PENDING_ALL, ttl)
            .await
            .map_err(|e| self.unavailable(e))?;
        if all > limits.pending_total {
            let undo = async {
                store.take_back_failure(&counter).await?;
                store.take_back_failure(PENDING_ALL).await
            };
            undo.await.map_err(|e| self.unavailable(e))?;
            tracing::warn!(event = "rate_limited", limit = "pending_total", remote = %self.ip);
            metrics::counter!("gatehouse_rate_limited_total", "limit" => "pending_total")
                .increment(1);
            return Err(refuse(
                self.registry,
                request,
                ErrorCode::TemporarilyUnavailable,
                "too many sign-ins are in progress; try again later",
            ));
        }
        Ok(())
    }

    /// Writes `kept` to the store for what is left of its lifetime.
    pub async fn keep(&self, kept: &Kept) -> Result<(), HttpResponse> {
        let age = self
            .state
            .clock
            .now()
            .saturating_sub(kept.pending.created_at);
        let left = self
            .registry
            .session
            .pending_ttl
            .saturating_sub(Duration::from_secs(age))
            .max(Duration::from_secs(1));
        let json = serde_json::to_string(&kept.pending).map_err(|e| self.unavailable(e))?;
        self.state
            .store
            .put_pending(sha256(kept.id.as_bytes()), json, left)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Takes a pending request to answer it: removes it from the store and from its
    /// address's and the total count. Only one answer gets it: a second post of the
    /// same form (a double click, a replay, another replica at the same moment) finds
    /// it gone and gets the expired-request page, so one pending login yields at most
    /// one code or one denial.
    pub async fn forget(&self, kept: &Kept) -> Result<(), HttpResponse> {
        let store = self.state.store.as_ref();
        let taken = store
            .delete_pending(sha256(kept.id.as_bytes()))
            .await
            .map_err(|e| self.unavailable(e))?;
        if !taken {
            return Err(page::expired_request(self.registry));
        }
        let counts = async {
            store
                .take_back_failure(&pending_counter(&kept.pending.address))
                .await?;
            store.take_back_failure(PENDING_ALL).await
        };
        counts.await.map_err(|e| self.unavailable(e))
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
        let id = self.remember(request, kept, awaiting).await?;
        context["client_name"] = json!(
            self.registry
                .client(&request.client_id)
                .map_or("", |c| c.name.as_str())
        );
        let response = page::render_form(
            self.req,
            self.state,
            self.registry,
            template,
            &super::csrf::Binding::Pending(id.clone()),
            context_with(context, "request_id", &id),
            Some(&request.redirect_uri),
        );
        Ok(response)
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
        let client = self.registry.client(&request.client_id);
        let providers: Vec<_> = self
            .registry
            .providers()
            .iter()
            .filter(|p| client.is_some_and(|c| c.allows_provider(&p.id)))
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
        session: &Session,
        kept: Option<&Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
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
        let location = authorization_code::issue_code(
            self.state,
            self.registry,
            request,
            &identity,
            session.auth_time,
        )
        .await
        .map_err(|e| self.unavailable(e))?;
        tracing::info!(event = "code_issued", remote = %self.ip, client_id = %request.client_id, user_id = %session.identity.subject);
        Ok(see_other(&location))
    }

    /// The pending request a form names, if it is still live.
    pub async fn recall(&self, pending_id: Option<&str>) -> Result<Option<Kept>, HttpResponse> {
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
            .and_then(|j| serde_json::from_str::<Pending>(&j).ok())
            .map(|pending| Kept {
                id: id.to_owned(),
                pending,
            }))
    }
}

/// `context` with `key` set to `value`.
fn context_with(mut context: serde_json::Value, key: &str, value: &str) -> serde_json::Value {
    context[key] = json!(value);
    context
}

/// The counter of requests waiting from `address`.
fn pending_counter(address: &str) -> String {
    format!("pending:addr:{address}")
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
