//! What happens between an authorization request and its code, without a page: the
//! login policy (`policy`: which step comes next, as a pure rule, decided from the
//! `facts` gathered here), the requests that wait for the user (`pending`: kept in the
//! store, bounded, answered once), a trip to an upstream provider (`trip`), the words a
//! consent is asked in (`consent`) and the code that ends it all (`issue`). The pages
//! that show each step are `web::interaction` and its neighbours: they render only.

pub mod consent;
pub mod facts;
pub mod issue;
pub mod pending;
pub mod policy;
pub mod trip;

use crate::error::{ErrorCode, OAuthError};
use crate::oauth::authorize_request::AuthRequest;
use crate::registry::Registry;
use actix_web::HttpResponse;

/// The redirect telling the client why `request` could not go on.
pub(crate) fn refuse(
    registry: &Registry,
    request: &AuthRequest,
    code: ErrorCode,
    description: &str,
) -> HttpResponse {
    OAuthError::new(code, description).redirect(&request.return_to(), &registry.issuer)
}
