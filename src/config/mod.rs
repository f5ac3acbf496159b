//! The config file as written: the serde file model (`file`, and the JSON Schemas
//! derived from it), reading the main file and the files it includes into one tree
//! (`include`), where each field is written (`locate`), and the diagnostics
//! `FILE:LINE:COLUMN: field.path: message` (`report`). The bottom layer of the config:
//! it knows no model, key or provider; validating the tree into the model, and
//! comparing two configs, is `load`, above them.

pub mod file;
pub mod include;
pub mod locate;
mod markdown;
mod pieces;
pub mod report;
pub(crate) mod shape;
mod suggest;

use file::{ConfigFile, IncludedFile};
use include::Tree;
pub use include::{FileSystem, IncludeGlob, IncludeSource};
use locate::{Locations, Position};
pub use report::{Diagnostic, Issue, Place, Severity, Sources};
use serde::de::DeserializeOwned;
use std::path::Path;

/// The two file formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// YAML (`.yaml`, `.yml`).
    Yaml,
}

impl Format {
    /// The format a file name's extension names: `.toml`, `.yaml` or `.yml`.
    pub fn of_path(path: &Path) -> Option<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Some(Self::Toml),
            Some("yaml" | "yml") => Some(Self::Yaml),
            _ => None,
        }
    }
}

/// The JSON Schema (draft 2020-12) of the config file, TOML or YAML, derived from the
/// file model so that it cannot drift from what the loader accepts; pretty-printed,
/// with a final newline. It checks shape only (names, types, unknown keys): `check`
/// applies the rules.
pub fn schema_json() -> Result<String, serde_json::Error> {
    rendered(schemars::schema_for!(ConfigFile), "gatehouse config")
}

/// The JSON Schema of a file named by `include`: only `clients`, `users` and
/// `scopes`, of the same shape as in the main file.
pub fn included_schema_json() -> Result<String, serde_json::Error> {
    rendered(
        schemars::schema_for!(IncludedFile),
        "gatehouse included config",
    )
}

/// The configuration reference in Markdown (docs/configuration.md), rendered from the
/// same schema as [`schema_json`]: every section and field with its type, default and
/// description.
pub fn schema_markdown() -> Result<String, serde_json::Error> {
    let schema = serde_json::to_value(schemars::schema_for!(ConfigFile))?;
    Ok(markdown::render(&schema))
}

fn rendered(mut schema: schemars::Schema, title: &str) -> Result<String, serde_json::Error> {
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    Ok(text)
}

/// Where each field of `text` is written, in `format`; it keeps the text.
pub(crate) fn locations(format: Format, text: String) -> Locations {
    match format {
        Format::Toml => Locations::toml(text),
        Format::Yaml => Locations::yaml(text),
    }
}

/// Why an included file adds nothing: a problem of the `include` entry that named it
/// (reported in the main file), or of its own content (reported in it).
pub(crate) enum Unread {
    Main(Issue),
    Own(Box<Diagnostic>),
}

/// Reads the included file at `path` from `source` (recording it in `sources`) and
/// parses it.
pub(crate) fn read_included(
    path: &Path,
    source: &dyn IncludeSource,
    sources: &mut Sources,
) -> Result<(Locations, IncludedFile), Unread> {
    let Some(format) = Format::of_path(path) else {
        return Err(Unread::Main(Issue::error(
            "",
            format!(
                "{} is not named .toml, .yaml or .yml: its format is unknown",
                source.name(path).display()
            ),
        )));
    };
    sources.files.push(path.to_owned());
    let text = source.read(path).map_err(|e| {
        Unread::Main(Issue::error(
            "",
            format!("cannot read {}: {e}", source.name(path).display()),
        ))
    })?;
    sources.note(path.as_os_str().as_encoded_bytes(), text.as_bytes());
    let mut locations = locations(format, text);
    // A file just created, or a YAML document with nothing in it, adds nothing.
    // A TOML file that parses in pieces is not empty; anything else is parsed whole.
    let reread = || source.read(path);
    let parsed = in_pieces::<IncludedFile>(format, &mut locations, Some(&reread));
    let parsed = parsed
        .map(|r| r.map(Some))
        .unwrap_or_else(|| parse::<Option<IncludedFile>>(format, locations.text(), &locations));
    match parsed {
        Ok(lists) => {
            locations.release(locate::RELEASE_AT);
            Ok((locations, lists.unwrap_or_default()))
        }
        Err((mut issue, position)) => {
            if let Some(message) = include::misplaced_key(&issue.path, &issue.message) {
                issue.message = message;
            }
            Err(Unread::Own(Box::new(Diagnostic {
                file: source.name(path),
                position,
                issue,
                also: None,
            })))
        }
    }
}

