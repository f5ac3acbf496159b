//! Loading the config tree: parse the main file and the files it includes (TOML or
//! YAML), validate every rule over the merged whole, and report each problem as
//! `FILE:LINE:COLUMN: field.path: message` in the file and at the line it is written.

pub mod diff;
pub mod file;
pub mod include;
pub mod locate;
pub mod providers;
pub mod report;
pub mod validate;

use file::{ConfigFile, IncludedFile};
use include::Tree;
pub use include::{FileSystem, IncludeGlob, IncludeSource};
use locate::{Locations, Position};
pub use report::{Diagnostic, Issue, Place, Severity, Sources};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
pub use validate::{
    ServerSettings, StoreBackend, StoreSettings, StoreTls, UiSettings, Validated,
};

/// A config that passed validation, with what it was read from.
pub struct Loaded {
    pub config: Validated,
    /// Warnings found while validating (the file is usable).
    pub warnings: Vec<Diagnostic>,
    /// The config file, the files it includes and every file they reference: what a
    /// reload watches.
    pub files: Vec<PathBuf>,
    /// The globs of `include`: a file added to their directories changes the config.
    pub globs: Vec<IncludeGlob>,
    /// The files the main file includes, in the order they were merged.
    pub included: Vec<PathBuf>,
    /// SHA-256 over every input (the main file, then the included ones in order, then
    /// the files and env values they name), to skip reloads that change nothing.
    pub fingerprint: [u8; 32],
}

/// A config that was rejected: every diagnostic, errors and warnings.
#[derive(Debug)]
pub struct Rejected {
    pub diagnostics: Vec<Diagnostic>,
    /// Files read before the rejection, so a watcher still sees them change.
    pub files: Vec<PathBuf>,
    /// The globs of `include` resolved before the rejection, likewise.
    pub globs: Vec<IncludeGlob>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self
            .diagnostics
            .iter()
            .filter(|d| d.issue.is_error())
            .map(ToString::to_string)
            .collect();
        f.write_str(&errors.join("\n"))
    }
}

impl std::error::Error for Rejected {}

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

fn rendered(mut schema: schemars::Schema, title: &str) -> Result<String, serde_json::Error> {
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    Ok(text)
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Rejected> {
    let mut sources = Sources::new();
    match sources.read(path) {
        Ok(text) => check(path, &text, sources),
        Err(e) => Err(rejected(
            path,
            Issue::error("", format!("cannot read the file: {e}")),
            None,
            sources.files,
        )),
    }
}

/// Parses and validates `text` as if it were the file at `path`: the name picks the
/// format and the directory anchors relative paths. For tools and fuzzing.
pub fn check_text(path: &Path, text: &str) -> Result<Loaded, Rejected> {
    let mut sources = Sources::new();
    sources.files.push(path.to_owned());
    sources.note(path.as_os_str().as_encoded_bytes(), text.as_bytes());
    check(path, text, sources)
}

/// Parses and validates `text`, read from somewhere other than a file of its own (stdin,
/// a git revision): `name` is what diagnostics call it, `format` is given, relative
/// paths in it resolve against `base_dir`, and the files it includes are read from
/// `includes` (the files they name, from the file system).
pub fn check_source(
    name: &Path,
    base_dir: &Path,
    format: Format,
    text: &str,
    includes: &dyn IncludeSource,
) -> Result<Loaded, Rejected> {
    let mut sources = Sources::new();
    sources.note(name.as_os_str().as_encoded_bytes(), text.as_bytes());
    check_as(name, base_dir, format, text, sources, includes)
}

fn rejected(
    path: &Path,
    issue: Issue,
    position: Option<Position>,
    files: Vec<PathBuf>,
) -> Rejected {
    Rejected {
        diagnostics: vec![Diagnostic {
            file: path.to_owned(),
            position,
            issue,
            also: None,
        }],
        files,
        globs: Vec::new(),
    }
}

fn check(path: &Path, text: &str, sources: Sources) -> Result<Loaded, Rejected> {
    let Some(format) = Format::of_path(path) else {
        let issue = Issue::error(
            "",
            "unknown config format: name the file .toml, .yaml or .yml",
        );
        return Err(rejected(path, issue, None, sources.files));
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));
    check_as(path, base_dir, format, text, sources, &FileSystem)
}

