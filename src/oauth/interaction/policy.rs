//! The login policy: one pure rule for what happens next to an authorization request,
//! from the request, the browser's session, the client and what the request has been
//! through. The pages (`web::interaction`) gather the [`Facts`], ask [`next`], and
//! render the one page it names; the rule itself is tested as a table.
//!
//! In order: a session that is missing or not fresh enough for the request
//! (`prompt=login`: a login at or after the request; `max_age`: a login at most that
//! old) means a login (through `idp_hint`'s provider when named, while the request may
//! still go there); a session signed in through a provider that revalidates, for a
//! client that gets refresh tokens, means a new trip to that provider (each refresh
//! family gets its own upstream token); a login without a second factor where one is
//! needed ([`second_factor_step`]) means the second-factor page (or, for a user who has
//! none, a refusal page); a third-party client without every scope granted in this
//! session (or with `prompt=consent`) means consent; then the code.
//! With `prompt=none` each page is instead a refusal back to the client.

use crate::config::file::SecondFactorMode;
use crate::error::ErrorCode;
use crate::oauth::authorize_request::AuthRequest;
use crate::protocol::acr::{AMR_MFA, AMR_PWD};

/// How many times one request may send the browser to a provider: the first trip and
/// one retry; after that the request falls back or is refused (no redirect loop).
pub(crate) const MAX_UPSTREAM_TRIPS: u8 = 2;

/// What happens next to an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// The login page (the password form and the providers' buttons).
    Login,
    /// The browser goes to this provider to sign in.
    Upstream(String),
    /// The second-factor page: the user proves a factor they have.
    SecondFactor,
    /// The page refusing a login that needs a second factor the user does not have
    /// (an administrator must enrol one).
    NoSecondFactor,
    /// The consent page.
    Consent,
    /// The code is issued.
    Issue,
    /// Back to the client with this error (`prompt=none`, or nothing left to try).
    Refuse(ErrorCode, &'static str),
}

/// The browser's session, as the policy weighs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionFacts<'a> {
    /// When the user logged in (Unix seconds).
    pub(crate) auth_time: u64,
    /// The client was granted every scope of the request in this session.
    pub(crate) consented: bool,
    /// The provider the session signed in through, when it revalidates at refresh.
    pub(crate) revalidating_provider: Option<&'a str>,
    /// How the session's login was made, from its `amr`.
    pub(crate) strength: Strength,
    /// The user has a second factor they can prove here (`totp_secret`).
    pub(crate) has_second_factor: bool,
}

/// How a session's login was made, as the second-factor rule weighs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Strength {
    /// A password alone (`amr` has `pwd`, not `mfa`).
    Password,
    /// Two factors (`amr` has `mfa`).
    TwoFactors,
    /// Another way (a provider's login: `amr` unknown).
    #[default]
    Other,
}

impl Strength {
    /// The strength of a login whose RFC 8176 methods were `amr`.
    pub(crate) fn of(amr: &[String]) -> Self {
        if amr.iter().any(|m| m == AMR_MFA) {
            Self::TwoFactors
        } else if amr.iter().any(|m| m == AMR_PWD) {
            Self::Password
        } else {
            Self::Other
        }
    }
}

/// Everything [`next`] decides from: plain values.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    /// The request (its `prompt`, `max_age`).
    pub(crate) request: &'a AuthRequest,
    /// When the kept request was made; `None` for one being made now.
    pub(crate) made_at: Option<u64>,
    /// The clock's now (Unix seconds).
    pub(crate) now: u64,
    /// The browser's live session.
    pub(crate) session: Option<SessionFacts<'a>>,
    /// The client skips consent.
    pub(crate) first_party: bool,
    /// The client gets refresh tokens.
    pub(crate) refreshes: bool,
    /// The provider `idp_hint` names (declared, allowed for the client).
    pub(crate) hinted: Option<&'a str>,
    /// The kept request already holds an upstream token of its own.
    pub(crate) upstream_token_kept: bool,
    /// How many times the request has gone to a provider.
    pub(crate) upstream_trips: u8,
    /// `[login] second_factor`.
    pub(crate) second_factor: SecondFactorMode,
    /// The client's `require_second_factor`.
    pub(crate) client_requires_second_factor: bool,
}

