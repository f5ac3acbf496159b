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

/// Rewrites the value under `key` into the frame of earlier releases (15 decimal
/// digits of the expiry, then `0` unused), keeping its TTL: as a store written before
/// the seven-byte frame left it.
async fn into_the_older_frame(conn: &mut redis::aio::MultiplexedConnection, key: Vec<u8>) {
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(conn)
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
        .query_async::<()>(conn)
        .await
        .expect("SET");
}

/// A refresh grant of the family `fam`, begun in `origin`.
fn family_of(origin: &gatehouse::store::Origin, now: u64) -> gatehouse::store::RefreshGrant {
    gatehouse::store::RefreshGrant {
        family: "fam".into(),
        client_id: "web-app".into(),
        source: gatehouse::model::IdentitySource::Local,
        subject: "u-alice".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        auth_time: now,
        issued_at: now,
        expires_at: now + 3600,
        credential: Some([7; 16]),
        federated: None,
        resources: vec![],
        origin: origin.clone(),
        dpop_jkt: None,
    }
}

/// What an upgrade finds in Redis: codes, refresh tokens, sessions and counters in the
/// frame of earlier releases are still read, used once (a second use is a replay),
/// rotated and counted; nothing stored before the seven-byte frame is lost.
#[tokio::test]
async fn values_in_the_older_frame_are_still_read_and_used_once() {
    use gatehouse::model::{Identity, IdentitySource};
    use gatehouse::store::{CodeGrant, IssuedIds, Origin, Redeemed, Session, StandingQuery};
    use std::time::Duration;
    let Some(redis) = RedisServer::start("values_in_the_older_frame") else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::connect(&redis.url(), "up:", clock.clone())
        .await
        .expect("connects");
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let redis_key = |kind: &str, id: &[u8]| {
        let mut k = format!("up:{kind}:").into_bytes();
        k.extend_from_slice(id);
        k
    };
    let hour = Duration::from_secs(3600);
    let now = clock.now();
    let identity = Identity {
        source: IdentitySource::Local,
        subject: "u-alice".into(),
        username: "alice".into(),
        name: None,
        email: None,
        email_verified: false,
        groups: vec![],
        upstream: None,
        picture: None,
    };
    let origin = Origin {
        sid: Some("sid".into()),
        since: now,
        amr: vec!["pwd".into()],
    };

    let code = gatehouse::crypto::sha256(b"a code");
    let grant = CodeGrant {
        client_id: "web-app".into(),
        redirect_uri: Some("http://127.0.0.1/cb".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into()],
        nonce: None,
        identity: identity.clone(),
        auth_time: now,
        issued: None,
        resources: vec![],
        origin: origin.clone(),
        dpop_jkt: None,
    };
    store.put_code(code, grant, hour).await.expect("put_code");
    into_the_older_frame(&mut conn, redis_key("c", &code)).await;
    let issued = || IssuedIds {
        access_jti: "jti".into(),
        access_exp: now + 60,
        refresh_family: None,
    };
    match store.peek_code(code).await.expect("peek_code") {
        Redeemed::Fresh(g) => assert_eq!(g.client_id, "web-app"),
        other => panic!("an older-frame code peeks fresh, not {other:?}"),
    }
    match store
        .redeem_code(code, issued())
        .await
        .expect("redeem_code")
    {
        Redeemed::Fresh(g) => assert_eq!(g.identity.subject, "u-alice"),
        other => panic!("an older-frame code redeems once, not {other:?}"),
    }
    match store
        .redeem_code(code, issued())
        .await
        .expect("redeem_code")
    {
        Redeemed::Replayed(g) => assert_eq!(g.issued.map(|i| i.access_jti).as_deref(), Some("jti")),
        other => panic!("its second use is a replay, not {other:?}"),
    }

    let refresh = gatehouse::crypto::sha256(b"a refresh token");
    let next = gatehouse::crypto::sha256(b"its successor");
    let family = family_of(&origin, now);
    store
        .put_refresh(refresh, family.clone(), hour)
        .await
        .expect("put_refresh");
    into_the_older_frame(&mut conn, redis_key("r", &refresh)).await;
    assert!(matches!(
        store.peek_refresh(refresh).await.expect("peek_refresh"),
        Redeemed::Fresh(_)
    ));
    match store
        .rotate_refresh(refresh, next, family.clone(), hour)
        .await
        .expect("rotate")
    {
        Redeemed::Fresh(g) => assert_eq!(g.family, "fam"),
        other => panic!("an older-frame token rotates once, not {other:?}"),
    }
    assert!(
        matches!(
            store
                .rotate_refresh(refresh, next, family, hour)
                .await
                .expect("rotate"),
            Redeemed::Replayed(_)
        ),
        "its second use is a reuse"
    );
    assert!(
        matches!(
            store.peek_refresh(next).await.expect("peek_refresh"),
            Redeemed::Fresh(_)
        ),
        "its successor is stored"
    );

    let session = gatehouse::crypto::sha256(b"a session");
    store
        .put_session(
            session,
            Session {
                identity,
                auth_time: now,
                consents: Default::default(),
                sid: "sid".into(),
                created_at: now,
                amr: vec!["pwd".into()],
                clients: Default::default(),
            },
            hour,
        )
        .await
        .expect("put_session");
    into_the_older_frame(&mut conn, redis_key("s", &session)).await;
    let back = store.get_session(session).await.expect("get_session");
    assert_eq!(back.map(|s| s.identity.username).as_deref(), Some("alice"));

    store
        .set_not_before("web-app", now - 10, hour)
        .await
        .expect("set_not_before");
    into_the_older_frame(&mut conn, redis_key("nb", b"web-app")).await;
    assert_eq!(
        store.not_before("web-app").await.expect("nb"),
        Some(now - 10)
    );
    store
        .set_not_before("web-app", now - 5, hour)
        .await
        .expect("set_not_before");
    assert_eq!(
        store.not_before("web-app").await.expect("nb"),
        Some(now - 5)
    );

    let other = gatehouse::crypto::sha256(b"another refresh token");
    store
        .put_refresh(other, family_of(&origin, now), hour)
        .await
        .expect("put_refresh");
    into_the_older_frame(&mut conn, redis_key("r", &other)).await;
    assert!(matches!(
        store.use_refresh(other).await.expect("use_refresh"),
        Redeemed::Fresh(_)
    ));
    assert!(matches!(
        store.use_refresh(other).await.expect("use_refresh"),
        Redeemed::Replayed(_)
    ));

    store.deny_jti("jti-1", hour).await.expect("deny_jti");
    into_the_older_frame(&mut conn, redis_key("j", b"jti-1")).await;
    store
        .revoke_family("fam-1", hour)
        .await
        .expect("revoke_family");
    into_the_older_frame(&mut conn, redis_key("f", b"fam-1")).await;
    let standing = store
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

    assert!(
        store
            .remember_once("assertion", now + 60)
            .await
            .expect("remember")
    );
    into_the_older_frame(&mut conn, redis_key("o", b"assertion")).await;
    assert!(
        !store
            .remember_once("assertion", now + 60)
            .await
            .expect("remember"),
        "an assertion remembered in the older frame is still held"
    );

    store
        .add_failure("f:alice", hour)
        .await
        .expect("add_failure");
    store
        .add_failure("f:alice", hour)
        .await
        .expect("add_failure");
    let failures = redis_key("n", b"f:alice");
    into_the_older_frame(&mut conn, failures).await;
    assert_eq!(store.failures("f:alice").await.expect("failures").0, 2);
    let (count, left) = store
        .add_failure("f:alice", hour)
        .await
        .expect("add_failure");
    assert_eq!(count, 3, "an older-frame counter counts on");
    assert!(
        left > Duration::from_secs(3500),
        "in its own window: {left:?}"
    );
    store
        .take_back_failure("f:alice")
        .await
        .expect("take_back_failure");
    assert_eq!(store.failures("f:alice").await.expect("failures").0, 2);
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
