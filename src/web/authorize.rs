//! `GET` and `POST /authorize` (a query, or a form per OIDC Core 3.1.2.1): check the
//! request, then hand it to the interaction that logs the user in, asks for consent and
//! issues the code. A request that cannot be trusted with a redirect is an error page.
//! A `request_uri` takes a pushed request (`oauth::par`); a client that must push its
//! requests is refused any other.

use super::{interaction, page};
use crate::error::ErrorCode;
use crate::http::client_ip::ClientIp;
use crate::http::form::{Form, FormError};
use crate::oauth::authorize_request::{Rejection, validate};
use crate::oauth::client_document;
use crate::oauth::par::{self, Recall};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /authorize`.
pub(crate) async fn get(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = Form::parse(req.query_string().as_bytes());
    handle(&req, ip, form, &state).await
}

/// `POST /authorize`.
pub(crate) async fn post(
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
    let step = interaction::Step {
        req,
        ip,
        state,
        registry: &registry,
    };
    // A pushed request (RFC 9126 4): the other parameters are ignored.
    if let Some(request_uri) = form.get("request_uri") {
        return match par::recall(state, form.get("client_id"), request_uri).await {
            Ok(request) => step.proceed(request, None, None).await,
            Err(Recall::Refused(why)) => page::invalid_request(&registry, why),
            Err(Recall::Unavailable(e)) => page::unavailable(&registry, e),
        };
    }
    match validate(&registry, document.as_ref(), &form) {
        Ok(request) => {
            let client = registry.client(&request.client_id).or(document.as_ref());
            if client.is_some_and(|c| par::required(&registry, c)) {
                return interaction::refuse(
                    &registry,
                    &request,
                    ErrorCode::InvalidRequest,
                    "this client must push its authorization requests (PAR, RFC 9126)",
                );
            }
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
