//! 20,000 authorization requests with the longest `state`, `nonce` and `login_hint`
//! allowed, from one address: the pending-request cap is hit and the memory the
//! server holds stays bounded. In a binary of its own, since it reads the resident
//! memory of the test process, where the server runs.

#[path = "it/support/mod.rs"]
mod support;

use support::browser::Pkce;
use support::*;

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_abandoned_logins_keep_memory_bounded() {
    let server = TestServer::start(&config_with(&format!(
        "[limits]\npages_per_second = 1000000\npages_burst = 1000000\n\n[[clients]]\nid = \"web\"\nsecret_hash = \"{}\"\nredirect_uris = [\"https://web.example.com/cb\"]\nscopes = [\"openid\"]\n",
        service_hash()
    )))
    .await;
    let pkce = Pkce::new("memory");
    let big = "x".repeat(1024);
    let url = reqwest::Url::parse_with_params(
        &server.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", &big),
            ("nonce", &big),
            ("login_hint", &big),
        ],
    )
    .expect("url");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Warm up (connections, allocator) with requests that keep nothing (no PKCE: an
    // error back to the client), then measure.
    let keeps_nothing = server.url("/authorize?response_type=code&client_id=web");
    for _ in 0..200 {
        let r = http.get(&keeps_nothing).send().await.expect("authorize");
        assert_eq!(r.status(), 303);
    }
    let before = rss_kib();
    let mut counts = std::collections::BTreeMap::<u16, u32>::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20_000 {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let r = http.get(url).send().await.expect("authorize");
            let status = r.status().as_u16();
            r.bytes().await.expect("body");
            status
        });
        if i % 32 == 31 {
            while tasks.len() > 32 {
                let status = tasks.join_next().await.expect("task").expect("joined");
                *counts.entry(status).or_default() += 1;
            }
        }
    }
    while let Some(status) = tasks.join_next().await {
        *counts.entry(status.expect("joined")).or_default() += 1;
    }
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    eprintln!("RSS before {before} KiB, after {after} KiB, grown {grown} KiB; answers {counts:?}");
    assert_eq!(
        (counts.get(&200).copied(), counts.get(&429).copied()),
        (Some(100), Some(19_900)),
        "the per-address cap (100) is hit"
    );
    let held = server
        .state()
        .store
        .sizes()
        .await
        .expect("sizes")
        .into_iter()
        .find(|(kind, _)| *kind == "pending_logins")
        .map_or(0, |(_, n)| n);
    assert!(held <= 100, "{held} pending requests held");
    assert!(
        grown < 16 * 1024,
        "RSS grew {grown} KiB for 20,000 requests that each carried 3 KiB"
    );
}
