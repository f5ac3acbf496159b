//! A per-network (`throttle::network`) request rate cap for the HTML endpoints (authorize, login, consent,
//! logout), so one address cannot flood the pages or the password hashing behind them.

use super::page;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::throttle;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};

/// Middleware: 429 with `Retry-After` once an address goes over its rate.
pub(crate) async fn limit_pages<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let address = ClientIp::of(req.request()).0;
    let registry = state.snapshot();
    let network = throttle::network(&registry.limits, address);
    match state.pages.check_key(&network) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("gatehouse_rate_limited_total", "limit" => "pages").increment(1);
            tracing::warn!(event = "rate_limited", limit = "pages", remote = %address);
            let response = page::too_many(
                &registry,
                "Too many requests",
                "Too many requests from your network. Wait a moment, then try again.",
                wait,
            );
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
