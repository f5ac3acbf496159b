//! Token verification: any string presented as an access token or an ID token hint is
//! refused or accepted without panicking, and nothing unsigned by us is accepted.
#![no_main]

use gatehouse::jwt::verify;
use gatehouse::registry::Registry;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let text = "issuer = \"http://127.0.0.1:8080\"\n";
        let loaded = gatehouse::load::check_text(std::path::Path::new("/fuzz/c.toml"), text).expect("valid config");
        let (key, _) = gatehouse::jwt::keys::SigningKey::generate(gatehouse::config::file::Algorithm::ES256, None)
            .expect("key");
        Registry::new(loaded.config, 1, std::time::SystemTime::now(), Some(std::sync::Arc::new(key)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    // The key was made in this process and signs nothing here: nothing may verify.
    assert!(verify::access_token(&registry().jwt(), token, 0).is_err());
    assert!(verify::id_token_hint(&registry().jwt(), token).is_err());
});
