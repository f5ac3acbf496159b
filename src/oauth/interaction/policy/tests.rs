//! The login policy as a table: one row a situation, and the step it leads to.

use super::*;
use crate::oauth::authorize_request::Prompt;

const NOW: u64 = 1_000_000;

/// One situation. Times are seconds before `NOW`.
struct Row {
    /// `prompt` values: "none", "login", "consent", space-separated.
    prompt: &'static str,
    max_age: Option<u64>,
    /// How long ago the session's login was; `None`: no session.
    session: Option<u64>,
    /// How long ago the kept request was made; `None`: a new request.
    kept: Option<u64>,
    first_party: bool,
    consented: bool,
    hint: bool,
    revalidating: bool,
    refreshes: bool,
    token_kept: bool,
    trips: u8,
    /// How the session's login was made.
    strength: Strength,
    /// The session's user has a second factor.
    factor: bool,
    mode: SecondFactorMode,
    client_requires: bool,
    acr_mfa: bool,
    expect: Next,
}

const BASE: Row = Row {
    prompt: "",
    max_age: None,
    session: Some(10),
    kept: None,
    first_party: true,
    consented: false,
    hint: false,
    revalidating: false,
    refreshes: false,
    token_kept: false,
    trips: 0,
    strength: Strength::Password,
    factor: false,
    mode: SecondFactorMode::Optional,
    client_requires: false,
    acr_mfa: false,
    expect: Next::Issue,
};

/// A password login of a user with a second factor.
const PWD_FACTOR: Row = Row {
    factor: true,
    expect: Next::SecondFactor,
    ..BASE
};

fn interaction_required() -> Next {
    Next::Refuse(ErrorCode::InteractionRequired, "a second factor is needed")
}

fn login_required() -> Next {
    Next::Refuse(ErrorCode::LoginRequired, "the user is not logged in")
}

fn provider_required() -> Next {
    Next::Refuse(
        ErrorCode::LoginRequired,
        "a new sign-in at the provider is needed",
    )
}

fn consent_required() -> Next {
    Next::Refuse(ErrorCode::ConsentRequired, "the user has not consented")
}

fn up(p: &str) -> Next {
    Next::Upstream(p.to_owned())
}

