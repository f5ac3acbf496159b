//! `GET` and `POST /authorize` (a query, or a form per OIDC Core 3.1.2.1): check the
//! request, then hand it to the interaction that logs the user in, asks for consent and
//! issues the code. A request that cannot be trusted with a redirect is an error page.

use super::{interaction, page};
use crate::http::client_ip::ClientIp;
use crate::http::form::{Form, FormError};
use crate::oauth::authorize_request::{Rejection, validate};
use crate::oauth::client_document;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /authorize`.
pub async fn get(req: HttpRequest, ip: ClientIp, state: web::Data<AppState>) -> HttpResponse {
    let form = Form::parse(req.query_string().as_bytes());
    handle(&req, ip, form, &state).await
}

/// `POST /authorize`.
pub async fn post(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    handle(&req, ip, Form::parse(&body), &state).await
}

async fn handle(
    req: &HttpRequest,
    ip: ClientIp,
    form: Result<Form, FormError>,
    state: &AppState,
) -> HttpResponse {
    let registry = state.snapshot();
    let form = match form {
        Ok(f) => f,
        Err(e) => return page::invalid_request(&registry, &e.description),
    };
    // A client_id under a [[client_metadata_documents]] prefix is its document's URL:
    // the client it registers is fetched (or read from the cache) before anything else.
    let client_id = form.get("client_id").unwrap_or_default();
    let document = match client_document::resolve(state, &registry, client_id).await {
        Ok(document) => document,
        Err(e) => return page::invalid_client(&registry, &e.description),
    };
    match validate(&registry, document.as_ref(), &form) {
        Ok(request) => {
            let step = interaction::Step {
                req,
                ip,
                state,
                registry: &registry,
            };
            step.proceed(request, None, None).await
        }
        Err(Rejection::Page(message)) => page::invalid_request(&registry, &message),
        Err(Rejection::Redirect {
            redirect_uri,
            state: client_state,
            error,
        }) => error.redirect(
            &crate::error::ReturnTo {
                redirect_uri: &redirect_uri,
                state: client_state.as_deref(),
            },
            &registry.issuer,
        ),
    }
}
