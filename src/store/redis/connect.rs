//! Connecting the Redis store: to one server by its URL (`redis://`, or `rediss://`
//! with a CA of one's own and a client certificate), or to the master a set of Redis
//! Sentinels names, asked again whenever that master stops answering (a failover); and,
//! after the writes a failover must not lose, waiting for a replica to hold them
//! (`WAIT 1`).
//!
//! The store's commands go through a [`Link`], a `ConnectionLike`: multiplexed
//! connections to the master, one per thread that sends commands to one server by
//! URL ([`Direct`]), one shared behind Sentinels. A further one, the *lane*, carries
//! the `WAIT`s: `WAIT`
//! blocks the connection it is sent on, so on the shared one it would hold up every
//! other request. `WAIT` counts the writes of its own connection, so each round on the
//! lane first writes a mark (after the writes it is to cover, which Redis has already
//! answered) and then waits for that mark: a replica that has it has every write before
//! it. Rounds are group commits: the writes that finish while one round runs are covered
//! by the next, one round for all of them.

use crate::load::{StoreSentinel, StoreTls};
use ::redis::aio::MultiplexedConnection;
use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisFuture, RedisResult, Role, ServerErrorKind, TlsMode, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a command may wait for Redis's answer: past it the request fails
/// (`temporarily_unavailable`) rather than hang. A local Redis answers in well under a
/// millisecond.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long connecting to Redis may take (a host that drops packets).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long asking the Sentinels for the master and connecting to it may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the mark a `WAIT` round writes lives.
const MARK_TTL_MS: u64 = 60_000;

/// The connection the Redis store sends its commands through (cheap to clone).
#[derive(Clone)]
pub(crate) struct Link(Arc<Shared>);

struct Shared {
    route: Route,
    /// The database the URL names.
    db: i64,
    /// How long a `WAIT` may take; zero: no waiting.
    wait: Duration,
    /// The key each `WAIT` round writes before waiting.
    mark: Vec<u8>,
    /// One `WAIT` round at a time.
    turn: tokio::sync::Mutex<()>,
    /// Rounds begun and the last one finished, numbered from 1.
    started: AtomicU64,
    done: AtomicU64,
}

enum Route {
    /// One server, by URL: connections that reconnect by themselves, one per thread
    /// that sends commands (see [`Direct`]).
    Direct(Box<Direct>),
    /// The master the Sentinels name.
    Sentinel(Box<Followed>),
}

/// One server by URL. Each thread that sends commands (an HTTP worker, a thread of the
/// main runtime) gets a connection of its own, made on that thread's runtime, so a
/// command and its answer never cross threads: through one shared connection every
/// command went to the connection's driver task on another thread and its answer came
/// back, two thread wake-ups per command (a fifth of the server's CPU on one core).
struct Direct {
    client: ::redis::Client,
    config: ConnectionManagerConfig,
    lane: Option<ConnectionManager>,
    /// Which link this is, for the threads' connections (links of several servers, or
    /// of a reloaded store, may share a thread).
    id: u64,
    /// How many times a thread found its connection broken: the threads' connections
    /// made before the last time are replaced.
    broken: AtomicU64,
}

/// The links made so far, to tell their per-thread connections apart.
static LINKS: AtomicU64 = AtomicU64::new(0);

/// A thread's own connection for one link.
struct Own {
    link_id: u64,
    /// Held weakly: a dropped link's connection goes at this thread's next new one.
    link: std::sync::Weak<Shared>,
    /// [`Direct::broken`] when it was made.
    generation: u64,
    connection: ConnectionManager,
}

thread_local! {
    /// This thread's connection for each live link.
    static OWN: std::cell::RefCell<Vec<Own>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The master of a Sentinel-watched set, as last found; forgotten when it fails, so
/// the next command asks the Sentinels again.
struct Followed {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    lane_config: AsyncConnectionConfig,
    held: Mutex<Option<Master>>,
    found: AtomicU64,
}

#[derive(Clone)]
struct Master {
    main: MultiplexedConnection,
    lane: MultiplexedConnection,
    /// Which finding this is (1, 2, ...): a failure forgets only the one it met.
    generation: u64,
}

/// What waiting for a replica came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// A replica has every write before the mark.
    Confirmed,
    /// The master has no replica connected: nothing to wait for.
    NoReplica,
    /// No replica confirmed in time.
    TimedOut,
}

impl Waited {
    fn label(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::NoReplica => "no_replica",
            Self::TimedOut => "timed_out",
        }
    }
}