fn rows() -> Vec<(&'static str, Row)> {
    vec![
        (
            "no session: login",
            Row {
                session: None,
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "no session, prompt=none",
            Row {
                session: None,
                prompt: "none",
                expect: login_required(),
                ..BASE
            },
        ),
        (
            "no session, idp_hint",
            Row {
                session: None,
                hint: true,
                expect: up("hint"),
                ..BASE
            },
        ),
        (
            "no session, idp_hint, one retry left",
            Row {
                session: None,
                hint: true,
                trips: 1,
                expect: up("hint"),
                ..BASE
            },
        ),
        (
            "no session, idp_hint, trips spent",
            Row {
                session: None,
                hint: true,
                trips: 2,
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "no session, prompt=none beats idp_hint",
            Row {
                session: None,
                hint: true,
                prompt: "none",
                expect: login_required(),
                ..BASE
            },
        ),
        ("first party with a session", BASE),
        (
            "first party ignores prompt=consent",
            Row {
                prompt: "consent",
                ..BASE
            },
        ),
        (
            "third party, consented",
            Row {
                first_party: false,
                consented: true,
                ..BASE
            },
        ),
        (
            "third party, not consented",
            Row {
                first_party: false,
                expect: Next::Consent,
                ..BASE
            },
        ),
        (
            "third party, not consented, prompt=none",
            Row {
                first_party: false,
                prompt: "none",
                expect: consent_required(),
                ..BASE
            },
        ),
        (
            "third party, consented, prompt=consent",
            Row {
                first_party: false,
                consented: true,
                prompt: "consent",
                expect: Next::Consent,
                ..BASE
            },
        ),
        (
            "third party, consented, prompt=none",
            Row {
                first_party: false,
                consented: true,
                prompt: "none",
                ..BASE
            },
        ),
        (
            "prompt=login, new request",
            Row {
                prompt: "login",
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "prompt=login, new request, idp_hint",
            Row {
                prompt: "login",
                hint: true,
                expect: up("hint"),
                ..BASE
            },
        ),
        (
            "prompt=login, login older than the request",
            Row {
                prompt: "login",
                kept: Some(5),
                session: Some(10),
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "prompt=login, login since the request",
            Row {
                prompt: "login",
                kept: Some(5),
                session: Some(2),
                ..BASE
            },
        ),
        (
            "prompt=login, login in the request's second",
            Row {
                prompt: "login",
                kept: Some(5),
                session: Some(5),
                ..BASE
            },
        ),
        (
            "prompt=login none",
            Row {
                prompt: "login none",
                expect: login_required(),
                ..BASE
            },
        ),
        (
            "prompt=login, no session",
            Row {
                prompt: "login",
                session: None,
                kept: Some(5),
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "max_age passed",
            Row {
                max_age: Some(60),
                session: Some(100),
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "max_age exactly met",
            Row {
                max_age: Some(60),
                session: Some(60),
                ..BASE
            },
        ),
        (
            "max_age passed by a second",
            Row {
                max_age: Some(60),
                session: Some(61),
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "max_age passed, prompt=none",
            Row {
                max_age: Some(60),
                session: Some(100),
                prompt: "none",
                expect: login_required(),
                ..BASE
            },
        ),
        (
            "max_age=0, login this second",
            Row {
                max_age: Some(0),
                session: Some(0),
                ..BASE
            },
        ),
        (
            "max_age=0, login a second ago",
            Row {
                max_age: Some(0),
                session: Some(1),
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "max_age passed, idp_hint",
            Row {
                max_age: Some(60),
                session: Some(100),
                hint: true,
                expect: up("hint"),
                ..BASE
            },
        ),
        (
            "max_age met, idp_hint ignored",
            Row {
                max_age: Some(60),
                session: Some(30),
                hint: true,
                ..BASE
            },
        ),
        (
            "max_age met, third party, prompt=consent",
            Row {
                max_age: Some(60),
                session: Some(30),
                first_party: false,
                consented: true,
                prompt: "consent",
                expect: Next::Consent,
                ..BASE
            },
        ),
        (
            "prompt=login and max_age, login since but too old",
            Row {
                prompt: "login",
                max_age: Some(1),
                kept: Some(5),
                session: Some(2),
                expect: Next::Login,
                ..BASE
            },
        ),
        (
            "revalidating provider, refresh, no token of its own",
            Row {
                revalidating: true,
                refreshes: true,
                expect: up("corp"),
                ..BASE
            },
        ),
        (
            "revalidating provider, token kept",
            Row {
                revalidating: true,
                refreshes: true,
                token_kept: true,
                ..BASE
            },
        ),
        (
            "revalidating provider, client without refresh",
            Row {
                revalidating: true,
                ..BASE
            },
        ),
        (
            "revalidating provider, prompt=none",
            Row {
                revalidating: true,
                refreshes: true,
                prompt: "none",
                expect: provider_required(),
                ..BASE
            },
        ),
        (
            "revalidating provider, trips spent",
            Row {
                revalidating: true,
                refreshes: true,
                trips: 2,
                expect: provider_required(),
                ..BASE
            },
        ),
        (
            "revalidating provider, token kept, third party not consented",
            Row {
                revalidating: true,
                refreshes: true,
                token_kept: true,
                first_party: false,
                expect: Next::Consent,
                ..BASE
            },
        ),
        (
            "revalidating provider, stale session: login first",
            Row {
                revalidating: true,
                refreshes: true,
                max_age: Some(5),
                expect: Next::Login,
                ..BASE
            },
        ),
    ]
    .into_iter()
    .chain(second_factor_rows())
    .collect()
}

fn second_factor_rows() -> Vec<(&'static str, Row)> {
    use SecondFactorMode::{Off, Required};
    use Strength::{Other, TwoFactors};
    vec![
        (
            "password, a factor, optional: the second factor",
            PWD_FACTOR,
        ),
        (
            "password, a factor, off",
            Row {
                mode: Off,
                expect: Next::Issue,
                ..PWD_FACTOR
            },
        ),
        (
            "password, a factor, required",
            Row {
                mode: Required,
                ..PWD_FACTOR
            },
        ),
        (
            "password, no factor, required: refused",
            Row {
                mode: Required,
                expect: Next::NoSecondFactor,
                ..BASE
            },
        ),
        (
            "two factors, required",
            Row {
                mode: Required,
                strength: TwoFactors,
                expect: Next::Issue,
                ..PWD_FACTOR
            },
        ),
        (
            "password, no factor, the client requires one: refused",
            Row {
                client_requires: true,
                expect: Next::NoSecondFactor,
                ..BASE
            },
        ),
        (
            "password, a factor, off, the client requires one",
            Row {
                mode: Off,
                client_requires: true,
                ..PWD_FACTOR
            },
        ),
        (
            "password, a factor, off, acr_values asks mfa",
            Row {
                mode: Off,
                acr_mfa: true,
                ..PWD_FACTOR
            },
        ),
        (
            "password, no factor, acr_values asks mfa: refused",
            Row {
                acr_mfa: true,
                expect: Next::NoSecondFactor,
                ..BASE
            },
        ),
        (
            "password, a factor, prompt=none",
            Row {
                prompt: "none",
                expect: interaction_required(),
                ..PWD_FACTOR
            },
        ),
        (
            "password, no factor, required, prompt=none",
            Row {
                prompt: "none",
                mode: Required,
                expect: interaction_required(),
                ..BASE
            },
        ),
        (
            "two factors, prompt=none",
            Row {
                prompt: "none",
                strength: TwoFactors,
                expect: Next::Issue,
                ..PWD_FACTOR
            },
        ),
        (
            "a provider's login, a factor, required: the provider's to protect",
            Row {
                strength: Other,
                mode: Required,
                expect: Next::Issue,
                ..PWD_FACTOR
            },
        ),
        (
            "a provider's login, a factor, the client requires one",
            Row {
                strength: Other,
                client_requires: true,
                ..PWD_FACTOR
            },
        ),
        (
            "a provider's login, no factor, acr_values asks mfa: refused",
            Row {
                strength: Other,
                acr_mfa: true,
                expect: Next::NoSecondFactor,
                ..BASE
            },
        ),
        (
            "two factors, prompt=login: both again",
            Row {
                prompt: "login",
                strength: TwoFactors,
                expect: Next::Login,
                ..PWD_FACTOR
            },
        ),
        (
            "two factors, max_age passed: both again",
            Row {
                max_age: Some(5),
                strength: TwoFactors,
                expect: Next::Login,
                ..PWD_FACTOR
            },
        ),
        (
            "password, a factor, third party: the factor before consent",
            Row {
                first_party: false,
                ..PWD_FACTOR
            },
        ),
        (
            "two factors, third party not consented",
            Row {
                first_party: false,
                strength: TwoFactors,
                expect: Next::Consent,
                ..PWD_FACTOR
            },
        ),
        (
            "a revalidating provider first, then the factor",
            Row {
                strength: Other,
                client_requires: true,
                revalidating: true,
                refreshes: true,
                expect: up("corp"),
                ..PWD_FACTOR
            },
        ),
    ]
}

#[test]
fn strength_follows_amr() {
    let amr = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(Strength::of(&amr(&["pwd"])), Strength::Password);
    assert_eq!(
        Strength::of(&amr(&["pwd", "otp", "mfa"])),
        Strength::TwoFactors
    );
    assert_eq!(Strength::of(&amr(&[])), Strength::Other);
}

fn prompt(words: &str) -> Prompt {
    Prompt {
        none: words.split(' ').any(|w| w == "none"),
        login: words.split(' ').any(|w| w == "login"),
        consent: words.split(' ').any(|w| w == "consent"),
    }
}

#[test]
fn the_policy_table() {
    let rows = rows();
    assert!(rows.len() >= 30);
    for (name, row) in rows {
        let request = AuthRequest {
            prompt: prompt(row.prompt),
            max_age: row.max_age,
            acr_mfa: row.acr_mfa,
            ..AuthRequest::default()
        };
        let facts = Facts {
            request: &request,
            made_at: row.kept.map(|ago| NOW - ago),
            now: NOW,
            session: row.session.map(|ago| SessionFacts {
                auth_time: NOW - ago,
                consented: row.consented,
                revalidating_provider: row.revalidating.then_some("corp"),
                strength: row.strength,
                has_second_factor: row.factor,
            }),
            first_party: row.first_party,
            refreshes: row.refreshes,
            hinted: row.hint.then_some("hint"),
            upstream_token_kept: row.token_kept,
            upstream_trips: row.trips,
            second_factor: row.mode,
            client_requires_second_factor: row.client_requires,
        };
        assert_eq!(next(&facts), row.expect, "{name}");
    }
}

#[test]
fn an_upstream_login_proves_freshness_only_with_its_auth_time() {
    let made = NOW - 5;
    let plain = AuthRequest::default();
    let login = AuthRequest {
        prompt: prompt("login"),
        ..AuthRequest::default()
    };
    let max_age = AuthRequest {
        max_age: Some(60),
        ..AuthRequest::default()
    };
    let cases = [
        (
            "no demand, no auth_time: now",
            &plain,
            None,
            0,
            Upstreamed::Session(NOW),
        ),
        (
            "no demand, auth_time kept",
            &plain,
            Some(NOW - 900),
            0,
            Upstreamed::Session(NOW - 900),
        ),
        (
            "no demand, a future auth_time: now",
            &plain,
            Some(NOW + 9),
            0,
            Upstreamed::Session(NOW),
        ),
        (
            "prompt=login, no auth_time: never now",
            &login,
            None,
            1,
            Upstreamed::Fallback,
        ),
        (
            "prompt=login, a future auth_time",
            &login,
            Some(NOW + 9),
            1,
            Upstreamed::Fallback,
        ),
        (
            "prompt=login, a login since the request",
            &login,
            Some(NOW - 1),
            1,
            Upstreamed::Session(NOW - 1),
        ),
        (
            "prompt=login, an older login: one retry",
            &login,
            Some(NOW - 60),
            1,
            Upstreamed::Retry,
        ),
        (
            "prompt=login, an older login again",
            &login,
            Some(NOW - 60),
            2,
            Upstreamed::Fallback,
        ),
        (
            "max_age, recent enough",
            &max_age,
            Some(NOW - 30),
            1,
            Upstreamed::Session(NOW - 30),
        ),
        (
            "max_age, too old: one retry",
            &max_age,
            Some(NOW - 100),
            1,
            Upstreamed::Retry,
        ),
        (
            "max_age, no auth_time",
            &max_age,
            None,
            1,
            Upstreamed::Fallback,
        ),
    ];
    for (name, request, auth_time, trips, expect) in cases {
        assert_eq!(
            upstream_login(request, made, auth_time, NOW, trips),
            expect,
            "{name}"
        );
    }
}
