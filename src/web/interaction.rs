//! The pages between an authorization request and its code. [`Step::proceed`] gathers
//! the facts (the request, the browser's session, the client, the kept request), asks
//! the login policy (`oauth::interaction::policy::next`) what comes next, and renders
//! that one step: the login page, a provider's authorization URL, the second-factor
//! page (or its refusal), the consent page, the redirect with a code, or an error back
//! to the client; the pages that keep the request waiting are in `pages`. What is not
//! a page (the facts, the waiting requests, the trip upstream, the code) is
//! `oauth::interaction`.

use super::page;
use super::session::{self, Current, Stored};
use crate::crypto::random_secret;
use crate::error::ErrorCode;
use crate::http::{client_ip::ClientIp, see_other};
use crate::model::Client;
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::client_document;
use crate::oauth::interaction::facts;
use crate::oauth::interaction::issue::{self, NotIssued};
use crate::oauth::interaction::pending::{Kept, Pendings, Refusal};
use crate::oauth::interaction::policy::{self, Next};
use crate::oauth::interaction::trip::{self, NoTrip, Trip};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::Session;
use crate::throttle;
use crate::upstream::provider::Provider;
use actix_web::{HttpRequest, HttpResponse};
use std::borrow::Cow;

pub(crate) use crate::oauth::interaction::consent::{resources_shown, scope_description};
pub(crate) use crate::oauth::interaction::refuse;

mod pages;

/// One request to a page of the login flow, with what every step needs.
pub(crate) struct Step<'a> {
    pub(crate) req: &'a HttpRequest,
    pub(crate) ip: ClientIp,
    pub(crate) state: &'a AppState,
    pub(crate) registry: &'a Registry,
}

impl<'a> Step<'a> {
    /// Takes `request` as far as it can go: a login page, a provider, a consent page,
    /// or the redirect with a code. `kept` is the stored request a form continues
    /// (none for a new `/authorize`); `fresh` is a session the user has just logged in
    /// to.
    pub(crate) async fn proceed(
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
        match fresh {
            Some(fresh) => {
                let current = Some(fresh).filter(|c| self.may_use(&client, &c.session));
                let session = current.as_ref().map(|c| &c.session);
                let next = self.decide(&request, &client, session, kept.as_ref());
                self.take(&request, kept, current, next).await
            }
            None => self.with_stored_session(&request, &client, kept).await,
        }
    }

    /// [`Step::step`] with the session the browser names read from the store: the
    /// policy decides on it, then its standing is read, and a session that does not
    /// stand is dropped and the policy decides again without it. When the step is the
    /// code for a new request, the standing is read beside the code's write
    /// ([`Step::issue_if_standing`]).
    async fn with_stored_session(
        &self,
        request: &AuthRequest,
        client: &Client,
        kept: Option<Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
        let stored = (self.stored_session().await?).filter(|s| self.may_use(client, s.session()));
        let next = self.decide(
            request,
            client,
            stored.as_ref().map(Stored::session),
            kept.as_ref(),
        );
        let Some(stored) = stored else {
            return self.take(request, kept, None, next).await;
        };
        if next == Next::Issue && kept.is_none() && request.pushed.is_none() {
            return self.issue_if_standing(request, client, stored).await;
        }
        match self.standing(stored).await? {
            Some(current) => self.take(request, kept, Some(current), next).await,
            None => self.without_session(request, client, kept).await,
        }
    }

    /// The step for `request` when the browser's session did not stand: the policy
    /// decides again without it.
    async fn without_session(
        &self,
        request: &AuthRequest,
        client: &Client,
        kept: Option<Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
        let next = self.decide(request, client, None, kept.as_ref());
        self.take(request, kept, None, next).await
    }

    /// True when `client` may use `session` (a provider's login it does not allow
    /// counts as no session).
    fn may_use(&self, client: &Client, session: &Session) -> bool {
        facts::may_use(client, session, self.ip)
    }

    /// What the login policy says comes next for `request` of `client`, with the
    /// browser's `session` (one the client may use) and the `kept` request it
    /// continues.
    fn decide(
        &self,
        request: &AuthRequest,
        client: &Client,
        session: Option<&Session>,
        kept: Option<&Kept>,
    ) -> Next {
        let pending = kept.map(|k| &k.pending);
        let now = self.state.clock.now();
        let facts = facts::gather(self.registry, request, client, session, pending, now);
        policy::next(&facts)
    }

