//! Abuse and bad input: failed client authentications refused before hashing, the
//! per-address page cap, X-Forwarded-For believed only from trusted proxies, metrics
//! on the main or the admin listener, and a corpus of malformed requests to every
//! endpoint that must get a 4xx and never a 5xx.

use crate::support::*;
use serde_json::Value;

fn svc(extra_head: &str) -> String {
    format!(
        "{extra_head}\n{}",
        config_with(&format!(
            "[[clients]]\nid = \"svc\"\nsecret_hash = \"{h}\"\ngrant_types = [\"client_credentials\"]\n\n[[clients]]\nid = \"svc2\"\nsecret_hash = \"{h}\"\ngrant_types = [\"client_credentials\"]\n\n[[clients]]\nid = \"spa\"\npublic = true\nredirect_uris = [\"https://spa.example.com/cb\"]\n",
            h = service_hash()
        ))
    )
}

/// Puts `section` into the config right after the `[server]` table.
fn with_section(config: &str, section: &str) -> String {
    config.replacen("[server]\n", &format!("{section}\n[server]\n"), 1)
}

#[tokio::test]
async fn failed_client_authentications_are_refused_before_hashing() {
    let config = with_section(&svc(""), "[limits]\ntoken_max_failures = 3");
    let server = TestServer::start(&config).await;
    for _ in 0..3 {
        assert_eq!(server.client_credentials("svc", "wrong", &[]).await.0, 401);
    }
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("svc", Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        429,
        "even the right secret is refused for now"
    );
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 15 * 60);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");

    // The address has failed three times too: another client from it is refused as well.
    assert_eq!(
        server
            .client_credentials("svc2", SERVICE_SECRET, &[])
            .await
            .0,
        429
    );
}

#[tokio::test]
async fn pages_are_capped_per_address_and_proxies_are_trusted_only_when_listed() {
    let limits = "[limits]\npages_per_second = 1\npages_burst = 3";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let authorize = |server: &TestServer, forwarded: Option<&'static str>| {
        let mut r = http.get(server.url("/authorize?client_id=spa"));
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        async move { r.send().await.expect("request") }
    };

    // Not trusted: X-Forwarded-For is the client's own claim and changes nothing.
    let server = TestServer::start(&with_section(&svc(""), limits)).await;
    let mut statuses = Vec::new();
    for hop in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        statuses.push(authorize(&server, Some(hop)).await.status().as_u16());
    }
    assert_eq!(statuses, vec![303, 303, 303, 429]);
    let refused = authorize(&server, None).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        refused.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'none'")
    );
    // The token endpoint is not a page: unaffected.
    assert_eq!(
        server
            .client_credentials("svc", SERVICE_SECRET, &[])
            .await
            .0,
        200
    );

    // Trusted (127.0.0.1 is our proxy): each forwarded client has its own budget.
    let trusted = with_section(&svc(""), limits).replacen(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        1,
    );
    let server = TestServer::start(&trusted).await;
    for _ in 0..3 {
        assert_eq!(authorize(&server, Some("198.51.100.1")).await.status(), 303);
    }
    assert_eq!(authorize(&server, Some("198.51.100.1")).await.status(), 429);
    assert_eq!(
        authorize(&server, Some("198.51.100.2")).await.status(),
        429,
        "another address of the same /24 shares its budget"
    );
    assert_eq!(
        authorize(&server, Some("203.0.113.8, 198.51.102.2"))
            .await
            .status(),
        303,
        "a client of another network"
    );
}

#[tokio::test]
async fn metrics_on_the_main_listener() {
    let config = config_with(&format!(
        "[[clients]]\nid = \"metrics-svc\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        service_hash()
    ));
    let server = TestServer::start(&config).await;
    assert_eq!(
        server
            .client_credentials("metrics-svc", SERVICE_SECRET, &[])
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .client_credentials("metrics-svc", "wrong", &[])
            .await
            .0,
        401
    );
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("text");
    for expected in [
        r#"gatehouse_tokens_issued_total{grant="client_credentials",client_id="metrics-svc"} 1"#,
        r#"gatehouse_http_requests_total{endpoint="/token",status="200"}"#,
        r#"gatehouse_http_requests_total{endpoint="/token",status="401"}"#,
        "gatehouse_config_generation",
        r#"gatehouse_store_entries{kind="failure_counters"}"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains(SERVICE_SECRET) && !text.contains(service_hash()));
}

#[tokio::test]
async fn the_public_readyz_tells_only_its_status() {
    let server = TestServer::start(&svc("")).await;
    // A rejected reload leaves an error with file paths and diagnostics behind.
    server.rewrite_config("issuer = 5\n");
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            server.ready_details().await["last_reload_error"].is_string()
        })
        .await
    );
    let response = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ready"}));
}

