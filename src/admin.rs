//! `POST /revoke` on the admin listener (`[server] admin_bind`): what `gatehouse
//! revoke` calls in an emergency. It records in the store a "not before" of now for one
//! user (`user=ID`), one client (`client=ID`) or one login session (`session=SID`), so
//! that every session, code, refresh token and access token of it issued until now
//! stops standing on every replica sharing the store (`oauth::standing`), for as long
//! as any of them could live. The clients are told by back-channel logout: a
//! session's (`oauth::backchannel::notify_sid`), those of each of a user's sessions,
//! or the client itself for each session it got a code in (`oauth::backchannel::
//! fanout`, through the store's indexes of sessions by user and by client).
//!
//! Authenticated by the token of `[server] admin_token_file` as a Bearer token,
//! compared in constant time. A token file rather than a Unix socket: the admin
//! listener is TCP already (metrics are scraped over it, often from another pod), a
//! socket would need a second listener and a shared filesystem with the caller, and a
//! file is how Kubernetes hands secrets to a container and to `kubectl exec`.

use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::oauth::backchannel::fanout::{self, Ending, Told};
use crate::oauth::{backchannel, standing};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// The longest id accepted: longer than any id the config or the server makes.
const MAX_ID: usize = 512;

/// What to revoke: one of the three, with its id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// Every session and token of a user (`sub`).
    User(&'a str),
    /// Every token of a client.
    Client(&'a str),
    /// One login session and the tokens issued in it.
    Session(&'a str),
}

impl Target<'_> {
    /// The store name of its not-before.
    fn key(&self) -> String {
        match self {
            Target::User(id) => standing::user_key(id),
            Target::Client(id) => standing::client_key(id),
            Target::Session(sid) => standing::session_key(sid),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Target::User(_) => "user",
            Target::Client(_) => "client",
            Target::Session(_) => "session",
        }
    }
}

/// The one target `form` names: exactly one of `user`, `client`, `session`, not
/// empty, at most [`MAX_ID`] bytes, no control characters.
pub(crate) fn target(form: &Form) -> Result<Target<'_>, &'static str> {
    let named: Vec<Target<'_>> = [
        form.get("user").map(Target::User),
        form.get("client").map(Target::Client),
        form.get("session").map(Target::Session),
    ]
    .into_iter()
    .flatten()
    .collect();
    let [one] = <[Target<'_>; 1]>::try_from(named)
        .map_err(|_| "name exactly one of user, client, session")?;
    let (Target::User(id) | Target::Client(id) | Target::Session(id)) = &one;
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err("the id is empty, too long, or holds control characters");
    }
    Ok(one)
}

fn refused(status: actix_web::http::StatusCode, error: &str, why: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error, "error_description": why }))
}

/// `POST /revoke` on the admin listener.
pub(crate) async fn revoke(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let registry = state.snapshot();
    let Some(token) = &registry.server.admin_token else {
        return refused(
            StatusCode::FORBIDDEN,
            "access_denied",
            "no [server] admin_token_file is configured",
        );
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| token.accepts(p)) {
        tracing::warn!(event = "admin_refused", remote = %ip);
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .json(json!({ "error": "invalid_token" }));
    }
    let form = match Form::posted(&req, &body) {
        Ok(f) => f,
        Err(e) => return refused(StatusCode::BAD_REQUEST, "invalid_request", &e.description),
    };
    let target = match target(&form) {
        Ok(t) => t,
        Err(why) => return refused(StatusCode::BAD_REQUEST, "invalid_request", why),
    };
    let now = state.clock.now();
    let ttl = standing::not_before_ttl(&registry);
    if let Err(e) = state.store.set_not_before(&target.key(), now, ttl).await {
        tracing::warn!(error = %e, "recording a revocation");
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the store did not answer",
        );
    }
    let (Target::User(id) | Target::Client(id) | Target::Session(id)) = &target;
    tracing::info!(event = "admin_revoked", kind = target.kind(), id = %id, not_before = now, remote = %ip);
    let told = tell(&state, &registry, &target, now).await;
    HttpResponse::Ok().json(json!({
        "revoked": target.kind(), "id": id, "not_before": now,
        "backchannel_logout": told.clients, "sessions_told": told.sessions,
    }))
}

/// Sends back-channel logout tokens to the clients of the session `sid` (when the
/// store still keeps what they were); the ids of the clients being told. The
/// revocation is recorded already: a store that fails here only costs the telling,
/// which is logged.
async fn tell_clients(
    state: &web::Data<AppState>,
    registry: &std::sync::Arc<crate::registry::Registry>,
    sid: &str,
) -> Vec<String> {
    let state = state.clone().into_inner();
    backchannel::notify_sid(&state, registry, sid)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "finding the clients of a revoked session");
            Vec::new()
        })
}

/// Tells the clients of the sessions `target` ends, by back-channel logout: the
/// session's, those of each of a user's sessions, or the client itself for each
/// session it got a code in (`fanout::tell`). The revocation is recorded already: a
/// store that fails here only costs the telling, which is logged.
async fn tell(
    state: &web::Data<AppState>,
    registry: &std::sync::Arc<crate::registry::Registry>,
    target: &Target<'_>,
    now: u64,
) -> Told {
    let ending = match *target {
        Target::Session(sid) => {
            let clients = tell_clients(state, registry, sid).await;
            let sessions = usize::from(!clients.is_empty());
            return Told { sessions, clients };
        }
        Target::User(sub) => Ending::User {
            sub: sub.to_owned(),
            cut: Some(now),
        },
        Target::Client(id) => Ending::Client {
            id: id.to_owned(),
            cut: Some(now),
        },
    };
    let state = state.clone().into_inner();
    fanout::tell(&state, registry, &ending)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "finding the sessions a revocation ends");
            Told::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Form {
        Form::parse(text.as_bytes()).expect("form")
    }

    #[test]
    fn exactly_one_target() {
        assert_eq!(target(&form("user=alice")), Ok(Target::User("alice")));
        assert_eq!(target(&form("client=web")), Ok(Target::Client("web")));
        assert_eq!(target(&form("session=abc")), Ok(Target::Session("abc")));
        assert!(target(&form("")).is_err());
        assert!(target(&form("user=a&client=b")).is_err());
        assert!(target(&form("user=")).is_err());
        assert!(target(&form("user=a%0Ab")).is_err());
        assert!(target(&form(&format!("user={}", "a".repeat(MAX_ID + 1)))).is_err());
    }
}
