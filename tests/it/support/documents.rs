//! A local https server publishing Client ID Metadata Documents, with a test CA made
//! at test time (rcgen): its certificate names 127.0.0.1 and localhost, and the CA is
//! written as a PEM file for a `[[client_metadata_documents]] ca_file`. Each path
//! answers as told (a document, a redirect, a body too large, or never), and every
//! request is counted per path, so a test sees what the server fetched.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a path answers.
#[derive(Clone)]
pub enum Answer {
    /// 200 with this JSON body and these extra headers.
    Json(String, Vec<(String, String)>),
    /// A 302 to this location.
    Redirect(String),
    /// Reads the request and never answers.
    Never,
}

#[derive(Default)]
struct Routes {
    answers: HashMap<String, Answer>,
    hits: HashMap<String, usize>,
}

/// The running document server; stops when dropped.
pub struct DocumentServer {
    pub port: u16,
    /// The CA file (PEM) that signed the server's certificate.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
    routes: Arc<Mutex<Routes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DocumentServer {
    /// Makes a CA and a certificate for 127.0.0.1 and localhost, and serves https on a
    /// free port of 127.0.0.1.
    pub async fn start() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "gatehouse document test CA");
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_pem = ca_params.self_signed(&ca_key).expect("ca").pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "documents");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("signed");
        let ca_file = dir.path().join("documents-ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write ca");
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let served = routes.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, routes) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(socket).await {
                        answer(stream, routes).await;
                    }
                });
            }
        });
        Self {
            port,
            ca_file,
            _dir: dir,
            routes,
            task,
        }
    }

    /// The https URL of `path` (starting with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Has `path` answer with `answer` from now on.
    pub fn serve(&self, path: &str, answer: Answer) {
        let mut routes = self.routes.lock().expect("routes");
        routes.answers.insert(path.to_owned(), answer);
    }

    /// Publishes `document` (JSON) at `path` with `cache_control`, if any.
    pub fn publish(&self, path: &str, document: &serde_json::Value, cache_control: Option<&str>) {
        let headers = cache_control
            .map(|c| vec![("cache-control".to_owned(), c.to_owned())])
            .unwrap_or_default();
        self.serve(path, Answer::Json(document.to_string(), headers));
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        let routes = self.routes.lock().expect("routes");
        routes.hits.get(path).copied().unwrap_or(0)
    }
}

/// Reads one request's head and answers it as its path is told to, then closes.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    routes: Arc<Mutex<Routes>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
    let found = {
        let mut routes = routes.lock().expect("routes");
        *routes.hits.entry(path.clone()).or_default() += 1;
        routes.answers.get(&path).cloned()
    };
    let response = match found {
        Some(Answer::Json(body, headers)) => {
            let extra: String = headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\r\n"))
                .collect();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Some(Answer::Redirect(to)) => format!(
            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        Some(Answer::Never) => {
            std::future::pending::<()>().await;
            return;
        }
        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
