//! A command-line tool that logs its user in against gatehouse, keeps the tokens and uses
//! them: the third kind of client gatehouse is for, next to services and browser apps.
//!
//! Start gatehouse on the example config, then:
//!
//!     cargo run --example cli -- login            # a browser on this machine (RFC 8252)
//!     cargo run --example cli -- login --device   # no browser here (RFC 8628)
//!     cargo run --example cli -- whoami           # userinfo with the access token
//!     cargo run --example cli -- token            # a fresh access token, for scripts
//!     cargo run --example cli -- logout           # revoke the tokens, forget them
//!
//! Everything is found by discovery and done by the `openidconnect` crate: PKCE S256,
//! the ID token's signature, issuer, audience, expiry and nonce, the device grant's
//! polling (which honours `slow_down`), refresh and revocation. This file adds what a
//! real CLI must do around it: the one-shot loopback listener, the `state` and RFC 9207
//! `iss` checks of the callback, and a token file only its owner can read.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use http_body_util::Full;
use hyper::body::Bytes;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGenderClaim, CoreGrantType,
    CoreIdToken, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, ClientId,
    CsrfToken, DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, NonceVerifier, OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadata, RedirectUrl,
    RefreshToken, RevocationUrl, Scope, SubjectIdentifier, TokenResponse, UserInfoClaims, http,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// Log in to gatehouse from a terminal, and use the tokens.
#[derive(Parser)]
#[command(name = "gatehouse-cli")]
struct Cli {
    /// The issuer to log in to; its endpoints are found by discovery.
    #[arg(
        long,
        env = "GATEHOUSE_ISSUER",
        default_value = "http://127.0.0.1:8080"
    )]
    issuer: String,
    /// This tool's client id (a public client: no secret can be kept in a CLI).
    #[arg(long, env = "GATEHOUSE_CLIENT_ID", default_value = "demo-cli")]
    client_id: String,
    /// Where the tokens are kept [default: $XDG_CONFIG_HOME/gatehouse-cli/tokens.json,
    /// or ~/.config/gatehouse-cli/tokens.json].
    #[arg(long, env = "GATEHOUSE_CLI_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in: in a browser on this machine, or with --device on any other.
    Login(LoginArgs),
    /// Show who is logged in: the claims userinfo returns.
    Whoami,
    /// Print an access token, refreshed first if it expires too soon.
    Token {
        /// Refresh unless the token stays valid at least this long ("30s", "5m").
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        min_valid: Duration,
    },
    /// Revoke the tokens at the server and delete the token file.
    Logout,
}

#[derive(Args)]
struct LoginArgs {
    /// Use the device grant: show a code to enter on another device's browser.
    #[arg(long)]
    device: bool,
    /// Print the login URL without trying to open a browser.
    #[arg(long, conflicts_with = "device")]
    no_browser: bool,
    /// The scopes to ask for.
    #[arg(long, default_value = "openid profile email offline_access")]
    scope: String,
    /// How long to wait for the browser's callback.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// The discovery fields gatehouse publishes beyond OpenID Connect Discovery's own.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct ExtraMetadata {
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
    revocation_endpoint: Option<RevocationUrl>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client once discovery gave the authorization and token endpoints.
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// Userinfo claims beyond the standard ones (gatehouse's `groups`), kept for printing.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct OtherClaims(HashMap<String, serde_json::Value>);
impl AdditionalClaims for OtherClaims {}

/// What went wrong in one HTTP exchange of the library's.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    /// Sending or reading failed.
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    /// The answer could not be handed to the library.
    #[error(transparent)]
    Response(#[from] http::Error),
}

/// The library's HTTP calls, made with reqwest (openidconnect 4's own `reqwest` feature
/// is for reqwest 0.12). Redirects are not followed: a token endpoint that redirects
/// would otherwise send our requests to wherever it says (SSRF).
async fn send(
    client: &reqwest::Client,
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, HttpError> {
    let response = client.execute(reqwest::Request::try_from(request)?).await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder.body(response.bytes().await?.to_vec())?)
}

/// The server as discovery described it, and the client built from that.
struct Provider {
    http: reqwest::Client,
    issuer: String,
    extra: ExtraMetadata,
    client: OidcClient,
}

impl Provider {
    /// Reads the issuer's discovery document and JWKS (the library checks that the
    /// document names this very issuer) and makes the client for `client_id`.
    async fn discover(issuer: &str, client_id: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .with_context(|| format!("the issuer {issuer:?} is not a URL"))?;
        let metadata = Metadata::discover_async(issuer_url, &|r| send(&http, r))
            .await
            .with_context(|| format!("discovery at {issuer} failed"))?;
        let extra = metadata.additional_metadata().clone();
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| anyhow!("{issuer} publishes no token_endpoint"))?;
        let client =
            CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.to_owned()), None)
                .set_token_uri(token_url);
        Ok(Self {
            http,
            issuer: issuer.to_owned(),
            extra,
            client,
        })
    }

    /// The closure the library calls for each HTTP exchange.
    #[allow(clippy::type_complexity)]
    fn http<'a>(
        &'a self,
    ) -> impl Fn(
        http::Request<Vec<u8>>,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<Vec<u8>>, HttpError>> + Send + 'a>,
    > + 'a {
        |request| Box::pin(send(&self.http, request))
    }
}

