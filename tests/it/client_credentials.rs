//! The client-credentials grant over real HTTP: authentication methods, every error
//! the token endpoint answers, and the JWT checked against the served JWKS.

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

#[tokio::test]
async fn basic_auth_gets_a_jwt_that_verifies_against_the_jwks() {
    let server = TestServer::start(&service_config()).await;
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("svc", Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(
        body["scope"], "invoices:read invoices:write",
        "no scope asked: all allowed ones"
    );

    let token = body["access_token"].as_str().expect("token");
    let (header, claims) = server.verify(token, "https://api.example.com").await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["scope"], "invoices:read invoices:write");
    let iat = claims["iat"].as_u64().expect("iat");
    assert_eq!(claims["exp"].as_u64().expect("exp"), iat + 600);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    // A second request is served from the verification cache and gets a new jti.
    let (status, again) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    assert_eq!(status, 200);
    let (_, claims2) = server
        .verify(
            again["access_token"].as_str().expect("token"),
            "https://api.example.com",
        )
        .await;
    assert_ne!(claims2["jti"], claims["jti"]);
}

#[tokio::test]
async fn client_secret_post_works() {
    let server = TestServer::start(&service_config()).await;
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", SERVICE_SECRET),
            ("scope", "invoices:read"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["scope"], "invoices:read");
}

#[tokio::test]
async fn basic_credentials_are_form_decoded() {
    // RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("svc.secret"), "p:ss w+rd%\n").expect("secret file");
    let path = dir.path().join("gatehouse.toml");
    let config = "[[clients]]\nid = \"svc+1\"\nsecret_file = \"svc.secret\"\ngrant_types = [\"client_credentials\"]\n";
    std::fs::write(&path, config_with(config)).expect("write config");
    let server = TestServer::start_at(dir, path).await;
    let header = format!("Basic {}", STANDARD.encode("svc%2B1:p%3Ass+w%2Brd%25"));
    let response = server
        .http
        .post(server.url("/token"))
        .header("authorization", header)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let (_, claims) = server
        .verify(body["access_token"].as_str().expect("token"), "svc+1")
        .await;
    assert_eq!(claims["client_id"], "svc+1");
}

async fn error_of(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json error body");
    assert!(body["error_description"].is_string());
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        challenge,
    )
}

#[tokio::test]
async fn authentication_errors() {
    let server = TestServer::start(&format!(
        "{}\n[[clients]]\nid = \"spa\"\npublic = true\nredirect_uris = [\"https://app.example.com/cb\"]\n\n[[clients]]\nid = \"web\"\nsecret_hash = \"{}\"\nredirect_uris = [\"https://web.example.com/cb\"]\n",
        service_config(),
        service_hash()
    ))
    .await;
    let token = |req: reqwest::RequestBuilder| async move {
        error_of(req.send().await.expect("request")).await
    };
    let post = || server.http.post(server.url("/token"));

    // Wrong secret with Basic: 401 and a Basic challenge.
    let (status, error, challenge) = token(
        post()
            .basic_auth("svc", Some("wrong"))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(challenge.is_some_and(|c| c.starts_with("Basic")));

    // Wrong secret in the body: 401, no challenge.
    let (status, error, challenge) = token(post().form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "svc"),
        ("client_secret", "wrong"),
    ]))
    .await;
    assert_eq!(
        (status, error.as_str(), challenge),
        (401, "invalid_client", None)
    );

    // Unknown client.
    let (status, error, _) = token(
        post()
            .basic_auth("nobody", Some("x"))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    // No authentication at all.
    let (status, error, _) = token(post().form(&[("grant_type", "client_credentials")])).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    // Confidential client without its secret.
    let (status, error, _) =
        token(post().form(&[("grant_type", "client_credentials"), ("client_id", "svc")])).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    // Both Basic and client_secret_post.
    let (status, error, _) = token(post().basic_auth("svc", Some(SERVICE_SECRET)).form(&[
        ("grant_type", "client_credentials"),
        ("client_secret", SERVICE_SECRET),
    ]))
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    // Garbage Basic headers.
    for garbage in [
        "Basic !!!notbase64",
        "Basic",
        "Basic Zm9v",
        "Bearer abc.def.ghi",
    ] {
        let (status, error, challenge) = token(
            post()
                .header("authorization", garbage)
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
        assert_eq!(
            (status, error.as_str()),
            (401, "invalid_client"),
            "{garbage}"
        );
        assert!(challenge.is_some(), "{garbage}");
    }

    // A public client may not use client credentials.
    let (status, error, _) =
        token(post().form(&[("grant_type", "client_credentials"), ("client_id", "spa")])).await;
    assert_eq!((status, error.as_str()), (400, "unauthorized_client"));

    // A confidential client without the grant.
    let (status, error, _) = token(
        post()
            .basic_auth("web", Some(SERVICE_SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
}

#[tokio::test]
async fn request_errors() {
    let server = TestServer::start(&service_config()).await;
    let basic = format!("Basic {}", STANDARD.encode(format!("svc:{SERVICE_SECRET}")));
    let send = |content_type: &'static str, body: Vec<u8>| {
        server
            .http
            .post(server.url("/token"))
            .header("authorization", basic.clone())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (form, b"".to_vec(), "invalid_request"),
        (form, b"scope=invoices:read".to_vec(), "invalid_request"),
        (
            form,
            b"grant_type=password&username=a&password=b".to_vec(),
            "unsupported_grant_type",
        ),
        (
            form,
            b"grant_type=urn:ietf:params:oauth:grant-type:token-exchange".to_vec(),
            "unsupported_grant_type",
        ),
        (
            form,
            b"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x".to_vec(),
            "unauthorized_client",
        ),
        (
            form,
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
            "invalid_request",
        ),
        (
            form,
            b"grant_type=client_credentials&scope=a&scope=b".to_vec(),
            "invalid_request",
        ),
        (
            form,
            b"grant_type=client_credentials&scope=%FF%FE".to_vec(),
            "invalid_request",
        ),
        (
            form,
            b"grant_type=client_credentials&scope=invoices:delete".to_vec(),
            "invalid_scope",
        ),
        (
            form,
            b"grant_type=client_credentials&scope=invoices:read+openid".to_vec(),
            "invalid_scope",
        ),
        (
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "text/plain",
            b"grant_type=client_credentials".to_vec(),
            "invalid_request",
        ),
    ];
    for (content_type, body, expected) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, error, _) = error_of(send(content_type, body).await.expect("request")).await;
        assert_eq!(
            (status, error.as_str()),
            (400, expected),
            "{content_type} {shown}"
        );
    }

    // Bodies over 64 KiB are refused with a 4xx, not read.
    let mut big = b"grant_type=client_credentials&pad=".to_vec();
    big.resize(70 * 1024, b'a');
    let status = send(form, big).await.expect("request").status();
    assert!(status.is_client_error(), "{status}");

    // Only POST.
    let status = server
        .http
        .get(server.url("/token"))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, 405);
}

