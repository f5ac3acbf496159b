//! Liveness and readiness probes.

use crate::state::AppState;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// `GET /readyz`: the config generation serving, when it was loaded, and the last
/// reload error if the newest file was rejected (no secrets: only diagnostics).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let registry = state.snapshot();
    let last_error = state
        .last_reload_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(json!({
            "status": "ready",
            "config_generation": registry.generation,
            "config_loaded_at": humantime::format_rfc3339_seconds(registry.loaded_at).to_string(),
            "last_reload_error": last_error,
        }))
}
