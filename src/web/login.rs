//! `POST /login`: the login form. Every wrong username or password gets the same message
//! after the same work (an unknown username is checked against a decoy hash). Every
//! attempt is counted before the password is hashed: an address that keeps failing is
//! refused, a username that keeps failing is only slowed down (see `throttle`).

use super::cookies::{self, Kind};
use super::interaction::Step;
use super::page;
use super::session::Current;
use crate::crypto::{DECOY_HASH, random_id, random_secret, sha256};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::model::User;
use crate::protocol::acr;
use crate::state::AppState;
use crate::store::Session;
use crate::throttle::{self, Policy};
use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse, web};

/// The message for any failed login: it never says which half was wrong.
pub(crate) const BAD_CREDENTIALS: &str = "Incorrect username or password.";

/// `POST /login`.
pub(crate) async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    super::on_posted_form(&req, ip, &body, &state, attempt).await
}

async fn attempt(step: &Step<'_>, form: &Form) -> Result<HttpResponse, HttpResponse> {
    let Some(kept) = step.recall(form.get("request")).await? else {
        return Ok(page::expired_request(step.registry));
    };
    let request = kept.pending.request.clone();
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let Some(user) = check_password(step, username, password, &request.client_id).await? else {
        let error = Some((BAD_CREDENTIALS, username));
        return step.login_page(&request, Some(kept), error).await;
    };
    let (fresh, cookie) = start_session(step, user).await?;
    let mut response = step.proceed(request, Some(kept), Some(fresh)).await;
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// Checks a login form's `username` and `password` for a sign-in to `client_id`,
/// counted and throttled, logged and measured: the user, `None` when they are wrong,
/// or the page refusing the attempt (too many failures, the store down).
pub(crate) async fn check_password<'r>(
    step: &Step<'r>,
    username: &str,
    password: &str,
    client_id: &str,
) -> Result<Option<&'r User>, HttpResponse> {
    let Step {
        ip,
        state,
        registry,
        ..
    } = *step;
    let address = ip.to_string();
    let store = state.store.as_ref();
    let policy = Policy::login(&registry.limits, username, ip.0);
    let verdict = throttle::attempt(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    if let Some(left) = throttle::abide(verdict).await {
        tracing::warn!(event = "login_refused", reason = "too_many_failures", client_id = %client_id, remote = %address);
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "login").increment(1);
        return Err(page::too_many(
            registry,
            "Too many attempts",
            "Too many failed sign-in attempts. Wait a while, then try again.",
            left,
        ));
    }
    let user = registry.user(username);
    // A user who signs in only through a provider has no password: the decoy is
    // checked (the same work) and never lets them in.
    let own = user.and_then(|u| u.password_hash.as_deref());
    let verified = state
        .verifier
        .verify_password(own.unwrap_or(DECOY_HASH), password)
        .await;
    let Some(user) = user.filter(|_| verified && own.is_some()) else {
        tracing::warn!(event = "login_failed", client_id = %client_id, remote = %address);
        metrics::counter!("gatehouse_logins_total", "result" => "failure").increment(1);
        return Ok(None);
    };
    throttle::succeeded(store, &policy)
        .await
        .map_err(|e| step.unavailable(e))?;
    tracing::info!(event = "login_succeeded", client_id = %client_id, user_id = %user.id, remote = %address);
    metrics::counter!("gatehouse_logins_total", "result" => "success").increment(1);
    Ok(Some(user))
}

/// Starts a session for `user`, who has just logged in: the session and the cookie the
/// answer must set. A new session id at every login, so a planted cookie never becomes
/// a session.
pub(crate) async fn start_session(
    step: &Step<'_>,
    user: &User,
) -> Result<(Current, Cookie<'static>), HttpResponse> {
    let amr = vec![acr::AMR_PWD.to_owned()];
    start_session_as(step, user.identity(), step.state.clock.now(), amr).await
}

/// Starts a session for `identity`, who authenticated at `auth_time` (now for a
/// password; the upstream's `auth_time` for a login through a provider) by the
/// RFC 8176 methods `amr` (where known).
pub(crate) async fn start_session_as(
    step: &Step<'_>,
    identity: crate::model::Identity,
    auth_time: u64,
    amr: Vec<String>,
) -> Result<(Current, Cookie<'static>), HttpResponse> {
    let Step {
        req,
        state,
        registry,
        ..
    } = *step;
    if let Some(old) = cookies::read(req, registry, Kind::Session) {
        state
            .store
            .delete_session(sha256(old.as_bytes()))
            .await
            .map_err(|e| step.unavailable(e))?;
    }
    let id = random_secret().map_err(|e| step.unavailable(e))?;
    let key = sha256(id.as_bytes());
    let session = Session {
        identity,
        auth_time,
        consents: Default::default(),
        sid: random_id().map_err(|e| step.unavailable(e))?,
        created_at: state.clock.now(),
        amr,
        clients: Default::default(),
    };
    state
        .store
        .put_session(key, session.clone(), registry.session.ttl)
        .await
        .map_err(|e| step.unavailable(e))?;
    let cookie = cookies::make(registry, Kind::Session, id, registry.session.ttl);
    Ok((Current { key, session }, cookie))
}

/// Records in the browser's session `current` that its user has just proved a second
/// factor by `method` (RFC 8176: `otp`): its `amr` gains the method and `mfa`. The
/// session moves to a new id (a login that gained a factor never keeps the cookie it
/// had with one); its `sid`, consents and clients stay. Returns it and the cookie the
/// answer must set.
pub(crate) async fn add_factor(
    step: &Step<'_>,
    current: Current,
    method: &str,
) -> Result<(Current, Cookie<'static>), HttpResponse> {
    let Step {
        state, registry, ..
    } = *step;
    let Current {
        key: old,
        mut session,
    } = current;
    session.amr = acr::with_second_factor(&session.amr, method);
    let left =
        (session.auth_time + registry.session.ttl.as_secs()).saturating_sub(state.clock.now());
    let left = std::time::Duration::from_secs(left);
    let id = random_secret().map_err(|e| step.unavailable(e))?;
    let key = sha256(id.as_bytes());
    state
        .store
        .put_session(key, session.clone(), left)
        .await
        .map_err(|e| step.unavailable(e))?;
    state
        .store
        .delete_session(old)
        .await
        .map_err(|e| step.unavailable(e))?;
    let cookie = cookies::make(registry, Kind::Session, id, left);
    Ok((Current { key, session }, cookie))
}
