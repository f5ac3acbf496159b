//! The user's side of the device grant (RFC 8628 3.3): `GET /device` shows the form to
//! type the code (pre-filled from `verification_uri_complete`, still confirmed by a
//! click); `POST /device` looks it up, counting a wrong code toward the address's
//! failure limit (429 past it); then a login when the browser has no session (the
//! login form and checks of `login`, posted to `/device/login`), then a confirmation
//! page that always shows the client's name, the scopes and the code, first-party
//! clients included (RFC 8628 5.4), or first the second factor when the login policy
//! asks one (`POST /device/second-factor`: the checks of `second_factor`; a user
//! without one is refused); `POST /device/decide` allows or denies. Every form
//! carries a CSRF token bound to the code it acts on; the server makes a token for a
//! code only once it was typed right at `POST /device`, so the later forms are no
//! oracle for guessing codes past the failure limit.

use super::csrf::Binding;
use super::interaction::Step;
use super::login::{self, BAD_CREDENTIALS};
use super::passkey;
use super::second_factor::{self, failure_message};
use super::session::Current;
use super::{on_form_bound_to, page};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::oauth::device::{self, Waiting};
use crate::oauth::interaction::facts::local_user;
use crate::oauth::interaction::policy::{SessionFacts, Strength, needs_second_factor};
use crate::protocol::user_code;
use crate::state::AppState;
use crate::throttle::{self, Policy};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// What a wrong code is told.
const WRONG_CODE: &str =
    "That code is not valid. Check the code your device shows, or start again on the device.";

