//! A real redis-server of a test's own, on a free port, with nothing persisted
//! (`--save "" --appendonly no`). Tests that need one call [`RedisServer::start`]: in
//! CI (`CI=true`) a missing redis-server fails the test; elsewhere the test says it is
//! skipped and returns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How often a first start that lost its port to another process is tried again.
const STARTS: usize = 5;

/// Whether the server at the other end of `stream` answers PING as Redis does: PONG,
/// or NOAUTH when it requires a password.
fn answers_ping(mut stream: TcpStream) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && (&answer == b"+PONG\r\n" || &answer == b"-NOAUTH")
}

/// A redis-server child process, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    binary: PathBuf,
    child: Option<Child>,
    /// For a TLS-only server: its certificate, key and the CA clients must present a
    /// certificate of (`--tls-auth-clients yes`), as PEM files.
    tls: Option<[PathBuf; 3]>,
    /// More arguments (`--replicaof`, or a sentinel.conf and `--sentinel`).
    extra: Vec<String>,
}

fn binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| {
        let usual = PathBuf::from("/usr/bin/redis-server");
        usual.is_file().then_some(usual)
    })
}

impl RedisServer {
    /// Starts redis-server on a free port; `None` when it is not installed (the
    /// test is skipped, or fails in CI: [`super::skip::missing`]).
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// Starts redis-server speaking TLS only (`--port 0 --tls-port`), with the server
    /// certificate, key and client CA in `tls` (PEM files), requiring clients to present
    /// a certificate that CA signed.
    pub fn start_tls(test: &str, tls: [PathBuf; 3]) -> Option<Self> {
        Self::start_with(test, Some(tls))
    }

    fn start_with(test: &str, tls: Option<[PathBuf; 3]>) -> Option<Self> {
        Self::start_args(test, tls, Vec::new())
    }

    fn start_args(test: &str, tls: Option<[PathBuf; 3]>, extra: Vec<String>) -> Option<Self> {
        let Some(binary) = binary() else {
            super::skip::missing(test, "redis-server (apt-get install redis-server)");
            return None;
        };
        let mut server = Self {
            port: super::free_port(),
            binary,
            child: None,
            tls,
            extra,
        };
        // A port found free can be taken by another test's process before
        // redis-server binds it: then it exits, and is started again on another.
        for _ in 1..STARTS {
            match server.try_run() {
                Ok(()) => return Some(server),
                Err(_) => server.port = super::free_port(),
            }
        }
        server.run();
        Some(server)
    }

    /// The URL a store connects with.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts redis-server on its port; panics if it does not serve there.
    fn run(&mut self) {
        if let Err(e) = self.try_run() {
            panic!("{e}");
        }
    }

    /// Starts redis-server on its port and waits until it serves there: it listens,
    /// still runs, and (without TLS) answers PING.
    fn try_run(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let mut listen: Vec<std::ffi::OsString> = vec!["--port".into(), port.clone().into()];
        if let Some([cert, key, ca]) = &self.tls {
            listen = vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.into(),
            ];
            for (flag, file) in [
                ("--tls-cert-file", cert),
                ("--tls-key-file", key),
                ("--tls-ca-cert-file", ca),
            ] {
                listen.extend([flag.into(), file.clone().into_os_string()]);
            }
            listen.extend(["--tls-auth-clients".into(), "yes".into()]);
        }
        let mut command = Command::new(&self.binary);
        if self.is_sentinel() {
            // `redis-server sentinel.conf --sentinel`: the file comes first.
            command
                .args(&self.extra)
                .args(&listen)
                .args(["--bind", "127.0.0.1"]);
        } else {
            command
                .args(&listen)
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(&self.extra);
        }
        // A master with a replica writes its RDB for the sync (and the replica the one it
        // receives) into the working directory, whatever `--save` says: one of the
        // server's own, so nothing lands in the checkout.
        let dir = std::env::temp_dir().join(format!("gatehouse-redis-{}", self.port));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let child = command
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("redis-server on {addr} exited: {status}"));
            }
            if let Ok(stream) = TcpStream::connect(&addr)
                && (self.tls.is_some() || answers_ping(stream))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.stop();
        Err(format!("redis-server does not serve on {addr} after 5 s"))
    }

    /// The process id, while it runs (to stop it with SIGSTOP and go on with SIGCONT).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn is_sentinel(&self) -> bool {
        self.extra.iter().any(|a| a == "--sentinel")
    }

    /// Kills redis-server (its data is gone: nothing is persisted).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The name the Sentinels of a [`SentinelSet`] watch its master under.
