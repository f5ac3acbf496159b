//! Redis behind Sentinel (`[store] sentinels`, `master_name`): a real master, one
//! replica and three Sentinels, all `redis-server` processes of the test's own. The
//! store conformance suite passes through the Sentinels; a security-relevant write
//! waits for the replica (and answers anyway when the replica does not confirm); and
//! the master killed (SIGKILL) under a load of refresh rotations and code flows against
//! the real `gatehouse serve`: the failure window is bounded and printed, and afterwards
//! nothing revoked is active, no used refresh token or code works again, and the rate
//! limit still holds.

use crate::replicas::{Visitor, active, code_of, config_on, field, post, redeem, refresh, sign_in};
use crate::support::browser::Pkce;
use crate::support::redis::{MASTER_NAME, SentinelSet};
use crate::support::replica::Replica;
use crate::support::*;
use gatehouse::clock::Clock;
use gatehouse::load::{StoreBackend, StoreSentinel, StoreSettings};
use gatehouse::store::redis::RedisStore;
use gatehouse::store::{Store, conformance};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Store settings that find the master of `set` through its Sentinels.
fn settings(set: &SentinelSet, prefix: &str, wait: Duration) -> StoreSettings {
    StoreSettings {
        backend: StoreBackend::Redis(format!("redis://{MASTER_NAME}/0")),
        key_prefix: prefix.to_owned(),
        sentinel: Some(StoreSentinel {
            sentinels: set
                .sentinels
                .iter()
                .map(|s| ("127.0.0.1".to_owned(), s.port))
                .collect(),
            master_name: MASTER_NAME.to_owned(),
            password: None,
        }),
        wait_for_replica: wait,
        ..StoreSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_store_conforms_behind_sentinel() {
    let Some(set) = SentinelSet::start("the_redis_store_conforms_behind_sentinel").await else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::open(
        &settings(&set, "conformance:", Duration::from_millis(100)),
        clock.clone(),
    )
    .await
    .expect("connects through the Sentinels");
    conformance::run(Arc::new(store), &clock).await;
}

/// A revocation waits for the replica: once answered, the replica has it. With the
/// replica stopped (SIGSTOP) the revocation still succeeds, after the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_waits_for_the_replica_and_answers_when_it_does_not_confirm() {
    let Some(set) = SentinelSet::start("a_revocation_waits_for_the_replica").await else {
        return;
    };
    let wait = Duration::from_millis(300);
    let store = RedisStore::open(&settings(&set, "w:", wait), Clock::system())
        .await
        .expect("connects");
    store
        .revoke_family("fam-1", Duration::from_secs(60))
        .await
        .expect("revoked");
    let replica =
        ::redis::Client::open(format!("redis://127.0.0.1:{}", set.replica.port)).expect("client");
    let mut conn = replica
        .get_multiplexed_async_connection()
        .await
        .expect("the replica");
    let held: bool = ::redis::cmd("EXISTS")
        .arg("w:f:fam-1")
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    assert!(held, "answered only once the replica had it");

    let pid = set.replica.pid().expect("the replica runs").to_string();
    let signal = |sig: &str| {
        let done = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(done.success(), "kill {sig}");
    };
    signal("-STOP");
    let started = Instant::now();
    let outcome = store.revoke_family("fam-2", Duration::from_secs(60)).await;
    let took = started.elapsed();
    signal("-CONT");
    outcome.expect("a replica that does not confirm does not fail the write");
    assert!(
        took >= wait,
        "the write waited for the replica ({took:?}, wait {wait:?})"
    );
    assert!(store.family_revoked("fam-2").await.expect("read"));
}

/// What the load saw: failed requests (when), answered ones, and refresh families cut
/// by the failover (a rotation whose answer was lost: the retry is a replay).
#[derive(Default)]
struct Load {
    failures: Mutex<Vec<Instant>>,
    answered: AtomicUsize,
    cut: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    fn failed(&self) {
        self.failures.lock().expect("failures").push(Instant::now());
    }
}

type Chain = Arc<Mutex<Vec<String>>>;

/// Rotates `chain`'s refresh token on `at` until told to stop; a failure (the store
/// unavailable) is retried with the same token.
async fn rotate(at: Arc<Replica>, chain: Chain, load: Arc<Load>) {
    while !load.stop.load(Ordering::SeqCst) {
        let last = chain
            .lock()
            .expect("chain")
            .last()
            .cloned()
            .expect("a token");
        let (status, body) = refresh(&at, &last).await;
        match status {
            200 => {
                chain
                    .lock()
                    .expect("chain")
                    .push(field(&body, "refresh_token"));
                load.answered.fetch_add(1, Ordering::SeqCst);
            }
            400 => {
                // Its rotation happened but the answer was lost with the master: the
                // retry is a replay, which ends the family (as it should).
                load.cut.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => load.failed(),
        }
    }
}

/// Code flows on the session of `visitor` until told to stop: the codes redeemed.
async fn code_flows(at: Arc<Replica>, mut visitor: Visitor, load: Arc<Load>) -> Vec<String> {
    let pkce = Pkce::new("sentinel-flows");
    let mut redeemed = Vec::new();
    while !load.stop.load(Ordering::SeqCst) {
        let answer = visitor.authorize(&at, &pkce).await;
        if answer.status != 303 {
            load.failed();
            continue;
        }
        let code = code_of(&answer);
        match redeem(&at, &code, &pkce).await.0 {
            200 => {
                load.answered.fetch_add(1, Ordering::SeqCst);
                redeemed.push(code);
            }
            _ => load.failed(),
        }
    }
    redeemed
}

/// `gatehouse_store_replica_waits_total{result="confirmed"}` on `at`'s `/metrics`.
async fn confirmed_waits(at: &Replica) -> f64 {
    let text = reqwest::get(at.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .find(|l| l.starts_with("gatehouse_store_replica_waits_total{result=\"confirmed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_under_load_fails_over_with_nothing_revived() {
    let Some(mut set) = SentinelSet::start("a_master_killed_under_load_fails_over").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    // The load loops ask for pages as fast as they can: no page limit in their way.
    let config = config_on(&format!("[store]\n{}", set.store_config())).replace(
        "login_max_failures = 4\n",
        "login_max_failures = 4\npages_per_second = 100000\npages_burst = 100000\n",
    );
    let at = Arc::new(Replica::spawn_with_env(
        dir.path(),
        "gs",
        &config,
        &[("RUST_LOG", "info")],
    ));
    let mut visitor = Visitor::new();
    let pkce = Pkce::new("sentinel");

    // Before the failover: an access token and a family revoked, a used code, and a
    // brute force at the limit (four failed logins).
    let code = sign_in(&mut visitor, &at, &at, &pkce).await;
    let (status, tokens) = redeem(&at, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let used_code = code;
    let denied_access = field(&tokens, "access_token");
    let revoked_refresh = field(&tokens, "refresh_token");
    for token in [&denied_access, &revoked_refresh] {
        let (status, body) = post(&at, "/revoke", "web", &[("token", token)]).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut flows_visitor = Visitor::new();
    let code = sign_in(&mut flows_visitor, &at, &at, &Pkce::new("sentinel-flows")).await;
    assert_eq!(
        redeem(&at, &code, &Pkce::new("sentinel-flows")).await.0,
        200
    );
    let mut mallory = Visitor::new();
    assert_eq!(
        mallory.authorize(&at, &Pkce::new("mallory")).await.status,
        200
    );
    for _ in 0..4 {
        let wrong = mallory
            .submit(
                &at,
                "/login",
                &[("username", "alice"), ("password", "wrong")],
            )
            .await;
        assert_eq!(wrong.status, 200, "a failed login shows the form again");
    }

    // Load: four refresh families rotating and one code flow loop, all the time.
    let load = Arc::new(Load::default());
    let mut chains = Vec::new();
    for _ in 0..4 {
        let (status, body) =
            redeem(&at, &code_of(&visitor.authorize(&at, &pkce).await), &pkce).await;
        assert_eq!(status, 200, "{body}");
        chains.push(Arc::new(Mutex::new(vec![field(&body, "refresh_token")])));
    }
    let rotations: Vec<_> = chains
        .iter()
        .map(|c| tokio::spawn(rotate(at.clone(), c.clone(), load.clone())))
        .collect();
    let flows = tokio::spawn(code_flows(at.clone(), flows_visitor, load.clone()));
    let warm = eventually(Duration::from_secs(10), || async {
        load.answered.load(Ordering::SeqCst) >= 40
    })
    .await;
    assert!(warm, "the load runs");

    let old_port = set.master.port;
    let before = load.answered.load(Ordering::SeqCst);
    let killed_at = Instant::now();
    set.master.stop();
    // The Sentinels promote the replica, and the load goes on against it.
    let promoted = eventually(Duration::from_secs(20), || async {
        set.master_port().await.is_some_and(|p| p != old_port)
    })
    .await;
    assert!(promoted, "the Sentinels promoted the replica");
    println!(
        "promoted {} ms after the kill",
        killed_at.elapsed().as_millis()
    );
    let recovered = eventually(Duration::from_secs(20), || async {
        load.answered.load(Ordering::SeqCst) >= before + 40
            && load
                .failures
                .lock()
                .expect("failures")
                .last()
                .is_none_or(|f| f.elapsed() > Duration::from_millis(500))
    })
    .await;
    load.stop.store(true, Ordering::SeqCst);
    for rotation in rotations {
        rotation.await.expect("rotation task");
    }
    let redeemed = flows.await.expect("code flow task");
    let failures = load.failures.lock().expect("failures").clone();
    let window = match (failures.first(), failures.last()) {
        (Some(first), Some(last)) => *last - *first,
        _ => Duration::ZERO,
    };
    println!(
        "failover: {} requests failed over a window of {} ms (first failure {} ms after the kill); \
         {} answered in all; {} of 4 refresh families cut by a lost answer",
        failures.len(),
        window.as_millis(),
        failures
            .first()
            .map_or(0, |f| f.duration_since(killed_at).as_millis()),
        load.answered.load(Ordering::SeqCst),
        load.cut.load(Ordering::SeqCst),
    );
    // SENTINEL_TEST_LOG=/path keeps gatehouse's log of the run (its store_master_lost
    // and store_master_found lines say when it lost and found the master).
    if let Ok(keep) = std::env::var("SENTINEL_TEST_LOG") {
        let _ = std::fs::copy(dir.path().join("gs.log"), keep);
    }
    assert!(recovered, "requests succeed again after the failover");
    assert!(
        window < Duration::from_secs(15),
        "the failure window is bounded: {window:?}"
    );

    // Afterwards, against the promoted replica: nothing revived.
    assert!(
        !active(&at, &denied_access).await,
        "a revoked access token stays revoked"
    );
    assert_eq!(
        refresh(&at, &revoked_refresh).await.0,
        400,
        "a revoked family stays revoked"
    );
    let (status, body) = redeem(&at, &used_code, &pkce).await;
    assert_eq!(status, 400, "a used code stays used: {body}");
    let flows_pkce = Pkce::new("sentinel-flows");
    for code in &redeemed {
        let (status, body) = redeem(&at, code, &flows_pkce).await;
        assert_eq!(status, 400, "a code redeemed under load stays used: {body}");
    }
    for chain in &chains {
        let chain = chain.lock().expect("chain").clone();
        for used in &chain[..chain.len() - 1] {
            let (status, body) = refresh(&at, used).await;
            assert_eq!(status, 400, "a used refresh token stays used: {body}");
        }
    }
    assert_eq!(
        mallory.authorize(&at, &Pkce::new("mallory")).await.status,
        200
    );
    let refused = mallory
        .submit(
            &at,
            "/login",
            &[("username", "alice"), ("password", SERVICE_SECRET)],
        )
        .await;
    assert_eq!(refused.status, 429, "the brute force is still at its limit");
    assert!(
        confirmed_waits(&at).await > 0.0,
        "security-relevant writes waited for the replica"
    );
}

/// The Sentinel fields are refused where they are wrong, naming the field at its line:
/// an address that is not host:port, Sentinels without a master name or a Redis URL, a
/// master name or password without Sentinels, a wait over 5 s; the password is never
/// shown, and a URL whose host is not the master's name is warned about.
#[test]
fn sentinel_fields_are_checked_at_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let path = dir.path().join("gatehouse.toml");
    let write = |store: &str| {
        let text = config_with(&format!(
            "[store]\n{store}\n[[keys]]\nprivate_key_file = \"signing.pem\"\n"
        ));
        std::fs::write(&path, text).expect("write config");
    };
    for (store, field) in [
        (
            "url = \"redis://mymaster/0\"\nmaster_name = \"mymaster\"\nsentinels = [\"10.0.0.5:26379\", \"10.0.0.6\"]",
            "line: 8, column: 32 }), issue: Issue { severity: Error, path: \"store.sentinels[1]\"",
        ),
        (
            "url = \"redis://mymaster/0\"\nsentinels = [\"10.0.0.5:26379\"]",
            "store.master_name",
        ),
        (
            "sentinels = [\"10.0.0.5:26379\"]\nmaster_name = \"mymaster\"",
            "store.sentinels",
        ),
        (
            "url = \"redis://h/0\"\nmaster_name = \"mymaster\"",
            "store.master_name",
        ),
        (
            "url = \"redis://h/0\"\nsentinel_password = \"${env:GATEHOUSE_NO_SUCH_VAR}\"",
            "store.sentinel_password",
        ),
        (
            "url = \"redis://h/0\"\nwait_for_replica = \"6s\"",
            "store.wait_for_replica",
        ),
    ] {
        write(store);
        let Err(rejected) = gatehouse::reload::load_config(&path) else {
            panic!("accepted: {store}");
        };
        let said = format!("{rejected:?}");
        assert!(said.contains(field), "{store}: {said}");
    }
    write(
        "url = \"redis://elsewhere/0\"\nsentinels = [\"[::1]:26379\"]\nmaster_name = \"mymaster\"\nsentinel_password = \"pw-literal-secret\"",
    );
    let loaded = gatehouse::reload::load_config(&path).expect("a valid Sentinel config");
    let warnings = format!("{:?}", loaded.warnings);
    assert!(warnings.contains("redis://mymaster/0"), "{warnings}");
    let shown = format!("{:?}", loaded.config.store);
    assert!(!shown.contains("pw-literal-secret"), "{shown}");
    assert!(shown.contains("mymaster"), "{shown}");
}

/// Sentinels that require a password (`requirepass`): the store finds the master with
/// `sentinel_password`, and not without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_with_a_password_are_asked_with_sentinel_password() {
    let password = "sentinel-pw-0123";
    let Some(set) = SentinelSet::start_with("sentinels_with_a_password", Some(password)).await
    else {
        return;
    };
    let mut with = settings(&set, "pw:", Duration::from_millis(100));
    let clock = Clock::system();
    assert!(
        RedisStore::open(&with, clock.clone()).await.is_err(),
        "without the password the Sentinels refuse"
    );
    if let Some(sentinel) = with.sentinel.as_mut() {
        sentinel.password = Some(password.to_owned());
    }
    let store = RedisStore::open(&with, clock)
        .await
        .expect("connects with the Sentinels' password");
    store
        .deny_jti("j", Duration::from_secs(60))
        .await
        .expect("writes to the master");
    assert!(store.jti_denied("j").await.expect("reads"));
}
