//! The real `gatehouse serve` binary as a replica behind a load balancer would run it:
//! its own config file (the shared config with its own listener ports), its log in
//! `NAME.log` beside it, killed when dropped. Used where a test needs several processes or a SIGKILL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

/// The listener a replica's config names with port 0, replaced by a free port.
const ANY_PORT: &str = "bind = \"127.0.0.1:0\"";
/// The admin listener a replica's config names with port 0, replaced by a free port.
const ANY_ADMIN_PORT: &str = "admin_bind = \"127.0.0.1:0\"";
/// How often a start that lost its port to another process is tried again.
const STARTS: usize = 5;

/// One `gatehouse serve` process.
pub struct Replica {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `http://127.0.0.1:PORT` of its admin listener, when its config asks for one
    /// with `admin_bind = "127.0.0.1:0"`.
    pub admin: Option<String>,
    child: std::sync::Mutex<Child>,
    log: PathBuf,
}

/// Why a start did not end serving.
enum Failed {
    /// Another process took a port between it being found free and the replica binding it.
    PortTaken,
    /// Anything else: the replica's log.
    Exited(String),
}

impl Replica {
    /// Serves `config` (whose `bind = "127.0.0.1:0"`, and `admin_bind = "127.0.0.1:0"`
    /// when given, are replaced by free ports) from `dir/NAME.toml`; returns once it
    /// answers HTTP.
    pub fn spawn(dir: &Path, name: &str, config: &str) -> Self {
        Self::spawn_with_env(dir, name, config, &[])
    }

    /// As [`Replica::spawn`], with `env` added to the process's environment (a test
    /// process must not `set_var` while its other tests' threads read the environment).
    ///
    /// A port found free can be taken by another test's process before the replica
    /// binds it; such a start is tried again on other ports.
    pub fn spawn_with_env(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> Self {
        for _ in 1..STARTS {
            match Self::start(dir, name, config, env) {
                Ok(replica) => return replica,
                Err(Failed::PortTaken) => continue,
                Err(Failed::Exited(log)) => panic!("replica {name} exited before serving: {log}"),
            }
        }
        match Self::start(dir, name, config, env) {
            Ok(replica) => replica,
            Err(Failed::PortTaken) => panic!("replica {name}: its ports were taken {STARTS} times"),
            Err(Failed::Exited(log)) => panic!("replica {name} exited before serving: {log}"),
        }
    }

    fn start(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> Result<Self, Failed> {
        let addr = format!("127.0.0.1:{}", free_port());
        let admin = config
            .contains(ANY_ADMIN_PORT)
            .then(|| format!("127.0.0.1:{}", free_port()));
        let mut text = config.to_owned();
        if let Some(admin) = &admin {
            text = text.replace(ANY_ADMIN_PORT, &format!("admin_bind = \"{admin}\""));
        }
        let text = text.replace(ANY_PORT, &format!("bind = \"{addr}\""));
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn gatehouse");
        let replica = Self {
            base: format!("http://{addr}"),
            admin: admin.map(|a| format!("http://{a}")),
            child: std::sync::Mutex::new(child),
            log,
        };
        // It serves once a request gets an HTTP answer (a socket can listen while the
        // process is still opening its store, and exit after), and it is still running.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if answers_http(&addr) && replica.running() {
                return Ok(replica);
            }
            if !replica.running() {
                let log = replica.log_text();
                return Err(if log.contains("Address already in use") {
                    Failed::PortTaken
                } else {
                    Failed::Exited(log)
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(Failed::Exited(format!(
            "not serving on {addr} after 10 s: {}",
            replica.log_text()
        )))
    }

    /// Whether the process has not exited.
    fn running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.try_wait().ok().flatten().is_none()
    }

    /// What the replica has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `config` with this replica's listeners in place of port 0, as it was started
    /// with: for a test that rewrites the file to make it reload.
    pub fn config_for(&self, config: &str) -> String {
        let mut text = config.to_owned();
        if let Some(admin) = &self.admin {
            let admin = admin.trim_start_matches("http://");
            text = text.replace(ANY_ADMIN_PORT, &format!("admin_bind = \"{admin}\""));
        }
        let bind = self.base.trim_start_matches("http://");
        text.replace(ANY_PORT, &format!("bind = \"{bind}\""))
    }

    /// The absolute URL of `path` on this replica.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no shutdown, nothing flushed, as when a node dies. Takes `&self` so
    /// that requests in flight from other tasks (holding an `Arc`) meet the crash.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- log of the replica on {} ---\n{}",
                self.base,
                self.log_text()
            );
        }
    }
}

/// Whether `addr` answers an HTTP request with an HTTP status line.
fn answers_http(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    let mut head = [0u8; 9];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && &head == b"HTTP/1.1 "
}
