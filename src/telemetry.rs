//! Prometheus metrics: the process-wide recorder, the request-counting middleware, and
//! `GET /metrics`. Counters are named `gatehouse_*`; label values are endpoint patterns,
//! status codes, grant types and configured client ids, never anything a client makes up.

use crate::registry::Registry;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The recorder's handle. The recorder is global to the process, so it is installed
/// once however many servers the process starts (tests start many).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// How often dropped log lines are looked for.
const DROP_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Watches the log writer's count of dropped lines: each increase is added to
/// `gatehouse_log_lines_dropped_total` and said in the log, so a log that cannot keep
/// up never loses events silently. Needs a Tokio runtime.
pub fn report_dropped_log_lines(dropped: tracing_appender::non_blocking::ErrorCounter) {
    tokio::spawn(async move {
        let mut seen = 0;
        let mut tick = tokio::time::interval(DROP_CHECK_EVERY);
        loop {
            tick.tick().await;
            let now = dropped.dropped_lines();
            if now > seen {
                let lost = now - seen;
                metrics::counter!("gatehouse_log_lines_dropped_total").increment(lost as u64);
                tracing::warn!(
                    dropped = lost,
                    total = now,
                    "the log writer could not keep up: {lost} log lines were dropped"
                );
                seen = now;
            }
        }
    });
}

/// Middleware: counts every request by route pattern and status.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let endpoint = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::counter!("gatehouse_http_requests_total", "endpoint" => endpoint, "status" => status)
        .increment(1);
    Ok(response)
}

/// `gatehouse_config_info{sha256="..."} 1`: which config serves. Rendered from the
/// snapshot rather than recorded, so that only the serving digest is ever listed.
fn config_info(registry: &Registry) -> String {
    match &registry.config_sha256 {
        Some(sha) => format!(
            "# HELP gatehouse_config_info The SHA-256 of the config inputs that serve.\n\
             # TYPE gatehouse_config_info gauge\n\
             gatehouse_config_info{{sha256=\"{sha}\"}} 1\n"
        ),
        None => String::new(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics_page(state: web::Data<AppState>) -> HttpResponse {
    let registry = state.snapshot();
    metrics::gauge!("gatehouse_config_generation").set(registry.generation as f64);
    metrics::gauge!("gatehouse_clients").set(registry.clients().len() as f64);
    match state.store.sizes().await {
        Ok(sizes) => {
            for (kind, count) in sizes {
                metrics::gauge!("gatehouse_store_entries", "kind" => kind).set(count as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read store sizes for /metrics"),
    }
    let mut text = handle().render();
    text.push_str(&config_info(&registry));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
