//! Starting the server: load the config, build the first registry, bind, route, and
//! start the reloader. Used by `gatehouse serve` and by the tests alike.

use crate::clock::Clock;
use crate::http::client_ip::ClientIp;
use crate::oauth::{
    cors, device, discovery, introspect, jwks, par, revoke, token_endpoint, userinfo,
};
use crate::secret::SecretVerifier;
use crate::state::AppState;
use crate::web::{
    authorize, consent, device as device_page, flood, login, logout, second_factor, upstream,
};
use crate::{health, reload, store, telemetry, templates};
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A running server.
pub struct Running {
    /// The address the listener is bound to (useful with port 0).
    pub addr: SocketAddr,
    /// The admin listener's address, when `[server] admin_bind` moves /metrics there.
    pub admin_addr: Option<SocketAddr>,
    pub state: web::Data<AppState>,
    handles: Vec<ServerHandle>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    drain: web::Data<Drain>,
}

impl Running {
    /// Waits until the server stops (on SIGINT/SIGTERM, or `stop`).
    pub async fn wait(self) -> anyhow::Result<()> {
        for server in self.servers {
            server
                .await
                .context("server task failed")?
                .context("server failed")?;
        }
        Ok(())
    }

    /// Stops accepting, lets in-flight requests finish, and waits (what SIGTERM does).
    pub async fn stop(self) {
        shut_down(&self.handles, &self.drain).await;
    }
}

/// The requests being answered, for a graceful shutdown that loses none.
///
/// actix's own graceful stop races: it stops the accept thread first, and a worker
/// that sees the accept thread's channel close before its own stop message exits at
/// once, dropping the connections it serves, requests in flight included (the client
/// gets an incomplete message). So [`shut_down`] pauses accepting, marks the server
/// draining (each answer then closes its connection, so keep-alive connections end
/// with the answer they were waiting for), waits until no request is in flight (the
/// count is taken back when an answer's body has been written), and only then asks
/// actix to stop.
#[derive(Default)]
pub(crate) struct Drain {
    in_flight: AtomicUsize,
    draining: AtomicBool,
    idle: tokio::sync::Notify,
}

impl Drain {
    /// Resolves once no request is in flight.
    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One request in flight: counted while it lives.
struct InFlight(web::Data<Drain>);

impl InFlight {
    fn enter(drain: web::Data<Drain>) -> Self {
        drain.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(drain)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted in flight until it is written.
struct Counted {
    body: BoxBody,
    _in_flight: Option<InFlight>,
}

impl MessageBody for Counted {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<actix_web::web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Middleware on every route, outermost: counts the request in flight until its
/// answer is written, and while draining makes the answer close its connection.
async fn count_in_flight(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Counted>, actix_web::Error> {
    let drain = req.app_data::<web::Data<Drain>>().cloned();
    let in_flight = drain.clone().map(InFlight::enter);
    let mut res = next.call(req).await?;
    if drain.is_some_and(|d| d.draining.load(Ordering::SeqCst)) {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res.map_body(|_, body| Counted {
        body: body.boxed(),
        _in_flight: in_flight,
    }))
}

/// The graceful shutdown (see [`Drain`]): stop accepting, let the requests in flight
/// finish (at most [`SHUTDOWN_TIMEOUT_SECS`]), then stop the servers.
async fn shut_down(handles: &[ServerHandle], drain: &Drain) {
    for handle in handles {
        handle.pause().await;
    }
    drain.draining.store(true, Ordering::SeqCst);
    let limit = Duration::from_secs(SHUTDOWN_TIMEOUT_SECS);
    if tokio::time::timeout(limit, drain.idle()).await.is_err() {
        tracing::warn!(
            in_flight = drain.in_flight.load(Ordering::SeqCst),
            "requests still in flight after the shutdown timeout are dropped"
        );
    }
    for handle in handles {
        handle.stop(true).await;
    }
}

/// On SIGTERM or SIGINT, [`shut_down`] (actix's own signal handling is off: its stop
/// alone can drop requests in flight).
fn spawn_signal_handler(handles: Vec<ServerHandle>, drain: web::Data<Drain>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for SIGTERM/SIGINT; stop the server with SIGKILL");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping gracefully"),
            _ = int.recv() => tracing::info!("SIGINT: stopping gracefully"),
        }
        shut_down(&handles, &drain).await;
    });
}

/// How often idle addresses are freed from the page limiter (and the CSRF key is
/// offered to the store again).
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// How long a client has to send its request head (slow-loris guard), and then again
/// its body: actix's own timeout covers the head only, [`read_body_in_time`] the body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may take to finish at shutdown.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// Every [`SWEEP_EVERY`]: frees idle addresses from the page limiter, offers the
/// CSRF key to the store again (`AppState::share_form_key`: a Redis that restarted
/// empty gets it back), and checks the store's epoch (`AppState::check_store_epoch`:
/// a store that lost its records is logged, and the tokens it can no longer judge end).
fn spawn_sweeper(state: web::Data<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            state.pages.retain_recent();
            if let Err(e) = state.share_form_key().await {
                tracing::debug!(error = %e, "cannot offer the CSRF key to the store");
            }
            if let Err(e) = state.check_store_epoch().await {
                tracing::debug!(error = %e, "cannot read the store's epoch");
            }
        }
    });
}

