//! Loading the config: the tree that `config` reads (the main file and the files it
//! includes, TOML or YAML) validated over the merged whole into the model (`validate`,
//! then the providers and the token key in `providers`), every problem placed as
//! `FILE:LINE:COLUMN: field.path: message` in the file and at the line it is written;
//! and the security diff of two loaded configs (`diff`). Above `config`, `model`,
//! `jwt` and `upstream`: the layer that builds on all of them.

mod change;
mod client_keys;
mod clients;
pub mod diff;
mod documents;
mod fapi;
mod key_diff;
mod limits;
mod offline;
pub mod passkeys;
pub mod providers;
mod proxies;
mod report;
mod scopes;
mod secrets;
mod sentinel;
mod server;
mod signing_keys;
mod trusted_issuers;
mod users;
pub mod validate;

use crate::config::file::ConfigFile;
use crate::config::include::{self, IncludeSource, Tree};
use crate::config::locate::{Position, RELEASE_AT};
use crate::config::report::{Diagnostic, Issue, Sources};
use crate::config::{
    FileSystem, Format, IncludeGlob, Reread, Unread, in_pieces, locations, parse, place,
    read_included, shape,
};
use std::fmt;
use std::path::{Path, PathBuf};
pub(crate) use validate::{ServerSettings, UiSettings};
pub use validate::{StoreBackend, StoreSentinel, StoreSettings, StoreTls, Validated};

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

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Rejected> {
    load_as(path, Referenced::Read)
}

/// Whether the files and environment values a config references (client and provider
/// secrets, signing keys, certificates: not the files it includes) are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Referenced {
    /// Read and checked, as the server does.
    Read,
    /// Taken as present and valid, never read (`--offline`: CI without the secrets).
    /// Every other rule still applies; the keys, secrets and env values in the result
    /// are stand-ins, fit for `check` and `diff` only.
    Opaque,
}

impl Referenced {
    fn sources(self) -> Sources {
        match self {
            Self::Read => Sources::new(),
            Self::Opaque => Sources::offline(),
        }
    }
}

/// [`load`], reading or not what the config references.
pub fn load_as(path: &Path, referenced: Referenced) -> Result<Loaded, Rejected> {
    let mut sources = referenced.sources();
    match sources.read(path) {
        Ok(text) => check(path, text, sources, OnDisk::Yes),
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
    check(path, text.to_owned(), sources, OnDisk::No)
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
    referenced: Referenced,
) -> Result<Loaded, Rejected> {
    let mut sources = referenced.sources();
    sources.note(name.as_os_str().as_encoded_bytes(), text.as_bytes());
    let main = Main {
        path: name,
        on_disk: OnDisk::No,
    };
    check_as(main, base_dir, format, text.to_owned(), sources, includes)
}

/// Whether the main file can be read again from its path, to place the problems
/// found in it once its text is released ([`crate::config::locate::RELEASE_AT`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDisk {
    Yes,
    No,
}

/// The main file: what diagnostics call it, and whether it is there to read again.
#[derive(Clone, Copy)]
struct Main<'a> {
    path: &'a Path,
    on_disk: OnDisk,
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

