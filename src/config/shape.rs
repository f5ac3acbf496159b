//! Every shape problem of a config file at once. serde's derive stops at the first
//! unknown field or wrong type; when it does, the text is read again as untyped data
//! and checked against the JSON Schema derived from the same file model, which finds
//! the others (unknown fields and wrong types only: the rules are `load`'s).

use super::file::ConfigFile;
use super::locate::{Locations, Position};
use super::{Format, Issue};
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// At most this many further problems are reported (a file of garbage has many).
const MAX_FURTHER: usize = 50;

/// The unknown fields and wrong types of the main config file `text` other than the
/// one at `reported` (the path serde gave), each with its position when found.
pub(crate) fn further_problems(
    format: Format,
    text: &str,
    locations: &Locations,
    reported: &str,
) -> Vec<(Issue, Option<Position>)> {
    let Some(value) = untyped(format, text) else {
        return Vec::new();
    };
    let Ok(schema) = serde_json::to_value(schemars::schema_for!(ConfigFile)) else {
        return Vec::new();
    };
    let Ok(validator) = jsonschema::validator_for(&schema) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for error in validator.iter_errors(&value) {
        let at = field_path(&error.instance_path().to_string());
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    let path = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    found.push(Issue::error(path, format!("unknown field `{name}`")));
                }
            }
            ValidationErrorKind::Type { .. } => found.push(Issue::error(at, error.to_string())),
            _ => {}
        }
    }
    found
        .into_iter()
        .filter(|issue| issue.path != reported)
        .take(MAX_FURTHER)
        .map(|issue| {
            let position = locations.find(&issue.path);
            (issue, position)
        })
        .collect()
}

/// The text as untyped data, or `None` when it does not parse at all.
fn untyped(format: Format, text: &str) -> Option<Value> {
    match format {
        Format::Toml => {
            let value: toml::Value = toml::from_str(text).ok()?;
            serde_json::to_value(value).ok()
        }
        Format::Yaml => serde_saphyr::from_str(text).ok(),
    }
}

/// A JSON Pointer (`/clients/0/redirect_uri`) as a field path (`clients[0].redirect_uri`).
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::field_path;

    #[test]
    fn pointers_become_field_paths() {
        assert_eq!(field_path(""), "");
        assert_eq!(
            field_path("/clients/0/redirect_uri"),
            "clients[0].redirect_uri"
        );
        assert_eq!(
            field_path("/tokens/access_token_ttl"),
            "tokens.access_token_ttl"
        );
    }
}
