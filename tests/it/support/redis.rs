//! A real redis-server of a test's own, on a free port, with nothing persisted
//! (`--save "" --appendonly no`). Tests that need one call [`RedisServer::start`]: in
//! CI (`CI=true`) a missing redis-server fails the test; elsewhere the test says it is
//! skipped and returns.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server child process, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    binary: PathBuf,
    child: Option<Child>,
    /// For a TLS-only server: its certificate, key and the CA clients must present a
    /// certificate of (`--tls-auth-clients yes`), as PEM files.
    tls: Option<[PathBuf; 3]>,
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
        let Some(binary) = binary() else {
            super::skip::missing(test, "redis-server (apt-get install redis-server)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            binary,
            child: None,
            tls,
        };
        server.run();
        Some(server)
    }

    /// The URL a store connects with.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
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
        let child = Command::new(&self.binary)
            .args(&listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let up = (0..200).any(|_| {
            if TcpStream::connect(&addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
            false
        });
        assert!(up, "redis-server listens on {addr}");
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
