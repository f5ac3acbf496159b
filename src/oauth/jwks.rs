//! The JWKS endpoint: every published public key (kid, alg, use), no private member.

use super::discovery::public_json;
use crate::state::AppState;
use actix_web::{HttpResponse, web};

/// `GET /jwks`.
pub(crate) async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    public_json(state.snapshot().keys.jwks())
}