/// True when `error` means the connection, or the server behind it, is not the
/// master any more: gone (refused, reset, timed out) or demoted (`READONLY`). The
/// Sentinels are asked again; any other error (a script's) leaves the master be.
fn master_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

/// True when a round that finished (`done`, numbered from 1) began after a caller
/// read `ticket` rounds begun: that round's mark came after the caller's write.
fn covered(ticket: u64, done: u64) -> bool {
    done > ticket
}

/// The CA and client certificate of `tls` as the redis crate takes them.
fn certificates(tls: &StoreTls) -> ::redis::TlsCertificates {
    ::redis::TlsCertificates {
        client_tls: tls
            .client
            .as_ref()
            .map(|(cert, key)| ::redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
        root_cert: tls.ca.clone(),
    }
}

/// Connects to Redis: to `url`, or with `sentinel` to the master the Sentinels name
/// (`url` then gives the scheme, user, password and database). `tls` applies to a
/// `rediss://` URL, to the master and the Sentinels alike. Security-relevant writes
/// will wait `wait` for a replica; `mark` is the key their rounds write.
pub(crate) async fn link(
    url: &str,
    tls: &StoreTls,
    sentinel: Option<&StoreSentinel>,
    wait: Duration,
    mark: Vec<u8>,
) -> RedisResult<Link> {
    if url.starts_with("rediss://") {
        // rustls picks its provider per process; aws-lc-rs is the one built in.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let db = url.into_connection_info()?.redis_settings().db();
    let route = match sentinel {
        None => direct(url, tls, wait).await?,
        Some(sentinel) => {
            let followed = Followed {
                sentinels: tokio::sync::Mutex::new(sentinel_client(url, tls, sentinel)?),
                config: AsyncConnectionConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT)),
                lane_config: AsyncConnectionConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT + wait))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT)),
                held: Mutex::new(None),
                found: AtomicU64::new(0),
            };
            followed.master().await?;
            Route::Sentinel(Box::new(followed))
        }
    };
    Ok(Link(Arc::new(Shared {
        route,
        db,
        wait,
        mark,
        turn: tokio::sync::Mutex::new(()),
        started: AtomicU64::new(0),
        done: AtomicU64::new(0),
    })))
}

/// One server by URL, through connections that reconnect by themselves.
async fn direct(url: &str, tls: &StoreTls, wait: Duration) -> RedisResult<Route> {
    let client = if *tls == StoreTls::default() {
        ::redis::Client::open(url)
    } else {
        ::redis::Client::build_with_tls(url, certificates(tls))
    }?;
    let config = |response: Duration| {
        ConnectionManagerConfig::new()
            .set_response_timeout(Some(response))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            // One attempt per reconnection: while Redis is down, requests fail at once
            // and the next request tries again, instead of queueing behind backoffs.
            .set_number_of_retries(0)
    };
    // Redis answers at the start, or the start fails; the connection is then left to
    // the first thread's own.
    ConnectionManager::new_with_config(client.clone(), config(RESPONSE_TIMEOUT)).await?;
    let lane = if wait.is_zero() {
        None
    } else {
        Some(
            ConnectionManager::new_with_config(client.clone(), config(RESPONSE_TIMEOUT + wait))
                .await?,
        )
    };
    Ok(Route::Direct(Box::new(Direct {
        client,
        config: config(RESPONSE_TIMEOUT),
        lane,
        id: LINKS.fetch_add(1, Ordering::Relaxed),
        broken: AtomicU64::new(0),
    })))
}

impl Direct {
    /// This thread's connection for this link, made (lazily: it connects with its first
    /// command, on this thread's runtime) on first use or after another thread's
    /// connection was found broken; forgets those of dropped links. With it, the
    /// generation it belongs to.
    fn connection(&self, link: &Arc<Shared>) -> RedisResult<(ConnectionManager, u64)> {
        let generation = self.broken.load(Ordering::Acquire);
        OWN.with_borrow_mut(|links| {
            let found = links.iter_mut().find(|own| own.link_id == self.id);
            if let Some(own) = found.as_ref().filter(|own| own.generation == generation) {
                return Ok((own.connection.clone(), generation));
            }
            let connection =
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
            match found {
                Some(own) => {
                    own.connection = connection.clone();
                    own.generation = generation;
                }
                None => {
                    links.retain(|own| own.link.strong_count() > 0);
                    links.push(Own {
                        link_id: self.id,
                        link: Arc::downgrade(link),
                        generation,
                        connection: connection.clone(),
                    });
                }
            }
            Ok((connection, generation))
        })
    }