    /// Renders the step `next` the policy chose for `request`, with the session
    /// `current` it weighed (one that stands).
    async fn take(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        current: Option<Current>,
        next: Next,
    ) -> Result<HttpResponse, HttpResponse> {
        let registry = self.registry;
        match (next, current) {
            (Next::Login, _) => self.login_page(request, kept, None).await,
            (Next::Upstream(id), _) => match registry.provider(&id) {
                Some(provider) => self.go_upstream(request, kept, provider).await,
                None => self.login_page(request, kept, None).await,
            },
            (Next::Refuse(code, why), _) => Ok(refuse(registry, request, code, why)),
            (Next::SecondFactor, Some(current)) => {
                self.second_factor_page(request, &current.session, kept, None)
                    .await
            }
            (Next::NoSecondFactor, Some(current)) => {
                tracing::warn!(event = "login_refused", reason = "no_second_factor", client_id = %request.client_id, user_id = %current.session.identity.subject, remote = %self.ip);
                Ok(page::no_second_factor(registry))
            }
            (Next::Consent, Some(current)) => {
                self.consent_page(request, &current.session, kept).await
            }
            (Next::Issue, Some(current)) => self.issue_code(request, &current, kept.as_ref()).await,
            (Next::SecondFactor | Next::NoSecondFactor | Next::Consent | Next::Issue, None) => {
                self.login_page(request, kept, None).await
            }
        }
    }

    /// Issues the code for a new `request` (neither kept nor pushed: issuing it uses
    /// nothing up) to the `stored` session, whose standing is read at once with the
    /// code's write: one round trip to a shared store, not two. The code goes out only
    /// if the session stands; otherwise the policy decides again without it. A code
    /// written for a session that does not stand is never sent (nobody has its secret)
    /// and expires with its lifetime: a caller stores no more codes this way than a
    /// live session lets it, both bounded by the pages' rate cap.
    async fn issue_if_standing(
        &self,
        request: &AuthRequest,
        client: &Client,
        stored: Stored,
    ) -> Result<HttpResponse, HttpResponse> {
        let (stands, location) = tokio::join!(
            session::stands(self.state, self.registry, &stored),
            self.code(request, stored.session(), None)
        );
        let stands = stands.map_err(|e| self.unavailable(e))?;
        match stored.stood(stands) {
            Some(current) => self.issued(request, &current, &location?).await,
            None => self.without_session(request, client, None).await,
        }
    }

