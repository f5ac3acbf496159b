//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). `GET /logout` asks the
//! user to confirm (a cross-site link alone cannot end a session); the confirming
//! `POST /logout` ends the session and returns to `post_logout_redirect_uri` when it is
//! registered for the client, or shows a signed-out page.

use super::cookies::{self, Kind};
use super::csrf::Binding;
use super::{page, session};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::http::{see_other, with_params};
use crate::jwt::verify;
use crate::oauth::{backchannel, standing};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// Where to send the browser afterwards, checked against the client's registration.
struct Return {
    client_id: Option<String>,
    uri: Option<String>,
    state: Option<String>,
}

/// Reads and checks the logout parameters; the error is shown as a page.
fn read_return(registry: &Registry, form: &Form) -> Result<Return, String> {
    let hinted = match form.get("id_token_hint") {
        Some(hint) => Some(
            verify::id_token_hint(&registry.jwt(), hint)
                .map_err(|_| "The id_token_hint was not issued by this server.".to_owned())?
                .aud,
        ),
        None => None,
    };
    let client_id = match (form.get("client_id"), hinted) {
        (Some(given), Some(hinted)) if given != hinted => {
            return Err("client_id does not match the id_token_hint.".into());
        }
        (Some(given), _) => Some(given.to_owned()),
        (None, hinted) => hinted,
    };
    let uri = match form.get("post_logout_redirect_uri") {
        Some(uri) => {
            let client = client_id
                .as_deref()
                .and_then(|id| registry.client(id))
                .ok_or("post_logout_redirect_uri needs a known client_id or id_token_hint.")?;
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(
                    "The post_logout_redirect_uri is not registered for this application.".into(),
                );
            }
            Some(uri.to_owned())
        }
        None => None,
    };
    Ok(Return {
        client_id,
        uri,
        state: form.get("state").map(str::to_owned),
    })
}

fn finish(registry: &Registry, back: &Return) -> HttpResponse {
    match &back.uri {
        Some(uri) => {
            let params: Vec<(&str, &str)> =
                back.state.iter().map(|s| ("state", s.as_str())).collect();
            see_other(&with_params(uri, &params))
        }
        None => page::render(registry, StatusCode::OK, "logged_out.html", json!({}), None),
    }
}

/// The names of the applications signing out ends: the clients given a code in the
/// session (a client since removed, or registered by its document, by its id).
fn applications(registry: &Registry, session: &Session) -> Vec<String> {
    session
        .clients
        .iter()
        .map(|id| {
            registry
                .client(id)
                .map_or(id.as_str(), |c| c.name.as_str())
                .to_owned()
        })
        .collect()
}

/// `GET /logout`: the confirmation page (or straight back when there is no session).
pub(crate) async fn confirm(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let registry = state.snapshot();
    let back = match Form::parse(req.query_string().as_bytes())
        .map_err(|e| e.description)
        .and_then(|f| read_return(&registry, &f))
    {
        Ok(b) => b,
        Err(message) => return page::invalid_request(&registry, message.as_str()),
    };
    let current = match session::current(&req, &state, &registry).await {
        Ok(c) => c,
        Err(e) => return page::unavailable(&registry, e),
    };
    let Some(current) = current else {
        return finish(&registry, &back);
    };
    let context = json!({
        "user_name": current.session.identity.display_name(),
        "applications": applications(&registry, &current.session),
        "post_logout_redirect_uri": back.uri,
        "client_id": back.client_id,
        "state": back.state,
    });
    let session_id = cookies::read(&req, &registry, Kind::Session).unwrap_or_default();
    page::render_form(
        &req,
        &state,
        &registry,
        "logout.html",
        &Binding::Session(session_id),
        context,
        back.uri.as_deref(),
    )
}

/// `POST /logout`: ends the session.
pub(crate) async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let registry = state.snapshot();
    let session_id = cookies::read(&req, &registry, Kind::Session).unwrap_or_default();
    let form = match super::posted_form(&req, &state, &registry, &body, |_| {
        Binding::Session(session_id)
    }) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let back = match read_return(&registry, &form) {
        Ok(b) => b,
        Err(message) => return page::invalid_request(&registry, &message),
    };
    match session::current(&req, &state, &registry).await {
        Ok(Some(current)) => {
            // The session's end first: should the store fail between the two, the
            // tokens are ended and the session with them.
            if !current.session.sid.is_empty()
                && let Err(e) = standing::end_session(&state, &registry, &current.session.sid).await
            {
                return page::unavailable(&registry, e);
            }
            let (deleted, forgotten) = tokio::join!(
                state.store.delete_session(current.key),
                backchannel::forget(&state, &current.session),
            );
            if let Err(e) = deleted.and(forgotten) {
                return page::unavailable(&registry, e);
            }
            backchannel::notify(&state.clone().into_inner(), &registry, &current.session);
            tracing::info!(event = "logout", remote = %ip, user_id = %current.session.identity.subject);
        }
        Ok(None) => {}
        Err(e) => return page::unavailable(&registry, e),
    }
    let mut response = finish(&registry, &back);
    let _ = response.add_cookie(&cookies::removal(&registry, Kind::Session));
    response
}
