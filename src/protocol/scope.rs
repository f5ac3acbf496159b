//! Scope rules: a request may only name scopes the client is allowed.

/// Splits a `scope` parameter (space-delimited, RFC 6749 3.3) and checks each against
/// `allowed`. Returns the requested scopes, in order and without repeats, or the first
/// scope that is not allowed.
pub(crate) fn narrow<'a>(requested: &'a str, allowed: &[String]) -> Result<Vec<&'a str>, &'a str> {
    let mut out: Vec<&str> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
            return Err(scope);
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing() {
        let allowed = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(narrow("a", &allowed), Ok(vec!["a"]));
        assert_eq!(narrow("b  a b", &allowed), Ok(vec!["b", "a"]));
        assert_eq!(narrow("a c", &allowed), Err("c"));
        assert_eq!(narrow("A", &allowed), Err("A"), "scopes are case-sensitive");
    }
}
