//! Client ID Metadata Documents over HTTP: a client whose `client_id` is the https URL of
//! its document, served by a local https server with a test CA
//! (`support::documents`). A full login with PKCE and a refresh through such a client,
//! the consent page naming the document's host at every login, the cache (kept for
//! `max-age` on the injected clock, then fetched again), the fetch limits (too large,
//! a redirect, a private address, a server that never answers), a `client_id` the
//! document does not carry, a redirect URI it does not list, and discovery.

use crate::support::browser::{Browser, Pkce, Seen, text};
use crate::support::documents::{Answer, DocumentServer};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const MCP: &str = "https://mcp.example.com/mcp";
const REDIRECT: &str = "http://127.0.0.1/cb";
const DOC: &str = "/clients/tool.json";

/// A config trusting `docs`' CA for documents under `prefix`, with a resource, its
/// scope, a configured client and alice.
fn cimd_config(prefix: &str, docs: &DocumentServer) -> String {
    config_with(&format!(
        r#"
[[scopes]]
name = "mcp:tools"
[[scopes]]
name = "admin"

[[resources]]
id = "{MCP}"
name = "Tools"
scopes = ["mcp:tools"]

[[client_metadata_documents]]
url_prefix = "{prefix}"
scopes = ["openid", "offline_access", "mcp:tools"]
resources = ["{MCP}"]
ca_file = "{ca}"

[[clients]]
id = "cli"
public = true
redirect_uris = ["{REDIRECT}"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
"#,
        ca = docs.ca_file.display(),
        hash = service_hash()
    ))
}

/// The document for `url`, listing `REDIRECT`.
fn document(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Tool Assistant",
        "redirect_uris": [REDIRECT],
        "scope": "openid offline_access mcp:tools admin",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// A document server publishing `document(url)` at `DOC` with `cache_control`, and a
/// gatehouse whose prefix covers it.
async fn setup(cache_control: Option<&str>) -> (DocumentServer, TestServer, String) {
    let docs = DocumentServer::start().await;
    let client_id = docs.url(DOC);
    docs.publish(DOC, &document(&client_id), cache_control);
    let server = TestServer::start(&cimd_config(&docs.url("/clients/"), &docs)).await;
    (docs, server, client_id)
}

async fn authorize(browser: &mut Browser<'_>, client_id: &str, pkce: &Pkce) -> Seen {
    browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid offline_access mcp:tools"),
            ("resource", MCP),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "s1"),
        ])
        .await
}

/// Checks `page` is the consent page naming the client and the document's host.
fn assert_consent_names_host(page: &Seen) {
    assert_eq!(page.status, 200, "the consent page: {}", page.body);
    let shown = text(page);
    assert!(shown.contains("Allow access"), "{shown}");
    assert!(
        shown.contains("Tool Assistant"),
        "the client's name: {shown}"
    );
    assert!(
        shown.contains("published on 127.0.0.1"),
        "the document's host: {shown}"
    );
}

async fn token(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r = server
        .http
        .post(server.url("/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_document_client_logs_in_with_pkce_and_refreshes() {
    let (docs, server, client_id) = setup(Some("max-age=3600")).await;
    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["client_id_metadata_document_supported"], true);

    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("cimd-login");
    let login = authorize(&mut browser, &client_id, &pkce).await;
    assert_eq!(login.status, 200, "the login page: {}", login.body);
    let consent = browser.login("alice", SERVICE_SECRET).await;
    assert_consent_names_host(&consent);
    let back = browser.consent("allow").await;
    assert_eq!(back.redirect_base(), REDIRECT, "{:?}", back.location);
    let params = back.redirect_params();
    assert_eq!(params.get("state").map(String::as_str), Some("s1"));

    let code = params["code"].as_str();
    let (status, tokens) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code),
            ("code_verifier", pkce.verifier.as_str()),
            ("redirect_uri", REDIRECT),
            ("resource", MCP),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = server
        .verify(tokens["access_token"].as_str().expect("at"), MCP)
        .await;
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(
        claims["scope"], "openid offline_access mcp:tools",
        "the document's admin is cut away: the entry does not allow it"
    );
    let (status, refreshed) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("rt"),
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        docs.hits(DOC),
        1,
        "one fetch served the login and the tokens"
    );
}

