//! Passkeys over real HTTP, with a software authenticator (aws-lc-rs keys, CBOR and
//! authenticator data built here as an authenticator would): enrolment at
//! `/account/passkeys` gives TOML lines that, put into the config and reloaded, let the
//! user sign in with the passkey alone (`amr` `swk`, `mfa` in the ID token); a replayed
//! assertion, another user's handle, another user's key, a wrong RP ID or origin, and a
//! made-up challenge are refused with one message; failures count against the address.
//! A passkey as the second factor after a password: only the user's own passkeys,
//! presence enough, a challenge bound to the request and the user (`pwd`, `swk`,
//! `mfa`). The browser side (Chromium's virtual authenticator) is in `browser.rs`.

use crate::support::browser::{Browser, Pkce, Seen, text};
use crate::support::*;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ciborium::Value as Cbor;

/// The origin and RP ID of every test config (`ISSUER`).
const ORIGIN: &str = "http://127.0.0.1:9";
const RP_ID: &str = "127.0.0.1";
const REFUSED: &str = "That passkey could not be used to sign in here.";

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("cbor");
    out
}

/// A passkey held in software: an Ed25519 key under a credential id.
#[derive(Clone)]
struct Authenticator {
    key: std::sync::Arc<Ed25519KeyPair>,
    id: Vec<u8>,
    rp_id: String,
    origin: String,
}

impl Authenticator {
    fn new(id: &[u8]) -> Self {
        Self {
            key: std::sync::Arc::new(Ed25519KeyPair::generate().expect("key")),
            id: id.to_vec(),
            rp_id: RP_ID.into(),
            origin: ORIGIN.into(),
        }
    }

    fn cose(&self) -> Vec<u8> {
        let int = |i: i64| Cbor::Integer(i.into());
        cbor(&Cbor::Map(vec![
            (int(1), int(1)),
            (int(3), int(-8)),
            (int(-1), int(6)),
            (
                int(-2),
                Cbor::Bytes(self.key.public_key().as_ref().to_vec()),
            ),
        ]))
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{}","crossOrigin":false}}"#,
            self.origin
        )
        .into_bytes()
    }

    fn auth_data(&self, flags: u8, attested: &[u8]) -> Vec<u8> {
        let mut out = sha256(self.rp_id.as_bytes());
        out.push(flags);
        out.extend(1u32.to_be_bytes());
        out.extend(attested);
        out
    }

    /// The fields of the enrolment form for `challenge`.
    fn create(&self, challenge: &str) -> Vec<(String, String)> {
        let mut attested = vec![0u8; 16];
        attested.extend((self.id.len() as u16).to_be_bytes());
        attested.extend(&self.id);
        attested.extend(self.cose());
        let object = cbor(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(self.auth_data(0x45, &attested)),
            ),
        ]));
        vec![
            ("credential_id".into(), B64.encode(&self.id)),
            (
                "client_data".into(),
                B64.encode(self.client_data("webauthn.create", challenge)),
            ),
            ("attestation_object".into(), B64.encode(object)),
        ]
    }

    /// The fields of the passkey login form: an assertion of `challenge`, presenting
    /// `handle` and `credential_id`.
    fn assert_with(
        &self,
        challenge: &str,
        handle: &[u8],
        credential_id: &[u8],
    ) -> Vec<(String, String)> {
        self.assertion(challenge, handle, credential_id, 0x05)
    }

    /// An assertion with the authenticator-data `flags` (0x01 user present, 0x04 user
    /// verified).
    fn assertion(
        &self,
        challenge: &str,
        handle: &[u8],
        credential_id: &[u8],
        flags: u8,
    ) -> Vec<(String, String)> {
        let client = self.client_data("webauthn.get", challenge);
        let auth = self.auth_data(flags, &[]);
        let signature = self.key.sign(&[&auth[..], &sha256(&client)].concat());
        vec![
            ("challenge".into(), challenge.into()),
            ("credential_id".into(), B64.encode(credential_id)),
            ("client_data".into(), B64.encode(&client)),
            ("authenticator_data".into(), B64.encode(&auth)),
            ("signature".into(), B64.encode(signature.as_ref())),
            ("user_handle".into(), B64.encode(handle)),
        ]
    }

    fn assert(&self, challenge: &str, handle: &[u8]) -> Vec<(String, String)> {
        self.assert_with(challenge, handle, &self.id)
    }

    /// The `passkeys = [...]` line for this passkey with `handle`.
    fn toml(&self, handle: &[u8]) -> String {
        format!(
            "passkeys = [{{ name = \"soft\", credential_id = \"{}\", public_key = \"{}\", user_handle = \"{}\" }}]\n",
            B64.encode(&self.id),
            B64.encode(self.cose()),
            B64.encode(handle)
        )
    }
}