/// Middleware on every route: works out the caller's address once (believing
/// `X-Forwarded-For` only from trusted proxies) for handlers to read as `ClientIp`.
async fn resolve_client_ip(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let registry = state.snapshot();
        ClientIp::resolve_into(req.request(), &registry.server.trusted_proxies);
    }
    next.call(req).await
}

/// Middleware on every route: reads the whole body (at most `MAX_BODY`) within
/// [`REQUEST_TIMEOUT`] before the handler runs, so a client that announces a body and
/// never sends it is answered 408 and disconnected instead of holding a connection
/// and a handler forever. Handlers then read the body from memory.
async fn read_body_in_time<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if announces_body(&req) {
        // actix feeds a body that came with the head to the payload only after this
        // first poll: one yield lets it, and the deadline's timer is then set only for
        // a body still on its way (a timer costs about 1,300 instructions a request).
        tokio::task::yield_now().await;
    }
    let payload = req.extract::<web::Payload>().await?;
    let answer = |req: ServiceRequest, response: HttpResponse| {
        Ok(req.into_response(response).map_into_right_body())
    };
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        payload.to_bytes_limited(token_endpoint::MAX_BODY),
    )
    .await
    {
        Ok(Ok(Ok(body))) => {
            req.set_payload(body.into());
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Ok(Ok(Err(e))) => answer(
            req,
            HttpResponse::BadRequest()
                .force_close()
                .body(format!("the request body could not be read: {e}\n")),
        ),
        Ok(Err(_too_large)) => answer(
            req,
            HttpResponse::PayloadTooLarge()
                .force_close()
                .body("request bodies are limited to 64 KiB\n"),
        ),
        Err(_elapsed) => {
            tracing::warn!(event = "request_timeout", remote = %ClientIp::of(req.request()), path = %req.path(), "the request body did not arrive in time");
            answer(
                req,
                HttpResponse::RequestTimeout()
                    .force_close()
                    .body("the request body did not arrive in time\n"),
            )
        }
    }
}