#[tokio::test]
async fn the_document_is_cached_for_its_max_age_and_consent_shows_every_time() {
    let (docs, server, client_id) = setup(Some("public, max-age=120")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("cimd-cache");
    authorize(&mut browser, &client_id, &pkce).await;
    let consent = browser.login("alice", SERVICE_SECRET).await;
    assert_consent_names_host(&consent);
    let back = browser.consent("allow").await;
    assert!(back.redirect_params().contains_key("code"));

    // Signed in and consented before: a configured third-party client would get its
    // code at once; a document client is asked again, and the document is not fetched.
    let again = authorize(&mut browser, &client_id, &pkce).await;
    assert_consent_names_host(&again);
    assert_eq!(docs.hits(DOC), 1, "the second login read the cache");

    server.clock().advance(Duration::from_secs(119));
    authorize(&mut browser, &client_id, &pkce).await;
    assert_eq!(docs.hits(DOC), 1, "still within max-age");
    server.clock().advance(Duration::from_secs(2));
    let after = authorize(&mut browser, &client_id, &pkce).await;
    assert_consent_names_host(&after);
    assert_eq!(
        docs.hits(DOC),
        2,
        "past max-age the document is fetched again"
    );
}

/// `/authorize` for `client_id` is an `invalid_client` page, never a redirect.
async fn refused_page(server: &TestServer, client_id: &str) -> String {
    let mut browser = Browser::new(server);
    let seen = authorize(&mut browser, client_id, &Pkce::new("cimd-refused")).await;
    assert_eq!(seen.status, 400, "{}", seen.body);
    assert!(seen.location.is_none(), "never a redirect");
    text(&seen)
}

#[tokio::test]
async fn fetch_limits_refuse_large_redirected_and_private_documents() {
    let (docs, server, _) = setup(None).await;

    let big = docs.url("/clients/big.json");
    let mut large = document(&big);
    large["padding"] = json!("x".repeat(6 * 1024));
    docs.publish("/clients/big.json", &large, None);
    let page = refused_page(&server, &big).await;
    assert!(
        page.contains("invalid_client") && page.contains("larger than 5120"),
        "{page}"
    );

    let moved = docs.url("/clients/moved.json");
    docs.serve("/clients/moved.json", Answer::Redirect(docs.url(DOC)));
    let page = refused_page(&server, &moved).await;
    assert!(
        page.contains("invalid_client") && page.contains("302"),
        "{page}"
    );
    assert_eq!(docs.hits(DOC), 0, "the redirect was not followed");

    let missing = docs.url("/clients/missing.json");
    let page = refused_page(&server, &missing).await;
    assert!(page.contains("404"), "{page}");

    // The token endpoint refuses such a client as any unknown one: 401, never a 5xx.
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", missing.as_str()),
            ("code", "nothing"),
            ("code_verifier", "v".repeat(43).as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Dot segments and fragments are no document URLs; ids under no prefix are unknown.
    let dotted = docs.url("/clients/../clients/tool.json#x");
    let page = refused_page(&server, &format!("{}/a/../b", docs.url("/clients"))).await;
    assert!(page.contains("invalid_client"), "{page}");
    let page = refused_page(&server, &dotted).await;
    assert!(page.contains("invalid_client"), "{page}");
    let page = refused_page(&server, &docs.url("/elsewhere/tool.json")).await;
    assert!(page.contains("is not registered here"), "{page}");
    assert_eq!(docs.hits(DOC), 0);
}

#[tokio::test]
async fn a_prefix_on_a_private_address_is_refused_before_connecting() {
    let docs = DocumentServer::start().await;
    // The document server itself, reached through an IPv4-mapped IPv6 address: not a
    // loopback prefix, so its loopback address is refused and nothing is requested.
    let prefix = format!("https://[::ffff:7f00:1]:{}/clients/", docs.port);
    let client_id = format!("{prefix}tool.json");
    docs.publish(DOC, &document(&client_id), None);
    let server = TestServer::start(&cimd_config(&prefix, &docs)).await;
    let page = refused_page(&server, &client_id).await;
    assert!(page.contains("private or loopback address"), "{page}");
    assert_eq!(docs.hits(DOC), 0, "never connected");

    let private = "https://10.0.0.1/clients/";
    let server = TestServer::start(&cimd_config(private, &docs)).await;
    let page = refused_page(&server, &format!("{private}tool.json")).await;
    assert!(page.contains("private or loopback address"), "{page}");
}

#[tokio::test]
async fn a_document_server_that_never_answers_times_out_in_five_seconds() {
    let (docs, server, _) = setup(None).await;
    let slow = docs.url("/clients/slow.json");
    docs.serve("/clients/slow.json", Answer::Never);
    let page = refused_page(&server, &slow).await;
    assert!(page.contains("did not answer in time"), "{page}");
    assert_eq!(docs.hits("/clients/slow.json"), 1);
}

#[tokio::test]
async fn a_document_for_another_client_id_or_redirect_uri_is_refused() {
    let (docs, server, client_id) = setup(None).await;
    let other = docs.url("/clients/other.json");
    docs.publish("/clients/other.json", &document(&client_id), None);
    let page = refused_page(&server, &other).await;
    assert!(
        page.contains("invalid_client") && page.contains("client_id is not its URL"),
        "{page}"
    );

    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("cimd-redirect");
    let seen = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1/elsewhere"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(seen.status, 400, "{}", seen.body);
    assert!(
        seen.location.is_none(),
        "never a redirect to an unlisted URI"
    );
    assert!(
        text(&seen).contains("The redirect_uri is not registered"),
        "{}",
        seen.body
    );

    // Without PKCE the document client is refused like any public client.
    let seen = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s2"),
        ])
        .await;
    let params = seen.redirect_params();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("invalid_request")
    );
}