/// `GET /device`: the form to type the code, pre-filled from `?user_code=`.
pub(crate) async fn show(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> HttpResponse {
    let registry = state.snapshot();
    let step = Step {
        req: &req,
        ip,
        state: &state,
        registry: &registry,
    };
    let typed = Form::parse(req.query_string().as_bytes())
        .ok()
        .and_then(|q| q.get("user_code").map(str::to_owned))
        .unwrap_or_default();
    entry_page(&step, &typed, None)
}

/// `POST /device`: the typed code.
pub(crate) async fn enter(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    on_form(&req, ip, &body, &state, |_| String::new(), look_up).await
}

/// `POST /device/login`: the login form shown for a code.
pub(crate) async fn log_in(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    on_form(&req, ip, &body, &state, canonical, sign_in).await
}

/// `POST /device/decide`: allow or deny.
pub(crate) async fn decide(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    on_form(&req, ip, &body, &state, canonical, answer).await
}

/// `POST /device/second-factor`: the second factor after the device login.
pub(crate) async fn second_factor(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    on_form(&req, ip, &body, &state, canonical, prove).await
}

/// The form's `user_code`, canonical (empty when malformed): what its token is bound to.
fn canonical(form: &Form) -> String {
    user_code::normalize(form.get("user_code").unwrap_or_default()).unwrap_or_default()
}

/// Reads a `/device` form (same origin, CSRF token bound to the code `bound(form)`
/// names), then runs `then`.
async fn on_form(
    req: &HttpRequest,
    ip: ClientIp,
    body: &[u8],
    state: &AppState,
    bound: fn(&Form) -> String,
    then: impl AsyncFnOnce(&Step<'_>, &Form) -> Result<HttpResponse, HttpResponse>,
) -> HttpResponse {
    let binding = |f: &Form| Binding::Device(bound(f));
    on_form_bound_to(req, ip, body, state, binding, then).await
}

async fn look_up(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let typed = form.get("user_code").unwrap_or_default();
    let policy = Policy::user_code(&step.registry.limits, step.ip.0);
    let store = step.state.store.as_ref();
    let verdict = throttle::attempt(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    if let Some(left) = throttle::abide(verdict).await {
        tracing::warn!(event = "device_code_refused", reason = "too_many_failures", remote = %step.ip);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "user_code").increment(1);
        return Ok(page::too_many(
            step.registry,
            "Too many attempts",
            "Too many wrong codes. Wait a while, then try again.",
            left,
        ));
    }
    let Some(waiting) = waiting(step, typed).await? else {
        tracing::warn!(event = "device_code_wrong", remote = %step.ip);
        metrics::counter!("gatehouse_device_codes_total", "event" => "wrong_code").increment(1);
        return Ok(entry_page(step, typed, Some(WRONG_CODE)));
    };
    throttle::succeeded(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    match session_for(step, &waiting).await? {
        Some(current) => Ok(confirm_or_factor(step, &waiting, &current, None)),
        None => Ok(login_page(step, &waiting, None)),
    }
}

/// The browser's session, when the waiting code's client may use it (a login through
/// a provider the client does not allow is as none).
async fn session_for(step: &Step<'_>, waiting: &Waiting) -> Result<Option<Current>, HttpResponse> {
    let Some(client) = step.registry.client(&waiting.grant.client_id) else {
        return Ok(None);
    };
    Ok(step
        .session()
        .await?
        .filter(|c| crate::oauth::interaction::facts::may_use(client, &c.session, step.ip)))
}

async fn sign_in(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(waiting) = waiting(step, form.get("user_code").unwrap_or_default()).await? else {
        return Ok(gone(step));
    };
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let checked = login::check_password(step, username, password, &waiting.grant.client_id).await?;
    let Some(user) = checked else {
        return Ok(login_page(step, &waiting, Some(username)));
    };
    let (current, cookie) = login::start_session(step, user).await?;
    let mut response = confirm_or_factor(step, &waiting, &current, None);
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

async fn prove(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(waiting) = waiting(step, form.get("user_code").unwrap_or_default()).await? else {
        return Ok(gone(step));
    };
    let Some(current) = session_for(step, &waiting).await? else {
        return Ok(login_page(step, &waiting, None));
    };
    let user = local_user(step.registry, &current.session.identity);
    let (Some(user), Some(true)) = (user, factor_needed(step, &waiting, &current)) else {
        return Ok(confirm_or_factor(step, &waiting, &current, None));
    };
    let client_id = &waiting.grant.client_id;
    let bound = canonical_of(&waiting);
    let checked = second_factor::check(step, user, form, &bound, client_id).await?;
    let Some(method) = checked else {
        let error = Some(failure_message(form));
        return Ok(confirm_or_factor(step, &waiting, &current, error));
    };
    let (current, cookie) = login::add_factor(step, current, method).await?;
    let mut response = confirm_page(step, &waiting, &current);
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// Whether the session's login needs a second factor before it may approve the code,
/// as the login policy weighs it (`[login] second_factor`, the client's
/// `require_second_factor`): `Some(has one)` when it does.
fn factor_needed(step: &Step<'_>, waiting: &Waiting, current: &Current) -> Option<bool> {
    let session = &current.session;
    let has = local_user(step.registry, &session.identity)
        .is_some_and(|u| !u.second_factors().is_empty());
    let facts = SessionFacts {
        strength: Strength::of(&session.amr),
        has_second_factor: has,
        ..SessionFacts::default()
    };
    let demanded = step
        .registry
        .client(&waiting.grant.client_id)
        .is_some_and(|c| c.protections.second_factor);
    needs_second_factor(step.registry.login.second_factor, demanded, &facts).then_some(has)
}

/// The confirmation page, or first the second-factor page (with `error` after a wrong
/// code) when the session needs one, or the refusal for a user without one.
fn confirm_or_factor(
    step: &Step<'_>,
    waiting: &Waiting,
    current: &Current,
    error: Option<&str>,
) -> HttpResponse {
    match factor_needed(step, waiting, current) {
        None => confirm_page(step, waiting, current),
        Some(false) => page::no_second_factor(step.registry),
        Some(true) => {
            let session = &current.session;
            let user = local_user(step.registry, &session.identity);
            let factors: Vec<&str> = user
                .map(|u| u.second_factors().iter().map(|f| f.as_str()).collect())
                .unwrap_or_default();
            let code = canonical_of(waiting);
            let offer = user.map(|u| passkey::second::offer(step.state, step.registry, u, &code));
            let offer = match offer.transpose() {
                Ok(offer) => offer.flatten(),
                Err(e) => return step.unavailable(e),
            };
            let scripts = offer.is_some();
            let context = json!({
                "action": "/device/second-factor",
                "client_name": client_name(step, waiting),
                "user_code": waiting.shown,
                "user_name": session.identity.display_name(),
                "factors": factors,
                "passkey": offer,
                "error": error,
            });
            let mut response = form_page(step, "second_factor.html", &code, context);
            if scripts {
                page::allow_own_scripts(&mut response, &[]);
            }
            response
        }
    }
}

async fn answer(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(waiting) = waiting(step, form.get("user_code").unwrap_or_default()).await? else {
        return Ok(gone(step));
    };
    let Some(current) = session_for(step, &waiting).await? else {
        return Ok(login_page(step, &waiting, None));
    };
    if factor_needed(step, &waiting, &current).is_some() {
        return Ok(confirm_or_factor(step, &waiting, &current, None));
    }
    let approve = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return Ok(page::invalid_request(
                step.registry,
                "Choose Allow or Deny.",
            ));
        }
    };
    let session = &current.session;
    let decided = device::decide(
        step.state,
        waiting.key,
        &session.identity,
        session.auth_time,
        approve,
        &step.ip,
    )
    .await
    .map_err(|e| step.unavailable(e.description))?;
    if !decided {
        return Ok(gone(step));
    }
    let context = json!({
        "approved": approve,
        "client_name": client_name(step, &waiting),
        "user_code": waiting.shown,
    });
    Ok(page::render(
        step.registry,
        actix_web::http::StatusCode::OK,
        "device_done.html",
        context,
        None,
    ))
}

/// The device code waiting for `typed`.
async fn waiting(step: &Step<'_>, typed: &str) -> Result<Option<Waiting>, HttpResponse> {
    device::waiting(step.state, typed)
        .await
        .map_err(|e| step.unavailable(e.description))
}

fn client_name(step: &Step<'_>, waiting: &Waiting) -> String {
    step.registry
        .client(&waiting.grant.client_id)
        .map_or_else(|| waiting.grant.client_id.clone(), |c| c.name.clone())
}

/// A code that was good a moment ago and is not any more (expired, decided).
fn gone(step: &Step<'_>) -> HttpResponse {
    page::error(
        step.registry,
        actix_web::http::StatusCode::BAD_REQUEST,
        "Code expired",
        "This code has expired or was already used. Start again on your device.",
    )
}

/// Renders a `/device` page whose form acts on `code` (canonical; empty: the entry form).
fn form_page(step: &Step<'_>, template: &str, code: &str, context: Value) -> HttpResponse {
    page::render_form(
        step.req,
        step.state,
        step.registry,
        template,
        &Binding::Device(code.to_owned()),
        context,
        None,
    )
}

fn entry_page(step: &Step<'_>, typed: &str, error: Option<&str>) -> HttpResponse {
    let context = json!({"user_code": typed, "error": error});
    form_page(step, "device.html", "", context)
}

fn login_page(step: &Step<'_>, waiting: &Waiting, failed_as: Option<&str>) -> HttpResponse {
    let context = json!({
        "action": "/device/login",
        "client_name": client_name(step, waiting),
        "user_code": waiting.shown,
        "username": failed_as.unwrap_or_default(),
        "error": failed_as.map(|_| BAD_CREDENTIALS),
    });
    form_page(step, "login.html", &canonical_of(waiting), context)
}

fn confirm_page(step: &Step<'_>, waiting: &Waiting, current: &Current) -> HttpResponse {
    let scopes: Vec<_> = waiting
        .grant
        .scopes
        .iter()
        .map(|s| json!({"name": s, "description": super::interaction::scope_description(step.registry, s)}))
        .collect();
    let context = json!({
        "client_name": client_name(step, waiting),
        "user_name": current.session.identity.display_name(),
        "scopes": scopes,
        "resources": super::interaction::resources_shown(step.registry, &waiting.grant.resources),
        "user_code": waiting.shown,
    });
    form_page(step, "device_confirm.html", &canonical_of(waiting), context)
}

fn canonical_of(waiting: &Waiting) -> String {
    waiting.shown.replace('-', "")
}
