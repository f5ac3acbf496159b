//! "did you mean `redirect_uris`?": for an unknown field or enum value, the closest of
//! the names the parser says it expected there, by edit distance.

/// `message` with the closest expected name appended, when the message is serde's
/// "unknown field `x`, expected ..." or "unknown variant `x`, expected ..." and one name
/// is close enough to be a typo (a different case, or at most a third of its letters
/// changed).
pub(crate) fn did_you_mean(message: &str) -> String {
    match suggestion(message) {
        Some(name) => format!("{message}; did you mean `{name}`?"),
        None => message.to_owned(),
    }
}

fn suggestion(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (given, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    // TOML's parser quotes the names ("one of `a`, `b`", "`a` or `b`"); YAML's does
    // not ("one of a, b").
    let names: Vec<&str> = if expected.contains('`') {
        expected.split('`').skip(1).step_by(2).collect()
    } else {
        let list = expected.trim_start();
        let list = list.strip_prefix("one of").unwrap_or(list);
        list.split(',')
            .flat_map(|part| part.split(" or "))
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect()
    };
    let mut best: Option<(usize, &str)> = None;
    for name in names {
        let distance = if name.eq_ignore_ascii_case(given) {
            0
        } else {
            edit_distance(given, name)
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, name));
        }
    }
    let (distance, name) = best?;
    let limit = given.chars().count().max(name.chars().count()).div_ceil(3);
    (distance <= limit).then_some(name)
}

/// Levenshtein distance over characters (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{did_you_mean, edit_distance};

    #[test]
    fn distances() {
        assert_eq!(edit_distance("redirect_uri", "redirect_uris"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggests_the_closest_expected_name() {
        assert_eq!(
            did_you_mean(
                "unknown field `redirect_uri`, expected one of `id`, `redirect_uris`, `public`"
            ),
            "unknown field `redirect_uri`, expected one of `id`, `redirect_uris`, `public`; did you mean `redirect_uris`?"
        );
        assert!(
            did_you_mean("unknown variant `es256`, expected one of `ES256`, `EdDSA`")
                .ends_with("did you mean `ES256`?")
        );
        assert!(did_you_mean("unknown field `nme`, expected `id` or `name`").ends_with("`name`?"));
        assert!(
            did_you_mean("unknown variant `es256`, expected one of ES256, EdDSA, RS256")
                .ends_with("did you mean `ES256`?")
        );
        assert!(
            !did_you_mean("unknown field `colour`, expected `id` or `name`")
                .contains("did you mean")
        );
        assert_eq!(did_you_mean("invalid type: string"), "invalid type: string");
    }
}