    /// After `result` of a command on a connection of `generation`: when it says the
    /// connection is gone (Redis restarted, the network cut), every thread's connection
    /// of that generation is replaced at its next command, as one shared connection
    /// would have reconnected for all (this one reconnects by itself).
    fn check<T>(&self, generation: u64, result: &RedisResult<T>) {
        if result
            .as_ref()
            .is_err_and(RedisError::is_unrecoverable_error)
        {
            let _ = self.broken.compare_exchange(
                generation,
                generation + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// The Sentinels of `sentinel`, asked for its master, which is spoken to with `url`'s
/// user, password and database; over TLS (`tls`) to both when `url` is `rediss://`.
fn sentinel_client(
    url: &str,
    tls: &StoreTls,
    sentinel: &StoreSentinel,
) -> RedisResult<SentinelClient> {
    let info = url.into_connection_info()?;
    let secure = url.starts_with("rediss://");
    let addresses = sentinel.sentinels.iter().map(|(host, port)| {
        if secure {
            ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.clone(), *port)
        }
    });
    let redis = info.redis_settings();
    let mut builder =
        SentinelClientBuilder::new(addresses, &sentinel.master_name, SentinelServerType::Master)?
            .set_client_to_redis_db(redis.db());
    if let Some(user) = redis.username() {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = redis.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(password) = &sentinel.password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if secure {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if *tls != StoreTls::default() {
            builder = builder
                .set_client_to_redis_certificates(certificates(tls))
                .set_client_to_sentinel_certificates(certificates(tls));
        }
    }
    builder.build()
}

impl Followed {
    /// The master as last found; else asks the Sentinels (one caller at a time: the
    /// others then take what it found).
    async fn master(&self) -> RedisResult<Master> {
        if let Some(master) = self.last() {
            return Ok(master);
        }
        let mut sentinels = self.sentinels.lock().await;
        if let Some(master) = self.last() {
            return Ok(master);
        }
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, async {
            let client = sentinels.async_get_client().await?;
            let main = client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            let lane = client
                .get_multiplexed_async_connection_with_config(&self.lane_config)
                .await?;
            Ok::<_, RedisError>((main, lane, client.get_connection_info().addr().to_string()))
        })
        .await
        .map_err(|_| {
            RedisError::from((
                ErrorKind::Io,
                "the Sentinels did not name a reachable master in time",
            ))
        })??;
        let (main, lane, address) = found;
        let generation = self.found.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(
            event = "store_master_found",
            master = %address,
            generation,
            "the Redis master, as the Sentinels name it"
        );
        let master = Master {
            main,
            lane,
            generation,
        };
        if let Ok(mut held) = self.held.lock() {
            *held = Some(master.clone());
        }
        Ok(master)
    }

    fn last(&self) -> Option<Master> {
        self.held.lock().ok().and_then(|held| held.clone())
    }

    /// After `result` of a command on `master`: forgets that master when the error
    /// says it is gone or demoted, so the next command asks the Sentinels.
    fn check<T>(&self, master: &Master, result: &RedisResult<T>) {
        let Err(error) = result else { return };
        if !master_lost(error) {
            return;
        }
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if held
            .as_ref()
            .is_some_and(|m| m.generation == master.generation)
        {
            *held = None;
            tracing::warn!(
                event = "store_master_lost",
                error = %error,
                "the Redis master stopped answering: asking the Sentinels for the master"
            );
            metrics::counter!("gatehouse_store_master_lost_total").increment(1);
        }
    }
}

impl Link {
    /// After a security-relevant write that Redis answered: waits, at most the
    /// configured time, until one replica has it (`WAIT 1`), when the master has a
    /// replica. A wait that times out or fails is logged and counted, never an error:
    /// the write itself is done.
    pub(crate) async fn wait_for_replica(&self) {
        let shared = &self.0;
        if shared.wait.is_zero() {
            return;
        }
        let ticket = shared.started.load(Ordering::SeqCst);
        let _turn = shared.turn.lock().await;
        if covered(ticket, shared.done.load(Ordering::SeqCst)) {
            return;
        }
        let round = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = self.round().await;
        shared.done.store(round, Ordering::SeqCst);
        let result = match &outcome {
            Ok(waited) => waited.label(),
            Err(_) => "failed",
        };
        metrics::counter!("gatehouse_store_replica_waits_total", "result" => result).increment(1);
        match outcome {
            Ok(Waited::TimedOut) => tracing::warn!(
                event = "store_replica_wait_timeout",
                wait_ms = shared.wait.as_millis() as u64,
                "no Redis replica confirmed the last writes in time: answered anyway; a \
                 failover now could lose them"
            ),
            Err(error) => tracing::warn!(
                event = "store_replica_wait_failed",
                error = %error,
                "waiting for a Redis replica failed: answered anyway"
            ),
            Ok(_) => {}
        }
    }

    /// One round: the mark written and the master's replicas read, then `WAIT 1`
    /// for the mark when there is a replica.
    async fn round(&self) -> RedisResult<Waited> {
        let shared = &self.0;
        let mut mark = ::redis::pipe();
        mark.cmd("SET")
            .arg(&shared.mark)
            .arg(b"")
            .arg("PX")
            .arg(MARK_TTL_MS)
            .ignore()
            .cmd("ROLE");
        let ms = u64::try_from(shared.wait.as_millis()).unwrap_or(u64::MAX);
        let mut wait = ::redis::cmd("WAIT");
        wait.arg(1).arg(ms);
        match &shared.route {
            Route::Direct(direct) => {
                let Some(lane) = &direct.lane else {
                    return Ok(Waited::NoReplica);
                };
                let mut lane = lane.clone();
                let (role,): (Role,) = mark.query_async(&mut lane).await?;
                if !has_replica(&role) {
                    return Ok(Waited::NoReplica);
                }
                let acked: u64 = wait.query_async(&mut lane).await?;
                Ok(if acked >= 1 {
                    Waited::Confirmed
                } else {
                    Waited::TimedOut
                })
            }
            Route::Sentinel(followed) => {
                let master = followed.master().await?;
                let mut lane = master.lane.clone();
                let role: RedisResult<(Role,)> = mark.query_async(&mut lane).await;
                followed.check(&master, &role);
                if !has_replica(&role?.0) {
                    return Ok(Waited::NoReplica);
                }
                let acked: RedisResult<u64> = wait.query_async(&mut lane).await;
                followed.check(&master, &acked);
                Ok(if acked? >= 1 {
                    Waited::Confirmed
                } else {
                    Waited::TimedOut
                })
            }
        }
    }
}

/// True when `role` is a master's with at least one replica connected.
fn has_replica(role: &Role) -> bool {
    matches!(role, Role::Primary { replicas, .. } if !replicas.is_empty())
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match &self.0.route {
                Route::Direct(direct) => {
                    let (mut conn, generation) = direct.connection(&self.0)?;
                    let result = conn.req_packed_command(cmd).await;
                    direct.check(generation, &result);
                    result
                }
                Route::Sentinel(followed) => {
                    let master = followed.master().await?;
                    let mut conn = master.main.clone();
                    let result = conn.req_packed_command(cmd).await;
                    followed.check(&master, &result);
                    result
                }
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match &self.0.route {
                Route::Direct(direct) => {
                    let (mut conn, generation) = direct.connection(&self.0)?;
                    let result = conn.req_packed_commands(pipeline, offset, count).await;
                    direct.check(generation, &result);
                    result
                }
                Route::Sentinel(followed) => {
                    let master = followed.master().await?;
                    let mut conn = master.main.clone();
                    let result = conn.req_packed_commands(pipeline, offset, count).await;
                    followed.check(&master, &result);
                    result
                }
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.db
    }
}

#[cfg(test)]
mod tests {
    use crate::store::redis::connect::{covered, master_lost};
    use ::redis::{ErrorKind, RedisError};

    #[test]
    fn a_round_covers_the_writes_finished_before_it_began() {
        // Read 3 rounds begun: round 4 began after the write, so covers it.
        assert!(covered(3, 4));
        // Round 3 may have begun before the write (its mark before it): not covered.
        assert!(!covered(3, 3));
        assert!(!covered(0, 0));
    }

    #[test]
    fn a_gone_or_demoted_master_is_asked_for_again_a_script_error_is_not() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(master_lost(&io));
        let readonly = RedisError::from((
            ErrorKind::Server(::redis::ServerErrorKind::ReadOnly),
            "READONLY You can't write against a read only replica.",
        ));
        assert!(master_lost(&readonly));
        let script = RedisError::from((
            ErrorKind::Server(::redis::ServerErrorKind::ResponseError),
            "ERR Error running script",
        ));
        assert!(!master_lost(&script));
        // After a failover the new master lacks the scripts: `invoke_async` loads them.
        let noscript = RedisError::from((
            ErrorKind::Server(::redis::ServerErrorKind::NoScript),
            "NOSCRIPT No matching script.",
        ));
        assert!(!master_lost(&noscript));
    }
}
