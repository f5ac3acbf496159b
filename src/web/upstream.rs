//! Signing in through an upstream provider, the pages' side: `POST /login/upstream`
//! (a provider's button on the login page, a form with its CSRF token like the rest)
//! sends the browser to the provider; `GET /login/callback/<id>` takes it back.
//!
//! The callback checks, before anything is exchanged: the `state` names a pending
//! login waiting for a provider, that provider is the one in the path (one callback
//! per provider, RFC 9700 4.4.2), the browser is the one that started it (a tag of its
//! CSRF cookie), and the `state` is used once (an atomic count in the store). Then
//! `upstream::connect` checks the `iss` response parameter, exchanges the code with the
//! PKCE verifier and checks the ID token; `upstream::rules` decides who the user
//! becomes. Every refusal is an `upstream_login_refused` audit event with its reason
//! (never a token).

use super::interaction::Step;
use super::{login, page};
use crate::error::ErrorCode;
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::model::Federation;
use crate::oauth::interaction::pending::{Kept, Refusal};
use crate::oauth::interaction::policy::{self, Upstreamed};
use crate::registry::endpoint;
use crate::state::AppState;
use crate::upstream::connect::{Attempt, Response};
use crate::upstream::provider::{Provider, RefreshPolicy};
use crate::upstream::{UpstreamError, rules};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /login/upstream`: a provider's button.
pub(crate) async fn start(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    super::on_posted_form(&req, ip, &body, &state, begin).await
}

async fn begin(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(kept) = step.recall(form.get("request")).await? else {
        return Ok(page::expired_request(step.registry));
    };
    let request = kept.pending.request.clone();
    let client = step.client(&request.client_id).await;
    let provider = form
        .get("provider")
        .and_then(|id| step.registry.provider(id))
        .filter(|p| client.as_ref().is_some_and(|c| c.allows_provider(&p.id)));
    match provider {
        Some(provider) => step.go_upstream(&request, Some(kept), provider).await,
        None => Ok(page::invalid_request(
            step.registry,
            "This application does not offer that way to sign in.",
        )),
    }
}

/// `GET /login/callback/<provider id>`.
pub(crate) async fn callback(
    req: HttpRequest,
    ip: ClientIp,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let registry = state.snapshot();
    let step = Step {
        req: &req,
        ip,
        state: &state,
        registry: &registry,
    };
    let form = match Form::parse(req.query_string().as_bytes()) {
        Ok(f) => f,
        Err(e) => return page::invalid_request(&registry, &e.description),
    };
    let response = match finish(&step, &path, &form).await {
        Ok(response) | Err(response) => response,
    };
    continue_page(&registry, &path, response)
}

/// The callback's redirect onwards (to the client, with the code) as a page that
/// navigates by itself: the browser came here through the provider's form, and a
/// redirect chain after a form is held to that form's page's CSP `form-action`, which
/// (gatehouse's own, for one) allows this callback but not the client beyond it.
fn continue_page(
    registry: &crate::registry::Registry,
    provider_id: &str,
    response: HttpResponse,
) -> HttpResponse {
    if response.status() != StatusCode::SEE_OTHER {
        return response;
    }
    let Some(location) = response
        .headers()
        .get(actix_web::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return response;
    };
    let name = registry
        .provider(provider_id)
        .map_or(provider_id, |p| p.name.as_str());
    let mut page = page::render(
        registry,
        StatusCode::OK,
        "continue.html",
        serde_json::json!({"location": location, "provider_name": name}),
        None,
    );
    for cookie in response.cookies() {
        let _ = page.add_cookie(&cookie);
    }
    page
}

/// Logs and counts a refused upstream login, and the page saying so.
fn refused(step: &Step<'_>, provider: &str, reason: &str, message: &str) -> HttpResponse {
    tracing::warn!(event = "upstream_login_refused", provider = %provider, reason = %reason, remote = %step.ip);
    // The path is the caller's: only a declared provider gets its own metric series.
    let label = step
        .registry
        .provider(provider)
        .map_or_else(|| "unknown".to_owned(), |p| p.id.clone());
    metrics::counter!("gatehouse_upstream_logins_total", "provider" => label, "result" => "refused").increment(1);
    page::error(
        step.registry,
        StatusCode::FORBIDDEN,
        "Sign-in failed",
        message,
    )
}

const START_AGAIN: &str =
    "This sign-in cannot be completed. Return to the application and start again.";

async fn finish(
    step: &Step<'_>,
    provider_id: &str,
    form: &Form,
) -> Result<HttpResponse, HttpResponse> {
    let Some(state_id) = form.get("state") else {
        return Err(refused(step, provider_id, "missing_state", START_AGAIN));
    };
    let binding = super::csrf::Binding::Upstream(state_id.to_owned());
    let same_browser =
        |tag: &str| super::csrf::check(step.req, step.state, step.registry, &binding, Some(tag));
    let claimed = step
        .pendings()
        .claim_callback(state_id, provider_id, same_browser)
        .await;
    let (kept, attempt) = match claimed {
        Ok(c) => c,
        Err(Refusal::Unavailable(e)) => return Err(step.unavailable(e)),
        Err(r) => return Err(refused(step, provider_id, r.reason(), START_AGAIN)),
    };
    let Some(provider) = step.registry.provider(provider_id) else {
        return Err(refused(step, provider_id, "provider_gone", START_AGAIN));
    };
    let request = kept.pending.request.clone();
    if form.get("error").is_some() {
        tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = "upstream_error", error = form.get("error").unwrap_or_default(), remote = %step.ip);
        metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "refused").increment(1);
        let message = format!("Signing in with {} was not completed.", provider.name);
        return step
            .login_page(&request, Some(kept), Some((&message, "")))
            .await;
    }
    let Some(code) = form.get("code") else {
        return Err(refused(step, &provider.id, "missing_code", START_AGAIN));
    };
    let callback = endpoint(&step.registry.issuer, &provider.callback_path());
    let now = step.state.clock.now();
    let vouched = step
        .state
        .upstreams
        .finish(
            provider,
            &callback,
            &Attempt {
                nonce: &attempt.nonce,
                pkce_verifier: &attempt.pkce_verifier,
            },
            &Response {
                code,
                iss: form.get("iss"),
            },
            now,
        )
        .await;
    let vouched = match vouched {
        Ok(v) => v,
        Err(e @ UpstreamError::Unavailable(_)) => {
            tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = e.reason(), error = %e, remote = %step.ip);
            metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "unavailable").increment(1);
            return Err(page::provider_unavailable(step.registry, &provider.name));
        }
        Err(e) => {
            tracing::info!(event = "upstream_answer_refused", provider = %provider.id, reason = e.reason(), error = %e, remote = %step.ip);
            return Err(refused(step, &provider.id, e.reason(), START_AGAIN));
        }
    };
    admit(step, provider, kept, vouched, now).await
}

/// Who the vouched user becomes, and the session and request going on as them.
async fn admit(
    step: &Step<'_>,
    provider: &Provider,
    mut kept: Kept,
    vouched: crate::upstream::Vouched,
    now: u64,
) -> Result<HttpResponse, HttpResponse> {
    let request = kept.pending.request.clone();
    let federation = |user: &rules::UpstreamUser| Federation {
        provider: provider.id.clone(),
        subject: user.subject.clone(),
        login_at: now,
        checked_at: now,
        token: None,
    };
    let linked = |subject: &str| step.registry.linked_user(&provider.id, subject);
    let admitted = match rules::admission(provider, vouched.claims, linked, federation) {
        Ok(a) => a,
        Err(r @ rules::Refusal::NoSubject) => {
            return Err(refused(step, &provider.id, &r.to_string(), r.message()));
        }
        Err(r) => {
            tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = %r, client_id = %request.client_id, remote = %step.ip);
            metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "refused").increment(1);
            return step
                .login_page(&request, Some(kept), Some((r.message(), "")))
                .await;
        }
    };
    let rules::Admitted {
        user,
        linked,
        identity,
    } = admitted;
    let sealed = match (provider.refresh, &vouched.token, &step.registry.token_key) {
        (RefreshPolicy::Revalidate(_), Some(token), Some(key)) => Some(
            key.seal(&provider.id, &user.subject, token)
                .map_err(|e| step.unavailable(e))?,
        ),
        (RefreshPolicy::Revalidate(_), _, _) => {
            return Err(refused(
                step,
                &provider.id,
                "no_upstream_token",
                "The provider gave no refresh token to check this sign-in again with.",
            ));
        }
        (RefreshPolicy::Cap(_), _, _) => None,
    };
    let (made_at, trips) = (kept.pending.created_at, kept.pending.upstream_trips);
    let auth_time = match policy::upstream_login(&request, made_at, vouched.auth_time, now, trips) {
        Upstreamed::Session(auth_time) => auth_time,
        Upstreamed::Retry => {
            tracing::warn!(event = "upstream_login_stale", provider = %provider.id, client_id = %request.client_id, remote = %step.ip);
            return step.go_upstream(&request, Some(kept), provider).await;
        }
        Upstreamed::Fallback => return fall_back(step, provider, kept, linked).await,
    };
    tracing::info!(event = "upstream_login_succeeded", provider = %provider.id, client_id = %request.client_id, user_id = %identity.subject, remote = %step.ip);
    metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "success").increment(1);
    let (fresh, cookie) = login::start_session_as(step, identity, auth_time, Vec::new()).await?;
    kept.pending.upstream_token = sealed;
    step.keep(&kept).await?;
    let mut response = step.proceed(request, Some(kept), Some(fresh)).await;
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// A request that demanded a fresh login (`prompt=login`, `max_age`) which `provider`
/// did not prove (no `auth_time`, as from GitHub, or one too old after the retry):
/// the linked user's own password when they have one, else `login_required` back to
/// the client. Never a session from this login, so no loop back to the provider.
async fn fall_back(
    step: &Step<'_>,
    provider: &Provider,
    kept: Kept,
    linked: Option<&crate::model::User>,
) -> Result<HttpResponse, HttpResponse> {
    let request = kept.pending.request.clone();
    tracing::warn!(event = "upstream_login_refused", provider = %provider.id, reason = "fresh_login_unproven", client_id = %request.client_id, remote = %step.ip);
    metrics::counter!("gatehouse_upstream_logins_total", "provider" => provider.id.clone(), "result" => "refused").increment(1);
    if let Some(user) = linked.filter(|u| u.password_hash.is_some()) {
        let message = format!(
            "{} could not confirm a new sign-in. Enter your password to continue.",
            provider.name
        );
        return step
            .login_page(&request, Some(kept), Some((&message, &user.username)))
            .await;
    }
    step.forget(&kept).await?;
    Ok(super::interaction::refuse(
        step.registry,
        &request,
        ErrorCode::LoginRequired,
        "the provider could not confirm a fresh sign-in",
    ))
}