#[test]
fn the_config_is_checked_at_each_field() {
    let check = |entry: &str| {
        let text = config_with(&format!(
            "[[scopes]]\nname = \"mcp:tools\"\n[[client_metadata_documents]]\n{entry}\n"
        ));
        match gatehouse::load::check_text(std::path::Path::new("/nonexistent/g.toml"), &text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(
        check("url_prefix = \"https://c.example.com/\"\nscopes = [\"mcp:tools\", \"openid\"]"),
        ""
    );
    assert_eq!(check("url_prefix = \"http://127.0.0.1:4000/c/\""), "");
    for (entry, field, message) in [
        (
            "url_prefix = \"http://c.example.com/\"",
            "client_metadata_documents[0].url_prefix",
            "only loopback hosts",
        ),
        (
            "url_prefix = \"https://c.example.com/app\"",
            "client_metadata_documents[0].url_prefix",
            "must end with '/'",
        ),
        (
            "url_prefix = \"https://c.example.com/\"\nscopes = [\"nope\"]",
            "client_metadata_documents[0].scopes[0]",
            "unknown scope",
        ),
        (
            "url_prefix = \"https://c.example.com/\"\nresources = [\"https://r.example.com/\"]",
            "client_metadata_documents[0].resources[0]",
            "unknown resource",
        ),
        (
            "url_prefix = \"https://c.example.com/\"\nca_file = \"missing.pem\"",
            "client_metadata_documents[0].ca_file",
            "cannot read",
        ),
        (
            "url_prefix = \"https://c.example.com/\"\n[[client_metadata_documents]]\nurl_prefix = \"https://c.example.com/a/\"",
            "client_metadata_documents[1].url_prefix",
            "overlaps",
        ),
    ] {
        let got = check(entry);
        assert!(
            got.contains(&format!("{field}: ")) && got.contains(message),
            "{entry}: {got}"
        );
        assert!(got.contains("g.toml:"), "placed in the file: {got}");
    }
}
