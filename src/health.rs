//! Liveness and readiness probes. The public `/readyz` says only whether the server is
//! ready; which config generation serves, when it was loaded and why the last reload
//! was rejected (file paths, diagnostics) are for operators, on the admin listener only.

use crate::state::AppState;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// `GET /readyz` on the public listener: `{"status": "ready"}` and nothing else, so an
/// anonymous caller learns nothing about the config or its errors.
pub async fn readyz() -> HttpResponse {
    no_store_json(json!({"status": "ready"}))
}

/// `GET /readyz` on the admin listener (`[server] admin_bind`): the status with
/// [`details`].
pub async fn readyz_details(state: web::Data<AppState>) -> HttpResponse {
    no_store_json(details(&state))
}

/// The readiness document operators see: the status, the config generation serving,
/// the SHA-256 of its inputs, when it was loaded, and the last reload error if the newest file was rejected (no
/// secrets: only diagnostics).
pub fn details(state: &AppState) -> Value {
    let registry = state.snapshot();
    let last_error = state
        .last_reload_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    json!({
        "status": "ready",
        "config_generation": registry.generation,
        "config_sha256": registry.config_sha256,
        "config_loaded_at": humantime::format_rfc3339_seconds(registry.loaded_at).to_string(),
        "last_reload_error": last_error,
        // An unreachable provider fails only the logins through it: shown, never unready.
        "providers": state.upstreams.status(registry.providers()),
    })
}

fn no_store_json(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body)
}
