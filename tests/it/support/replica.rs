//! The real `gatehouse serve` binary as a replica behind a load balancer would run it:
//! its own config file (the shared config with its own listener port), its log in
//! `NAME.log` beside it, killed when dropped. Used where a test needs several processes or a SIGKILL.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One `gatehouse serve` process.
pub struct Replica {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: std::sync::Mutex<Child>,
}

impl Replica {
    /// Serves `config` (whose `bind = "127.0.0.1:0"` is replaced by a free port) from
    /// `dir/NAME.toml`; returns once it listens.
    pub fn spawn(dir: &Path, name: &str, config: &str) -> Self {
        Self::spawn_with_env(dir, name, config, &[])
    }

    /// As [`Replica::spawn`], with `env` added to the process's environment (a test
    /// process must not `set_var` while its other tests' threads read the environment).
    pub fn spawn_with_env(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = config.replace("bind = \"127.0.0.1:0\"", &format!("bind = \"{addr}\""));
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write config");
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn gatehouse");
        let mut child = child;
        let up = (0..400).any(|_| {
            if TcpStream::connect(&addr).is_ok() {
                return true;
            }
            assert!(
                child.try_wait().ok().flatten().is_none(),
                "replica {name} exited before listening: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
            false
        });
        assert!(up, "replica {name} listens on {addr}");
        Self {
            base: format!("http://{addr}"),
            child: std::sync::Mutex::new(child),
        }
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
    }
}
