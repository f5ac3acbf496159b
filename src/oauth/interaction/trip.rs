//! A trip to an upstream provider for a waiting request: the provider's authorization
//! URL (with a nonce and a PKCE verifier of its own), and the request kept under the
//! trip's `state`, bound to the browser, until the callback.

use super::pending::{Kept, Pendings, Refusal, UpstreamAttempt};
use crate::oauth::authorize_request::AuthRequest;
use crate::registry::Registry;
use crate::state::AppState;
use crate::upstream::UpstreamError;
use crate::upstream::provider::Provider;

/// One trip: its id (the `state` sent up), the CSRF tag of the browser that starts it,
/// and the network whose pending count it is in.
pub(crate) struct Trip {
    pub(crate) id: String,
    pub(crate) browser: String,
    pub(crate) address: String,
}

/// Why the browser cannot be sent up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoTrip {
    /// The provider (its discovery document) cannot be had now.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// The pending store refused to keep the request.
    #[error(transparent)]
    Pending(Refusal),
}

/// Starts `trip` to `provider` for `request` (continuing `kept`, if any) and returns
/// the URL to send the browser to.
pub(crate) async fn start(
    state: &AppState,
    registry: &Registry,
    provider: &Provider,
    request: &AuthRequest,
    kept: Option<Kept>,
    trip: Trip,
) -> Result<String, NoTrip> {
    let callback = crate::registry::endpoint(&registry.issuer, &provider.callback_path());
    let now = state.clock.now();
    let started = state
        .upstreams
        .start(
            provider,
            &callback,
            &trip.id,
            request.prompt.login,
            request.max_age,
            now,
        )
        .await
        .map_err(NoTrip::Upstream)?;
    let attempt = UpstreamAttempt {
        provider: provider.id.clone(),
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
        browser: trip.browser,
    };
    Pendings::of(state, registry)
        .send_upstream(request, kept, &trip.address, trip.id, attempt)
        .await
        .map_err(NoTrip::Pending)?;
    Ok(started.url)
}
