//! The store conformance suite: what every `Store` implementation must do, checked by
//! calling one function, `run`, with a fresh store and the clock it was opened with.
//! It covers every operation but `sizes` (a shared store may list none: counting a
//! kind of Redis key means scanning them all), expiry by the clock, single use under
//! concurrency, and family revocation. The memory store runs it in its unit tests; a shared store runs
//! it the same way (Dex's `storage/conformance` is the model).
//!
//! It panics on the first broken rule, naming it: it is a test suite, compiled into
//! the library so that stores in other crates or test binaries can run it too.

use super::{
    CodeGrant, DeviceDecision, DeviceGrant, IssuedIds, Key, Origin, Polled, Redeemed, RefreshGrant,
    Session, StandingQuery, StandingRecords, Store,
};
use crate::clock::Clock;
use crate::model::{Identity, IdentitySource};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How many requests race for one single-use value.
const RACERS: usize = 20;

/// Runs every check against `store`, whose entries expire on `clock`. The suite moves
/// `clock` forward; give it a store of its own.
pub async fn run(store: Arc<dyn Store>, clock: &Clock) {
    codes(store.as_ref(), clock).await;
    codes_with_a_first_refresh(store.as_ref(), clock).await;
    refresh_tokens(store.as_ref(), clock).await;
    rotations(store.as_ref()).await;
    families_and_denials(store.as_ref(), clock).await;
    not_before(store.as_ref(), clock).await;
    standing_reads(store.as_ref(), clock).await;
    sessions_and_pending(store.as_ref(), clock).await;
    failures(store.as_ref(), clock).await;
    devices(store.as_ref(), clock).await;
    devices_race(&store).await;
    codes_race(&store).await;
    pending_race(&store).await;
    failures_race(&store).await;
    refresh_race(&store).await;
    rotation_race(&store).await;
    shared_secrets(store.as_ref()).await;
    remembered_once(store.as_ref(), clock).await;
    remember_race(&store, clock).await;
    session_indexes(store.as_ref(), clock).await;
    store
        .ping()
        .await
        .expect("a reachable store answers a ping");
}

/// A distinct key per check, so checks never see each other's entries.
fn key(n: u8) -> Key {
    let mut k = [0xA5; 32];
    k[0] = n;
    k
}

fn identity() -> Identity {
    Identity {
        source: IdentitySource::Local,
        subject: "u-1".into(),
        username: "ünïcode user".into(),
        name: Some("Name".into()),
        email: Some("u@example.com".into()),
        email_verified: true,
        groups: vec!["a".into(), "b c".into()],
        upstream: Some(Box::new(crate::model::Federation {
            provider: "corp".into(),
            subject: "upstream-1".into(),
            login_at: 1,
            checked_at: 2,
            token: Some("sealed".into()),
        })),
        picture: Some("https://pictures.example.com/u-1.png".into()),
    }
}

fn code_grant() -> CodeGrant {
    CodeGrant {
        client_id: "client-ç".into(),
        redirect_uri: Some("http://127.0.0.1/cb".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into(), "profile".into()],
        nonce: Some("n".into()),
        identity: identity(),
        auth_time: 7,
        issued: None,
        resources: vec!["https://mcp.example.com/mcp".into(), "urn:x".into()],
        origin: origin(),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
    }
}

fn origin() -> Origin {
    Origin {
        sid: Some("sid-ç".into()),
        since: 6,
        amr: vec!["pwd".into()],
    }
}