/// The tokens of one login, as kept in the token file. Not `Debug`: never printed whole.
#[derive(Serialize, Deserialize)]
struct Stored {
    issuer: String,
    client_id: String,
    /// The user, from the verified ID token.
    subject: Option<String>,
    access_token: String,
    /// When the access token expires, in Unix seconds by this machine's clock.
    expires_at: Option<u64>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    scope: Option<String>,
}

/// This machine's time in Unix seconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a token expiring at `expires_at` must be refreshed to stay valid for
/// `min_valid` from `now`. An unknown expiry is used as it is: the server will say.
fn needs_refresh(expires_at: Option<u64>, now: u64, min_valid: Duration) -> bool {
    expires_at.is_some_and(|at| at < now.saturating_add(min_valid.as_secs()))
}

/// The default token file: `$XDG_CONFIG_HOME/gatehouse-cli/tokens.json` when that is an
/// absolute path (the XDG rule), else `$HOME/.config/gatehouse-cli/tokens.json`.
fn default_token_file(var: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let base = match var("XDG_CONFIG_HOME").map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg,
        _ => var("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join(".config"))
            .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set; use --token-file"))?,
    };
    Ok(base.join("gatehouse-cli").join("tokens.json"))
}

/// The token file, read; `None` when there is none.
fn load(path: &Path) -> Result<Option<Stored>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let stored = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a token file", path.display()))?;
    Ok(Some(stored))
}

/// The tokens of the login at `cli`'s issuer and client, or why there are none.
fn load_login(cli: &Cli, path: &Path) -> Result<Stored> {
    let stored = load(path)?
        .ok_or_else(|| anyhow!("not logged in (no {}); run `login` first", path.display()))?;
    if stored.issuer != cli.issuer || stored.client_id != cli.client_id {
        bail!(
            "{} holds a login to {} as {}, not {} as {}; log in again",
            path.display(),
            stored.issuer,
            stored.client_id,
            cli.issuer,
            cli.client_id
        );
    }
    Ok(stored)
}

/// Writes the token file atomically: a temporary file in the same directory, created
/// with mode 0600 (never readable by others, not even for a moment), then renamed over
/// the old one. The directory is made 0700 if it is new.
fn save(path: &Path, stored: &Stored) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut temp = tempfile::Builder::new();
    temp.prefix(".tokens-");
    #[cfg(unix)]
    temp.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut file = temp
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    serde_json::to_writer_pretty(&mut file, stored).context("writing the tokens")?;
    file.as_file().sync_all().context("writing the tokens")?;
    file.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The tokens of a token response, the ID token already verified by the caller.
fn stored_from(
    cli: &Cli,
    tokens: &CoreTokenResponse,
    subject: Option<String>,
    previous: Option<&Stored>,
) -> Stored {
    Stored {
        issuer: cli.issuer.clone(),
        client_id: cli.client_id.clone(),
        subject,
        access_token: tokens.access_token().secret().clone(),
        expires_at: tokens
            .expires_in()
            .map(|d| now().saturating_add(d.as_secs())),
        // gatehouse rotates refresh tokens; a server that does not keeps the old one.
        refresh_token: tokens
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
        id_token: tokens
            .id_token()
            .map(ToString::to_string)
            .or_else(|| previous.and_then(|p| p.id_token.clone())),
        scope: tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .or_else(|| previous.and_then(|p| p.scope.clone())),
    }
}

