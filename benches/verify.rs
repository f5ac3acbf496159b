//! Scenario 6's ceiling: how many ES256 access tokens one core verifies a second, through
//! gatehouse's verifier (`jwt::verify::access_token`: header, key lookup, signature,
//! claims) and as bare signature checks with the same parsed key. Introspection can be
//! no faster than the first figure. Run with `cargo bench --bench verify`.

use gatehouse::config::file::Algorithm;
use gatehouse::jwt::keys::SigningKey;
use gatehouse::jwt::mint::{ACCESS_TOKEN_TYP, mint};
use gatehouse::jwt::verify;
use gatehouse::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `f` for about `for_at_least` and returns calls per second.
fn rate(for_at_least: Duration, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < for_at_least {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let issuer = "http://127.0.0.1:8080";
    let loaded = gatehouse::load::check_text(
        std::path::Path::new("/nonexistent-gatehouse-bench/gatehouse.toml"),
        &format!("issuer = \"{issuer}\"\n"),
    )
    .expect("valid config");
    let (key, _) = SigningKey::generate(Algorithm::ES256, None).expect("key");
    let claims = serde_json::json!({
        "iss": issuer, "sub": "svc-0", "client_id": "svc-0", "aud": "svc-0",
        "exp": 4_102_444_800u64, "iat": 1_795_000_000u64, "jti": "0123456789abcdefghijkl",
        "scope": "invoices:read"
    });
    let token = mint(&key, ACCESS_TOKEN_TYP, &claims).expect("mint");
    let registry = Registry::new(
        loaded.config,
        1,
        std::time::SystemTime::now(),
        Some(Arc::new(key)),
    );
    let kid = registry.keys.signing().expect("key").kid().to_owned();
    let verifier = registry.keys.verifier(&kid).expect("verifier");
    let (input, signature) = token.rsplit_once('.').expect("jws");
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .expect("base64");

    let window = Duration::from_secs(3);
    let full = rate(window, || {
        verify::access_token(&registry.jwt(), &token, 1_795_000_000).expect("verifies");
    });
    let bare = rate(window, || {
        verifier
            .key
            .verify_sig(input.as_bytes(), &signature)
            .expect("verifies");
    });
    println!("6 verify: ES256 access token, full check   {full:>8.0} /s on one core");
    println!("6 verify: ES256 signature alone            {bare:>8.0} /s on one core");
}
