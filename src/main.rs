//! The `gatehouse` command: serve, check a config, hash a secret, make a signing key.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use gatehouse::config::file::Algorithm;
use gatehouse::config::{self, Severity};
use gatehouse::jwt::keys::SigningKey;
use gatehouse::load;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "An OAuth 2.1 / OpenID Connect server driven by one config file"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `gatehouse revoke` ends: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct RevokeTarget {
    /// A user's id (`sub`): every session of theirs and every token issued from one.
    #[arg(long)]
    user: Option<String>,
    /// A client's id: every token issued to it.
    #[arg(long)]
    client: Option<String>,
    /// A login session's `sid` (from an ID token or a logout token): it and its tokens.
    #[arg(long)]
    session: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the config file, reloading it when it changes or on SIGHUP.
    Serve {
        /// The config file (.toml, .yaml or .yml).
        #[arg(long, env = "GATEHOUSE_CONFIG", default_value = "gatehouse.toml")]
        config: PathBuf,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Listen here instead of `[server] bind` (the container image sets
        /// 0.0.0.0:8080 through GATEHOUSE_BIND).
        #[arg(long, env = "GATEHOUSE_BIND")]
        bind: Option<std::net::SocketAddr>,
    },
    /// Validate config files, each with the files it includes; print every problem as
    /// FILE:LINE:COLUMN: field.path: message.
    Check {
        /// The files to check.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Read no secret, key or certificate file and no `${env:...}` value: take them
        /// as present (CI without the production secrets). Included files are read.
        #[arg(long)]
        offline: bool,
    },
    /// Compare two configs and print every security-relevant change, marked widens,
    /// narrows or neutral.
    Diff {
        /// The config before: a file, `-` for stdin, or `git:REV:PATH`.
        old: String,
        /// The config after: a file, `-` for stdin, or `git:REV:PATH`.
        new: String,
        /// The format of an input whose name has no .toml/.yaml/.yml extension.
        #[arg(long, value_enum)]
        format: Option<InputFormat>,
        /// Exit 1 when any change is of this kind.
        #[arg(long, value_enum)]
        fail_on: Option<FailOn>,
        /// As `check --offline`: referenced secrets, keys and env values are not read
        /// (a change of what they contain is not seen; a change of the reference is).
        #[arg(long)]
        offline: bool,
    },
    /// Print the JSON Schema of the config file, for editors and CI.
    Schema {
        /// The schema of a file named by `include` instead (clients, users, scopes).
        #[arg(long)]
        included: bool,
        /// The configuration reference in Markdown (docs/configuration.md) instead.
        #[arg(long, conflicts_with = "included")]
        markdown: bool,
    },
    /// Read a secret from stdin and print its argon2id hash for `secret_hash`.
    HashSecret {
        /// Make a random 256-bit secret instead; print it once, then its hash.
        #[arg(long)]
        generate: bool,
    },
    /// End every session and token of a user, a client or one login session now, on
    /// the running server (through its admin listener, `[server] admin_bind`, with the
    /// token of `[server] admin_token_file`).
    Revoke {
        /// The admin listener, e.g. `http://127.0.0.1:9090`.
        #[arg(long, env = "GATEHOUSE_ADMIN")]
        admin: String,
        /// The file holding the admin token (`[server] admin_token_file`).
        #[arg(long, env = "GATEHOUSE_ADMIN_TOKEN_FILE")]
        token_file: PathBuf,
        #[command(flatten)]
        target: RevokeTarget,
    },
    /// Make a new PKCS#8 PEM signing key.
    Keygen {
        #[arg(long, value_enum, ignore_case = true, default_value_t = KeyAlg::Es256)]
        algorithm: KeyAlg,
        /// Write the key here (mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Make the key of this client (`private_key_jwt`): write the private key to
        /// `--out` (default `<client>.key.pem`, mode 0600) and print the public JWK
        /// Set and the TOML lines to commit.
        #[arg(long)]
        client: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    Toml,
    Yaml,
}

impl From<InputFormat> for config::Format {
    fn from(f: InputFormat) -> Self {
        match f {
            InputFormat::Toml => Self::Toml,
            InputFormat::Yaml => Self::Yaml,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    /// Any change that lets more through, or replaces a credential.
    Widens,
    /// Any credential replaced (a password hash, a client secret, a key).
    #[value(name = "credential_replaced")]
    CredentialReplaced,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyAlg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "RS256")]
    Rs256,
}

impl From<KeyAlg> for Algorithm {
    fn from(a: KeyAlg) -> Self {
        match a {
            KeyAlg::Es256 => Self::ES256,
            KeyAlg::EdDsa => Self::EdDSA,
            KeyAlg::Rs256 => Self::RS256,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            log_format,
            bind,
        } => serve(config, log_format, bind),
        Command::Check { paths, offline } => return check(&paths, referenced(offline)),
        Command::Diff {
            old,
            new,
            format,
            fail_on,
            offline,
        } => match diff(
            &old,
            &new,
            format.map(Into::into),
            fail_on,
            referenced(offline),
        ) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Schema { included, markdown } => if markdown {
            config::schema_markdown()
        } else if included {
            config::included_schema_json()
        } else {
            config::schema_json()
        }
        .map(|text| print!("{text}"))
        .context("rendering the schema"),
        Command::HashSecret { generate } => hash_secret(generate),
        Command::Revoke {
            admin,
            token_file,
            target,
        } => revoke(&admin, &token_file, &target),
        Command::Keygen {
            algorithm,
            out,
            client: Some(client),
        } => keygen_client(&client, algorithm.into(), out),
        Command::Keygen {
            algorithm,
            out,
            client: None,
        } => keygen(algorithm.into(), out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Lines the log buffer holds before new lines are dropped (and counted): about a
/// second of the token endpoint at full speed.
const LOG_BUFFER_LINES: usize = 128 * 1024;

fn referenced(offline: bool) -> load::Referenced {
    if offline {
        load::Referenced::Opaque
    } else {
        load::Referenced::Read
    }
}

fn serve(
    config: PathBuf,
    log_format: LogFormat,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Request threads hand their lines to a writer thread and never wait on stderr; a
    // full buffer drops lines rather than stall logins, and the drops are counted and
    // reported (telemetry::report_dropped_log_lines).
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("gatehouse-log")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(gatehouse::telemetry::OneLinePerEvent::new(writer, ansi));
    match log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        gatehouse::telemetry::report_dropped_log_lines(dropped);
        let running = gatehouse::server::start_on(config.clone(), bind)
            .await
            .with_context(|| format!("cannot serve {}", config.display()))?;
        running.wait().await
    })
}

/// `gatehouse revoke`: one POST to the admin listener's `/revoke`.
fn revoke(admin: &str, token_file: &Path, target: &RevokeTarget) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let token = token.trim_end_matches(['\n', '\r']);
    let (kind, id) = match target {
        RevokeTarget { user: Some(id), .. } => ("user", id),
        RevokeTarget {
            client: Some(id), ..
        } => ("client", id),
        RevokeTarget {
            session: Some(id), ..
        } => ("session", id),
        _ => bail!("name one of --user, --client, --session"),
    };
    let url = format!("{}/revoke", admin.trim_end_matches('/'));
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (status, body) = runtime
        .block_on(async {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()?
                .post(&url)
                .bearer_auth(token)
                .form(&[(kind, id.as_str())])
                .send()
                .await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .with_context(|| format!("calling {url}"))?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    println!("{body}");
    Ok(())
}

fn check(paths: &[PathBuf], referenced: load::Referenced) -> ExitCode {
    let mut failed = false;
    let offline = match referenced {
        load::Referenced::Opaque => " (offline: referenced secrets, keys and env values not read)",
        load::Referenced::Read => "",
    };
    for path in paths {
        match load::load_as(path, referenced) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    println!("{warning}");
                }
                let c = &loaded.config;
                let included = match loaded.included.len() {
                    0 => String::new(),
                    n => format!(", {n} included files"),
                };
                println!(
                    "{}: ok: {} clients, {} users, {} keys, {} custom scopes, {} warnings{included}{offline}",
                    path.display(),
                    c.clients.len(),
                    c.users.len(),
                    c.keys.len(),
                    c.scopes.len(),
                    loaded.warnings.len()
                );
            }
            Err(rejected) => {
                failed = true;
                print_rejected(&path.display().to_string(), &rejected);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn diff(
    old: &str,
    new: &str,
    format: Option<config::Format>,
    fail_on: Option<FailOn>,
    referenced: load::Referenced,
) -> anyhow::Result<ExitCode> {
    use gatehouse::load::diff::{self, Side};
    let (before, after) = (
        load_input(old, format, referenced)?,
        load_input(new, format, referenced)?,
    );
    let (Some(before), Some(after)) = (before, after) else {
        return Ok(ExitCode::FAILURE);
    };
    let changes = diff::diff(&Side::from(&before.config), &Side::from(&after.config));
    for change in &changes {
        println!("{change}");
    }
    println!("{}", diff::summary(&changes));
    Ok(match fail_on {
        Some(FailOn::Widens) if diff::any_widens(&changes) => ExitCode::FAILURE,
        Some(FailOn::CredentialReplaced) if diff::any_credential_replaced(&changes) => {
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

/// Loads one side of a diff: a file, `-` (stdin) or `git:REV:PATH`. A rejected config
/// has its diagnostics printed and gives `None`.
fn load_input(
    input: &str,
    format: Option<config::Format>,
    referenced: load::Referenced,
) -> anyhow::Result<Option<load::Loaded>> {
    let name = PathBuf::from(input);
    let result = if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the config from stdin")?;
        let format = format.context("the format of stdin is unknown: pass --format toml|yaml")?;
        load::check_source(
            &name,
            Path::new("."),
            format,
            &text,
            &config::FileSystem,
            referenced,
        )
    } else if let Some(spec) = input.strip_prefix("git:") {
        let (rev, path) = spec
            .split_once(':')
            .with_context(|| format!("{input:?} is not git:REV:PATH"))?;
        // `--end-of-options`: a REV such as `--output=FILE` is a revision, never an option.
        let out = std::process::Command::new("git")
            .args(["show", "--end-of-options"])
            .arg(format!("{rev}:{path}"))
            .output()
            .context("running git show")?;
        if !out.status.success() {
            bail!(
                "git show {rev}:{path} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text =
            String::from_utf8(out.stdout).with_context(|| format!("{input} is not UTF-8"))?;
        let path = Path::new(path);
        let format = format
            .or_else(|| config::Format::of_path(path))
            .with_context(|| {
                format!("the format of {input} is unknown: pass --format toml|yaml")
            })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        load::check_source(
            &name,
            base_dir,
            format,
            &text,
            &GitRevision { rev },
            referenced,
        )
    } else {
        match format {
            Some(format) => {
                let text =
                    std::fs::read_to_string(&name).with_context(|| format!("reading {input}"))?;
                let base_dir = name.parent().unwrap_or(Path::new("."));
                load::check_source(
                    &name,
                    base_dir,
                    format,
                    &text,
                    &config::FileSystem,
                    referenced,
                )
            }
            None => load::load_as(&name, referenced),
        }
    };
    match result {
        Ok(loaded) => Ok(Some(loaded)),
        Err(rejected) => {
            print_rejected(input, &rejected);
            Ok(None)
        }
    }
}

/// The files a config at `git:REV:PATH` includes, read from that revision too, so that
/// a diff compares whole trees. Paths are taken as `git show` takes them: `./`- or
/// `../`-relative to the current directory, otherwise from the repository root.
struct GitRevision<'a> {
    rev: &'a str,
}

impl GitRevision<'_> {
    fn git<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::io::Result<String> {
        let out = std::process::Command::new("git").args(args).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        String::from_utf8(out.stdout).map_err(std::io::Error::other)
    }
}

impl config::IncludeSource for GitRevision<'_> {
    fn file_names(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let relative = dir.starts_with(".") || dir.starts_with("..");
        let mut args: Vec<std::ffi::OsString> = vec!["ls-tree".into()];
        if !relative {
            args.push("--full-tree".into());
        }
        // After `--end-of-options` everything is the tree-ish and paths (a `--` there
        // would be taken as a path).
        args.extend(["--end-of-options".into(), self.rev.into()]);
        if !dir.as_os_str().is_empty() {
            args.push(dir.join("").into_os_string());
        }
        // `MODE TYPE HASH<TAB>PATH` per entry; files are blobs.
        let listing = self.git(&args)?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                let (meta, path) = line.split_once('\t')?;
                let name = Path::new(path).file_name()?.to_str()?;
                (meta.split(' ').nth(1) == Some("blob")).then(|| name.to_owned())
            })
            .collect())
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        let spec = format!("{}:{}", self.rev, path.display());
        self.git(&["show", "--end-of-options", spec.as_str()])
    }

    fn name(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("git:{}:{}", self.rev, path.display()))
    }
}

/// Prints every diagnostic of a rejected config, then `NAME: N error(s)`.
fn print_rejected(name: &str, rejected: &load::Rejected) {
    for d in &rejected.diagnostics {
        println!("{d}");
    }
    let errors = rejected
        .diagnostics
        .iter()
        .filter(|d| d.issue.severity == Severity::Error)
        .count();
    println!("{name}: {errors} error(s)");
}

fn hash_secret(generate: bool) -> anyhow::Result<()> {
    let secret = if generate {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
        let secret =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
        println!("secret: {secret}");
        secret
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("secret: ").context("reading the secret")?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the secret from stdin")?;
        text.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
            .to_owned()
    };
    if secret.is_empty() {
        bail!("the secret is empty");
    }
    let hash = gatehouse::crypto::hash_secret(&secret)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    if generate {
        println!("secret_hash: {hash}");
    } else {
        println!("{hash}");
    }
    Ok(())
}

/// Writes `pem` to a new file at `path`, readable by its owner only.
fn write_private(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// `gatehouse keygen --client ID`: a client's key pair for `private_key_jwt`.
fn keygen_client(client: &str, algorithm: Algorithm, out: Option<PathBuf>) -> anyhow::Result<()> {
    if client.is_empty() || client.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("{client:?} is not a client id");
    }
    let (key, pem) = SigningKey::generate(algorithm, None).context("generating the key")?;
    // Client libraries (Node's WebCrypto) import Ed25519 keys as PKCS#8 version 1 only.
    let pem = gatehouse::jwt::keys::ed25519_pkcs8_v1(&pem).unwrap_or(pem);
    let path = out.unwrap_or_else(|| PathBuf::from(format!("{client}.key.pem")));
    write_private(&path, &pem)?;
    eprintln!(
        "wrote the private key of client {client:?} to {} (mode 0600): give it to the service only, never commit it",
        path.display()
    );
    print!(
        "{}",
        gatehouse::config::client_key_lines(client, key.public_jwk())
    );
    Ok(())
}

fn keygen(algorithm: Algorithm, out: Option<PathBuf>) -> anyhow::Result<()> {
    let (key, pem) = SigningKey::generate(algorithm, None).context("generating the key")?;
    match out {
        Some(path) => {
            write_private(&path, &pem)?;
            eprintln!(
                "wrote {} {} key, kid {}",
                path.display(),
                algorithm.as_str(),
                key.kid()
            );
        }
        None => print!("{pem}"),
    }
    Ok(())
}
