//! Clients registered by Client ID Metadata Documents: a `client_id` that is no
//! configured client and starts with a `[[client_metadata_documents]]` prefix is the URL
//! of a document, read from the cache or fetched (`upstream::document`), and becomes a
//! public client cut to the entry (`model::Client::from_document`). A `client_id`
//! under no prefix is no document: the caller treats it as an unknown client.

use crate::error::OAuthError;
use crate::model::Client;
use crate::protocol::client_metadata::document_url;
use crate::registry::Registry;
use crate::state::AppState;
use crate::upstream::document;
use std::borrow::Cow;
use std::sync::Arc;

/// The client the document at `client_id` registers: `Ok(None)` when `client_id` is a
/// configured client or under no prefix; `invalid_client` when the URL or the document
/// breaks a rule or cannot be fetched.
pub(crate) async fn resolve(
    state: &AppState,
    registry: &Registry,
    client_id: &str,
) -> Result<Option<Client>, OAuthError> {
    let Some(source) = registry.document_source(client_id) else {
        return Ok(None);
    };
    let refuse = |why: &dyn std::fmt::Display| {
        tracing::warn!(event = "client_document_refused", client_id = %client_id, reason = %why);
        OAuthError::invalid_client(format!("the client metadata document: {why}"), false)
    };
    let url = document_url(client_id, source.loopback).map_err(|e| refuse(&e))?;
    let now_ms = state.clock.now_ms();
    let registration = match state.documents.get(url.as_str(), now_ms) {
        Some(cached) => cached,
        None => {
            let (registration, lifetime) = document::fetch(&url, source)
                .await
                .map_err(|e| refuse(&e))?;
            let registration = Arc::new(registration);
            state
                .documents
                .put(url.as_str(), Arc::clone(&registration), now_ms, lifetime);
            metrics::counter!("gatehouse_client_documents_fetched_total").increment(1);
            registration
        }
    };
    Ok(Some(Client::from_document(&registration, source)))
}

/// The client `client_id` names, configured or registered by its document, for a
/// caller that holds it for the request: `Ok(None)` for an unknown client.
pub(crate) async fn lookup<'r>(
    state: &AppState,
    registry: &'r Registry,
    client_id: &str,
) -> Result<Option<Cow<'r, Client>>, OAuthError> {
    if let Some(client) = registry.client(client_id) {
        return Ok(Some(Cow::Borrowed(client)));
    }
    Ok(resolve(state, registry, client_id).await?.map(Cow::Owned))
}
