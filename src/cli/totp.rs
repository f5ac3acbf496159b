//! `gatehouse totp new --user NAME`: a fresh TOTP secret (20 random bytes, base32),
//! its `otpauth://` URI and QR code for an authenticator app, and the `totp_secret`
//! line for the user's entry. gatehouse never writes the config: the operator keeps
//! the secret in a file or the environment and commits the reference.

use gatehouse::crypto::random_bytes;
use gatehouse::protocol::totp::{NEW_SECRET_BYTES, Secret, otpauth_uri};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// Prints a new secret for `user` of `issuer` (the name the app shows): the secret,
/// the URI, the QR code (unicode half blocks with their quiet zone, drawn for the usual
/// light-on-dark terminal: a block is a light module) and the lines to add.
pub(crate) fn totp_new(user: &str, issuer: &str) -> anyhow::Result<()> {
    if user.trim().is_empty() {
        anyhow::bail!("--user may not be empty");
    }
    let bytes =
        random_bytes::<NEW_SECRET_BYTES>().map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
    let secret = Secret::from_bytes(&bytes);
    let uri = otpauth_uri(&secret, issuer, user);
    let qr = QrCode::new(uri.as_bytes())
        .map_err(|e| anyhow::anyhow!("making the QR code: {e}"))?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build();
    let var = env_name(user);
    println!("secret: {}", secret.to_base32());
    println!("uri: {uri}");
    println!();
    println!("{qr}");
    println!();
    println!("Scan the code (or type the secret) in the user's authenticator app. Keep the");
    println!("secret out of git: put it in a file or an environment variable, and add to");
    println!("the [[users]] entry with username = {user:?} one of:");
    println!();
    println!(
        "totp_secret = \"${{file:/run/secrets/{}.totp}}\"",
        file_name(user)
    );
    println!("totp_secret = \"${{env:{var}}}\"");
    Ok(())
}

/// An environment variable name for `user`'s secret: `TOTP_` and the username in
/// capitals, anything but letters and digits as `_`.
fn env_name(user: &str) -> String {
    let tail: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("TOTP_{tail}")
}

/// A file name for `user`'s secret: the username, anything but letters, digits, `-`,
/// `_` and `.` as `_` (no path separators).
fn file_name(user: &str) -> String {
    user.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_username() {
        assert_eq!(env_name("alice"), "TOTP_ALICE");
        assert_eq!(env_name("bob.smith@x"), "TOTP_BOB_SMITH_X");
        assert_eq!(file_name("../etc/passwd"), "___etc_passwd");
    }
}
