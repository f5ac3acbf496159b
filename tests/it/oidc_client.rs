//! A standard OpenID Connect client library (the `openidconnect` crate) logs a user in
//! against gatehouse by discovery alone: metadata, PKCE, code exchange, ID token
//! validation against the JWKS, and userinfo.


use crate::support::browser::Browser;
use crate::support::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, http,
};

/// The library's HTTP calls, made with reqwest.
async fn send(
    http_client: &reqwest::Client,
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, reqwest::Error> {
    let response = http_client
        .execute(reqwest::Request::try_from(request)?)
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).unwrap_or_default())
}

#[tokio::test]
async fn the_openidconnect_crate_logs_in_by_discovery_alone() {
    let (issuer, config) = discoverable_config(&format!(
        r#"
[[clients]]
id = "rp"
public = true
first_party = true
redirect_uris = ["https://rp.example.com/callback"]
scopes = ["openid", "profile", "email"]

[[users]]
id = "u-bob"
username = "bob"
password_hash = "{hash}"
email = "bob@example.com"
email_verified = true
name = "Bob"
"#,
        hash = service_hash()
    ));
    let server = TestServer::start(&config).await;
    let http_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let http = |request| send(&http_client, request);

    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new("rp".into()), None)
        .set_redirect_uri(
            RedirectUrl::new("https://rp.example.com/callback".into()).expect("redirect"),
        );
    let userinfo_client = client.clone();

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's browser opens the URL the library built and logs in.
    let mut browser = Browser::new(&server);
    let page = browser
        .http
        .get(auth_url.as_str())
        .send()
        .await
        .expect("authorize");
    assert_eq!(page.status(), 200);
    browser.last_page = page.text().await.expect("login page");
    let redirect = browser.login("bob", SERVICE_SECRET).await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let params = redirect.redirect_params();
    assert_eq!(&params["state"], csrf_state.secret());
    assert_eq!(params["iss"], issuer);

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token validates");
    assert_eq!(claims.subject().as_str(), "u-bob");
    assert_eq!(claims.email().map(|e| e.as_str()), Some("bob@example.com"));
    let signer = id_token.signing_alg().expect("alg");
    let at_hash = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        signer,
        id_token
            .signing_key(&client.id_token_verifier())
            .expect("key"),
    )
    .expect("at_hash");
    assert_eq!(claims.access_token_hash(), Some(&at_hash));

    let info: CoreUserInfoClaims = userinfo_client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), "u-bob");
    assert_eq!(info.email().map(|e| e.as_str()), Some("bob@example.com"));
}
