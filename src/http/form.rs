//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests.
//!
//! RFC 6749 3.1: a parameter sent without a value is treated as omitted, and no parameter
//! may appear twice, except `resource` (RFC 8707 2: one per API). Values must decode to UTF-8; anything else is `invalid_request`.

use actix_web::HttpRequest;
use actix_web::http::header;
use percent_encoding::percent_decode;

/// Most parameters a request may carry: OAuth requests need a dozen at most.
pub(crate) const MAX_PARAMS: usize = 64;

/// Longest decoded value: a signed token or a long `state` fits many times over.
pub(crate) const MAX_VALUE: usize = 8 * 1024;

/// Why a form was refused: always `invalid_request` (the error vocabulary converts it),
/// with a description safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct FormError {
    pub description: String,
}

impl FormError {
    fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
        }
    }
}

/// The parameters that may appear more than once: `resource` (RFC 8707 2).
pub(crate) const REPEATABLE: [&str; 1] = ["resource"];

/// The decoded parameters of one request, in order, each name at most once.
#[derive(Debug, Default)]
pub struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    /// Parses a urlencoded body or query string.
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode_component(name).ok_or_else(|| {
                FormError::new("a parameter name is not valid UTF-8 after decoding")
            })?;
            let value = decode_component(value).ok_or_else(|| {
                FormError::new(format!(
                    "parameter {name} is not valid UTF-8 after decoding"
                ))
            })?;
            if value.len() > MAX_VALUE {
                return Err(FormError::new(format!("parameter {name} is too long")));
            }
            if !REPEATABLE.contains(&name.as_str()) && params.iter().any(|(n, _)| *n == name) {
                return Err(FormError::new(format!("parameter {name} is repeated")));
            }
            if params.len() == MAX_PARAMS {
                return Err(FormError::new("too many parameters"));
            }
            // Empty values are kept so that a later duplicate is still caught;
            // `get` treats them as absent.
            params.push((name, value));
        }
        Ok(Self { params })
    }

    /// The form body of a POST: refused unless it is `application/x-www-form-urlencoded`.
    pub(crate) fn posted(req: &HttpRequest, body: &[u8]) -> Result<Self, FormError> {
        require_form_content_type(req)?;
        Self::parse(body)
    }

    /// Every non-empty value of `name`, in order: for a [`REPEATABLE`] parameter.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Refuses a body that is not `application/x-www-form-urlencoded` (RFC 6749 3.2).
pub(crate) fn require_form_content_type(req: &HttpRequest) -> Result<(), FormError> {
    let essence = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    match essence {
        Some(t) if t.eq_ignore_ascii_case("application/x-www-form-urlencoded") => Ok(()),
        _ => Err(FormError::new(
            "the body must be application/x-www-form-urlencoded",
        )),
    }
}

/// Decodes one urlencoded component (`+` is a space), or `None` if it is not UTF-8.
pub(crate) fn decode_component(raw: &[u8]) -> Option<String> {
    // Most components (grant types, client ids, secrets) have nothing to decode: one
    // UTF-8 check and one copy, instead of two copies and a decode.
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return std::str::from_utf8(raw).ok().map(str::to_owned);
    }
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_without_escapes_is_itself_and_must_be_utf8() {
        assert_eq!(decode_component(b"svc-0").as_deref(), Some("svc-0"));
        assert_eq!(decode_component(b"a+b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(decode_component(b"\xff"), None);
        assert_eq!(decode_component(b"%ff"), None);
    }

    #[test]
    fn decodes_and_treats_empty_as_absent() {
        let f = Form::parse(b"grant_type=client_credentials&scope=a+b%3Ac&state=").expect("parse");
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("a b:c"));
        assert_eq!(f.get("state"), None);
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn refuses_duplicates_even_when_one_is_empty() {
        assert!(Form::parse(b"scope=a&scope=b").is_err());
        assert!(Form::parse(b"scope=&scope=b").is_err());
        let f = Form::parse(b"resource=a&resource=&resource=b").expect("repeatable");
        assert_eq!(f.all("resource").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert!(Form::parse(b"scope=%FF%FE").is_err());
        assert!(Form::parse(b"%C3%28=x").is_err());
    }

    #[test]
    fn refuses_overlong_values() {
        let ok = format!("state={}", "s".repeat(MAX_VALUE));
        assert!(Form::parse(ok.as_bytes()).is_ok());
        let long = format!("state={}", "s".repeat(MAX_VALUE + 1));
        assert!(Form::parse(long.as_bytes()).is_err());
    }

    #[test]
    fn refuses_too_many_parameters() {
        let body: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=x")).collect();
        assert!(Form::parse(body.join("&").as_bytes()).is_err());
    }
}