/// True when `req`'s head announces a body (a `Content-Length` other than 0, or a
/// `Transfer-Encoding`).
fn announces_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// Starts an HTTP server on `listener` with the routes `configure` adds.
fn serve(
    listener: std::net::TcpListener,
    state: &web::Data<AppState>,
    drain: &web::Data<Drain>,
    configure: fn(&mut web::ServiceConfig),
) -> anyhow::Result<(ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let app_state = state.clone();
    let drain = drain.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(drain.clone())
            .wrap(from_fn(read_body_in_time))
            .wrap(from_fn(resolve_client_ip))
            .wrap(from_fn(telemetry::count_requests))
            .wrap(from_fn(count_in_flight))
            .configure(configure)
    })
    .disable_signals()
    .client_request_timeout(REQUEST_TIMEOUT)
    .client_disconnect_timeout(Duration::from_secs(2))
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .listen(listener)
    .context("starting the HTTP server")?
    .run();
    Ok((server.handle(), tokio::spawn(server)))
}

fn listen(addr: SocketAddr) -> anyhow::Result<(std::net::TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    Ok((listener, bound))
}

/// Loads the config, binds its `[server] bind` address (and `admin_bind`) and serves.
pub async fn start(config_path: PathBuf) -> anyhow::Result<Running> {
    start_on(config_path, None).await
}

/// [`start`], listening on `bind` instead of `[server] bind` when given (`gatehouse
/// serve --bind`, `GATEHOUSE_BIND`): a container sets 0.0.0.0 without editing the
/// config.
pub async fn start_on(config_path: PathBuf, bind: Option<SocketAddr>) -> anyhow::Result<Running> {
    telemetry::handle();
    let clock = Clock::system();
    let reload::FirstGeneration {
        registry,
        fallback,
        watched,
        fingerprint,
    } = reload::first_generation(config_path.clone(), clock.system_time()).await?;
    tracing::info!(
        issuer = %registry.issuer,
        config_sha256 = registry.config_sha256.as_deref().unwrap_or_default(),
        bind = %bind.unwrap_or(registry.server.bind),
        clients = registry.clients().len(),
        users = registry.user_count(),
        keys = registry.keys.all().len(),
        "configuration loaded"
    );
    let (listener, addr) = listen(bind.unwrap_or(registry.server.bind))?;
    let admin = registry.server.admin_bind.map(listen).transpose()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let store_settings = registry.store.clone();
    let store = store::open(&store_settings, &clock)
        .await
        .with_context(|| {
            format!(
                "cannot reach the store {}; start it first (once running, the server survives it going away)",
                store_settings.backend.redacted()
            )
        })?;
    tracing::info!(store = %store_settings.backend.redacted(), key_prefix = %store_settings.key_prefix, "store opened");
    let state = web::Data::new(
        AppState::new(
            registry,
            store_settings.backend.redacted(),
            clock,
            SecretVerifier::new(cores),
            store,
        )
        .await
        .context("preparing the server state")?,
    );
    spawn_sweeper(state.clone());

    let mut handles = Vec::new();
    let mut servers = Vec::new();
    let drain = web::Data::new(Drain::default());
    let admin_addr = match admin {
        Some((admin_listener, admin_addr)) => {
            let (handle, server) = serve(listener, &state, &drain, public_routes)?;
            handles.push(handle);
            servers.push(server);
            let (handle, server) = serve(admin_listener, &state, &drain, admin_routes)?;
            handles.push(handle);
            servers.push(server);
            tracing::info!(addr = %admin_addr, "admin listener (/metrics, /healthz, /readyz)");
            Some(admin_addr)
        }
        None => {
            let (handle, server) = serve(listener, &state, &drain, all_routes)?;
            handles.push(handle);
            servers.push(server);
            None
        }
    };
    reload::spawn(
        state.clone().into_inner(),
        config_path,
        watched,
        fingerprint,
        fallback,
    );
    spawn_signal_handler(handles.clone(), drain.clone());
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        admin_addr,
        state,
        handles,
        servers,
        drain,
    })
}

/// `GET /assets/gatehouse.css`: the pages' only stylesheet.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(templates::STYLESHEET)
}

/// `GET /assets/passkey.js`: the pages' only script (passkey login and enrolment).
async fn passkey_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(templates::PASSKEY_SCRIPT)
}