#[tokio::test]
async fn admin_bind_moves_metrics_and_probes_off_the_main_listener() {
    let config = svc("").replacen("[server]\n", "[server]\nadmin_bind = \"127.0.0.1:0\"\n", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config).expect("write");
    let running = gatehouse::server::start(path).await.expect("starts");
    let admin = running.admin_addr.expect("admin listener");
    let http = crate::support::http_client();
    for path in ["/metrics", "/healthz", "/readyz"] {
        let on_admin = http
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .expect("admin");
        assert_eq!(on_admin.status(), 200, "{path} on the admin listener");
        let on_main = http
            .get(format!("http://{}{path}", running.addr))
            .send()
            .await
            .expect("main");
        assert_eq!(on_main.status(), 404, "{path} not on the main listener");
    }
    // Only the admin listener tells the config generation and the last reload error.
    let details: Value = http
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .expect("admin readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(details["config_generation"], 1);
    assert!(details.get("last_reload_error").is_some());
    let jwks = http
        .get(format!("http://{}/jwks", running.addr))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), 200);
    running.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    // One failure makes the next login attempt wait 250 ms in the server: in flight.
    let config = with_section(
        &svc("").replace("[[clients]]\nid = \"spa\"", "[[users]]\nusername = \"u\"\npassword_hash = \"HASH\"\n\n[[clients]]\nid = \"spa\"").replace("HASH", service_hash()),
        "[limits]\nlogin_max_failures = 2",
    );
    let server = TestServer::start(&config).await;
    let pkce = crate::support::browser::Pkce::new("shutdown");
    let mut browser = crate::support::browser::Browser::new(&server);
    browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert!(browser.login("u", "wrong").await.body.contains("Incorrect"));
    let url = server.url("/login");
    let form = vec![
        (
            "csrf_token".to_owned(),
            browser.hidden("csrf_token").expect("csrf"),
        ),
        (
            "request".to_owned(),
            browser.hidden("request").expect("request"),
        ),
        ("username".to_owned(), "u".to_owned()),
        ("password".to_owned(), "wrong".to_owned()),
    ];
    let in_flight = tokio::spawn({
        let http = browser.fresh_connection_client();
        async move { http.post(url).form(&form).send().await }
    });
    // Stop once the server holds the attempt: it counts it before the 250 ms wait.
    let held = eventually(std::time::Duration::from_secs(10), || async {
        server
            .state()
            .store
            .failures("login:addr:127.0.0.0/24")
            .await
            .is_ok_and(|(count, _)| count >= 2)
    })
    .await;
    assert!(held, "the second attempt reached the server");
    server.stop().await;
    let response = in_flight
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("Incorrect username or password.")
    );
}

