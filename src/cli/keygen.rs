//! `gatehouse keygen`: a new PKCS#8 PEM signing key, or a client's key pair for
//! `private_key_jwt`.

use anyhow::Context;
use clap::ValueEnum;
use gatehouse::config::file::Algorithm;
use gatehouse::jwt::keys::SigningKey;
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KeyAlg {
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

/// Writes `pem` to a new file at `path`, readable by its owner only.
pub(crate) fn write_private(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
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
pub(crate) fn keygen_client(
    client: &str,
    algorithm: Algorithm,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
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

/// A signing key, to `out` (mode 0600) or stdout.
pub(crate) fn keygen(algorithm: Algorithm, out: Option<PathBuf>) -> anyhow::Result<()> {
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