pub const MASTER_NAME: &str = "mymaster";

/// A master, one replica and three Sentinels (quorum two), each a redis-server of
/// this test's own on a free port, with short timeouts (a master is down after
/// 500 ms without an answer) so that a failover takes a few seconds.
pub struct SentinelSet {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<RedisServer>,
    /// What the Sentinels require, if anything.
    password: Option<String>,
    _dir: tempfile::TempDir,
}

impl SentinelSet {
    /// Starts the five servers and waits (polling, 20 s at most) until every Sentinel
    /// knows the replica and the two other Sentinels; `None` when redis-server is not
    /// installed (skipped, or failed in CI).
    pub async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None).await
    }

    /// As [`SentinelSet::start`], the Sentinels requiring `password` (`requirepass`,
    /// and `sentinel-pass` between them).
    pub async fn start_with(test: &str, password: Option<&str>) -> Option<Self> {
        // No delay before the first sync (5 s by default): the replica is online, and
        // counted by the master's ROLE, at once.
        let master = RedisServer::start_args(
            test,
            None,
            vec!["--repl-diskless-sync-delay".into(), "0".into()],
        )?;
        let replica = RedisServer::start_args(
            test,
            None,
            vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                master.port.to_string(),
            ],
        )?;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "sentinel monitor {MASTER_NAME} 127.0.0.1 {port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 500\n\
                     sentinel failover-timeout {MASTER_NAME} 2000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n{auth}",
                    port = master.port,
                    auth = password.map_or(String::new(), |p| format!(
                        "requirepass {p}\nsentinel sentinel-pass {p}\n"
                    )),
                ),
            )
            .expect("sentinel.conf");
            let args = vec![conf.display().to_string(), "--sentinel".into()];
            sentinels.push(RedisServer::start_args(test, None, args)?);
        }
        let set = Self {
            master,
            replica,
            sentinels,
            password: password.map(str::to_owned),
            _dir: dir,
        };
        let ready = super::eventually(Duration::from_secs(20), || set.watching()).await;
        assert!(ready, "the Sentinels found the replica and each other");
        Some(set)
    }

    /// `[store]` lines for gatehouse: the Sentinels and the master's name.
    pub fn store_config(&self) -> String {
        let list: Vec<String> = self
            .addresses()
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        format!(
            "url = \"redis://{MASTER_NAME}/0\"\nsentinels = [{}]\nmaster_name = \"{MASTER_NAME}\"\n",
            list.join(", ")
        )
    }

    /// The Sentinels' addresses, `127.0.0.1:port`.
    pub fn addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The port of the master the first Sentinel that answers names.
    pub async fn master_port(&self) -> Option<u16> {
        for sentinel in &self.sentinels {
            let Ok((_, port)) = sentinel_query::<(String, u16)>(
                sentinel.port,
                self.password.as_deref(),
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(MASTER_NAME),
            )
            .await
            else {
                continue;
            };
            return Some(port);
        }
        None
    }

    /// True when the master has its replica online and every Sentinel knows the
    /// replica and the two other Sentinels.
    async fn watching(&self) -> bool {
        let role = sentinel_query::<redis::Role>(self.master.port, None, &redis::cmd("ROLE")).await;
        if !matches!(role, Ok(redis::Role::Primary { replicas, .. }) if replicas.len() == 1) {
            return false;
        }
        for sentinel in &self.sentinels {
            let info = sentinel_query::<std::collections::HashMap<String, String>>(
                sentinel.port,
                self.password.as_deref(),
                redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME),
            )
            .await;
            let Ok(info) = info else { return false };
            let count = |k: &str| info.get(k).and_then(|v| v.parse::<u32>().ok());
            if count("num-slaves") != Some(1) || count("num-other-sentinels") != Some(2) {
                return false;
            }
        }
        true
    }
}

async fn sentinel_query<T: redis::FromRedisValue>(
    port: u16,
    password: Option<&str>,
    cmd: &redis::Cmd,
) -> redis::RedisResult<T> {
    let auth = password.map_or(String::new(), |p| format!(":{p}@"));
    let client = redis::Client::open(format!("redis://{auth}127.0.0.1:{port}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}
