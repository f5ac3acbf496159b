//! The `gatehouse` command: serve, check a config, hash a secret, make a signing key
//! or a TOTP secret.
//! The command line is here; each subcommand is a module of `cli`.

mod cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cli::check::{check, referenced};
use cli::diff::{FailOn, InputFormat, diff};
use cli::hash_secret::hash_secret;
use cli::keygen::{KeyAlg, keygen, keygen_client};
use cli::revoke::{RevokeTarget, revoke};
use cli::serve::{LogFormat, serve};
use cli::totp::totp_new;
use gatehouse::config;
use std::path::PathBuf;
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
    /// TOTP second factors (`[[users]] totp_secret`).
    Totp {
        #[command(subcommand)]
        command: TotpCommand,
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

#[derive(Subcommand)]
enum TotpCommand {
    /// Make a fresh secret for a user: print it, its otpauth:// URI and QR code for an
    /// authenticator app, and the `totp_secret` line for the user's entry.
    New {
        /// The user's username (the account name the app shows).
        #[arg(long)]
        user: String,
        /// The issuer name the app shows beside the account.
        #[arg(long, default_value = "gatehouse")]
        issuer: String,
    },
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
        Command::Totp {
            command: TotpCommand::New { user, issuer },
        } => totp_new(&user, &issuer),
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
