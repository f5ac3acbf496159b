//! Starting the server: load the config, build the first registry, bind, route, and
//! start the reloader. Used by `gatehouse serve` and by the tests alike.

use crate::config::{self, Loaded};
use crate::oauth::{authorize, discovery, introspect, jwks, revoke, token, userinfo};
use crate::registry::Registry;
use crate::secret::SecretVerifier;
use crate::state::AppState;
use crate::store::memory::MemoryStore;
use crate::tokens::keys::SigningKey;
use crate::web::{consent, login, logout, templates};
use crate::{health, reload};
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A running server.
pub struct Running {
    /// The address the listener is bound to (useful with port 0).
    pub addr: SocketAddr,
    pub state: web::Data<AppState>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until the server stops (on SIGINT/SIGTERM, or `stop`).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server
            .await
            .context("server task failed")?
            .context("server failed")
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// The signing key used when the config lists none: made once per process so that
/// reloads do not invalidate tokens already issued.
#[derive(Default)]
pub struct FallbackKey(Option<Arc<SigningKey>>);

impl FallbackKey {
    /// The key to pass to `Registry::new` for `loaded`: none when it has keys of its own.
    pub fn for_config(&mut self, loaded: &Loaded) -> anyhow::Result<Option<Arc<SigningKey>>> {
        if !loaded.config.keys.is_empty() {
            return Ok(None);
        }
        if self.0.is_none() {
            let (key, _) = SigningKey::generate(crate::config::model::Algorithm::ES256, None)
                .context("generating an ephemeral signing key")?;
            tracing::warn!(
                kid = key.kid(),
                "no [[keys]] configured: signing with an ephemeral ES256 key; tokens will not \
                 survive a restart (make one with `gatehouse keygen`)"
            );
            self.0 = Some(Arc::new(key));
        }
        Ok(self.0.clone())
    }
}

/// Loads `config_path` and logs its warnings; the error lists every problem.
pub fn load_config(config_path: &Path) -> Result<Loaded, config::Rejected> {
    let loaded = config::load(config_path)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded)
}

/// How often expired entries are freed from the in-memory store.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

fn spawn_sweeper(store: Arc<MemoryStore>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            store.sweep();
        }
    });
}

/// Loads the config, binds its `[server] bind` address and starts serving.
pub async fn start(config_path: PathBuf) -> anyhow::Result<Running> {
    // jsonwebtoken verifies our tokens (userinfo, logout hints) with aws-lc; an Err
    // means a provider is installed already, which is as good.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let loaded = load_config(&config_path)?;
    let mut fallback = FallbackKey::default();
    let fallback_key = fallback.for_config(&loaded)?;
    let Loaded {
        config,
        files,
        fingerprint,
        ..
    } = loaded;
    let registry = Registry::new(config, 1, fallback_key);
    tracing::info!(
        issuer = %registry.issuer,
        bind = %registry.bind,
        clients = registry.clients().len(),
        users = registry.user_count(),
        keys = registry.keys.len(),
        "configuration loaded"
    );
    let listener = std::net::TcpListener::bind(registry.bind)
        .with_context(|| format!("binding {}", registry.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let store = Arc::new(MemoryStore::default());
    spawn_sweeper(Arc::clone(&store));
    let state = web::Data::new(AppState::new(registry, SecretVerifier::new(cores), store));
    let app_state = state.clone();
    let server = HttpServer::new(move || App::new().app_data(app_state.clone()).configure(routes))
        .listen(listener)
        .context("starting the HTTP server")?
        .run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    reload::spawn(
        state.clone().into_inner(),
        config_path,
        files,
        fingerprint,
        fallback,
    );
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        state,
        handle,
        server,
    })
}

/// `GET /assets/gatehouse.css`: the pages' only stylesheet.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(templates::STYLESHEET)
}

/// Every route the server answers.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(token::MAX_BODY))
        .service(
            web::resource("/authorize")
                .route(web::get().to(authorize::get))
                .route(web::post().to(authorize::post)),
        )
        .service(web::resource("/login").route(web::post().to(login::submit)))
        .service(web::resource("/consent").route(web::post().to(consent::submit)))
        .service(
            web::resource("/logout")
                .route(web::get().to(logout::confirm))
                .route(web::post().to(logout::submit)),
        )
        .service(web::resource("/token").route(web::post().to(token::token)))
        .service(web::resource("/introspect").route(web::post().to(introspect::introspect)))
        .service(web::resource("/revoke").route(web::post().to(revoke::revoke)))
        .service(
            web::resource("/userinfo")
                .route(web::get().to(userinfo::userinfo))
                .route(web::post().to(userinfo::userinfo)),
        )
        .service(web::resource("/assets/gatehouse.css").route(web::get().to(stylesheet)))
        .service(web::resource("/jwks").route(web::get().to(jwks::jwks)))
        .service(
            web::resource("/.well-known/oauth-authorization-server")
                .route(web::get().to(discovery::metadata)),
        )
        .service(
            web::resource("/.well-known/openid-configuration")
                .route(web::get().to(discovery::metadata)),
        )
        .service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .default_service(web::to(|| async {
            HttpResponse::NotFound().body("not found\n")
        }));
}
