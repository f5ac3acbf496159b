//! Authorization server metadata (RFC 8414) and OpenID provider configuration, listing
//! only what gatehouse implements. Rendered once per registry, served as bytes.

use crate::registry::{Registry, endpoint};
use crate::state::AppState;
use crate::tokens::keys::SigningKey;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The metadata document for `issuer`.
pub fn document(
    issuer: &str,
    scopes: &BTreeMap<String, String>,
    keys: &[Arc<SigningKey>],
) -> Value {
    let mut algs: Vec<&str> = keys.iter().map(|k| k.algorithm().as_str()).collect();
    algs.dedup();
    json!({
        "issuer": issuer,
        "token_endpoint": endpoint(issuer, "/token"),
        "jwks_uri": endpoint(issuer, "/jwks"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes.keys().collect::<Vec<_>>(),
        "access_token_signing_alg_values_supported": algs,
    })
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let registry: Arc<Registry> = state.snapshot();
    public_json(registry.discovery_json.clone())
}

/// A JSON document that caches may keep for five minutes.
pub fn public_json(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .body(body)
}
