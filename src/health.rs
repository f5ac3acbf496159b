//! Liveness and readiness probes. Ready means the store answers (with Redis: a `PING`
//! within its timeout), so a load balancer sends no logins to a replica that cannot
//! keep them. The public `/readyz` says only its status and, when not ready, which
//! dependency is missing; which config generation serves, when it was loaded, the
//! store's error and why the last reload was rejected (file paths, diagnostics) are for
//! operators, on the admin listener only.

use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// `GET /readyz` on the public listener: `{"status": "ready"}`, or 503 with
/// `{"status": "not_ready", "reason": "store_unreachable"}`, and nothing else, so an
/// anonymous caller learns nothing about the config or its errors.
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => {
            epoch_checked(&state).await;
            no_store_json(StatusCode::OK, json!({"status": "ready"}))
        }
        Err(_) => no_store_json(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": "store_unreachable"}),
        ),
    }
}

/// `GET /readyz` on the admin listener (`[server] admin_bind`): the status with
/// [`details`], 503 when not ready.
pub(crate) async fn readyz_details(state: web::Data<AppState>) -> HttpResponse {
    let body = details(&state).await;
    let status = if body["status"] == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_store_json(status, body)
}

/// The readiness document operators see: the status (and, when not ready, the reason
/// and the store's error), the store in use (a Redis URL without its password), its
/// kind (`memory`, `file`, `redis`), whether it answered and how long its ping took, the
/// config generation serving, the SHA-256 of its inputs, when it was loaded, and the
/// last reload error if the newest file was rejected (no secrets: only diagnostics),
/// whether each upstream provider could be reached, and, for an access-token lifetime
/// after the store lost its records, when that was seen and when its records begin.
pub async fn details(state: &AppState) -> Value {
    let started = std::time::Instant::now();
    let store_error = state.store.ping().await.err().map(|e| e.to_string());
    let ping_ms = started.elapsed().as_secs_f64() * 1000.0;
    let registry = state.snapshot();
    let last_error = state
        .last_reload_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if store_error.is_none() {
        epoch_checked(state).await;
    }
    let mut body = json!({
        "status": if store_error.is_none() { "ready" } else { "not_ready" },
        "store": state.store_in_use,
        "store_kind": state.store.kind(),
        "store_healthy": store_error.is_none(),
        "store_ping_ms": (ping_ms * 1000.0).round() / 1000.0,
        "config_generation": registry.generation,
        "config_sha256": registry.config_sha256,
        "config_loaded_at": humantime::format_rfc3339_seconds(registry.loaded_at).to_string(),
        "last_reload_error": last_error,
        // An unreachable provider fails only the logins through it: shown, never unready.
        "providers": state.upstreams.status(registry.providers()),
    });
    // A store that lost its records stays ready (its replicas have nothing better to
    // offer), but says so for as long as an access token issued before may live.
    if let Some(lost_at) = state.store_epoch().lost_at
        && state.clock.now() < lost_at.saturating_add(registry.longest_access_ttl().as_secs())
    {
        body["store_data_lost_at"] = json!(rfc3339(lost_at));
        body["store_records_since"] = json!(rfc3339(state.store_epoch().since));
    }
    if let Some(error) = store_error {
        body["reason"] = json!("store_unreachable");
        body["store_error"] = json!(error);
    }
    body
}

/// Checks the store's epoch (a store that lost its records is noticed by the probe that
/// follows, not only by the next sweep); an error is the ping's to report.
async fn epoch_checked(state: &AppState) {
    if let Err(e) = state.check_store_epoch().await {
        tracing::debug!(error = %e, "cannot read the store's epoch");
    }
}

fn rfc3339(unix: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn no_store_json(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body)
}
