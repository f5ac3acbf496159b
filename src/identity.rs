//! The identity seam: the one place that turns a stored identity snapshot back into
//! the user as the serving config knows them. Sessions, codes and refresh grants carry
//! an [`Identity`]; before it is used for a token or a page, `current` brings it up to
//! date (a local user's new name or groups apply at once) and ends it when its source
//! no longer knows the user (a user removed from the config loses its sessions and
//! refresh tokens at the next reload).
//!
//! Adding a source (an upstream provider) is a variant of `IdentitySource` and its arm
//! here.

use crate::model::{Identity, IdentitySource};
use crate::registry::Registry;

/// The identity as of now, or `None` when its user is gone.
pub fn current(registry: &Registry, identity: &Identity) -> Option<Identity> {
    by_subject(registry, identity.source, &identity.subject)
}

/// The identity with `subject` from `source`, as the serving config knows it.
pub fn by_subject(registry: &Registry, source: IdentitySource, subject: &str) -> Option<Identity> {
    match source {
        IdentitySource::Local => registry.user_by_id(subject).map(|u| u.identity()),
    }
}