/// Places each issue of the merged config in the file and at the line it is written,
/// in file order, then line order. A file whose text was released is read again first
/// (`read` gives the text of the file at an index of [`Tree::files`]) if an issue is
/// in it; one that changed since it was parsed cannot place its issues (the new text
/// is not the one checked): they come without a position, and a warning says why.
pub(crate) fn place(
    tree: &mut Tree,
    issues: Vec<Issue>,
    read: &dyn Fn(usize) -> std::io::Result<String>,
) -> Vec<Diagnostic> {
    let changed = read_again(tree, &issues, read);
    let tree = &*tree;
    let locate = |path: &str| {
        let (file, local) = tree.place(path);
        let (name, locations) = &tree.files[file];
        (file, name.clone(), locations.find(&local), local)
    };
    let placed = issues.into_iter().map(|mut issue| {
        let (index, file, position, local) = locate(&issue.path);
        issue.path = local;
        let also = issue.also.as_deref().map(|other| {
            let (_, file, position, path) = locate(other);
            Place {
                file,
                position,
                path,
            }
        });
        let diagnostic = Diagnostic {
            file,
            position,
            issue,
            also,
        };
        (index, diagnostic)
    });
    let mut placed: Vec<(usize, Diagnostic)> = changed.into_iter().chain(placed).collect();
    placed.sort_by_key(|(file, d)| (*file, d.position));
    placed.into_iter().map(|(_, d)| d).collect()
}

/// Restores the released text of each file of `tree` that one of `issues` is in;
/// a warning (first in its file) for each that changed since.
fn read_again(
    tree: &mut Tree,
    issues: &[Issue],
    read: &dyn Fn(usize) -> std::io::Result<String>,
) -> Vec<(usize, Diagnostic)> {
    let mut wanted = vec![false; tree.files.len()];
    for issue in issues {
        for path in std::iter::once(issue.path.as_str()).chain(issue.also.as_deref()) {
            wanted[tree.place(path).0] = true;
        }
    }
    let mut changed = Vec::new();
    for (index, (name, locations)) in tree.files.iter_mut().enumerate() {
        if wanted[index]
            && locations.is_released()
            && !read(index).is_ok_and(|text| locations.restore(text))
        {
            let issue = Issue::warning(
                "",
                "the file changed while it was being checked: \
                 the positions of the problems in it are left out",
            );
            let diagnostic = Diagnostic {
                file: name.clone(),
                position: None,
                issue,
                also: None,
            };
            changed.push((index, diagnostic));
        }
    }
    changed
}

/// What reads a file's text again (see [`in_pieces`]).
pub(crate) type Reread<'a> = &'a dyn Fn() -> std::io::Result<String>;

/// A file that may hold `[[clients]]` (the main file, an included file), its TOML
/// clients parsed in pieces (`pieces`); `None` when it is to be parsed whole (YAML, a
/// file that cannot be cut, a piece that does not parse), with [`parse`] on
/// `locations`' text. A big text (at least [`locate::RELEASE_AT`]) that can be read
/// again (`reread`) is released as it is cut, and read again if the whole parse needs
/// it: an error if it changed in between.
pub(crate) fn in_pieces<T: pieces::WithClients>(
    format: Format,
    locations: &mut Locations,
    reread: Option<Reread<'_>>,
) -> Option<Result<T, (Issue, Option<Position>)>> {
    if format != Format::Toml {
        return None;
    }
    let Some(reread) = reread.filter(|_| locations.text().len() >= locate::RELEASE_AT) else {
        return pieces::parse(locations.text()).map(Ok);
    };
    match pieces::parse_owned(locations.take()) {
        pieces::Owned::Parsed(file) => Some(Ok(file)),
        pieces::Owned::Uncut(text) => {
            locations.restore(text);
            None
        }
        pieces::Owned::Failed if reread().is_ok_and(|text| locations.restore(text)) => None,
        pieces::Owned::Failed => Some(Err((
            Issue::error(
                "",
                "the file changed while it was being read: check it again",
            ),
            None,
        ))),
    }
}

/// Deserializes the text; on failure, the issue with the best position the parser gives.
pub(crate) fn parse<T: DeserializeOwned>(
    format: Format,
    text: &str,
    locations: &Locations,
) -> Result<T, (Issue, Option<Position>)> {
    parse_as(format, text, locations).map_err(|(mut issue, position)| {
        issue.message = suggest::did_you_mean(&issue.message);
        (issue, position)
    })
}

