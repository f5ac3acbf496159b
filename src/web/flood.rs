//! A per-address request rate cap for the HTML endpoints (authorize, login, consent,
//! logout), so one address cannot flood the pages or the password hashing behind them.

use super::page;
use crate::config::model::LimitsSection;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Requests per address, in a token bucket.
pub type PageLimiter = DefaultKeyedRateLimiter<IpAddr>;

/// The limiter for `limits` (zero values are refused by validation; 1 is the floor).
pub fn page_limiter(limits: &LimitsSection) -> PageLimiter {
    let rate = NonZeroU32::new(limits.pages_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.pages_burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
}

/// Middleware: 429 with `Retry-After` once an address goes over its rate.
pub async fn limit_pages<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let registry = state.snapshot();
    let address = registry.client_ip(req.request());
    match state.pages.check_key(&address) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("gatehouse_rate_limited_total", "limit" => "pages").increment(1);
            tracing::warn!(event = "rate_limited", limit = "pages", remote = %address);
            let mut response = page::error(
                &registry,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Too many requests from your network. Wait a moment, then try again.",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