fn check(path: &Path, text: String, sources: Sources, on_disk: OnDisk) -> Result<Loaded, Rejected> {
    let Some(format) = Format::of_path(path) else {
        let issue = Issue::error(
            "",
            "unknown config format: name the file .toml, .yaml or .yml",
        );
        return Err(rejected(path, issue, None, sources.files));
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let main = Main { path, on_disk };
    check_as(main, base_dir, format, text, sources, &FileSystem)
}

fn check_as(
    main: Main<'_>,
    base_dir: &Path,
    format: Format,
    text: String,
    mut sources: Sources,
    includes: &dyn IncludeSource,
) -> Result<Loaded, Rejected> {
    let path = main.path;
    let mut locations = locations(format, text);
    let reread = || FileSystem.read(path);
    let on_disk = (main.on_disk == OnDisk::Yes).then_some(&reread as Reread<'_>);
    let parsed = in_pieces(format, &mut locations, on_disk)
        .unwrap_or_else(|| parse(format, locations.text(), &locations));
    let mut file: ConfigFile = match parsed {
        Ok(f) => f,
        Err((issue, position)) => {
            // Not when the file changed before it could be read again.
            let further = if locations.is_released() {
                Vec::new()
            } else {
                shape::further_problems(format, locations.text(), &locations, &issue.path)
            };
            let mut rejected = rejected(path, issue, position, sources.files);
            rejected
                .diagnostics
                .extend(further.into_iter().map(|(issue, position)| Diagnostic {
                    file: path.to_owned(),
                    position,
                    issue,
                    also: None,
                }));
            rejected.diagnostics.sort_by_key(|d| d.position);
            return Err(rejected);
        }
    };
    if main.on_disk == OnDisk::Yes {
        locations.release(RELEASE_AT);
    }
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
    // The texts released once parsed are given back now, before the checks.
    if tree.files.iter().any(|(_, l)| l.is_released()) {
        crate::memory::collect();
    }
    let read = |file: usize| match file {
        0 => reread(),
        n => match merged.get(n - 1) {
            Some(included) => includes.read(included),
            None => Err(std::io::Error::other("not a file of this config")),
        },
    };
    if !failed.is_empty() {
        // A file that does not parse leaves the tree incomplete: checking the rest
        // would report what it declares as missing.
        let mut diagnostics = place(&mut tree, issues, &read);
        diagnostics.extend(failed);
        return Err(Rejected {
            diagnostics,
            files: sources.files,
            globs,
        });
    }
    let (mut validated, resolved_clients, found) =
        validate::validate(&file, base_dir, &mut sources);
    issues.extend(found);
    check_documents_and_providers(&file, base_dir, &mut sources, &mut validated, &mut issues);
    let mut store_issues = report::Report::default();
    if let Some(v) = validated.as_mut() {
        sentinel::apply(
            &file.store,
            &mut v.store,
            base_dir,
            &mut sources,
            &mut store_issues,
        );
    }
    let store_issues = store_issues.into_issues();
    if store_issues.iter().any(Issue::is_error) {
        validated = None;
    }
    issues.extend(store_issues);
    let diagnostics = place(&mut tree, issues, &read);
    // The text and its index are not needed any more: gone before the clients are
    // built, so a big config's text, entries and clients do not all exist at once,
    // and given back at once rather than after the allocator's delay (100,000
    // clients: a reload's peak 241 MiB instead of 264).
    drop(tree);
    crate::memory::collect();
    match validated {
        Some(mut config) if !diagnostics.iter().any(|d| d.issue.is_error()) => {
            config.clients = clients::build(std::mem::take(&mut file.clients), resolved_clients);
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

/// The client metadata documents and the upstream providers, checked after the rest of
/// the config and filled into `validated` (an error among them takes it away).
fn check_documents_and_providers(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    validated: &mut Option<Validated>,
    issues: &mut Vec<Issue>,
) {
    let mut document_issues = report::Report::default();
    let client_documents = documents::check(file, base_dir, sources, &mut document_issues);
    let document_issues = document_issues.into_issues();
    if document_issues.iter().any(Issue::is_error) {
        *validated = None;
    }
    if let Some(v) = validated.as_mut() {
        v.client_documents = client_documents;
    }
    issues.extend(document_issues);
    let mut federation_issues = report::Report::default();
    let federation = providers::check(file, base_dir, sources, &mut federation_issues);
    let federation_issues = federation_issues.into_issues();
    if federation_issues.iter().any(Issue::is_error) {
        *validated = None;
    }
    if let Some(v) = validated.as_mut() {
        v.providers = federation.providers;
        v.token_key = federation.token_key;
    }
    issues.extend(federation_issues);
}

#[cfg(test)]
mod tests {
    use crate::config::Format;
    use crate::config::include::IncludeSource;
    use crate::config::locate::{Position, RELEASE_AT};
    use crate::load::{Referenced, check_source, check_text};
    use std::cell::Cell;
    use std::path::Path;

    /// An included file read first as `first`, then as `then`, counting the reads.
    struct Included {
        first: String,
        then: String,
        reads: Cell<usize>,
    }

    impl IncludeSource for Included {
        fn file_names(&self, _: &Path) -> std::io::Result<Vec<String>> {
            Ok(vec!["big.toml".to_owned()])
        }

        fn read(&self, _: &Path) -> std::io::Result<String> {
            let n = self.reads.replace(self.reads.get() + 1);
            Ok(if n == 0 { &self.first } else { &self.then }.clone())
        }
    }

    /// `count` public clients, the one at `bad` with a space in its id (line
    /// `4 * bad + 2` of the text).
    fn clients(count: usize, bad: usize) -> String {
        (0..count)
            .map(|n| {
                let id = if n == bad {
                    "bad id".to_owned()
                } else {
                    format!("app-{n}")
                };
                format!(
                    "[[clients]]\nid = \"{id}\"\npublic = true\n\
                     redirect_uris = [\"https://app.example/cb/{n:032}\"]\n"
                )
            })
            .collect()
    }

    /// Checks a main file that includes `big.toml`, read from `included`.
    fn check_with(included: &Included) -> Vec<String> {
        let main = "issuer = \"http://127.0.0.1:9\"\ninclude = [\"big.toml\"]\n";
        let dir = Path::new("/nonexistent");
        let name = dir.join("g.toml");
        let result = check_source(&name, dir, Format::Toml, main, included, Referenced::Read);
        let rejected = result.err().expect("a client id with a space is refused");
        rejected
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_big_file_is_read_again_to_place_its_problems() {
        let text = clients(12_000, 9_000);
        assert!(text.len() >= RELEASE_AT);
        let included = Included {
            first: text.clone(),
            then: text,
            reads: Cell::new(0),
        };
        let diagnostics = check_with(&included);
        assert_eq!(included.reads.get(), 2, "released once parsed, read again");
        let at = Position {
            line: 4 * 9_000 + 2,
            column: 1,
        };
        let expected = format!(
            "/nonexistent/big.toml:{}:{}: clients[9000].id: \"bad id\" contains whitespace \
             or control characters",
            at.line, at.column
        );
        assert_eq!(diagnostics, [expected]);
    }

    #[test]
    fn a_big_file_changed_before_it_is_read_again_gives_no_positions() {
        let text = clients(12_000, 9_000);
        let included = Included {
            then: format!("# changed\n{text}"),
            first: text,
            reads: Cell::new(0),
        };
        let diagnostics = check_with(&included);
        assert_eq!(included.reads.get(), 2);
        assert_eq!(
            diagnostics,
            [
                "/nonexistent/big.toml:1:1: warning: the file changed while it was being \
                 checked: the positions of the problems in it are left out",
                "/nonexistent/big.toml:1:1: clients[9000].id: \"bad id\" contains whitespace \
                 or control characters",
            ]
        );
    }

    #[test]
    fn a_small_file_is_read_once() {
        let text = clients(3, 1);
        let included = Included {
            first: text.clone(),
            then: String::new(),
            reads: Cell::new(0),
        };
        let diagnostics = check_with(&included);
        assert_eq!(included.reads.get(), 1);
        assert_eq!(
            diagnostics,
            [
                "/nonexistent/big.toml:6:1: clients[1].id: \"bad id\" contains whitespace \
              or control characters"
            ]
        );
    }

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
