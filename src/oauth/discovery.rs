//! Authorization server metadata (RFC 8414) and OpenID provider configuration, listing
//! only what gatehouse implements: grant types and authentication methods come from the
//! enums that define them. Rendered once per config generation, served as bytes.

use super::cors;
use crate::config::file::GrantType;
use crate::model::{AuthMethod, BUILTIN_SCOPES, ClientAuth};
use crate::protocol::jwk::Alg;
use crate::registry::{Registry, endpoint};
use crate::state::AppState;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// The metadata document of `registry`.
pub(crate) fn document(registry: &Registry) -> Value {
    let issuer = registry.issuer.as_str();
    let algs = registry.keys.algorithms();
    let scopes_supported: Vec<&str> = BUILTIN_SCOPES
        .iter()
        .copied()
        .chain(registry.scopes.keys().map(String::as_str))
        .collect();
    let names = |methods: &[AuthMethod]| methods.iter().map(|m| m.as_str()).collect::<Vec<_>>();
    let all_methods = names(&AuthMethod::ALL);
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint(issuer, "/authorize"),
        "token_endpoint": endpoint(issuer, "/token"),
        "device_authorization_endpoint": endpoint(issuer, "/device_authorization"),
        "pushed_authorization_request_endpoint": endpoint(issuer, "/par"),
        "require_pushed_authorization_requests": registry.server.require_par,
        "dpop_signing_alg_values_supported": Alg::NAMES,
        "userinfo_endpoint": endpoint(issuer, "/userinfo"),
        "introspection_endpoint": endpoint(issuer, "/introspect"),
        "revocation_endpoint": endpoint(issuer, "/revoke"),
        "introspection_endpoint_auth_methods_supported": names(ClientAuth::confidential_methods()),
        "revocation_endpoint_auth_methods_supported": all_methods,
        "end_session_endpoint": endpoint(issuer, "/logout"),
        "jwks_uri": endpoint(issuer, "/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": all_methods,
        "token_endpoint_auth_signing_alg_values_supported": Alg::NAMES,
        "introspection_endpoint_auth_signing_alg_values_supported": Alg::NAMES,
        "revocation_endpoint_auth_signing_alg_values_supported": Alg::NAMES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": algs,
        "scopes_supported": scopes_supported,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "acr",
            "name", "preferred_username", "groups", "email", "email_verified"
        ],
        // OIDC Back-Channel Logout 1.0 (`oauth::backchannel`), with `sid`; no
        // front-channel logout (it needs third-party frames).
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "prompt_values_supported": ["none", "login", "consent"],
        // One factor and two (`protocol::acr`); `acr_values` naming the second asks
        // for a second factor.
        "acr_values_supported": crate::protocol::acr::ACR_VALUES,
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    if registry.has_client_documents() {
        doc["client_id_metadata_document_supported"] = json!(true);
    }
    doc
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub(crate) async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let registry = state.snapshot();
    let body = state.discovery.get_or(&registry, || {
        web::Bytes::from(document(&registry).to_string())
    });
    public_json(body)
}

/// A public JSON document: any page may read it (CORS `*`), and caches may keep it for
/// five minutes.
pub(crate) fn public_json(body: web::Bytes) -> HttpResponse {
    cors::any_origin(&mut HttpResponse::Ok())
        .content_type("application/json")
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .body(body)
}
