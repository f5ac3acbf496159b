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
    algs.sort_unstable();
    algs.dedup();
    let scopes_supported: Vec<&str> = crate::registry::BUILTIN_SCOPES
        .iter()
        .copied()
        .chain(scopes.keys().map(String::as_str))
        .collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint(issuer, "/authorize"),
        "token_endpoint": endpoint(issuer, "/token"),
        "userinfo_endpoint": endpoint(issuer, "/userinfo"),
        "introspection_endpoint": endpoint(issuer, "/introspect"),
        "revocation_endpoint": endpoint(issuer, "/revoke"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "end_session_endpoint": endpoint(issuer, "/logout"),
        "jwks_uri": endpoint(issuer, "/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": algs,
        "scopes_supported": scopes_supported,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
            "name", "preferred_username", "groups", "email", "email_verified"
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
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
