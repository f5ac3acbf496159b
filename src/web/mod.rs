//! The pages a person sees and the browser side of the authorization-code flow:
//! `/authorize`, login (password, passkey), passkey enrolment, consent, logout, the device grant's `/device` and errors, with their cookies, CSRF protection
//! and the page rate limit. Handlers here call into `oauth` for protocol rules and the
//! code itself; nothing in `oauth` calls back.

pub mod authorize;
pub mod consent;
pub mod cookies;
pub mod csrf;
pub mod device;
pub mod flood;
pub mod interaction;
pub mod login;
pub mod logout;
pub mod page;
pub mod passkey;
pub mod second_factor;
pub mod session;
pub mod upstream;

use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::registry::Registry;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use interaction::Step;

/// Reads a form posted from one of our pages: refuses a post from another site, then
/// checks its CSRF token against what the form acts on (`binding` reads it from the
/// form); the error is the page to answer with.
pub(crate) fn posted_form(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    body: &[u8],
    binding: impl FnOnce(&Form) -> csrf::Binding,
) -> Result<Form, HttpResponse> {
    let expired = || {
        page::error(
            registry,
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form has expired or was not sent from this site. Start again from the application.",
        )
    };
    if !csrf::same_origin(req, registry) {
        tracing::warn!(event = "cross_site_post", path = %req.path());
        return Err(expired());
    }
    let form = Form::parse(body).map_err(|e| {
        page::error(
            registry,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &e.description,
        )
    })?;
    let valid = csrf::check(
        req,
        state,
        registry,
        &binding(&form),
        form.get("csrf_token"),
    );
    if valid { Ok(form) } else { Err(expired()) }
}

/// Runs `then` for a form posted to a page of the login flow: reads the form and checks
/// its CSRF token (bound to the pending request the form names) under one registry
/// snapshot, then answers with whatever `then` does.
pub(crate) async fn on_posted_form(
    req: &HttpRequest,
    ip: ClientIp,
    body: &[u8],
    state: &AppState,
    then: impl AsyncFnOnce(&Step<'_>, &Form) -> Result<HttpResponse, HttpResponse>,
) -> HttpResponse {
    let pending =
        |f: &Form| csrf::Binding::Pending(f.get("request").unwrap_or_default().to_owned());
    on_form_bound_to(req, ip, body, state, pending, then).await
}

/// Runs `then` for a form posted to one of our pages whose CSRF token is bound to
/// `binding(form)`: reads and checks it under one registry snapshot, then answers with
/// whatever `then` does.
pub(crate) async fn on_form_bound_to(
    req: &HttpRequest,
    ip: ClientIp,
    body: &[u8],
    state: &AppState,
    binding: impl FnOnce(&Form) -> csrf::Binding,
    then: impl AsyncFnOnce(&Step<'_>, &Form) -> Result<HttpResponse, HttpResponse>,
) -> HttpResponse {
    let registry = state.snapshot();
    let form = match posted_form(req, state, &registry, body, binding) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let step = Step {
        req,
        ip,
        state,
        registry: &registry,
    };
    match then(&step, &form).await {
        Ok(response) | Err(response) => response,
    }
}
