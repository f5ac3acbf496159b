//! The limit (issue 28): the least an actix-web server can do to answer a
//! client-credentials request with an ES256 JWT, for `bench/run.sh ref` to compare
//! gatehouse's scenario 1 against.
//!
//! `POST /token` reads and parses the urlencoded form and the client's id (HTTP Basic or
//! the form), checks nothing, and answers one access token shaped like gatehouse's
//! client-credentials token, signed with a P-256 key made at start. No logging, no
//! other route, no store, no config.
//!
//! Usage: `gatehouse-reference [ADDR]`, or `REFERENCE_BIND=ADDR`; default
//! `127.0.0.1:18183`. The issuer is `http://ADDR`.

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lifetime of an access token, as gatehouse's default.
const EXPIRES_IN: u64 = 3600;

/// The signing key and what every token repeats.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    issuer: String,
    /// The base64url JOSE header, computed once: `{"alg":"ES256","typ":"at+jwt","kid":..}`.
    header: String,
}

/// The form of a client-credentials request; unknown parameters are ignored.
#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    #[allow(dead_code)] // read as gatehouse reads it, never checked
    client_secret: Option<String>,
    scope: Option<String>,
}

/// The claims of gatehouse's client-credentials access token (RFC 9068).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
}

#[derive(Serialize)]
struct Answer {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// The client id and secret of an HTTP Basic `Authorization` header (RFC 6749 2.3.1).
fn basic(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn error(status: actix_web::http::StatusCode, code: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": code }))
}

async fn token(
    req: HttpRequest,
    form: web::Form<TokenForm>,
    signer: web::Data<Signer>,
) -> HttpResponse {
    let form = form.into_inner();
    if form.grant_type.as_deref() != Some("client_credentials") {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        );
    }
    let Some(client_id) = basic(&req).map(|(id, _secret)| id).or(form.client_id) else {
        return error(actix_web::http::StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let mut jti = [0u8; 16];
    if signer.rng.fill(&mut jti).is_err() {
        return error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        iss: &signer.issuer,
        sub: &client_id,
        client_id: &client_id,
        aud: &client_id,
        exp: now + EXPIRES_IN,
        iat: now,
        jti: B64.encode(jti),
        scope: form.scope.as_deref().unwrap_or_default(),
    };
    let Ok(claims) = serde_json::to_vec(&claims) else {
        return error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
        );
    };
    let mut jwt = String::with_capacity(signer.header.len() + claims.len() * 4 / 3 + 100);
    jwt.push_str(&signer.header);
    jwt.push('.');
    B64.encode_string(&claims, &mut jwt);
    let Ok(signature) = signer.key.sign(&signer.rng, jwt.as_bytes()) else {
        return error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
        );
    };
    jwt.push('.');
    B64.encode_string(signature.as_ref(), &mut jwt);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Answer {
            access_token: jwt,
            token_type: "Bearer",
            expires_in: EXPIRES_IN,
        })
}

fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("REFERENCE_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:18183".to_owned());
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| std::io::Error::other("cannot generate a P-256 key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| std::io::Error::other("cannot load the P-256 key"))?;
    // The kid: a short digest-free tag of the public key, enough for a header of the
    // same shape as gatehouse's.
    let kid = B64.encode(&key.public_key().as_ref()[1..13]);
    let header =
        B64.encode(serde_json::json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid }).to_string());
    let signer = web::Data::from(Arc::new(Signer {
        key,
        rng,
        issuer: format!("http://{bind}"),
        header,
    }));
    // As gatehouse: actix's default worker count, one per core this process may run on
    // (one under `taskset -c 1`).
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            App::new()
                .app_data(signer.clone())
                .route("/token", web::post().to(token))
        })
        .bind(&bind)?
        .run(),
    )
}