/// One malformed request, and what any answer to it must satisfy.
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn case(
    method: &'static str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Case {
    let mut headers = Vec::new();
    if let Some(ct) = content_type {
        headers.push(("content-type", ct.to_owned()));
    }
    Case {
        method,
        path: path.to_owned(),
        headers,
        body: body.into(),
    }
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_and_never_a_5xx() {
    let server = TestServer::start(&with_section(
        &svc(""),
        "[limits]\npages_burst = 1000\npages_per_second = 1000",
    ))
    .await;
    let form = Some("application/x-www-form-urlencoded");
    let endpoints = [
        "/token",
        "/introspect",
        "/revoke",
        "/login",
        "/consent",
        "/logout",
        "/authorize",
        "/userinfo",
    ];
    let other_key =
        gatehouse::jwt::keys::SigningKey::generate(gatehouse::config::file::Algorithm::ES256, None)
            .expect("key")
            .0;
    let foreign_jwt = gatehouse::jwt::mint::mint(&other_key, "at+jwt", &serde_json::json!({"iss": ISSUER, "sub": "svc", "client_id": "svc", "exp": 4102444800u64, "iat": 1, "jti": "x", "aud": "svc"})).expect("mint");
    let (_, real) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    let real = real["access_token"].as_str().expect("token").to_owned();
    let mut parts: Vec<&str> = real.split('.').collect();
    let tampered_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"admin"}"#,
    );
    parts[1] = &tampered_claims;
    let tampered = parts.join(".");
    let wrong_kid = {
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"ES256","typ":"at+jwt","kid":"nope"}"#,
        );
        format!(
            "{header}.{}",
            real.split_once('.')
                .map(|(_, rest)| rest)
                .unwrap_or_default()
        )
    };
    let alg_none = {
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"at+jwt"}"#,
        );
        let claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"http://127.0.0.1:9","sub":"svc","exp":4102444800}"#,
        );
        format!("{header}.{claims}.")
    };
    let bad_tokens = [
        foreign_jwt.as_str(),
        tampered.as_str(),
        wrong_kid.as_str(),
        alg_none.as_str(),
        "not-a-jwt",
        "a.b.c",
        "...",
        "eyJ",
    ];

    let mut cases: Vec<Case> = Vec::new();
    for path in endpoints {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            cases.push(case(method, path, None, ""));
        }
        for body in [
            &b""[..],
            b"%",
            b"%zz=1",
            b"a=%FF%FE",
            b"\xff\xfe\xfd",
            b"=&&=&",
            b"grant_type=client_credentials&grant_type=client_credentials",
            b"client_id=svc&client_id=svc2",
            b"token=x&token=y",
        ] {
            cases.push(case("POST", path, form, body));
        }
        cases.push(case(
            "POST",
            path,
            Some("application/json"),
            r#"{"grant_type":"client_credentials"}"#,
        ));
        cases.push(case(
            "POST",
            path,
            Some("multipart/form-data; boundary=x"),
            "--x--",
        ));
        cases.push(case("POST", path, Some("garbage;;;="), "a=b"));
        cases.push(case(
            "POST",
            path,
            form,
            format!("client_id={}", "a".repeat(60_000)),
        ));
        cases.push(case("POST", path, form, vec![b'a'; 100_000]));
        cases.push(case(
            "POST",
            path,
            form,
            (0..200)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join("&"),
        ));
        cases.push(case("GET", &format!("{path}?client_id=%FF"), None, ""));
        cases.push(case(
            "GET",
            &format!("{path}?client_id=spa&client_id=spa"),
            None,
            "",
        ));
        cases.push(case(
            "GET",
            &format!("{path}?state={}", "s".repeat(20_000)),
            None,
            "",
        ));
        for auth in [
            "Basic",
            "Basic !!!",
            "Basic Og==",
            "Basic OnNlY3JldA==",
            "Bearer",
            "Bearer x y",
            "Digest abc",
            "Basic w4M6w4M=",
        ] {
            let mut c = case("POST", path, form, "grant_type=client_credentials&token=x");
            c.headers.push(("authorization", auth.to_owned()));
            cases.push(c);
        }
        for token in bad_tokens {
            let mut c = case("GET", path, None, "");
            c.headers.push(("authorization", format!("Bearer {token}")));
            cases.push(c);
            let mut c = case(
                "POST",
                path,
                form,
                format!("token={token}&id_token_hint={token}&client_id=svc"),
            );
            c.headers.push((
                "authorization",
                format!(
                    "Basic {}",
                    base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        format!("svc:{SERVICE_SECRET}")
                    )
                ),
            ));
            cases.push(c);
        }
    }
    for token in bad_tokens {
        cases.push(case(
            "GET",
            &format!("/logout?id_token_hint={token}"),
            None,
            "",
        ));
    }

    let mut failures = Vec::new();
    for c in &cases {
        let method = reqwest::Method::from_bytes(c.method.as_bytes()).expect("method");
        let mut request = server
            .http
            .request(method, server.url(&c.path))
            .body(c.body.clone());
        for (name, value) in &c.headers {
            request = request.header(*name, value.as_bytes());
        }
        let shown = format!(
            "{} {} {:?} {:.60}",
            c.method,
            c.path.chars().take(60).collect::<String>(),
            c.headers,
            String::from_utf8_lossy(&c.body)
        );
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("no answer ({e}) for {shown}"));
                continue;
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status >= 500 {
            failures.push(format!("{status} for {shown}: {body:.200}"));
        }
        // Bad tokens never pass for good ones.
        if c.headers
            .iter()
            .any(|(n, v)| *n == "authorization" && v.starts_with("Bearer "))
            && c.path == "/userinfo"
            && status != 401
            && status != 400
        {
            failures.push(format!("{status} for a bad bearer token: {shown}"));
        }
        if c.path == "/introspect" && status == 200 && body.contains("\"active\":true") {
            failures.push(format!("a bad token introspected active: {shown}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() > 350, "the corpus has {} cases", cases.len());
}

#[tokio::test]
async fn a_request_that_never_finishes_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&svc("")).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // Half a request head, then silence: the slow-loris pattern.
    stream
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "the server closed the connection");
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "cut off by the request timeout"
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&svc("")).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    for path in ["/token", "/login"] {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        // A whole head announcing 1000 bytes of body, then none of them.
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            stream.read_to_end(&mut buf),
        )
        .await;
        assert!(read.is_ok(), "{path}: the server closed the connection");
        let answer = String::from_utf8_lossy(&buf);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_secs(9) && took < std::time::Duration::from_secs(15),
            "{path}: cut off by the 10 s body deadline, after {took:?}"
        );
    }
}
