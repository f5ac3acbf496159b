//! The store conformance suite against a real Redis: the same checks the memory store
//! passes, on a redis-server of this test's own, with the clock the suite advances.

use crate::support::redis::RedisServer;
use gatehouse::clock::Clock;
use gatehouse::store::redis::RedisStore;
use gatehouse::store::{Store, conformance};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_store_conforms() {
    let Some(redis) = RedisServer::start("the_redis_store_conforms") else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::connect(&redis.url(), "conformance:", clock.clone())
        .await
        .expect("connects");
    conformance::run(Arc::new(store), &clock).await;
}

#[tokio::test]
async fn two_prefixes_share_one_redis_without_seeing_each_other() {
    let Some(redis) = RedisServer::start("two_prefixes_share_one_redis") else {
        return;
    };
    let clock = Clock::system();
    let a = RedisStore::connect(&redis.url(), "a:", clock.clone())
        .await
        .expect("connects");
    let b = RedisStore::connect(&redis.url(), "b:", clock.clone())
        .await
        .expect("connects");
    a.deny_jti("j", std::time::Duration::from_secs(60))
        .await
        .expect("deny");
    assert!(a.jti_denied("j").await.expect("read"));
    assert!(
        !b.jti_denied("j").await.expect("read"),
        "b: is another deployment"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let Some(mut redis) = RedisServer::start("an_unreachable_redis_is_an_error") else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::connect(&redis.url(), "down:", clock.clone())
        .await
        .expect("connects");
    redis.stop();
    let started = std::time::Instant::now();
    assert!(store.ping().await.is_err());
    assert!(store.jti_denied("j").await.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "failed fast: {:?}",
        started.elapsed()
    );
    redis.restart();
    let back = crate::support::eventually(std::time::Duration::from_secs(5), || async {
        store.ping().await.is_ok()
    })
    .await;
    assert!(back, "the store reconnects by itself once Redis is back");
}

/// What one refresh token and one session cost in Redis (`MEMORY USAGE`, key and value
/// and Redis's overhead), for values shaped like the server's: printed, and bounded so
/// that a change making them much bigger fails here.
#[tokio::test]
async fn a_refresh_token_and_a_session_are_a_few_hundred_bytes_in_redis() {
    use gatehouse::model::{Identity, IdentitySource};
    use gatehouse::store::{RefreshGrant, Session};
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;
    let Some(redis) = RedisServer::start("a_refresh_token_and_a_session_are_small") else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::connect(&redis.url(), "gatehouse:", clock.clone())
        .await
        .expect("connects");
    let key = gatehouse::crypto::sha256(b"a refresh token");
    let now = clock.now();
    store
        .put_refresh(
            key,
            RefreshGrant {
                family: gatehouse::crypto::random_id().expect("id"),
                client_id: "web-app".into(),
                source: IdentitySource::Local,
                subject: "u-alice".into(),
                scopes: vec!["openid".into(), "profile".into(), "offline_access".into()],
                auth_time: now,
                issued_at: now,
                expires_at: now + 30 * 24 * 3600,
                credential: Some([7; 16]),
                federated: None,
                resources: vec![],
                origin: Default::default(),
                dpop_jkt: None,
            },
            Duration::from_secs(30 * 24 * 3600),
        )
        .await
        .expect("put_refresh");
    let session_key = gatehouse::crypto::sha256(b"a session");
    let mut consents = BTreeMap::new();
    consents.insert(
        "web-app".to_owned(),
        BTreeSet::from(["openid".to_owned(), "profile".to_owned()]),
    );
    store
        .put_session(
            session_key,
            Session {
                identity: Identity {
                    source: IdentitySource::Local,
                    subject: "u-alice".into(),
                    username: "alice".into(),
                    name: Some("Alice Liddell".into()),
                    email: Some("alice@example.com".into()),
                    email_verified: true,
                    groups: vec!["staff".into(), "admins".into()],
                    upstream: None,
                    picture: None,
                },
                auth_time: now,
                consents,
                sid: "sid".into(),
                created_at: now,
                amr: vec!["pwd".into()],
                clients: Default::default(),
            },
            Duration::from_secs(12 * 3600),
        )
        .await
        .expect("put_session");
    let client = redis::Client::open(redis.url()).expect("client");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let usage = |kind: &str, id: [u8; 32]| {
        let mut k = format!("gatehouse:{kind}:").into_bytes();
        k.extend_from_slice(&id);
        let mut conn = conn.clone();
        async move {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(k)
                .query_async::<u64>(&mut conn)
                .await
                .expect("MEMORY USAGE")
        }
    };
    let (refresh, session) = (usage("r", key).await, usage("s", session_key).await);
    println!("MEMORY USAGE: refresh token {refresh} bytes, session {session} bytes");
    // 216 with Redis 7.0: its value in a 128-byte block (a 160-byte one, 248 in all,
    // before the seven-byte frame and the ids as bytes).
    assert!(refresh < 240, "a refresh token takes {refresh} bytes");
    assert!(session < 400, "a session takes {session} bytes");
}

/// What the older-frame checks share: a Redis store under the prefix `up:`, a plain
/// connection to its Redis, and the time.
struct Upgrade {
    store: RedisStore,
    /// Another replica on the same Redis: it peeks at a code from Redis, where `store`,
    /// which wrote it, reads its own copy.
    elsewhere: RedisStore,
    conn: redis::aio::MultiplexedConnection,
    now: u64,
}

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

impl Upgrade {
    async fn connect(redis: &RedisServer) -> Self {
        let clock = Clock::system();
        let store = RedisStore::connect(&redis.url(), "up:", clock.clone())
            .await
            .expect("connects");
        let elsewhere = RedisStore::connect(&redis.url(), "up:", clock.clone())
            .await
            .expect("connects");
        let conn = redis::Client::open(redis.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        Self {
            store,
            elsewhere,
            conn,
            now: clock.now(),
        }
    }

    /// Rewrites the value of `kind` `id` into the frame of earlier builds (15 decimal
    /// digits of the expiry, then `0` unused), keeping its TTL: as a store written
    /// before the seven-byte frame left it.
    async fn rewrite_in_the_older_frame(&mut self, kind: &str, id: &[u8]) {
        let key = [format!("up:{kind}:").as_bytes(), id].concat();
        let raw: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn)
            .await
            .expect("GET");
        assert_eq!(
            raw.first(),
            Some(&0x80),
            "written unused in the seven-byte frame"
        );
        let mut exp = [0; 8];
        exp[2..].copy_from_slice(&raw[1..7]);
        let mut older = format!("{:015}0", u64::from_be_bytes(exp)).into_bytes();
        older.extend_from_slice(&raw[7..]);
        redis::cmd("SET")
            .arg(&key)
            .arg(older)
            .arg("KEEPTTL")
            .query_async::<()>(&mut self.conn)
            .await
            .expect("SET");
    }

    fn origin(&self) -> gatehouse::store::Origin {
        gatehouse::store::Origin {
            sid: Some("sid".into()),
            since: self.now,
            amr: vec!["pwd".into()],
        }
    }

    fn identity(&self) -> gatehouse::model::Identity {
        gatehouse::model::Identity {
            source: gatehouse::model::IdentitySource::Local,
            subject: "u-alice".into(),
            username: "alice".into(),
            name: None,
            email: None,
            email_verified: false,
            groups: vec![],
            upstream: None,
            picture: None,
        }
    }

    /// A refresh grant of the family `fam`.
    fn family(&self) -> gatehouse::store::RefreshGrant {
        gatehouse::store::RefreshGrant {
            family: "fam".into(),
            client_id: "web-app".into(),
            source: gatehouse::model::IdentitySource::Local,
            subject: "u-alice".into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            auth_time: self.now,
            issued_at: self.now,
            expires_at: self.now + 3600,
            credential: Some([7; 16]),
            federated: None,
            resources: vec![],
            origin: self.origin(),
            dpop_jkt: None,
        }
    }
}

/// An older-frame code peeks fresh, redeems once, and its second use is a replay.
async fn older_codes_redeem_once(u: &mut Upgrade) {
    use gatehouse::store::{CodeGrant, IssuedIds, Redeemed};
    let code = gatehouse::crypto::sha256(b"a code");
    let grant = CodeGrant {
        client_id: "web-app".into(),
        redirect_uri: Some("http://127.0.0.1/cb".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into()],
        nonce: None,
        identity: u.identity(),
        auth_time: u.now,
        issued: None,
        resources: vec![],
        origin: u.origin(),
        dpop_jkt: None,
    };
    u.store.put_code(code, grant, HOUR).await.expect("put_code");
    u.rewrite_in_the_older_frame("c", &code).await;
    let issued = || IssuedIds {
        access_jti: "jti".into(),
        access_exp: u.now + 60,
        refresh_family: None,
    };
    match u.elsewhere.peek_code(code).await.expect("peek_code") {
        Redeemed::Fresh(g) => assert_eq!(g.client_id, "web-app"),
        other => panic!("an older-frame code peeks fresh, not {other:?}"),
    }
    match u.store.redeem_code(code, issued()).await.expect("redeem") {
        Redeemed::Fresh(g) => assert_eq!(g.identity.subject, "u-alice"),
        other => panic!("an older-frame code redeems once, not {other:?}"),
    }
    match u.store.redeem_code(code, issued()).await.expect("redeem") {
        Redeemed::Replayed(g) => assert_eq!(g.issued.map(|i| i.access_jti).as_deref(), Some("jti")),
        other => panic!("its second use is a replay, not {other:?}"),
    }
}

/// An older-frame refresh token rotates once (its successor stored), and another is
/// used once.
async fn older_refresh_tokens_rotate_once(u: &mut Upgrade) {
    use gatehouse::store::Redeemed;
    let (refresh, next, other) = (
        gatehouse::crypto::sha256(b"a refresh token"),
        gatehouse::crypto::sha256(b"its successor"),
        gatehouse::crypto::sha256(b"another refresh token"),
    );
    for key in [refresh, other] {
        u.store
            .put_refresh(key, u.family(), HOUR)
            .await
            .expect("put_refresh");
        u.rewrite_in_the_older_frame("r", &key).await;
    }
    let peeked = u.store.peek_refresh(refresh).await.expect("peek");
    assert!(matches!(peeked, Redeemed::Fresh(_)), "{peeked:?}");
    let rotate = || u.store.rotate_refresh(refresh, next, u.family(), HOUR);
    match rotate().await.expect("rotate") {
        Redeemed::Fresh(g) => assert_eq!(g.family, "fam"),
        other => panic!("an older-frame token rotates once, not {other:?}"),
    }
    let again = rotate().await.expect("rotate");
    assert!(matches!(again, Redeemed::Replayed(_)), "a reuse: {again:?}");
    let successor = u.store.peek_refresh(next).await.expect("peek");
    assert!(matches!(successor, Redeemed::Fresh(_)), "{successor:?}");
    let used = u.store.use_refresh(other).await.expect("use_refresh");
    assert!(matches!(used, Redeemed::Fresh(_)), "{used:?}");
    let used = u.store.use_refresh(other).await.expect("use_refresh");
    assert!(matches!(used, Redeemed::Replayed(_)), "{used:?}");
}

/// An older-frame session reads; a not-before, a denied `jti` and a revoked family
/// read one by one and in the standing read's one `MGET`, and a later not-before
/// replaces an older-frame one.
async fn older_sessions_and_standing_read(u: &mut Upgrade) {
    use gatehouse::store::{Session, StandingQuery};
    let session = gatehouse::crypto::sha256(b"a session");
    let record = Session {
        identity: u.identity(),
        auth_time: u.now,
        consents: Default::default(),
        sid: "sid".into(),
        created_at: u.now,
        amr: vec!["pwd".into()],
        clients: Default::default(),
    };
    u.store
        .put_session(session, record, HOUR)
        .await
        .expect("put_session");
    u.rewrite_in_the_older_frame("s", &session).await;
    let back = u.store.get_session(session).await.expect("get_session");
    assert_eq!(back.map(|s| s.identity.username).as_deref(), Some("alice"));

    let now = u.now;
    u.store
        .set_not_before("web-app", now - 10, HOUR)
        .await
        .expect("nb");
    u.rewrite_in_the_older_frame("nb", b"web-app").await;
    assert_eq!(
        u.store.not_before("web-app").await.expect("nb"),
        Some(now - 10)
    );
    u.store
        .set_not_before("web-app", now - 5, HOUR)
        .await
        .expect("nb");
    assert_eq!(
        u.store.not_before("web-app").await.expect("nb"),
        Some(now - 5)
    );

    u.store.deny_jti("jti-1", HOUR).await.expect("deny_jti");
    u.rewrite_in_the_older_frame("j", b"jti-1").await;
    u.store.revoke_family("fam-1", HOUR).await.expect("revoke");
    u.rewrite_in_the_older_frame("f", b"fam-1").await;
    let standing = u
        .store
        .standing(&StandingQuery {
            not_before: vec!["web-app".into(), "nobody".into()],
            jti: Some("jti-1".into()),
            family: Some("fam-1".into()),
        })
        .await
        .expect("standing");
    assert_eq!(
        (
            standing.not_before,
            standing.jti_denied,
            standing.family_revoked
        ),
        (vec![Some(now - 5), None], true, true),
        "the standing read (one MGET) takes the older frame"
    );
}

/// An older-frame remembered assertion still holds; an older-frame failure counter
/// counts on in its own window and takes an attempt back.
async fn older_assertions_and_counters_hold(u: &mut Upgrade) {
    let until = u.now + 60;
    assert!(
        u.store
            .remember_once("assertion", until)
            .await
            .expect("remember")
    );
    u.rewrite_in_the_older_frame("o", b"assertion").await;
    assert!(
        !u.store
            .remember_once("assertion", until)
            .await
            .expect("remember"),
        "an assertion remembered in the older frame is still held"
    );

    for _ in 0..2 {
        u.store
            .add_failure("f:alice", HOUR)
            .await
            .expect("add_failure");
    }
    u.rewrite_in_the_older_frame("n", b"f:alice").await;
    assert_eq!(u.store.failures("f:alice").await.expect("failures").0, 2);
    let (count, left) = u.store.add_failure("f:alice", HOUR).await.expect("add");
    assert_eq!(count, 3, "an older-frame counter counts on");
    assert!(
        left > HOUR - std::time::Duration::from_secs(100),
        "its own window: {left:?}"
    );
    u.store
        .take_back_failure("f:alice")
        .await
        .expect("take_back");
    assert_eq!(u.store.failures("f:alice").await.expect("failures").0, 2);
}

/// What an upgrade finds in Redis: codes, refresh tokens, sessions, not-befores,
/// denials, remembered assertions and counters in the frame of earlier builds are
/// still read, used once (a second use is a replay), rotated and counted; nothing
/// stored before the seven-byte frame is lost.
#[tokio::test]
async fn values_in_the_older_frame_are_still_read_and_used_once() {
    let Some(redis) = RedisServer::start("values_in_the_older_frame") else {
        return;
    };
    let mut upgrade = Upgrade::connect(&redis).await;
    older_codes_redeem_once(&mut upgrade).await;
    older_refresh_tokens_rotate_once(&mut upgrade).await;
    older_sessions_and_standing_read(&mut upgrade).await;
    older_assertions_and_counters_hold(&mut upgrade).await;
}

/// The admin `/readyz` details name the store (without its password) and, while it is
/// unreachable, its error; the public `/readyz` only the reason.
#[tokio::test]
async fn readiness_follows_the_store() {
    let Some(mut redis) = RedisServer::start("readiness_follows_the_store") else {
        return;
    };
    let keys = tempfile::tempdir().expect("tempdir");
    let key_path = crate::support::write_signing_key(keys.path());
    let url = redis.url();
    let server = crate::support::TestServer::start(&crate::support::config_with(&format!(
        "[store]\nurl = \"{url}\"\n\n[[keys]]\nprivate_key_file = \"{}\"\n",
        key_path.display()
    )))
    .await;
    let details = server.ready_details().await;
    assert_eq!(details["status"], "ready", "{details}");
    assert!(
        details["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("redis://"))
    );
    redis.stop();
    let details = server.ready_details().await;
    assert_eq!(
        (&details["status"], &details["reason"]),
        (
            &serde_json::json!("not_ready"),
            &serde_json::json!("store_unreachable")
        ),
        "{details}"
    );
    assert!(details["store_error"].is_string(), "{details}");
    let public = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(public.status(), 503);
    redis.restart();
    assert!(
        crate::support::eventually(std::time::Duration::from_secs(10), || async {
            server.ready_details().await["status"] == "ready"
        })
        .await
    );
    server.stop().await;
}

/// `serve` refuses a Redis store without `[[keys]]`, and a Redis it cannot reach, each
/// with the fix in the message (no redis-server needed: nothing listens there).
#[test]
fn serve_refuses_redis_without_keys_or_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let serve = |config: &str| {
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(&path, crate::support::config_with(config)).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "off")
            .output()
            .expect("serve runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let store = format!("[store]\nurl = \"redis://127.0.0.1:{port}\"\n");
    let (code, stderr) = serve(&store);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("needs [[keys]]") && stderr.contains("gatehouse keygen"),
        "{stderr}"
    );
    crate::support::write_signing_key(dir.path());
    let (code, stderr) = serve(&format!(
        "{store}\n[[keys]]\nprivate_key_file = \"signing.pem\"\n"
    ));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the store redis://127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// A test CA, and a server certificate (for 127.0.0.1 and localhost) and a client
/// certificate it signed, written as PEM files in `dir`: the CA, server certificate and
/// key, client certificate and key.
fn test_pki(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Each certificate its own name: rcgen's default one for all would make the leaf
    // certificates look like their own issuers.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gatehouse test CA");
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_pem = ca_params.self_signed(&ca_key).expect("ca").pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut files = vec![("ca.pem", ca_pem)];
    for (name, names) in [
        ("server", vec!["127.0.0.1", "localhost"]),
        ("client", vec!["gatehouse"]),
    ] {
        let mut params =
            CertificateParams::new(names.into_iter().map(String::from).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("signed");
        files.push((
            if name == "server" {
                "server.pem"
            } else {
                "client.pem"
            },
            cert.pem(),
        ));
        files.push((
            if name == "server" {
                "server.key"
            } else {
                "client.key"
            },
            key.serialize_pem(),
        ));
    }
    let paths: Vec<_> = files
        .into_iter()
        .map(|(name, pem)| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write pem");
            path
        })
        .collect();
    paths.try_into().expect("five files")
}

/// `rediss://` with `[store] ca_file`, `client_cert_file`, `client_key_file` against a
/// real redis-server that speaks TLS only and requires a client certificate: the
/// config is read as `serve` reads it, the store opened as `serve` opens it, and the
/// conformance suite passes over TLS. Without the client certificate Redis refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_store_conforms_over_mutual_tls_with_a_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [ca, server_cert, server_key, _, _] = test_pki(dir.path());
    let test = "the_redis_store_conforms_over_mutual_tls";
    let Some(redis) = RedisServer::start_tls(test, [server_cert, server_key, ca.clone()]) else {
        return;
    };
    crate::support::write_signing_key(dir.path());
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);
    let config = |client: &str| {
        crate::support::config_with(&format!(
            "[store]\nurl = \"{url}\"\nkey_prefix = \"tls:\"\nca_file = \"ca.pem\"\n{client}\n[[keys]]\nprivate_key_file = \"signing.pem\"\n"
        ))
    };
    let settings = |text: &str| {
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(&path, text).expect("write config");
        let loaded = gatehouse::reload::load_config(&path).expect("a valid config");
        loaded.config.store.clone()
    };
    let clock = Clock::system();
    let mutual = settings(&config(
        "client_cert_file = \"client.pem\"\nclient_key_file = \"client.key\"",
    ));
    let store = gatehouse::store::open(&mutual, &clock)
        .await
        .expect("connects over mTLS");
    assert_eq!(store.kind(), "redis");
    conformance::run(store, &clock).await;
    let without_client = settings(&config(""));
    assert!(
        gatehouse::store::open(&without_client, &clock)
            .await
            .is_err(),
        "Redis requires a client certificate"
    );
}