fn parse_as<T: DeserializeOwned>(
    format: Format,
    text: &str,
    locations: &Locations,
) -> Result<T, (Issue, Option<Position>)> {
    match format {
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| toml_issue(&e, text, ""))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let (issue, position) = toml_issue(e.inner(), text, &path);
                (issue, position.or_else(|| locations.find(&path)))
            })
        }
        Format::Yaml => {
            let options = serde_saphyr::options! { with_snippet: false };
            serde_saphyr::from_str_with_options(text, options).map_err(|e| {
                let position = e.location().map(|l| Position {
                    line: l.line() as usize,
                    column: l.column() as usize,
                });
                let path = position
                    .and_then(|p| locations.path_at(p))
                    .unwrap_or_default()
                    .to_owned();
                (Issue::error(path, yaml_message(&e.to_string())), position)
            })
        }
    }
}

/// The YAML parser's message without the position it appends (we print it in front)
/// or its advice to the programmer.
fn yaml_message(raw: &str) -> String {
    let message = match raw.rfind(" at line ") {
        Some(i) => &raw[..i],
        None => raw,
    };
    message.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
}

fn toml_issue(e: &toml::de::Error, text: &str, path: &str) -> (Issue, Option<Position>) {
    let position = e.span().map(|s| locate::position_of(text, s.start));
    (
        Issue::error(path, e.message().trim_end().to_owned()),
        position,
    )
}

/// What `gatehouse keygen --client ID` prints for the public half `jwk` of a new key:
/// the JWK Set (for a `jwks_file`, or to publish at a `jwks_uri`) and the TOML lines
/// of the client with the key inline. Only public members are ever in `jwk`.
pub fn client_key_lines(client: &str, jwk: &serde_json::Value) -> String {
    let members: Vec<String> = jwk
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k} = {}", toml_string(v))))
        .collect();
    let set = serde_json::json!({ "keys": [jwk] });
    format!(
        "# The public JWK Set of client {client:?} (for jwks_file, or to serve at a jwks_uri):\n\
         {set}\n\n\
         # The lines to commit (the public key is safe in git):\n\
         [[clients]]\n\
         id = {id}\n\
         grant_types = [\"client_credentials\"]\n\
         jwks = {{ keys = [ {{ {members} }} ] }}\n",
        id = toml_string(client),
        members = members.join(", "),
    )
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use crate::config::file::ConfigFile;
    use crate::config::locate::RELEASE_AT;
    use crate::config::{Format, in_pieces, locations};

    /// A file of public clients just over [`RELEASE_AT`], then `tail`; and its count.
    fn big(tail: &str) -> (String, usize) {
        let mut text = String::from("issuer = \"https://id.example.com\"\n");
        let mut count = 0;
        while text.len() < RELEASE_AT {
            text.push_str(&format!("[[clients]]\nid = \"c{count}\"\npublic = true\n"));
            count += 1;
        }
        text.push_str(tail);
        (text, count)
    }

    #[test]
    fn a_big_text_is_released_as_it_is_cut_and_read_again_for_a_whole_parse() {
        let never = || -> std::io::Result<String> { panic!("read again") };
        let (good, count) = big("");
        let mut at = locations(Format::Toml, good.clone());
        let parsed = in_pieces::<ConfigFile>(Format::Toml, &mut at, Some(&never));
        let file = parsed.expect("cut").expect("parses");
        assert!(at.is_released());
        assert_eq!(file.clients.len(), count);

        // Not to be read again: parsed in pieces, the text kept.
        let mut at = locations(Format::Toml, good.clone());
        assert!(in_pieces::<ConfigFile>(Format::Toml, &mut at, None).is_some());
        assert_eq!(at.text(), good);

        // A piece that does not parse: read again, to be parsed whole.
        let (broken, _) = big("[[clients]]\nid = \"unterminated\n");
        let same = || Ok(broken.clone());
        let mut at = locations(Format::Toml, broken.clone());
        assert!(in_pieces::<ConfigFile>(Format::Toml, &mut at, Some(&same)).is_none());
        assert_eq!(at.text(), broken);

        // Changed before it was read again: an error, not another file's diagnostics.
        let changed = || Ok(format!("# changed\n{broken}"));
        let mut at = locations(Format::Toml, broken.clone());
        let parsed = in_pieces::<ConfigFile>(Format::Toml, &mut at, Some(&changed));
        let (issue, position) = parsed.expect("an answer").expect_err("an error");
        assert_eq!(
            (issue.message.as_str(), position),
            (
                "the file changed while it was being read: check it again",
                None
            )
        );
        assert!(at.is_released());
    }
}