fn config(alice_extra: &str, bob_extra: &str) -> String {
    config_with(&format!(
        r#"
[limits]
login_max_failures = 7

[[clients]]
id = "cli"
public = true
first_party = true
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid", "profile"]

[[clients]]
id = "third"
public = true
redirect_uris = ["https://third.example.com/cb"]
scopes = ["openid"]

[[clients]]
id = "tv"
public = true
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
scopes = ["openid"]

[[users]]
id = "u-bob"
username = "bob"
password_hash = "{hash}"
{bob_extra}

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
{alice_extra}
"#,
        hash = service_hash()
    ))
}

fn authz<'a>(client: &'a str, redirect: &'a str, pkce: &'a Pkce) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

const CALLBACK: &str = "http://127.0.0.1/callback";

/// Posts the passkey login form of the last page with `fields`.
async fn passkey_login(browser: &mut Browser<'_>, fields: Vec<(String, String)>) -> Seen {
    let mut form: Vec<(String, String)> = ["csrf_token", "request"]
        .iter()
        .filter_map(|h| browser.hidden(h).map(|v| ((*h).to_owned(), v)))
        .collect();
    form.extend(fields);
    browser.post_form("/login/passkey", &form).await
}

/// The `<pre>` of the enrolment answer, as the browser shows it.
fn toml_on(page: &Seen) -> String {
    let start = page.body.find("<pre id=\"passkey-toml\"").expect("a pre");
    let start = start + page.body[start..].find('>').expect(">") + 1;
    let end = start + page.body[start..].find("</pre>").expect("</pre>");
    page.body[start..end]
        .replace("&quot;", "\"")
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Redeems `code` for `cli` (at [`CALLBACK`]): the ID token's claims.
async fn id_token_claims(server: &TestServer, code: &str, pkce: &Pkce) -> serde_json::Value {
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", "cli"),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let id_token = body["id_token"].as_str().expect("an id token");
    server.verify(id_token, "cli").await.1
}

#[tokio::test]
async fn enrol_then_sign_in_with_the_passkey_alone() {
    let server = TestServer::start(&config("", "")).await;
    let pkce = Pkce::new("enrol");
    let mut browser = Browser::new(&server);

    // Not signed in: a clear page, no form.
    let page = browser.get("/account/passkeys").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(text(&page).contains("Sign in first"));

    // No passkey in the config yet: the login page offers none, and no script.
    let page = browser.authorize(&authz("cli", CALLBACK, &pkce)).await;
    assert!(!page.body.contains("Sign in with a passkey"));
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(!csp.contains("script-src"), "{csp}");
    let page = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(page.status, 303, "{}", page.body);

    let page = browser.get("/account/passkeys").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let challenge = browser.hidden("challenge").expect("challenge");
    let handle = browser.hidden("user_handle").expect("user handle");
    let soft = Authenticator::new(b"alice-soft-1");
    let mut form = vec![
        (
            "csrf_token".to_owned(),
            browser.hidden("csrf_token").expect("csrf"),
        ),
        ("challenge".to_owned(), challenge.clone()),
        ("user_handle".to_owned(), handle.clone()),
        ("name".to_owned(), "Laptop \"work\"".to_owned()),
    ];
    form.extend(soft.create(&challenge));
    let added = browser.post_form("/account/passkeys", &form).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let toml = toml_on(&added);
    assert!(toml.starts_with("passkeys = [\n"), "{toml}");
    assert!(toml.contains(r#"name = 'Laptop "work"'"#), "{toml}");
    assert!(
        toml.contains(&format!("user_handle = \"{handle}\"")),
        "{toml}"
    );
    assert!(toml.contains(&format!(
        "credential_id = \"{}\"",
        B64.encode(b"alice-soft-1")
    )));

    // The same registration again: its challenge is used up.
    let again = browser.post_form("/account/passkeys", &form).await;
    assert_eq!(again.status, 400, "{}", again.body);

    server.rewrite_config(&config(&toml, ""));
    server.wait_for_generation(2).await;

    // A new browser, no username typed: the passkey alone.
    let mut other = Browser::new(&server);
    let page = other.authorize(&authz("cli", CALLBACK, &pkce)).await;
    assert!(
        page.body.contains("Sign in with a passkey"),
        "{}",
        page.body
    );
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let challenge = other.hidden("challenge").expect("a login challenge");
    let handle = B64.decode(&handle).expect("handle");
    let seen = passkey_login(&mut other, soft.assert(&challenge, &handle)).await;
    assert_eq!(seen.status, 303, "{}", text(&seen));
    assert_eq!(seen.redirect_base(), CALLBACK);
    let code = seen.redirect_params()["code"].clone();

    let claims = id_token_claims(&server, &code, &pkce).await;
    assert_eq!(claims["sub"], "u-alice");
    assert_eq!(claims["amr"], serde_json::json!(["swk", "mfa"]));
}

/// A server where alice has `alice_key` and bob has `bob_key` (handles `a` and `b`).
async fn two_users(alice_key: &Authenticator, bob_key: &Authenticator) -> TestServer {
    TestServer::start(&config(
        &alice_key.toml(b"handle-a"),
        &bob_key.toml(b"handle-b"),
    ))
    .await
}

/// A fresh login page for the third-party client (its consent keeps the pending
/// request alive after a login): the browser and the challenge.
async fn login_page<'s>(server: &'s TestServer, pkce: &Pkce) -> (Browser<'s>, String) {
    let mut browser = Browser::new(server);
    let page = browser
        .authorize(&authz("third", "https://third.example.com/cb", pkce))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let challenge = browser.hidden("challenge").expect("challenge");
    (browser, challenge)
}

fn refused(seen: &Seen) {
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(text(seen).contains(REFUSED), "{}", text(seen));
    assert!(
        seen.body.contains("name=\"password\""),
        "the login page again"
    );
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let (alice, bob) = (Authenticator::new(b"a-1"), Authenticator::new(b"b-1"));
    let server = two_users(&alice, &bob).await;
    let pkce = Pkce::new("replay");
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    let fields = alice.assert(&challenge, b"handle-a");
    let first = passkey_login(&mut browser, fields.clone()).await;
    assert_eq!(first.status, 200);
    assert!(text(&first).contains("Allow access?"), "{}", text(&first));
    // The pending request still waits (for consent): the same assertion again.
    let mut form: Vec<(String, String)> = vec![
        (
            "csrf_token".into(),
            browser.hidden("csrf_token").expect("csrf"),
        ),
        (
            "request".into(),
            browser.hidden("request").expect("request"),
        ),
    ];
    form.extend(fields);
    let replayed = browser.post_form("/login/passkey", &form).await;
    refused(&replayed);
}

#[tokio::test]
async fn another_users_handle_or_key_and_foreign_ceremonies_are_refused() {
    let (alice, bob) = (Authenticator::new(b"a-1"), Authenticator::new(b"b-1"));
    let server = two_users(&alice, &bob).await;
    let pkce = Pkce::new("others");

    // Alice's credential presenting bob's user handle.
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    refused(&passkey_login(&mut browser, alice.assert(&challenge, b"handle-b")).await);
    // Bob's credential id and handle, signed by alice's key.
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    let forged = alice.assert_with(&challenge, b"handle-b", b"b-1");
    refused(&passkey_login(&mut browser, forged).await);
    // An unknown credential: the same answer.
    let stranger = Authenticator::new(b"nobody");
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    refused(&passkey_login(&mut browser, stranger.assert(&challenge, b"handle-a")).await);

    // Alice's passkey, but made for another RP ID, or run at another origin.
    let wrong_rp = Authenticator {
        rp_id: "evil.example".into(),
        ..alice.clone()
    };
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    refused(&passkey_login(&mut browser, wrong_rp.assert(&challenge, b"handle-a")).await);
    let wrong_origin = Authenticator {
        origin: "http://evil.example".into(),
        ..alice.clone()
    };
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    refused(&passkey_login(&mut browser, wrong_origin.assert(&challenge, b"handle-a")).await);

    // A challenge of another login page, and one made up.
    let (_, foreign) = login_page(&server, &pkce).await;
    let (mut browser, _) = login_page(&server, &pkce).await;
    refused(&passkey_login(&mut browser, alice.assert(&foreign, b"handle-a")).await);
    let (mut browser, _) = login_page(&server, &pkce).await;
    let made_up = B64.encode([7u8; 56]);
    refused(&passkey_login(&mut browser, alice.assert(&made_up, b"handle-a")).await);

    // Each of those counted against the address: past the limit, refused outright.
    let (mut browser, challenge) = login_page(&server, &pkce).await;
    let limited = passkey_login(&mut browser, alice.assert(&challenge, b"handle-a")).await;
    assert_eq!(limited.status, 429, "{}", text(&limited));
}

/// Posts the second-factor page's passkey form with `fields` to `action`.
async fn passkey_factor(
    browser: &mut Browser<'_>,
    action: &str,
    fields: Vec<(String, String)>,
) -> Seen {
    let mut form: Vec<(String, String)> = ["csrf_token", "request", "user_code"]
        .iter()
        .filter_map(|h| browser.hidden(h).map(|v| ((*h).to_owned(), v)))
        .collect();
    form.push(("factor".into(), "passkey".into()));
    form.extend(fields);
    browser.post_form(action, &form).await
}

async fn passkey_second(browser: &mut Browser<'_>, fields: Vec<(String, String)>) -> Seen {
    passkey_factor(browser, "/login/second-factor", fields).await
}

const BAD_PASSKEY: &str = "That passkey could not be used here.";

#[tokio::test]
async fn after_a_password_the_users_own_passkey_is_the_second_factor() {
    let (alice, bob) = (Authenticator::new(b"a-1"), Authenticator::new(b"b-1"));
    let server = two_users(&alice, &bob).await;
    let pkce = Pkce::new("second");
    let mut browser = Browser::new(&server);
    browser.authorize(&authz("cli", CALLBACK, &pkce)).await;
    let page = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(text(&page).contains("Use a passkey"), "{}", text(&page));
    assert!(!page.body.contains("name=\"code\""), "alice has no TOTP");
    assert!(
        page.body
            .contains(&format!("data-allow=\"{}\"", B64.encode(b"a-1"))),
        "only alice's credential is asked for: {}",
        page.body
    );
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let login_challenge = {
        let mut other = Browser::new(&server);
        other.authorize(&authz("cli", CALLBACK, &pkce)).await;
        other.hidden("challenge").expect("a login challenge")
    };

    let again = |seen: &Seen| {
        assert_eq!(seen.status, 200, "{}", seen.body);
        assert!(text(seen).contains(BAD_PASSKEY), "{}", text(seen));
        assert!(text(seen).contains("Use a passkey"), "the page again");
    };
    // Bob's own passkey (his id, his handle, his key) is no second factor of alice's.
    let challenge = browser.hidden("challenge").expect("challenge");
    again(&passkey_second(&mut browser, bob.assert(&challenge, b"handle-b")).await);
    // A login page's challenge (another purpose, another request).
    let fields = alice.assertion(&login_challenge, b"handle-a", b"a-1", 0x01);
    again(&passkey_second(&mut browser, fields).await);
    // Alice's key for another origin.
    let elsewhere = Authenticator {
        origin: "http://evil.example".into(),
        ..alice.clone()
    };
    let challenge = browser.hidden("challenge").expect("challenge");
    let fields = elsewhere.assertion(&challenge, b"handle-a", b"a-1", 0x01);
    again(&passkey_second(&mut browser, fields).await);
    // No user presence: refused.
    let challenge = browser.hidden("challenge").expect("challenge");
    again(&passkey_second(&mut browser, alice.assertion(&challenge, b"", b"a-1", 0x00)).await);

    // Alice's passkey, presence alone (her password was the first factor), no handle.
    let challenge = browser.hidden("challenge").expect("challenge");
    let fields = alice.assertion(&challenge, b"", b"a-1", 0x01);
    let done = passkey_second(&mut browser, fields.clone()).await;
    assert_eq!(done.status, 303, "{}", text(&done));
    assert_eq!(done.redirect_base(), CALLBACK);
    let code = done.redirect_params()["code"].clone();
    let claims = id_token_claims(&server, &code, &pkce).await;
    assert_eq!(claims["sub"], "u-alice");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "swk", "mfa"]));
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");

    // The same assertion in a new login of alice: its challenge was used (and was
    // bound to the other request).
    let mut later = Browser::new(&server);
    later.authorize(&authz("cli", CALLBACK, &pkce)).await;
    let page = later.login("alice", SERVICE_SECRET).await;
    assert!(text(&page).contains("Use a passkey"));
    again(&passkey_second(&mut later, fields).await);
}

