//! The token endpoint (RFC 6749 3.2): form POST only. Parses the request once,
//! authenticates the client once, refuses a browser page on an origin the client does
//! not allow, checks that it may use the grant it names, hands the grant a typed
//! request, and logs, counts and writes the answer in one place.

use super::grants::{self, TokenRequest};
use super::{client_auth, client_document, cors, dpop};
use crate::config::file::GrantType;
use crate::counters::{self, Counters};
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::http::no_store;
use crate::state::AppState;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};

/// Largest request body the token endpoint (and every form endpoint) reads.
pub(crate) const MAX_BODY: usize = 64 * 1024;

thread_local! {
    /// `gatehouse_tokens_issued_total` by client label and grant.
    static ISSUED: Counters<&'static str> = Counters::default();
}

/// `POST /token`.
pub(crate) async fn token(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let grant = match form.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
        Some(name) => GrantType::from_param(name).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant type {name:?} is not supported"),
            )
        })?,
    };
    let registry = state.snapshot();
    let credentials = client_auth::presented(req.headers(), &form)?;
    // A client registered by its metadata document: fetched (or read from the cache)
    // first; authenticated as any public client.
    let document = client_document::resolve(&state, &registry, credentials.client_id()).await?;
    let authenticated =
        client_auth::authenticate(&state, &registry, document.as_ref(), ip.0, &credentials).await?;
    let client = authenticated.client;
    cors::refuse_foreign_origin(&req, &registry, client)?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {} grant", grant.as_str()),
        ));
    }
    // RFC 9449: a proof binds the tokens; a client that demands it gets none without.
    let proof = dpop::at_endpoint(&req, &state, &registry, client, "/token").await?;
    if proof.is_none() && client.protections.dpop_bound {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this client gets tokens only with a DPoP proof",
        ));
    }
    let request = TokenRequest {
        state: &state,
        registry: &registry,
        client,
        credential: authenticated.credential,
        form: &form,
        remote: ip.0,
        dpop_jkt: proof.map(|p| p.jkt),
    };
    let granted = grants::exchange(grant, &request).await?;
    tracing::info!(
        event = granted.event,
        remote = %ip,
        grant = grant.as_str(),
        client_id = %client.id,
        user_id = granted.user_id.as_deref(),
        scope = %granted.response.scope,
    );
    // Clients registered by documents are counted under one label: their ids are
    // URLs without number.
    let label = match client.document_host {
        Some(_) => "client_metadata_document",
        None => &client.id,
    };
    counters::count(&ISSUED, label, grant.as_str(), || {
        let counter = metrics::counter!("gatehouse_tokens_issued_total", "grant" => grant.as_str(), "client_id" => label.to_owned());
        (counter, true)
    });
    let mut answer = HttpResponse::Ok();
    dpop::fresh_nonce(no_store(&mut answer), &req, &state, &registry);
    let body = granted.response.to_json().map_err(OAuthError::server)?;
    Ok(answer.content_type(ContentType::json()).body(body))
}