/// The TLS files are refused, naming the field, without `rediss://`, half a client
/// certificate, or a file that is not PEM.
#[test]
fn tls_files_need_rediss_both_halves_and_pem() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").expect("write");
    crate::support::write_signing_key(dir.path());
    let path = dir.path().join("gatehouse.toml");
    for (store, field) in [
        (
            "url = \"redis://127.0.0.1:6379\"\nca_file = \"ca.pem\"",
            "store.ca_file",
        ),
        (
            "path = \"state.redb\"\nclient_key_file = \"k.pem\"",
            "store.client_key_file",
        ),
        (
            "url = \"rediss://127.0.0.1:6379\"\nca_file = \"ca.pem\"",
            "store.ca_file",
        ),
        (
            "url = \"rediss://127.0.0.1:6379\"\nclient_cert_file = \"ca.pem\"",
            "store.client_cert_file",
        ),
    ] {
        let text = crate::support::config_with(&format!(
            "[store]\n{store}\n[[keys]]\nprivate_key_file = \"signing.pem\"\n"
        ));
        std::fs::write(&path, text).expect("write config");
        let Err(rejected) = gatehouse::reload::load_config(&path) else {
            panic!("accepted: {store}");
        };
        let said = format!("{rejected:?}");
        assert!(said.contains(field), "{store}: {said}");
    }
}