#[tokio::test]
async fn the_device_pages_take_the_users_passkey_as_second_factor() {
    let (alice, bob) = (Authenticator::new(b"a-1"), Authenticator::new(b"b-1"));
    let server = two_users(&alice, &bob).await;
    let issued = server.device_authorization("tv", "openid").await;
    let user_code = issued["user_code"].as_str().expect("user_code");
    let mut browser = Browser::new(&server);
    browser.get("/device").await;
    browser.submit("/device", &[("user_code", user_code)]).await;
    let page = browser
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", SERVICE_SECRET)],
        )
        .await;
    assert!(text(&page).contains("Use a passkey"), "{}", text(&page));
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let challenge = browser.hidden("challenge").expect("challenge");
    let wrong = passkey_factor(
        &mut browser,
        "/device/second-factor",
        bob.assert(&challenge, b"handle-b"),
    )
    .await;
    assert!(text(&wrong).contains(BAD_PASSKEY), "{}", text(&wrong));
    let challenge = browser.hidden("challenge").expect("challenge");
    let fields = alice.assertion(&challenge, b"handle-a", b"a-1", 0x01);
    let confirm = passkey_factor(&mut browser, "/device/second-factor", fields).await;
    assert!(
        confirm.body.contains("name=\"decision\""),
        "{}",
        confirm.body
    );
    let done = browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert_eq!(done.status, 200);
    assert!(text(&done).contains("Device connected"), "{}", text(&done));
}