/// Verifies the ID token (signature against the JWKS, issuer, audience, expiry) and the
/// nonce by `check_nonce`; returns its subject and a name to greet.
fn verify_id_token(
    provider: &Provider,
    id_token: &CoreIdToken,
    check_nonce: impl NonceVerifier,
) -> Result<(String, String)> {
    let claims = id_token
        .claims(&provider.client.id_token_verifier(), check_nonce)
        .context("the ID token does not verify")?;
    let subject = claims.subject().as_str().to_owned();
    let shown = claims
        .email()
        .map(|e| e.as_str().to_owned())
        .or_else(|| {
            claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned())
        })
        .unwrap_or_else(|| subject.clone());
    Ok((subject, shown))
}

/// The scopes of a space-separated list, but `openid`, which the library always sends.
fn scopes(list: &str) -> Vec<Scope> {
    list.split_whitespace()
        .filter(|s| *s != "openid") // the library always adds it
        .map(|s| Scope::new(s.to_owned()))
        .collect()
}

// ---- login in a browser on this machine (RFC 8252, PKCE S256) ----

/// Checks the browser's callback: `state` equal to this login's (in constant time),
/// `iss` equal to the issuer (RFC 9207: the answer comes from the server we asked, not
/// another one we also log in to), then the code or the server's error. A parameter
/// given twice is refused.
fn check_callback(query: &str, state: &str, issuer: &str) -> Result<String, String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let one = |name: &str| -> Result<Option<&str>, String> {
        let mut found = pairs.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        match found.next() {
            Some(_) => Err(format!("the callback repeats {name}")),
            None => Ok(first),
        }
    };
    let got_state = one("state")?.unwrap_or_default();
    if !bool::from(got_state.as_bytes().ct_eq(state.as_bytes())) {
        return Err(
            "the callback's state is not this login's: it did not come from the \
                    login this command started (an old browser tab, or another page \
                    trying to log you in); nothing was saved"
                .to_owned(),
        );
    }
    match one("iss")? {
        Some(iss) if iss == issuer => {}
        Some(iss) => {
            return Err(format!(
                "the callback names the issuer {iss:?}, not {issuer:?} (RFC 9207); nothing was saved"
            ));
        }
        None => {
            return Err(format!(
                "the callback has no iss; {issuer} always sends it (RFC 9207); nothing was saved"
            ));
        }
    }
    if let Some(error) = one("error")? {
        let description = one("error_description")?.unwrap_or_default();
        return Err(format!(
            "the server refused the login: {error} {description}"
        ));
    }
    one("code")?
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "the callback has no code".to_owned())
}

/// Serves the loopback listener until the browser arrives at `/callback` once (every
/// other path is 404), or `timeout` passes. Each connection gets 10 s to send its
/// request, at most 8 are served at a time, and every answer closes its connection, so
/// the result is known only after the browser has its page.
async fn await_callback(
    listener: tokio::net::TcpListener,
    state: &str,
    issuer: &str,
    timeout: Duration,
) -> Result<String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, String>>(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(8));
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting the browser's connection")?;
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    continue; // dropped: too many at once
                };
                let tx = tx.clone();
                let (state, issuer) = (state.to_owned(), issuer.to_owned());
                tokio::spawn(async move {
                    let _permit = permit;
                    let verdict = Arc::new(Mutex::new(None));
                    let seen = verdict.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let answer = callback_answer(&request, &state, &issuer);
                        if let Some(result) = answer.1
                            && let Ok(mut slot) = seen.lock()
                        {
                            slot.get_or_insert(result);
                        }
                        std::future::ready(Ok::<_, Infallible>(answer.0))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                    let result = verdict.lock().ok().and_then(|mut v| v.take());
                    if let Some(result) = result {
                        let _ = tx.try_send(result);
                    }
                });
            }
            Some(result) = rx.recv() => return result.map_err(|e| anyhow!(e)),
            () = &mut deadline => bail!(
                "no callback from the browser within {}", humantime::format_duration(timeout)
            ),
        }
    }
}