/// A refresh grant of `family` with every field set (`f1`: federated and DPoP-bound).
pub(crate) fn refresh_grant(family: &str) -> RefreshGrant {
    RefreshGrant {
        family: family.into(),
        client_id: "client ç".into(),
        source: IdentitySource::Local,
        subject: "u 1".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        auth_time: 1,
        issued_at: 2,
        expires_at: 3,
        credential: Some([7; 16]),
        federated: (family == "f1").then(|| Box::new(identity())),
        resources: vec!["https://api.example.com/".into()],
        origin: origin(),
        dpop_jkt: (family == "f1").then(|| "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
    }
}

fn issued(jti: &str) -> IssuedIds {
    IssuedIds {
        access_jti: jti.into(),
        access_exp: 99,
        refresh_family: Some("fam".into()),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

async fn codes(store: &dyn Store, clock: &Clock) {
    store
        .put_code(key(1), code_grant(), MINUTE)
        .await
        .expect("put_code");
    for _ in 0..2 {
        match store.peek_code(key(1)).await {
            Ok(Redeemed::Fresh(g)) => assert_eq!(
                g.resources,
                code_grant().resources,
                "peeking gives the code's resources and leaves it unused"
            ),
            other => panic!("peeking a fresh code: expected Fresh, got {other:?}"),
        }
    }
    match store.redeem_code(key(1), issued("first")).await {
        Ok(Redeemed::Fresh(g)) => {
            assert_eq!(g.resources, code_grant().resources);
            assert_eq!(g.dpop_jkt, code_grant().dpop_jkt, "the code's DPoP key");
            let want = code_grant();
            assert_eq!(
                (g.client_id, g.redirect_uri, g.code_challenge, g.scopes),
                (
                    want.client_id,
                    want.redirect_uri,
                    want.code_challenge,
                    want.scopes
                ),
                "a code gives back what it was stored with"
            );
            assert_eq!(
                (g.nonce, g.identity, g.auth_time, g.origin),
                (want.nonce, want.identity, 7, want.origin)
            );
        }
        other => panic!("first redemption of a code: expected Fresh, got {other:?}"),
    }
    match store.redeem_code(key(1), issued("second")).await {
        Ok(Redeemed::Replayed(g)) => {
            let want = code_grant();
            assert_eq!(
                (g.client_id, g.identity.subject, g.origin.sid),
                (want.client_id, want.identity.subject, want.origin.sid),
                "a replayed code tells whose it was"
            );
            assert_eq!(
                g.issued
                    .map(|i| (i.access_jti, i.access_exp, i.refresh_family)),
                Some(("first".into(), 99, Some("fam".into()))),
                "a replayed code tells what its first redemption issued"
            );
        }
        other => panic!("second redemption of a code: expected Replayed, got {other:?}"),
    }
    assert!(
        matches!(store.peek_code(key(1)).await, Ok(Redeemed::Replayed(_))),
        "a used code peeks as used"
    );
    assert!(
        matches!(store.peek_code(key(2)).await, Ok(Redeemed::Unknown)),
        "a code never stored peeks as unknown"
    );
    assert!(
        matches!(
            store.redeem_code(key(2), issued("x")).await,
            Ok(Redeemed::Unknown)
        ),
        "a code never stored is unknown"
    );
    store
        .put_code(key(3), code_grant(), Duration::from_secs(10))
        .await
        .expect("put_code");
    clock.advance(Duration::from_secs(11));
    assert!(
        matches!(store.peek_code(key(3)).await, Ok(Redeemed::Unknown)),
        "an expired code peeks as unknown"
    );
    assert!(
        matches!(
            store.redeem_code(key(3), issued("x")).await,
            Ok(Redeemed::Unknown)
        ),
        "an expired code is unknown"
    );
}

/// A redemption that starts the code's refresh family stores its token at the code's
/// first use, for its own lifetime, and nothing for a replayed or unknown code.
async fn codes_with_a_first_refresh(store: &dyn Store, clock: &Clock) {
    let short = Duration::from_secs(5);
    store
        .put_code(key(70), code_grant(), MINUTE)
        .await
        .expect("put_code");
    let first = store
        .redeem_code_with_refresh(
            key(70),
            issued("first"),
            key(71),
            refresh_grant("f7"),
            short,
        )
        .await;
    assert!(
        matches!(first, Ok(Redeemed::Fresh(ref g)) if g.client_id == code_grant().client_id),
        "the first redemption gets the code: {first:?}"
    );
    assert!(
        matches!(store.peek_refresh(key(71)).await, Ok(Redeemed::Fresh(g)) if g.family == "f7"),
        "the first redemption stores its refresh token"
    );
    let replay = store
        .redeem_code_with_refresh(
            key(70),
            issued("second"),
            key(72),
            refresh_grant("f8"),
            short,
        )
        .await;
    match replay {
        Ok(Redeemed::Replayed(g)) => assert_eq!(
            g.issued.map(|i| i.access_jti),
            Some("first".into()),
            "a replay tells what the first redemption issued"
        ),
        other => panic!("a replayed code with a refresh token: expected Replayed, got {other:?}"),
    }
    let unknown = store
        .redeem_code_with_refresh(key(73), issued("x"), key(74), refresh_grant("f9"), short)
        .await;
    assert!(matches!(unknown, Ok(Redeemed::Unknown)), "{unknown:?}");
    for (k, what) in [(72, "a replay"), (74, "an unknown code")] {
        assert!(
            matches!(store.peek_refresh(key(k)).await, Ok(Redeemed::Unknown)),
            "{what} stores no refresh token"
        );
    }
    clock.advance(Duration::from_secs(6));
    assert!(
        matches!(store.peek_refresh(key(71)).await, Ok(Redeemed::Unknown)),
        "the first refresh token lives its own lifetime, not the code's"
    );
}

async fn refresh_tokens(store: &dyn Store, clock: &Clock) {
    store
        .put_refresh(key(10), refresh_grant("f1"), MINUTE)
        .await
        .expect("put_refresh");
    for _ in 0..2 {
        match store.peek_refresh(key(10)).await {
            Ok(Redeemed::Fresh(g)) => {
                let want = refresh_grant("f1");
                assert_eq!(g.dpop_jkt, want.dpop_jkt, "the refresh token's DPoP key");
                assert_eq!(
                    (g.family, g.client_id, g.source, g.subject, g.scopes),
                    (
                        want.family,
                        want.client_id,
                        want.source,
                        want.subject,
                        want.scopes
                    ),
                    "a refresh grant gives back what it was stored with"
                );
                assert_eq!(
                    (g.auth_time, g.issued_at, g.expires_at, g.credential),
                    (1, 2, 3, Some([7; 16]))
                );
                assert_eq!(
                    g.origin, want.origin,
                    "the session a family began in is kept"
                );
                assert_eq!(
                    g.federated, want.federated,
                    "a federated user's identity snapshot is kept with the grant"
                );
                assert_eq!(g.resources, want.resources, "the resources are kept");
            }
            other => panic!("peeking a fresh refresh token: expected Fresh, got {other:?}"),
        }
    }
    assert!(
        matches!(store.use_refresh(key(10)).await, Ok(Redeemed::Fresh(_))),
        "the first use of a refresh token is fresh"
    );
    assert!(
        matches!(store.use_refresh(key(10)).await, Ok(Redeemed::Replayed(g)) if g.family == "f1"),
        "a second use of a refresh token is a reuse, with its family"
    );
    assert!(
        matches!(store.peek_refresh(key(10)).await, Ok(Redeemed::Replayed(_))),
        "peeking a used refresh token shows it used"
    );
    assert!(matches!(
        store.peek_refresh(key(11)).await,
        Ok(Redeemed::Unknown)
    ));
    assert!(matches!(
        store.use_refresh(key(11)).await,
        Ok(Redeemed::Unknown)
    ));
    store
        .put_refresh(key(12), refresh_grant("f2"), Duration::from_secs(10))
        .await
        .expect("put_refresh");
    clock.advance(Duration::from_secs(11));
    assert!(
        matches!(store.peek_refresh(key(12)).await, Ok(Redeemed::Unknown)),
        "an expired refresh token is unknown"
    );
    assert!(matches!(
        store.use_refresh(key(12)).await,
        Ok(Redeemed::Unknown)
    ));
}

async fn families_and_denials(store: &dyn Store, clock: &Clock) {
    assert!(!store.family_revoked("fam-a").await.expect("family_revoked"));
    store
        .revoke_family("fam-a", Duration::from_secs(10))
        .await
        .expect("revoke_family");
    assert!(store.family_revoked("fam-a").await.expect("family_revoked"));
    assert!(
        !store.family_revoked("fam-b").await.expect("family_revoked"),
        "revoking one family leaves the others"
    );
    assert!(!store.jti_denied("jti-a").await.expect("jti_denied"));
    store
        .deny_jti("jti-a", Duration::from_secs(10))
        .await
        .expect("deny_jti");
    assert!(store.jti_denied("jti-a").await.expect("jti_denied"));
    assert!(!store.jti_denied("jti-b").await.expect("jti_denied"));
    clock.advance(Duration::from_secs(11));
    assert!(
        !store.family_revoked("fam-a").await.expect("family_revoked"),
        "a family revocation lasts its ttl (the longest a member lives), no longer"
    );
    assert!(
        !store.jti_denied("jti-a").await.expect("jti_denied"),
        "a denial lasts until the token would have expired, no longer"
    );
}

async fn not_before(store: &dyn Store, clock: &Clock) {
    assert_eq!(store.not_before("nb-a").await.expect("not_before"), None);
    store
        .set_not_before("nb-a", 100, Duration::from_secs(20))
        .await
        .expect("set_not_before");
    assert_eq!(
        store.not_before("nb-a").await.expect("not_before"),
        Some(100)
    );
    assert_eq!(
        store.not_before("nb-b").await.expect("not_before"),
        None,
        "a record is per client"
    );
    store
        .set_not_before("nb-a", 90, Duration::from_secs(5))
        .await
        .expect("set_not_before");
    assert_eq!(
        store.not_before("nb-a").await.expect("not_before"),
        Some(100),
        "an earlier time never replaces a later one"
    );
    store
        .set_not_before("nb-a", 150, Duration::from_secs(5))
        .await
        .expect("set_not_before");
    assert_eq!(
        store.not_before("nb-a").await.expect("not_before"),
        Some(150)
    );
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        store.not_before("nb-a").await.expect("not_before"),
        Some(150),
        "a shorter ttl never cuts a record short"
    );
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        store.not_before("nb-a").await.expect("not_before"),
        None,
        "a record lasts its ttl (the longest a token lives), no longer"
    );
}

/// `standing` answers in one call what `not_before`, `jti_denied` and
/// `family_revoked` answer one by one, in the query's order, expiry included.
async fn standing_reads(store: &dyn Store, clock: &Clock) {
    let ten = Duration::from_secs(10);
    let thirty = Duration::from_secs(30);
    assert_eq!(
        store
            .standing(&StandingQuery::default())
            .await
            .expect("standing"),
        StandingRecords::default(),
        "an empty query finds nothing"
    );
    store.set_not_before("st-a", 100, ten).await.expect("set");
    store
        .set_not_before("st-b", 200, thirty)
        .await
        .expect("set");
    store.deny_jti("st-j", ten).await.expect("deny_jti");
    store.revoke_family("st-f", thirty).await.expect("revoke");
    let query = |jti: &str, family: Option<&str>| StandingQuery {
        not_before: ["st-a", "st-none", "st-b", "st-a"]
            .map(String::from)
            .to_vec(),
        jti: Some(jti.to_owned()),
        family: family.map(str::to_owned),
    };
    let one_by_one = |q: StandingQuery| async move {
        let mut not_before = Vec::new();
        for name in &q.not_before {
            not_before.push(store.not_before(name).await.expect("not_before"));
        }
        StandingRecords {
            not_before,
            jti_denied: store
                .jti_denied(q.jti.as_deref().unwrap_or(""))
                .await
                .expect("jti"),
            family_revoked: match &q.family {
                Some(f) => store.family_revoked(f).await.expect("family"),
                None => false,
            },
        }
    };
    let found = store
        .standing(&query("st-j", Some("st-f")))
        .await
        .expect("standing");
    assert_eq!(
        found,
        StandingRecords {
            not_before: vec![Some(100), None, Some(200), Some(100)],
            jti_denied: true,
            family_revoked: true,
        }
    );
    assert_eq!(found, one_by_one(query("st-j", Some("st-f"))).await);
    let other = store
        .standing(&query("st-k", None))
        .await
        .expect("standing");
    assert!(!other.jti_denied && !other.family_revoked, "{other:?}");
    assert_eq!(other, one_by_one(query("st-k", None)).await);
    clock.advance(Duration::from_secs(11));
    let later = store
        .standing(&query("st-j", Some("st-f")))
        .await
        .expect("standing");
    assert_eq!(
        later,
        StandingRecords {
            not_before: vec![None, None, Some(200), None],
            jti_denied: false,
            family_revoked: true,
        },
        "what expired is gone from the batch as from single reads"
    );
    assert_eq!(later, one_by_one(query("st-j", Some("st-f"))).await);
}

async fn sessions_and_pending(store: &dyn Store, clock: &Clock) {
    let mut consents = BTreeMap::new();
    consents.insert("client".to_owned(), BTreeSet::from(["openid".to_owned()]));
    let session = Session {
        identity: identity(),
        auth_time: 5,
        consents,
        sid: "sid-1".into(),
        created_at: 5,
        amr: vec!["pwd".into()],
        clients: BTreeSet::from(["client".to_owned()]),
    };
    store
        .put_session(key(20), session.clone(), Duration::from_secs(10))
        .await
        .expect("put_session");
    let back = store
        .get_session(key(20))
        .await
        .expect("get_session")
        .expect("a stored session is found");
    assert_eq!(
        (back.identity, back.auth_time, back.consents),
        (session.identity.clone(), 5, session.consents.clone())
    );
    assert_eq!(
        (back.sid.as_str(), back.created_at, back.amr.as_slice()),
        ("sid-1", 5, session.amr.as_slice())
    );
    assert_eq!(back.clients, session.clients);
    let mut more = session.clone();
    more.consents.insert("other".into(), BTreeSet::new());
    store
        .put_session(key(20), more, Duration::from_secs(10))
        .await
        .expect("put_session");
    assert_eq!(
        store
            .get_session(key(20))
            .await
            .expect("get_session")
            .map(|s| s.consents.len()),
        Some(2),
        "putting a session again replaces it"
    );
    store.delete_session(key(20)).await.expect("delete_session");
    assert!(
        store
            .get_session(key(20))
            .await
            .expect("get_session")
            .is_none()
    );
    store
        .put_session(key(21), session, Duration::from_secs(10))
        .await
        .expect("put_session");

    store
        .put_pending(key(30), "{\"r\":1}".into(), Duration::from_secs(10))
        .await
        .expect("put_pending");
    assert_eq!(
        store
            .get_pending(key(30))
            .await
            .expect("get_pending")
            .as_deref(),
        Some("{\"r\":1}")
    );
    assert_eq!(
        store
            .get_pending(key(30))
            .await
            .expect("get_pending")
            .as_deref(),
        Some("{\"r\":1}"),
        "reading a pending request leaves it"
    );
    assert!(
        store.delete_pending(key(30)).await.expect("delete_pending"),
        "the first delete of a live pending request removes it"
    );
    assert!(
        store
            .get_pending(key(30))
            .await
            .expect("get_pending")
            .is_none()
    );
    assert!(
        !store.delete_pending(key(30)).await.expect("delete_pending"),
        "a second delete finds nothing: only one answer of a pending request goes on"
    );
    store
        .put_pending(key(31), "x".into(), Duration::from_secs(10))
        .await
        .expect("put_pending");

    clock.advance(Duration::from_secs(11));
    assert!(
        store
            .get_session(key(21))
            .await
            .expect("get_session")
            .is_none(),
        "a session ends at its ttl"
    );
    assert!(
        store
            .get_pending(key(31))
            .await
            .expect("get_pending")
            .is_none(),
        "a pending request ends at its ttl"
    );
    assert!(
        !store.delete_pending(key(31)).await.expect("delete_pending"),
        "an expired pending request cannot be taken to answer it"
    );
}

async fn failures(store: &dyn Store, clock: &Clock) {
    let window = Duration::from_secs(60);
    assert_eq!(store.failures("f:a").await.expect("failures").0, 0);
    let (count, left) = store.add_failure("f:a", window).await.expect("add_failure");
    assert_eq!(count, 1);
    assert!(left <= window && left > Duration::from_secs(50), "{left:?}");
    clock.advance(Duration::from_secs(20));
    let (count, left) = store.add_failure("f:a", window).await.expect("add_failure");
    assert_eq!(count, 2, "failures add up within the window");
    assert!(
        left <= Duration::from_secs(40),
        "the window starts at the first failure: {left:?} left"
    );
    assert_eq!(store.failures("f:a").await.expect("failures").0, 2);
    assert_eq!(
        store.failures("f:b").await.expect("failures").0,
        0,
        "counters are separate"
    );
    store
        .take_back_failure("f:a")
        .await
        .expect("take_back_failure");
    assert_eq!(
        store.failures("f:a").await.expect("failures").0,
        1,
        "taking an attempt back lowers the count by one"
    );
    store
        .take_back_failure("f:a")
        .await
        .expect("take_back_failure");
    store
        .take_back_failure("f:a")
        .await
        .expect("take_back_failure");
    assert_eq!(
        store.failures("f:a").await.expect("failures").0,
        0,
        "never below zero"
    );
    store.add_failure("f:a", window).await.expect("add_failure");
    store.add_failure("f:a", window).await.expect("add_failure");
    store.clear_failures("f:a").await.expect("clear_failures");
    assert_eq!(store.failures("f:a").await.expect("failures").0, 0);
    store.add_failure("f:c", window).await.expect("add_failure");
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        store.failures("f:c").await.expect("failures").0,
        0,
        "failures are forgotten when the window ends"
    );
    assert_eq!(
        store
            .add_failure("f:c", window)
            .await
            .expect("add_failure")
            .0,
        1,
        "a failure after the window starts a new one"
    );
}

