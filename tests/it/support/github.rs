//! A fake GitHub: the OAuth endpoints (`/login/oauth/authorize`, which approves at once
//! as its one user; `/login/oauth/access_token`, which checks the client secret, the
//! code, the redirect URI and the PKCE verifier) and the REST API under `/api`
//! (`/user`, `/user/emails`, `/user/orgs`, `/user/teams`) for the access token it gave.
//! Its user octocat (id 583231) has an unverified primary email and a verified
//! secondary one, the org `acme` and the team `acme/ops`. Lists are paginated as
//! GitHub's are (`per_page`, default 30, at most 100; `page`); the fake can put filler
//! orgs and teams in front ([`FakeGithub::set_fillers`]) or answer `/user` with
//! something that is no JSON ([`FakeGithub::set_malformed`]).

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The client secret the fake accepts.
pub const CLIENT_SECRET: &str = "github-client-secret";

#[derive(Default)]
struct Fake {
    /// code -> (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    tokens: Vec<String>,
    /// What the last authorize request carried.
    last_authorize: HashMap<String, String>,
    /// Orgs and teams listed before `acme` and `acme/ops`.
    fillers: usize,
    /// `/user` answers a body that is no JSON.
    malformed: bool,
}

/// The running fake.
pub struct FakeGithub {
    pub port: u16,
    state: Arc<Mutex<Fake>>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeGithub {
    /// Serves the fake on a free port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(Fake::default()));
        let shared = web::Data::from(state.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/api/user", web::get().to(user))
                .route("/api/user/emails", web::get().to(emails))
                .route("/api/user/orgs", web::get().to(orgs))
                .route("/api/user/teams", web::get().to(teams))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            state,
            handle,
        }
    }

    /// The query of the last authorize request.
    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.state.lock().expect("lock").last_authorize.clone()
    }

    /// Lists `n` other orgs and teams before `acme` and `acme/ops`.
    pub fn set_fillers(&self, n: usize) {
        self.state.lock().expect("lock").fillers = n;
    }

    /// Makes `/user` answer 200 with a body that is no JSON.
    pub fn set_malformed(&self, malformed: bool) {
        self.state.lock().expect("lock").malformed = malformed;
    }

    /// Revokes every access token it gave (the user revoked the app).
    pub fn revoke_all(&self) {
        self.state.lock().expect("lock").tokens.clear();
    }

    /// Stops the fake.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn authorize(req: HttpRequest, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let query: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let code = format!(
        "code-{}",
        query.len() + fake.lock().expect("lock").codes.len()
    );
    let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
    let challenge = query.get("code_challenge").cloned().unwrap_or_default();
    let mut f = fake.lock().expect("lock");
    f.codes.insert(code.clone(), (redirect.clone(), challenge));
    f.last_authorize = query.clone();
    let state = query.get("state").cloned().unwrap_or_default();
    let location = format!(
        "{redirect}?code={code}&state={}",
        url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
    );
    HttpResponse::Found()
        .insert_header(("location", location))
        .finish()
}

async fn access_token(body: web::Bytes, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut f = fake.lock().expect("lock");
    let bad = || HttpResponse::Ok().json(json!({"error": "bad_verification_code"}));
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return HttpResponse::Ok().json(json!({"error": "incorrect_client_credentials"}));
    }
    let Some((redirect, challenge)) = form.get("code").and_then(|c| f.codes.remove(c)) else {
        return bad();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    if B64.encode(digest.as_ref()) != challenge || form.get("redirect_uri") != Some(&redirect) {
        return bad();
    }
    let token = format!("gho_{}", f.tokens.len() + 1000);
    f.tokens.push(token.clone());
    HttpResponse::Ok().json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email,read:org"}))
}

fn authorized(req: &HttpRequest, fake: &Mutex<Fake>) -> bool {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    header
        .strip_prefix("Bearer ")
        .is_some_and(|t| fake.lock().expect("lock").tokens.iter().any(|k| k == t))
}

fn api(req: &HttpRequest, fake: &Mutex<Fake>, body: serde_json::Value) -> HttpResponse {
    if authorized(req, fake) {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}))
    }
}

/// The page of `all` that `req`'s `per_page` and `page` ask for, as GitHub pages.
fn page(req: &HttpRequest, all: Vec<serde_json::Value>) -> serde_json::Value {
    let query: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let items: Vec<_> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    serde_json::Value::Array(items)
}

async fn user(req: HttpRequest, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    if fake.lock().expect("lock").malformed && authorized(&req, &fake) {
        return HttpResponse::Ok()
            .content_type("application/json")
            .body("<html>not json</html>");
    }
    api(
        &req,
        &fake,
        json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": "octo@evil.com"}),
    )
}

async fn emails(req: HttpRequest, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    api(
        &req,
        &fake,
        json!([
            {"email": "octo@evil.com", "primary": true, "verified": false},
            {"email": "octocat@acme.com", "primary": false, "verified": true}
        ]),
    )
}

async fn orgs(req: HttpRequest, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let fillers = fake.lock().expect("lock").fillers;
    let mut all: Vec<_> = (0..fillers)
        .map(|i| json!({"login": format!("filler-{i}")}))
        .collect();
    all.push(json!({"login": "acme"}));
    api(&req, &fake, page(&req, all))
}

async fn teams(req: HttpRequest, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let fillers = fake.lock().expect("lock").fillers;
    let mut all: Vec<_> = (0..fillers)
        .map(|i| json!({"slug": "t", "organization": {"login": format!("filler-{i}")}}))
        .collect();
    all.push(json!({"slug": "ops", "organization": {"login": "acme"}}));
    api(&req, &fake, page(&req, all))
}