/// Redis restarted empty under a running server: the next probe notices (the admin
/// `/readyz` says when, for an access-token lifetime), and an access token issued
/// before the loss is inactive, here one revoked before it, whose revocation the store
/// no longer holds; a token issued after is active.
#[tokio::test]
async fn a_store_that_lost_its_records_ends_the_access_tokens_it_cannot_judge() {
    let Some(mut redis) = RedisServer::start("store_lost_records") else {
        return;
    };
    let keys = tempfile::tempdir().expect("tempdir");
    let key_path = crate::support::write_signing_key(keys.path());
    let config = format!(
        "{}introspect = true\n\n[store]\nurl = \"{}\"\n\n[[keys]]\nprivate_key_file = \"{}\"\n",
        crate::support::service_config(),
        redis.url(),
        key_path.display()
    );
    let server = crate::support::TestServer::start(&config).await;
    let before = cc_token(&server).await;
    assert!(active(&server, &before).await);
    let revoked = server
        .http
        .post(server.url("/revoke"))
        .basic_auth("svc", Some(crate::support::SERVICE_SECRET))
        .form(&[("token", before.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    assert!(!active(&server, &before).await, "revoked");
    assert!(
        server
            .ready_details()
            .await
            .get("store_data_lost_at")
            .is_none()
    );

    server.clock().advance(std::time::Duration::from_secs(5));
    redis.restart();
    let noticed = crate::support::eventually(std::time::Duration::from_secs(10), || async {
        server.ready_details().await["store_data_lost_at"].is_string()
    })
    .await;
    assert!(noticed, "the probe notices the new epoch");
    assert!(
        !active(&server, &before).await,
        "issued before the loss: its revocation is gone, so it stands no more"
    );
    let after = cc_token(&server).await;
    assert!(
        active(&server, &after).await,
        "issued since: judged as ever"
    );

    server.clock().advance(std::time::Duration::from_secs(601));
    let details = server.ready_details().await;
    assert_eq!(details["status"], "ready", "{details}");
    assert!(
        details.get("store_data_lost_at").is_none(),
        "said for one access-token lifetime: {details}"
    );
    server.stop().await;
}

/// A client-credentials access token of `svc`.
async fn cc_token(server: &crate::support::TestServer) -> String {
    let secret = crate::support::SERVICE_SECRET;
    let (status, body) = server.client_credentials("svc", secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Whether `svc`'s introspection says `token` is active.
async fn active(server: &crate::support::TestServer, token: &str) -> bool {
    let response = server
        .http
        .post(server.url("/introspect"))
        .basic_auth("svc", Some(crate::support::SERVICE_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    body["active"] == true
}