/// What happens next to the request the facts describe.
pub(crate) fn next(facts: &Facts<'_>) -> Next {
    let request = facts.request;
    let none = request.prompt.none;
    let fresh = facts
        .session
        .as_ref()
        .filter(|s| fresh_enough(request, facts.made_at, s.auth_time, facts.now));
    let Some(session) = fresh else {
        if none {
            return Next::Refuse(ErrorCode::LoginRequired, "the user is not logged in");
        }
        return match facts.hinted {
            Some(p) if facts.upstream_trips < MAX_UPSTREAM_TRIPS => Next::Upstream(p.to_owned()),
            _ => Next::Login,
        };
    };
    if let Some(provider) = session.revalidating_provider
        && facts.refreshes
        && !facts.upstream_token_kept
    {
        if none || facts.upstream_trips >= MAX_UPSTREAM_TRIPS {
            return Next::Refuse(
                ErrorCode::LoginRequired,
                "a new sign-in at the provider is needed",
            );
        }
        return Next::Upstream(provider.to_owned());
    }
    if let Some(step) = second_factor_step(facts, session) {
        return step;
    }
    if !facts.first_party && (request.prompt.consent || !session.consented) {
        if none {
            return Next::Refuse(ErrorCode::ConsentRequired, "the user has not consented");
        }
        return Next::Consent;
    }
    Next::Issue
}

/// The step a login without two factors needs, if any: the second-factor page when
/// the user has a factor, the refusal page when not, and `interaction_required` under
/// `prompt=none`. Needed after a password when the user has a factor
/// (`second_factor = "optional"`) or always (`"required"`; never with `"off"`); after
/// any login when the client has `require_second_factor` or the request's
/// `acr_values` asks for the two-factor `acr`. A login through a provider is the
/// provider's to protect: only the client or the request makes it need one.
pub(crate) fn second_factor_step(facts: &Facts<'_>, session: &SessionFacts<'_>) -> Option<Next> {
    let demanded = facts.client_requires_second_factor || facts.request.acr_mfa;
    let needed = needs_second_factor(facts.second_factor, demanded, session);
    if !needed {
        return None;
    }
    if facts.request.prompt.none {
        return Some(Next::Refuse(
            ErrorCode::InteractionRequired,
            "a second factor is needed",
        ));
    }
    Some(if session.has_second_factor {
        Next::SecondFactor
    } else {
        Next::NoSecondFactor
    })
}

/// Whether the login of `session` needs a second factor under `mode`, `demanded`
/// when the client or the request asks for two factors whatever the mode.
pub(crate) fn needs_second_factor(
    mode: SecondFactorMode,
    demanded: bool,
    session: &SessionFacts<'_>,
) -> bool {
    match session.strength {
        Strength::TwoFactors => false,
        Strength::Other => demanded,
        Strength::Password => {
            demanded
                || match mode {
                    SecondFactorMode::Off => false,
                    SecondFactorMode::Optional => session.has_second_factor,
                    SecondFactorMode::Required => true,
                }
        }
    }
}

/// Whether a login at `auth_time` is fresh enough for `request`, made at `made_at`
/// (`None`: being made now): `prompt=login` wants a login at or after the request's
/// second (a new request always asks; a kept one accepts a login made since), and
/// `max_age` one at most that many seconds old.
pub(crate) fn fresh_enough(
    request: &AuthRequest,
    made_at: Option<u64>,
    auth_time: u64,
    now: u64,
) -> bool {
    let stale_for_prompt = request.prompt.login && made_at.is_none_or(|made| auth_time < made);
    let too_old = request
        .max_age
        .is_some_and(|max| now.saturating_sub(auth_time) > max);
    !stale_for_prompt && !too_old
}

/// What an upstream login proves for a request that demanded a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstreamed {
    /// A session starts, logged in at this time.
    Session(u64),
    /// The provider's login is too old for the request: ask the provider once more.
    Retry,
    /// The provider did not prove a fresh login: the user's own password, if they have
    /// one, or `login_required`.
    Fallback,
}

/// Judges an upstream login whose ID token said `auth_time` (none: GitHub, or a
/// provider that did not say) for `request`, made at `made_at`, after `trips` trips.
/// A request without `prompt=login` or `max_age` takes the login as made now when the
/// provider did not say; one with either never does: the provider must prove it.
pub(crate) fn upstream_login(
    request: &AuthRequest,
    made_at: u64,
    auth_time: Option<u64>,
    now: u64,
    trips: u8,
) -> Upstreamed {
    let auth_time = auth_time.filter(|t| *t <= now);
    let demands = request.prompt.login || request.max_age.is_some();
    match auth_time {
        None if !demands => Upstreamed::Session(now),
        Some(t) if fresh_enough(request, Some(made_at), t, now) => Upstreamed::Session(t),
        Some(_) if trips < MAX_UPSTREAM_TRIPS => Upstreamed::Retry,
        _ => Upstreamed::Fallback,
    }
}

#[cfg(test)]
mod tests;
