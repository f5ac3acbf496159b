//! Request parsing: urlencoded forms and the client credentials of a token request
//! (Basic header and form) never panic.
#![no_main]

use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use gatehouse::http::form::Form;
use gatehouse::oauth::client_auth::presented;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(form) = Form::parse(body) else { return };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(header) {
        headers.insert(AUTHORIZATION, value);
    }
    let _ = presented(&headers, &form);
});