/// The operator's listener (`[server] admin_bind`): metrics and probes, `/readyz` with
/// its details.
fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(telemetry::metrics_page)))
        .service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz_details)))
        .service(web::resource("/revoke").route(web::post().to(crate::admin::revoke)));
}

/// Every route on one listener (no `admin_bind`): the probes too, but `/readyz` says
/// only its status there; `/metrics` stays public (docs/operations.md: set
/// `admin_bind` or keep `/metrics` behind the proxy).
fn all_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(telemetry::metrics_page)))
        .service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)));
    public_routes(cfg);
}

/// The routes clients and browsers use.
fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(token_endpoint::MAX_BODY))
        // Browser apps call these from their own origins: CORS per client.
        // `/introspect` is server-to-server and has none.
        .service(
            web::resource("/token")
                .wrap(from_fn(cors::for_token))
                .route(web::post().to(token_endpoint::token)),
        )
        .service(
            web::resource("/device_authorization")
                .wrap(from_fn(cors::for_device_authorization))
                .route(web::post().to(device::authorize)),
        )
        .service(
            web::resource("/par")
                .wrap(from_fn(cors::for_par))
                .route(web::post().to(par::push)),
        )
        .service(web::resource("/introspect").route(web::post().to(introspect::introspect)))
        .service(
            web::resource("/revoke")
                .wrap(from_fn(cors::for_revoke))
                .route(web::post().to(revoke::revoke)),
        )
        .service(
            web::resource("/userinfo")
                .wrap(from_fn(cors::for_userinfo))
                .route(web::get().to(userinfo::userinfo))
                .route(web::post().to(userinfo::userinfo)),
        )
        .service(web::resource("/assets/gatehouse.css").route(web::get().to(stylesheet)))
        .service(web::resource("/assets/passkey.js").route(web::get().to(passkey_script)))
        .service(web::resource("/jwks").route(web::get().to(jwks::jwks)))
        .service(
            web::resource("/.well-known/oauth-authorization-server")
                .route(web::get().to(discovery::metadata)),
        )
        .service(
            web::resource("/.well-known/openid-configuration")
                .route(web::get().to(discovery::metadata)),
        )
        // The pages, behind the per-address rate cap. An empty-prefix scope matches
        // every path, so it comes last; unknown paths get its 404.
        .service(
            web::scope("")
                .wrap(from_fn(flood::limit_pages))
                .service(
                    web::resource("/authorize")
                        .route(web::get().to(authorize::get))
                        .route(web::post().to(authorize::post)),
                )
                .service(web::resource("/login").route(web::post().to(login::submit)))
                .service(web::resource("/login/upstream").route(web::post().to(upstream::start)))
                .service(
                    web::resource("/login/second-factor")
                        .route(web::post().to(second_factor::submit)),
                )
                .service(
                    web::resource("/login/passkey")
                        .route(web::post().to(crate::web::passkey::login::submit)),
                )
                .service(
                    web::resource("/account/passkeys")
                        .route(web::get().to(crate::web::passkey::enrol::show))
                        .route(web::post().to(crate::web::passkey::enrol::submit)),
                )
                .service(
                    web::resource("/login/callback/{provider}")
                        .route(web::get().to(upstream::callback)),
                )
                .service(web::resource("/consent").route(web::post().to(consent::submit)))
                .service(
                    web::resource("/device")
                        .route(web::get().to(device_page::show))
                        .route(web::post().to(device_page::enter)),
                )
                .service(
                    web::resource("/device/second-factor")
                        .route(web::post().to(device_page::second_factor)),
                )
                .service(web::resource("/device/login").route(web::post().to(device_page::log_in)))
                .service(web::resource("/device/decide").route(web::post().to(device_page::decide)))
                .service(
                    web::resource("/logout")
                        .route(web::get().to(logout::confirm))
                        .route(web::post().to(logout::submit)),
                )
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().body("not found\n")
                })),
        );
}