/// The page for one request to the loopback listener, and the login's outcome when the
/// request was the callback.
fn callback_answer(
    request: &hyper::Request<hyper::body::Incoming>,
    state: &str,
    issuer: &str,
) -> (hyper::Response<Full<Bytes>>, Option<Result<String, String>>) {
    let page = |status: u16, title: &str, text: &str| {
        let html = format!(
            "<!doctype html><meta charset=utf-8><title>{title}</title>\
             <h1>{title}</h1><p>{text}</p>"
        );
        hyper::Response::builder()
            .status(status)
            .header("content-type", "text/html; charset=utf-8")
            .header("content-security-policy", "default-src 'none'")
            .header("referrer-policy", "no-referrer")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(html)))
            .unwrap_or_default()
    };
    if request.method() != hyper::Method::GET || request.uri().path() != "/callback" {
        return (page(404, "Not found", "Nothing here."), None);
    }
    let result = check_callback(request.uri().query().unwrap_or_default(), state, issuer);
    let shown = match &result {
        Ok(_) => page(
            200,
            "Signed in",
            "You can close this tab and go back to the terminal.",
        ),
        Err(_) => page(
            400,
            "Sign-in failed",
            "The terminal says why. You can close this tab.",
        ),
    };
    (shown, Some(result))
}

/// Opens `url` in the desktop's browser if there is one; says whether it tried.
fn open_browser(url: &str) -> bool {
    let (program, args): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    };
    let spawned = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reaped when it ends; its outcome does not matter to the login.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

/// `login`: authorization code with PKCE S256 through the browser, back to a loopback
/// listener (RFC 8252), then the ID token verified with the login's nonce.
async fn login_loopback(cli: &Cli, args: &LoginArgs, path: &Path) -> Result<()> {
    let provider = Provider::discover(&cli.issuer, &cli.client_id).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on 127.0.0.1 for the browser's callback")?;
    let port = listener.local_addr().context("the listener's port")?.port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client = provider
        .client
        .clone()
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).context("redirect URI")?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scopes(scopes(&args.scope))
        .set_pkce_challenge(challenge)
        .url();

    let opened = !args.no_browser && open_browser(url.as_str());
    if opened {
        println!("Your browser has been opened to sign in. If it did not, open this URL:");
    } else {
        println!("Open this URL in a browser on this machine to sign in:");
    }
    println!();
    println!("    {url}");
    println!();
    println!(
        "Waiting for the browser at {redirect} (up to {})...",
        humantime::format_duration(args.timeout)
    );

    let code = await_callback(listener, state.secret(), &provider.issuer, args.timeout).await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&provider.http())
        .await
        .context("exchanging the code at the token endpoint")?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| anyhow!("the server returned no ID token"))?;
    let (subject, shown) = verify_id_token(&provider, id_token, &nonce)?;
    save(path, &stored_from(cli, &tokens, Some(subject), None))?;
    println!("Logged in as {shown}. Tokens saved in {}", path.display());
    Ok(())
}

// ---- login from any device (RFC 8628) ----

/// `login --device`: the device grant (RFC 8628), polling as the server says.
async fn login_device(cli: &Cli, args: &LoginArgs, path: &Path) -> Result<()> {
    let provider = Provider::discover(&cli.issuer, &cli.client_id).await?;
    let endpoint = provider
        .extra
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| anyhow!("{} offers no device authorization", cli.issuer))?;
    let client = provider
        .client
        .clone()
        .set_device_authorization_url(endpoint);
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes(&args.scope))
        .request_async(&provider.http())
        .await
        .context("asking for a device code")?;

    println!(
        "To sign in, open {} on any device and enter the code",
        details.verification_uri().as_str()
    );
    println!();
    println!("    {}", details.user_code().secret());
    println!();
    if let Some(complete) = details.verification_uri_complete() {
        println!("or open {}", complete.secret());
    }
    println!(
        "Waiting for you to approve (the code expires in {})...",
        humantime::format_duration(details.expires_in())
    );

    let tokens: CoreTokenResponse = client
        .exchange_device_access_token(&details)
        .request_async(&provider.http(), tokio::time::sleep, None)
        .await
        .map_err(|e| match &e {
            openidconnect::RequestTokenError::ServerResponse(r) => match r.error() {
                openidconnect::DeviceCodeErrorResponseType::AccessDenied => {
                    anyhow!("the login was denied in the browser")
                }
                openidconnect::DeviceCodeErrorResponseType::ExpiredToken => {
                    anyhow!("the code expired before it was approved; run `login --device` again")
                }
                _ => anyhow::Error::new(e).context("polling the token endpoint"),
            },
            _ => anyhow::Error::new(e).context("polling the token endpoint"),
        })?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| anyhow!("the server returned no ID token"))?;
    // No nonce travels in the device grant: an ID token carrying one is not ours.
    let (subject, shown) = verify_id_token(&provider, id_token, |n: Option<&Nonce>| match n {
        None => Ok(()),
        Some(_) => Err("a nonce this login never sent".to_owned()),
    })?;
    save(path, &stored_from(cli, &tokens, Some(subject), None))?;
    println!("Logged in as {shown}. Tokens saved in {}", path.display());
    Ok(())
}