fn check_as(
    path: &Path,
    base_dir: &Path,
    format: Format,
    text: &str,
    mut sources: Sources,
    includes: &dyn IncludeSource,
) -> Result<Loaded, Rejected> {
    let locations = locations(format, text);
    let mut file: ConfigFile = match parse(format, text, &locations) {
        Ok(f) => f,
        Err((issue, position)) => return Err(rejected(path, issue, position, sources.files)),
    };
    let mut issues = Vec::new();
    let resolved = include::resolve(includes, path, base_dir, &file.include, &mut issues);
    let mut tree = Tree::new(path.to_owned(), locations, &file);
    let mut failed: Vec<Diagnostic> = Vec::new();
    let mut merged = Vec::new();
    for (included, entry) in resolved.files {
        match read_included(&included, includes, &mut sources) {
            Ok((locations, lists)) => {
                let name = includes.name(&included);
                tree.merge(&mut file, &included, name, locations, lists);
                merged.push(included);
            }
            Err(Unread::Main(issue)) => issues.push(Issue {
                path: format!("include[{entry}]"),
                ..issue
            }),
            Err(Unread::Own(diagnostic)) => failed.push(*diagnostic),
        }
    }
    let globs = resolved.globs;
    if !failed.is_empty() {
        // A file that does not parse leaves the tree incomplete: checking the rest
        // would report what it declares as missing.
        let mut diagnostics = place(&tree, issues);
        diagnostics.extend(failed);
        return Err(Rejected {
            diagnostics,
            files: sources.files,
            globs,
        });
    }
    let (mut validated, found) = validate::validate(&file, base_dir, &mut sources);
    issues.extend(found);
    let mut federation_issues = validate::Report::default();
    let federation = providers::check(&file, base_dir, &mut sources, &mut federation_issues);
    let federation_issues = federation_issues.into_issues();
    if federation_issues.iter().any(Issue::is_error) {
        validated = None;
    }
    if let Some(v) = validated.as_mut() {
        v.providers = federation.providers;
        v.token_key = federation.token_key;
    }
    issues.extend(federation_issues);
    let diagnostics = place(&tree, issues);
    match validated {
        Some(config) if !diagnostics.iter().any(|d| d.issue.is_error()) => {
            let mut fingerprint = [0; 32];
            fingerprint.copy_from_slice(sources.digest.finish().as_ref());
            Ok(Loaded {
                config,
                warnings: diagnostics,
                files: sources.files,
                globs,
                included: merged,
                fingerprint,
            })
        }
        _ => Err(Rejected {
            diagnostics,
            files: sources.files,
            globs,
        }),
    }
}

fn locations(format: Format, text: &str) -> Locations {
    match format {
        Format::Toml => Locations::toml(text),
        Format::Yaml => Locations::yaml(text),
    }
}

/// Why an included file adds nothing: a problem of the `include` entry that named it
/// (reported in the main file), or of its own content (reported in it).
enum Unread {
    Main(Issue),
    Own(Box<Diagnostic>),
}

/// Reads the included file at `path` from `source` (recording it in `sources`) and
/// parses it.
fn read_included(
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
    let locations = locations(format, &text);
    // A file just created, or a YAML document with nothing in it, adds nothing.
    match parse::<Option<IncludedFile>>(format, &text, &locations) {
        Ok(lists) => Ok((locations, lists.unwrap_or_default())),
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
/// in file order, then line order.
fn place(tree: &Tree, issues: Vec<Issue>) -> Vec<Diagnostic> {
    let locate = |path: &str| {
        let (file, local) = tree.place(path);
        let (name, locations) = &tree.files[file];
        (file, name.clone(), locations.find(&local), local)
    };
    let mut placed: Vec<(usize, Diagnostic)> = issues
        .into_iter()
        .map(|mut issue| {
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
        })
        .collect();
    placed.sort_by_key(|(file, d)| (*file, d.position));
    placed.into_iter().map(|(_, d)| d).collect()
}

/// Deserializes the text; on failure, the issue with the best position the parser gives.
fn parse<T: DeserializeOwned>(
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

#[cfg(test)]
mod tests {
    use super::check_text;

    #[test]
    fn pending_ttl_is_bounded() {
        for (ttl, valid) in [
            ("10m", true),
            ("10s", true),
            ("1h", true),
            ("5s", false),
            ("2h", false),
        ] {
            let text =
                format!("issuer = \"http://127.0.0.1:9\"\n[session]\npending_ttl = \"{ttl}\"\n");
            let result = check_text(std::path::Path::new("/nonexistent/g.toml"), &text);
            assert_eq!(result.is_ok(), valid, "pending_ttl = {ttl:?}");
        }
    }
}
