//! `gatehouse hash-secret`: the argon2id hash of a secret, for `secret_hash`.

use anyhow::{Context, bail};
use std::io::{IsTerminal, Read};

/// Reads a secret (or makes one, with `generate`) and prints its hash.
pub(crate) fn hash_secret(generate: bool) -> anyhow::Result<()> {
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