// ---- using the tokens ----

/// The stored tokens refreshed, the rotated refresh token saved at once.
async fn refresh(cli: &Cli, provider: &Provider, path: &Path, stored: Stored) -> Result<Stored> {
    let refresh = stored.refresh_token.clone().ok_or_else(|| {
        anyhow!("the access token expires and there is no refresh token; log in again")
    })?;
    let tokens = provider
        .client
        .exchange_refresh_token(&RefreshToken::new(refresh))
        .request_async(&provider.http())
        .await
        .context("refreshing the tokens (if the refresh token is refused, log in again)")?;
    if let Some(id_token) = tokens.id_token() {
        let (subject, _) = verify_id_token(provider, id_token, |_: Option<&Nonce>| Ok(()))?;
        if stored.subject.as_deref().is_some_and(|s| s != subject) {
            bail!("the refreshed ID token is for another user; log in again");
        }
    }
    let renewed = stored_from(cli, &tokens, stored.subject.clone(), Some(&stored));
    save(path, &renewed)?;
    Ok(renewed)
}

/// `whoami`: the userinfo claims, pretty-printed JSON.
async fn whoami(cli: &Cli, path: &Path) -> Result<()> {
    let mut stored = load_login(cli, path)?;
    let provider = Provider::discover(&cli.issuer, &cli.client_id).await?;
    // A minute to spare, as `token` by default.
    if needs_refresh(stored.expires_at, now(), Duration::from_secs(60)) {
        stored = refresh(cli, &provider, path, stored).await?;
    }
    let claims: UserInfoClaims<OtherClaims, CoreGenderClaim> = provider
        .client
        .user_info(
            AccessToken::new(stored.access_token.clone()),
            stored.subject.clone().map(SubjectIdentifier::new),
        )
        .context("discovery names no userinfo endpoint")?
        .request_async(&provider.http())
        .await
        .context("calling userinfo")?;
    let shown = serde_json::to_value(&claims).context("the claims")?;
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// `token`: the access token alone on stdout.
async fn token(cli: &Cli, path: &Path, min_valid: Duration) -> Result<()> {
    let mut stored = load_login(cli, path)?;
    // No network unless the token must be refreshed: scripts call this often.
    if needs_refresh(stored.expires_at, now(), min_valid) {
        let provider = Provider::discover(&cli.issuer, &cli.client_id).await?;
        stored = refresh(cli, &provider, path, stored).await?;
    }
    println!("{}", stored.access_token);
    Ok(())
}

/// RFC 7009 revocation of one token by this public client. Done by hand because the
/// library refuses any revocation endpoint that is not https, and a loopback issuer
/// (the example config's) serves http; anything else must still be https.
async fn revoke(
    provider: &Provider,
    endpoint: &RevocationUrl,
    client_id: &str,
    token: &str,
    hint: &str,
) -> Result<()> {
    let url = endpoint.url();
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        bail!("the revocation endpoint {url} is not https");
    }
    let response = provider
        .http
        .post(url.clone())
        .form(&[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", client_id),
        ])
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("{url} answered {status}: {body}");
    }
    Ok(())
}