    /// The client `id` names, configured or registered by its metadata document (read
    /// from the cache, or fetched again); `None` when it is unknown or its document
    /// cannot be had now.
    pub(crate) async fn client(&self, id: &str) -> Option<Cow<'a, Client>> {
        client_document::lookup(self.state, self.registry, id)
            .await
            .ok()
            .flatten()
    }

    /// True when the login policy takes `request` (kept as `kept`) with the session
    /// `current` as far as consent or the code: what a consent form's answer needs.
    pub(crate) async fn reaches_consent(
        &self,
        request: &AuthRequest,
        kept: &Kept,
        current: &Current,
    ) -> bool {
        let Some(client) = self.client(&request.client_id).await else {
            return false;
        };
        let now = self.state.clock.now();
        let session = Some(&current.session);
        let facts = facts::gather(
            self.registry,
            request,
            &client,
            session,
            Some(&kept.pending),
            now,
        );
        matches!(policy::next(&facts), Next::Consent | Next::Issue)
    }

    /// The browser's live session.
    pub(crate) async fn session(&self) -> Result<Option<Current>, HttpResponse> {
        session::current(self.req, self.state, self.registry)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The session the browser names, before its standing is read
    /// (`session::stored`).
    async fn stored_session(&self) -> Result<Option<Stored>, HttpResponse> {
        session::stored(self.req, self.state, self.registry)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The `stored` session as current, if it stands (`session::standing`).
    async fn standing(&self, stored: Stored) -> Result<Option<Current>, HttpResponse> {
        session::standing(self.state, self.registry, stored)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The pending requests of this registry generation.
    pub(crate) fn pendings(&self) -> Pendings<'_> {
        Pendings::of(self.state, self.registry)
    }

    /// Sends the browser to `provider` to sign in for `request`: keeps the request
    /// under a new random id that is the `state` sent up (with the nonce, the PKCE
    /// verifier and a tag binding it to this browser), and redirects.
    pub(crate) async fn go_upstream(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        provider: &Provider,
    ) -> Result<HttpResponse, HttpResponse> {
        let id = random_secret().map_err(|e| self.unavailable(e))?;
        let binding = super::csrf::Binding::Upstream(id.clone());
        let (browser, cookie) = super::csrf::token(self.req, self.state, self.registry, &binding)
            .map_err(|e| self.unavailable(e))?;
        let address = throttle::network(&self.registry.limits, self.ip.0).to_string();
        let trip = Trip {
            id,
            browser,
            address,
        };
        let url = trip::start(self.state, self.registry, provider, request, kept, trip)
            .await
            .map_err(|e| match e {
                NoTrip::Upstream(e) => {
                    tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = e.reason(), error = %e, client_id = %request.client_id, remote = %self.ip);
                    metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "unavailable").increment(1);
                    page::provider_unavailable(self.registry, &provider.name)
                }
                NoTrip::Pending(r) => self.refused(request, r),
            })?;
        tracing::info!(event = "upstream_login_started", provider = %provider.id, client_id = %request.client_id, remote = %self.ip);
        let mut response = see_other(&url);
        if let Some(cookie) = cookie {
            let _ = response.add_cookie(&cookie);
        }
        Ok(response)
    }

    /// The page for a store (or random-number) failure: the request cannot go on, and
    /// nothing was half done.
    pub(crate) fn unavailable(&self, e: impl std::fmt::Display) -> HttpResponse {
        page::unavailable(self.registry, e)
    }

    /// The page (or the redirect to the client) for a refusal of the pending store
    /// about `request`, logged and counted where it is a limit.
    pub(crate) fn refused(&self, request: &AuthRequest, refusal: Refusal) -> HttpResponse {
        refusal.note_limit(self.ip);
        match refusal {
            Refusal::AddressFull(left) => page::too_many(
                self.registry,
                "Too many sign-ins",
                "Too many unfinished sign-ins from your network. Finish one, or wait a while, then try again.",
                left,
            ),
            Refusal::TotalFull => refuse(
                self.registry,
                request,
                ErrorCode::TemporarilyUnavailable,
                "too many sign-ins are in progress; try again later",
            ),
            Refusal::Unavailable(e) => self.unavailable(e),
            _ => page::expired_request(self.registry),
        }
    }

    /// Writes `kept` back to the store.
    pub(crate) async fn keep(&self, kept: &Kept) -> Result<(), HttpResponse> {
        let request = &kept.pending.request;
        self.pendings()
            .keep(kept)
            .await
            .map_err(|r| self.refused(request, r))
    }

    /// Takes a pending request to answer it (once: a second answer gets the
    /// expired-request page).
    pub(crate) async fn forget(&self, kept: &Kept) -> Result<(), HttpResponse> {
        let request = &kept.pending.request;
        self.pendings()
            .forget(kept)
            .await
            .map_err(|r| self.refused(request, r))
    }

    /// The pending request a form names, if it is still live.
    pub(crate) async fn recall(
        &self,
        pending_id: Option<&str>,
    ) -> Result<Option<Kept>, HttpResponse> {
        self.pendings()
            .recall(pending_id)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Has the authorization-code grant issue the code for `request`, forgets the
    /// pending request, and redirects back to the client with the code.
    pub(crate) async fn issue_code(
        &self,
        request: &AuthRequest,
        current: &Current,
        kept: Option<&Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
        // Taken first: of two answers racing for one pending request, only the one
        // that took it gets a code.
        if let Some(kept) = kept {
            self.forget(kept).await?;
        }
        let upstream_token = kept.and_then(|k| k.pending.upstream_token.as_ref());
        let location = self.code(request, &current.session, upstream_token).await?;
        self.issued(request, current, &location).await
    }

    /// The code for `request`, issued to the user of `session` (`issue::code`): the
    /// client's redirect URI carrying it.
    async fn code(
        &self,
        request: &AuthRequest,
        session: &Session,
        upstream_token: Option<&String>,
    ) -> Result<String, HttpResponse> {
        issue::code(self.state, self.registry, request, session, upstream_token)
            .await
            .map_err(|e| match e {
                NotIssued::PushedUsed => refuse(
                    self.registry,
                    request,
                    ErrorCode::InvalidRequest,
                    "the pushed authorization request was used already",
                ),
                NotIssued::Unavailable(e) => self.unavailable(e),
            })
    }

    /// Sends the browser back to the client at `location`, the code issued for
    /// `request` in the session `current` (which stands): logged, and noted in the
    /// session.
    async fn issued(
        &self,
        request: &AuthRequest,
        current: &Current,
        location: &str,
    ) -> Result<HttpResponse, HttpResponse> {
        let session = &current.session;
        tracing::info!(event = "code_issued", remote = %self.ip, client_id = %request.client_id, user_id = %session.identity.subject);
        issue::note_client(
            self.state,
            self.registry,
            current.key,
            session,
            &request.client_id,
        )
        .await
        .map_err(|e| self.unavailable(e))?;
        Ok(see_other(location))
    }
}