/// Runs `use_once` from [`RACERS`] tasks at once; returns how many saw a first use.
async fn race<F, Fut>(store: &Arc<dyn Store>, use_once: F) -> u32
where
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let fresh = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let (attempt, fresh) = (use_once(store.clone(), i), fresh.clone());
        tasks.push(tokio::spawn(async move {
            if attempt.await {
                fresh.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.expect("racer");
    }
    fresh.load(Ordering::SeqCst)
}

async fn codes_race(store: &Arc<dyn Store>) {
    store
        .put_code(key(40), code_grant(), MINUTE)
        .await
        .expect("put_code");
    let fresh = race(store, |store, i| async move {
        match store.redeem_code(key(40), issued(&format!("r{i}"))).await {
            Ok(Redeemed::Fresh(_)) => true,
            Ok(Redeemed::Replayed(_)) => false,
            other => panic!("a racing redemption: {other:?}"),
        }
    })
    .await;
    assert_eq!(
        fresh, 1,
        "{RACERS} concurrent redemptions of one code: exactly one succeeds"
    );
}

async fn pending_race(store: &Arc<dyn Store>) {
    store
        .put_pending(key(42), "{\"r\":2}".into(), MINUTE)
        .await
        .expect("put_pending");
    let taken = race(store, |store, _| async move {
        store
            .delete_pending(key(42))
            .await
            .expect("a racing delete_pending")
    })
    .await;
    assert_eq!(
        taken, 1,
        "{RACERS} concurrent answers of one pending request: exactly one takes it"
    );
}

/// A rotation uses the old token and keeps its successor only on the first use.
async fn rotations(store: &dyn Store) {
    store
        .put_refresh(key(13), refresh_grant("f3"), MINUTE)
        .await
        .expect("put_refresh");
    let rotate = |old, next| store.rotate_refresh(key(old), key(next), refresh_grant("f4"), MINUTE);
    assert!(
        matches!(rotate(13, 14).await, Ok(Redeemed::Fresh(g)) if g.family == "f3"),
        "the first rotation uses the token"
    );
    assert!(
        matches!(store.peek_refresh(key(14)).await, Ok(Redeemed::Fresh(g)) if g.family == "f4"),
        "and keeps its successor"
    );
    assert!(
        matches!(rotate(13, 15).await, Ok(Redeemed::Replayed(g)) if g.family == "f3"),
        "rotating a used token is a reuse, with its family"
    );
    assert!(
        matches!(store.peek_refresh(key(15)).await, Ok(Redeemed::Unknown)),
        "a reuse keeps no successor"
    );
    assert!(matches!(rotate(16, 17).await, Ok(Redeemed::Unknown)));
    assert!(
        matches!(store.peek_refresh(key(17)).await, Ok(Redeemed::Unknown)),
        "nor does an unknown token"
    );
}

/// Concurrent rotations of one token: one wins, and only its successor is kept.
async fn rotation_race(store: &Arc<dyn Store>) {
    store
        .put_refresh(key(43), refresh_grant("race"), MINUTE)
        .await
        .expect("put_refresh");
    let fresh = race(store, |store, i| async move {
        let next = key(100 + i as u8);
        match store
            .rotate_refresh(key(43), next, refresh_grant("next"), MINUTE)
            .await
        {
            Ok(Redeemed::Fresh(_)) => true,
            Ok(Redeemed::Replayed(_)) => false,
            other => panic!("a racing rotation: {other:?}"),
        }
    })
    .await;
    assert_eq!(
        fresh, 1,
        "{RACERS} concurrent rotations: exactly one succeeds"
    );
    let mut kept = 0;
    for i in 0..RACERS {
        if matches!(
            store.peek_refresh(key(100 + i as u8)).await,
            Ok(Redeemed::Fresh(_))
        ) {
            kept += 1;
        }
    }
    assert_eq!(kept, 1, "only the winning rotation's successor is kept");
}

async fn refresh_race(store: &Arc<dyn Store>) {
    store
        .put_refresh(key(41), refresh_grant("race"), MINUTE)
        .await
        .expect("put_refresh");
    let fresh = race(store, |store, _| async move {
        match store.use_refresh(key(41)).await {
            Ok(Redeemed::Fresh(_)) => true,
            Ok(Redeemed::Replayed(_)) => false,
            other => panic!("a racing refresh: {other:?}"),
        }
    })
    .await;
    assert_eq!(
        fresh, 1,
        "{RACERS} concurrent uses of one refresh token: exactly one succeeds"
    );
}

async fn failures_race(store: &Arc<dyn Store>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    race(store, |store, _| {
        let seen = seen.clone();
        async move {
            let (count, _) = store
                .add_failure("f:race", MINUTE)
                .await
                .expect("add_failure");
            seen.lock().expect("lock").push(count);
            false
        }
    })
    .await;
    let mut seen = seen.lock().expect("lock").clone();
    seen.sort_unstable();
    let want: Vec<u32> = (1..=RACERS as u32).collect();
    assert_eq!(
        seen, want,
        "{RACERS} concurrent attempts each see a count of their own"
    );
}

fn device_grant() -> DeviceGrant {
    DeviceGrant {
        client_id: "tv ç".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        expires_at: 1_000,
        interval: 5,
        last_poll: None,
        decision: DeviceDecision::Pending,
        resources: vec!["https://tv.example.com/api".into()],
    }
}

async fn devices(store: &dyn Store, clock: &Clock) {
    let (device, user) = (key(50), key(51));
    assert!(
        store
            .put_device(device, user, device_grant(), MINUTE)
            .await
            .expect("put_device"),
        "a new user code is stored"
    );
    assert!(
        !store
            .put_device(key(52), user, device_grant(), MINUTE)
            .await
            .expect("put_device"),
        "a user code already live is not stored again"
    );
    assert!(
        matches!(
            store
                .poll_device(key(52), "tv ç", 0, 5)
                .await
                .expect("poll"),
            Polled::Unknown
        ),
        "the device code of a refused put is not stored"
    );
    let found = store.device_by_user_code(user).await.expect("lookup");
    assert_eq!(found.map(|g| g.client_id), Some("tv ç".to_owned()));
    assert!(
        store
            .device_by_user_code(key(53))
            .await
            .expect("lookup")
            .is_none()
    );

    // Pacing: the first poll is fine, one within the interval grows it by the step.
    assert!(
        matches!(
            store
                .poll_device(device, "other", 100, 5)
                .await
                .expect("poll"),
            Polled::Unknown
        ),
        "another client's poll finds nothing"
    );
    match store
        .poll_device(device, "tv ç", 100, 5)
        .await
        .expect("poll")
    {
        Polled::Waiting(g) => assert_eq!((g.interval, g.last_poll), (5, Some(100))),
        other => panic!("first poll: {other:?}"),
    }
    match store
        .poll_device(device, "tv ç", 104, 5)
        .await
        .expect("poll")
    {
        Polled::TooFast(g) => assert_eq!(g.interval, 10, "the interval grows by the step"),
        other => panic!("poll too fast: {other:?}"),
    }
    match store
        .poll_device(device, "tv ç", 110, 5)
        .await
        .expect("poll")
    {
        Polled::TooFast(g) => assert_eq!(g.interval, 15, "measured from the last poll"),
        other => panic!("poll too fast again: {other:?}"),
    }
    assert!(matches!(
        store
            .poll_device(device, "tv ç", 125, 5)
            .await
            .expect("poll"),
        Polled::Waiting(_)
    ));

    // The decision is made once.
    let approved = DeviceDecision::Approved {
        identity: identity(),
        auth_time: 9,
    };
    let decided = store
        .decide_device(user, approved.clone())
        .await
        .expect("decide");
    assert!(decided.is_some(), "a pending code can be approved");
    assert!(
        store
            .decide_device(user, DeviceDecision::Denied)
            .await
            .expect("decide")
            .is_none(),
        "a decided code cannot be decided again"
    );
    match store
        .poll_device(device, "tv ç", 126, 5)
        .await
        .expect("poll")
    {
        Polled::Fresh(g) => match g.decision {
            DeviceDecision::Approved {
                identity,
                auth_time,
            } => {
                assert_eq!((identity, auth_time), (self::identity(), 9));
            }
            other => panic!("approved grant lost its decision: {other:?}"),
        },
        other => panic!("poll after approval: {other:?}"),
    }
    assert!(
        matches!(
            store
                .poll_device(device, "tv ç", 200, 5)
                .await
                .expect("poll"),
            Polled::Replayed(_)
        ),
        "an approved code is handed out once"
    );

    // A denied code stays denied; everything expires with its ttl.
    let (device2, user2) = (key(54), key(55));
    assert!(
        store
            .put_device(device2, user2, device_grant(), MINUTE)
            .await
            .expect("put_device")
    );
    assert!(
        store
            .decide_device(user2, DeviceDecision::Denied)
            .await
            .expect("decide")
            .is_some()
    );
    match store
        .poll_device(device2, "tv ç", 0, 5)
        .await
        .expect("poll")
    {
        Polled::Waiting(g) => assert!(matches!(g.decision, DeviceDecision::Denied)),
        other => panic!("poll after denial: {other:?}"),
    }
    clock.advance(MINUTE + Duration::from_secs(1));
    assert!(matches!(
        store
            .poll_device(device2, "tv ç", 0, 5)
            .await
            .expect("poll"),
        Polled::Unknown
    ));
    assert!(
        store
            .device_by_user_code(user2)
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(
        store
            .put_device(key(56), user2, device_grant(), MINUTE)
            .await
            .expect("put_device"),
        "an expired user code may be drawn again"
    );
}

async fn devices_race(store: &Arc<dyn Store>) {
    let (device, user) = (key(57), key(58));
    store
        .put_device(device, user, device_grant(), MINUTE)
        .await
        .expect("put_device");
    let decided = race(store, |store, i| async move {
        let decision = if i % 2 == 0 {
            DeviceDecision::Denied
        } else {
            DeviceDecision::Approved {
                identity: identity(),
                auth_time: 1,
            }
        };
        store
            .decide_device(user, decision)
            .await
            .expect("decide")
            .is_some()
    })
    .await;
    assert_eq!(
        decided, 1,
        "{RACERS} concurrent decisions: exactly one counts"
    );
    let (device2, user2) = (key(59), key(60));
    store
        .put_device(device2, user2, device_grant(), MINUTE)
        .await
        .expect("put_device");
    store
        .decide_device(
            user2,
            DeviceDecision::Approved {
                identity: identity(),
                auth_time: 1,
            },
        )
        .await
        .expect("decide");
    let fresh = race(store, |store, _| async move {
        matches!(
            store
                .poll_device(device2, "tv ç", 0, 5)
                .await
                .expect("poll"),
            Polled::Fresh(_)
        )
    })
    .await;
    assert_eq!(
        fresh, 1,
        "{RACERS} concurrent polls of an approved code: one gets it"
    );
    assert!(matches!(
        store.poll_device(device, "tv ç", 0, 5).await.expect("poll"),
        Polled::Fresh(_) | Polled::Waiting(_)
    ));
}

async fn shared_secrets(store: &dyn Store) {
    let first = store
        .shared_secret("conformance", [1; 32])
        .await
        .expect("shared_secret");
    assert_eq!(first, [1; 32], "the first to ask makes the secret");
    let again = store
        .shared_secret("conformance", [2; 32])
        .await
        .expect("shared_secret");
    assert_eq!(again, [1; 32], "later askers get the secret made first");
    assert_eq!(
        store
            .shared_secret("conformance-other", [3; 32])
            .await
            .expect("shared_secret"),
        [3; 32],
        "secrets are per name"
    );
}

async fn remembered_once(store: &dyn Store, clock: &Clock) {
    let until = clock.now() + 60;
    assert!(
        store
            .remember_once("o:a", until)
            .await
            .expect("remember_once"),
        "a name never seen is remembered: first time"
    );
    assert!(
        !store
            .remember_once("o:a", until)
            .await
            .expect("remember_once"),
        "the same name again while it is held: not the first time"
    );
    assert!(
        !store
            .remember_once("o:a", until + 3600)
            .await
            .expect("remember_once"),
        "a later `until` does not make a held name new"
    );
    assert!(
        store
            .remember_once("o:b", until)
            .await
            .expect("remember_once"),
        "another name is its own"
    );
    clock.advance(Duration::from_secs(61));
    assert!(
        store
            .remember_once("o:a", clock.now() + 60)
            .await
            .expect("remember_once"),
        "past its `until` a name is forgotten"
    );
    assert!(
        !store
            .remember_once("o:a", clock.now() + 60)
            .await
            .expect("remember_once"),
        "and held again from then on"
    );
}

async fn remember_race(store: &Arc<dyn Store>, clock: &Clock) {
    let until = clock.now() + 3600;
    let first = race(store, move |store, _| async move {
        store
            .remember_once("o:race", until)
            .await
            .expect("a racing remember_once")
    })
    .await;
    assert_eq!(
        first, 1,
        "{RACERS} concurrent uses of one assertion id: exactly one is the first"
    );
}

/// The live members of the index `name`, sorted.
async fn members(store: &dyn Store, name: &str) -> Vec<String> {
    let mut sids = store
        .indexed_sessions(name)
        .await
        .expect("indexed_sessions");
    sids.sort();
    sids
}

async fn session_indexes(store: &dyn Store, clock: &Clock) {
    let now = clock.now();
    let add = |name: &'static str, sid: &'static str, until: u64, cap: usize| async move {
        store
            .index_session(name, sid, until, cap)
            .await
            .expect("index_session");
    };
    assert!(
        members(store, "x:none").await.is_empty(),
        "an unknown index is empty"
    );
    add("x:u", "s1", now + 100, 3).await;
    add("x:u", "s2", now + 200, 3).await;
    add("x:u", "s1", now + 50, 3).await;
    add("x:other", "s9", now + 100, 3).await;
    assert_eq!(
        members(store, "x:u").await,
        ["s1", "s2"],
        "each index its own"
    );
    assert_eq!(members(store, "x:other").await, ["s9"]);
    add("x:u", "past", now.saturating_sub(1), 3).await;
    assert_eq!(
        members(store, "x:u").await,
        ["s1", "s2"],
        "an ended one is not added"
    );

    // Past the cap, those that expire first go: the oldest sessions.
    add("x:u", "s3", now + 300, 3).await;
    add("x:u", "s4", now + 400, 3).await;
    assert_eq!(
        members(store, "x:u").await,
        ["s2", "s3", "s4"],
        "capped at three"
    );

    store
        .unindex_session("x:u", "s3")
        .await
        .expect("unindex_session");
    store
        .unindex_session("x:u", "never")
        .await
        .expect("unindexing what is not there");
    assert_eq!(members(store, "x:u").await, ["s2", "s4"]);

    // Each member goes when it expires; the index with its last one.
    clock.advance(Duration::from_secs(150));
    assert!(members(store, "x:other").await.is_empty(), "expired");
    clock.advance(Duration::from_secs(100));
    assert_eq!(members(store, "x:u").await, ["s4"]);
    clock.advance(Duration::from_secs(200));
    assert!(members(store, "x:u").await.is_empty());
    add("x:u", "s5", clock.now() + 10, 3).await;
    assert_eq!(members(store, "x:u").await, ["s5"], "an index lives again");
}