/// `logout`: revoke, then forget.
async fn logout(cli: &Cli, path: &Path) -> Result<()> {
    let Some(stored) = load(path)? else {
        println!("Not logged in.");
        return Ok(());
    };
    if stored.issuer != cli.issuer {
        bail!(
            "{} holds a login to {}; pass --issuer {} to log out of it",
            path.display(),
            stored.issuer,
            stored.issuer
        );
    }
    let provider = Provider::discover(&cli.issuer, &cli.client_id).await?;
    let endpoint = provider
        .extra
        .revocation_endpoint
        .clone()
        .ok_or_else(|| anyhow!("{} offers no revocation endpoint", cli.issuer))?;
    // The refresh token first: at gatehouse it takes its whole family with it.
    let mut tokens = Vec::new();
    if let Some(refresh) = &stored.refresh_token {
        tokens.push((refresh.as_str(), "refresh_token"));
    }
    tokens.push((stored.access_token.as_str(), "access_token"));
    for (token, hint) in tokens {
        revoke(&provider, &endpoint, &stored.client_id, token, hint)
            .await
            .with_context(|| {
                format!(
                    "revoking the {hint} failed; {} is kept so you can try again",
                    path.display()
                )
            })?;
    }
    std::fs::remove_file(path).with_context(|| format!("deleting {}", path.display()))?;
    println!(
        "Logged out: the tokens are revoked and {} is deleted.",
        path.display()
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes on one line, as a user reads them.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs one command.
async fn run(cli: Cli) -> Result<()> {
    let path = match &cli.token_file {
        Some(path) => path.clone(),
        None => default_token_file(|name| std::env::var(name).ok())?,
    };
    match &cli.command {
        Command::Login(args) if args.device => login_device(&cli, args, &path).await,
        Command::Login(args) => login_loopback(&cli, args, &path).await,
        Command::Whoami => whoami(&cli, &path).await,
        Command::Token { min_valid } => token(&cli, &path, *min_valid).await,
        Command::Logout => logout(&cli, &path).await,
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    const ISSUER: &str = "https://id.example.com";

    #[test]
    fn a_callback_needs_this_logins_state_and_the_issuer() {
        let ok = "code=c-1&state=s-1&iss=https%3A%2F%2Fid.example.com";
        assert_eq!(check_callback(ok, "s-1", ISSUER), Ok("c-1".to_owned()));
        for (query, why) in [
            (
                "code=c-1&state=s-2&iss=https%3A%2F%2Fid.example.com",
                "state",
            ),
            ("code=c-1&iss=https%3A%2F%2Fid.example.com", "state"),
            ("code=c-1&state=s-1", "no iss"),
            (
                "code=c-1&state=s-1&iss=https%3A%2F%2Fevil.example",
                "issuer",
            ),
            (
                "code=c-1&code=c-2&state=s-1&iss=https%3A%2F%2Fid.example.com",
                "repeats",
            ),
            ("state=s-1&iss=https%3A%2F%2Fid.example.com", "no code"),
            (
                "error=access_denied&state=s-1&iss=https%3A%2F%2Fid.example.com",
                "access_denied",
            ),
        ] {
            let refused = check_callback(query, "s-1", ISSUER).expect_err(query);
            assert!(refused.contains(why), "{query}: {refused}");
        }
    }

    #[test]
    fn an_error_with_a_foreign_state_is_reported_as_the_state() {
        let refused = check_callback(
            "error=access_denied&state=other&iss=https%3A%2F%2Fid.example.com",
            "s-1",
            ISSUER,
        )
        .expect_err("refused");
        assert!(refused.contains("state"), "{refused}");
    }

    #[test]
    fn tokens_are_refreshed_when_they_expire_too_soon() {
        let min = Duration::from_secs(60);
        assert!(!needs_refresh(Some(1_000), 900, min));
        assert!(needs_refresh(Some(1_000), 941, min));
        assert!(needs_refresh(Some(1_000), 2_000, min));
        assert!(!needs_refresh(None, 2_000, min), "unknown expiry: as it is");
    }

    #[test]
    fn the_token_file_follows_xdg_then_home() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            default_token_file(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).ok(),
            Some(PathBuf::from("/x/gatehouse-cli/tokens.json"))
        );
        assert_eq!(
            default_token_file(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])).ok(),
            Some(PathBuf::from("/h/.config/gatehouse-cli/tokens.json")),
            "a relative XDG_CONFIG_HOME is ignored"
        );
        assert!(default_token_file(env(&[])).is_err());
    }

    #[test]
    fn the_token_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new").join("tokens.json");
        let stored = |access: &str| Stored {
            issuer: ISSUER.into(),
            client_id: "cli".into(),
            subject: Some("u-1".into()),
            access_token: access.into(),
            expires_at: Some(1),
            refresh_token: None,
            id_token: None,
            scope: None,
        };
        save(&path, &stored("a-1")).expect("saved");
        save(&path, &stored("a-2")).expect("saved again");
        let back = load(&path).expect("readable").expect("present");
        assert_eq!(back.access_token, "a-2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().expect("dir")), 0o700);
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["tokens.json"], "no temporary file left behind");
    }
}
