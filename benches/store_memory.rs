//! Scenario 8 of the benchmark: memory per live refresh token and per session in the
//! in-memory store, and the time to load and validate a config of 10,000 clients.
//! Run with `cargo bench --bench store_memory`; prints one line per figure.

use gatehouse::clock::Clock;
use gatehouse::model::{Identity, IdentitySource};
use gatehouse::store::memory::MemoryStore;
use gatehouse::store::{Origin, RefreshGrant, Session, Store};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The resident set size of this process, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn key(i: u64, salt: u8) -> [u8; 32] {
    let mut k = [salt; 32];
    k[..8].copy_from_slice(&i.to_le_bytes());
    gatehouse::crypto::sha256(&k)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = MemoryStore::new(Clock::system());
    let ttl = Duration::from_secs(3600);

    let before = rss();
    const TOKENS: u64 = 1_000_000;
    for i in 0..TOKENS {
        let grant = RefreshGrant {
            // As a code flow's token: a 22-character family and the session it began in.
            family: format!("fam{i:019}"),
            client_id: "demo-spa".to_owned(),
            source: IdentitySource::Local,
            subject: format!("u-{}", i % 5000),
            scopes: vec!["openid".to_owned(), "offline_access".to_owned()],
            auth_time: 1_795_000_000,
            issued_at: 1_795_000_000,
            expires_at: 1_797_592_000,
            credential: None,
            federated: None,
            resources: vec![],
            origin: Origin {
                sid: Some(format!("sid{:019}", i % 50_000)),
                since: 1_795_000_000,
                amr: vec!["pwd".to_owned()],
            },
            dpop_jkt: None,
        };
        runtime
            .block_on(store.put_refresh(key(i, 1), grant, ttl))
            .expect("put");
    }
    let after_tokens = rss();
    println!(
        "8 memory: {TOKENS} refresh tokens         {:>6} bytes RSS each ({} MiB)",
        (after_tokens - before) / TOKENS as usize,
        (after_tokens - before) >> 20
    );

    const SESSIONS: u64 = 100_000;
    for i in 0..SESSIONS {
        let session = Session {
            identity: Identity {
                source: IdentitySource::Local,
                subject: format!("u-{i}"),
                username: format!("user{i}"),
                name: Some("A User".to_owned()),
                email: Some(format!("user{i}@example.com")),
                email_verified: true,
                groups: vec!["staff".to_owned()],
                upstream: None,
                picture: None,
            },
            auth_time: 1_795_000_000,
            consents: BTreeMap::new(),
            sid: format!("sid{i:019}"),
            created_at: 1_795_000_000,
            amr: vec!["pwd".to_owned()],
            clients: Default::default(),
        };
        runtime
            .block_on(store.put_session(key(i, 2), session, ttl))
            .expect("put");
    }
    let after_sessions = rss();
    println!(
        "8 memory: {SESSIONS} sessions               {:>6} bytes RSS each ({} MiB)",
        (after_sessions - after_tokens) / SESSIONS as usize,
        (after_sessions - after_tokens) >> 20
    );
    println!(
        "8 memory: store peak RSS                  {:>6} MiB",
        after_sessions >> 20
    );

    // A config of 10,000 confidential clients with argon2 hashes (parsed, not verified).
    let hash = gatehouse::crypto::hash_secret("bench-secret").expect("hash");
    let mut text = String::from("issuer = \"https://id.example.com\"\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "[[clients]]\nid = \"svc-{i}\"\nsecret_hash = \"{hash}\"\ngrant_types = [\"client_credentials\"]\n"
        ));
    }
    let path = std::path::Path::new("/nonexistent-gatehouse-bench/gatehouse.toml");
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let loaded = gatehouse::load::check_text(path, &text).expect("valid config");
        best = best.min(started.elapsed());
        assert_eq!(loaded.config.clients.len(), 10_000);
    }
    println!(
        "8 config: 10,000 clients loaded+validated {:>6.1} ms (best of 5)",
        best.as_secs_f64() * 1000.0
    );
}