#[tokio::test]
async fn scope_narrowing_and_audience_defaults() {
    let server = TestServer::start(&format!(
        "{}\n[[clients]]\nid = \"svc2\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\naudience = [\"https://a.example.com\", \"https://b.example.com\"]\n\n[[clients]]\nid = \"svc3\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        service_config(),
        service_hash(),
        service_hash()
    ))
    .await;
    let (status, body) = server
        .client_credentials("svc", SERVICE_SECRET, &[("scope", "invoices:write")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "invoices:write");

    // Several audiences: an array.
    let (status, body) = server.client_credentials("svc2", SERVICE_SECRET, &[]).await;
    assert_eq!(status, 200);
    let (_, claims) = server
        .verify(
            body["access_token"].as_str().expect("token"),
            "https://b.example.com",
        )
        .await;
    assert_eq!(
        claims["aud"],
        serde_json::json!(["https://a.example.com", "https://b.example.com"])
    );
    assert!(
        claims.get("scope").is_none(),
        "no scopes configured: no scope claim"
    );

    // No audience configured: the client id.
    let (status, body) = server.client_credentials("svc3", SERVICE_SECRET, &[]).await;
    assert_eq!(status, 200);
    let (_, claims) = server
        .verify(body["access_token"].as_str().expect("token"), "svc3")
        .await;
    assert_eq!(claims["aud"], "svc3");
}

#[tokio::test]
async fn env_and_file_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("file.secret"), "from-a-file\n").expect("write");
    let config = config_with(
        r#"
[[clients]]
id = "env-svc"
secret = "${env:GATEHOUSE_TEST_ENV_SECRET}"
grant_types = ["client_credentials"]

[[clients]]
id = "file-svc"
secret_file = "file.secret"
grant_types = ["client_credentials"]
"#,
    );
    // The variable is the server process's own: this test process's environment is
    // shared by its other tests' threads and must not change under them.
    let server = crate::support::replica::Replica::spawn_with_env(
        dir.path(),
        "gatehouse",
        &config,
        &[("GATEHOUSE_TEST_ENV_SECRET", "from-the-env")],
    );
    let http = crate::support::http_client();
    let token = |id: &'static str, secret: &'static str| {
        http.post(server.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(token("env-svc", "from-the-env").await.expect("token")),
        200
    );
    assert_eq!(
        status(token("env-svc", "from-the-en").await.expect("token")),
        401
    );
    assert_eq!(
        status(token("file-svc", "from-a-file").await.expect("token")),
        200
    );
    assert_eq!(
        status(token("file-svc", "from-a-file\n").await.expect("token")),
        401
    );
}
