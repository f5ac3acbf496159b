//! `include = [...]`: the files that add `[[clients]]`, `[[users]]` and `[[scopes]]` to
//! the main file, so that each team can own its file (CODEOWNERS works on files).
//!
//! The rules, all here: entries are paths or globs relative to the main file's
//! directory, with wildcards in the file name only (`clients.d/*.toml`), so that the
//! directories a glob reads are plain ones the reloader can watch. A glob may match
//! nothing (an empty `clients.d/` is fine), but its directory must exist; a plain path
//! must name a file. Matches are taken in name order, entry after entry; names starting
//! with `.` (editor locks, a ConfigMap's `..data`) never match a wildcard; a file
//! matched twice, and the main file itself, are read once. Included files include
//! nothing (one level), and at most [`MAX_FILES`] are read.
//!
//! Merging puts the main file's entries first, then each included file's, and keeps
//! where each entry came from ([`Tree`]), so that a problem found in the merged config
//! is reported in its own file at its own line.

use super::file::{ConfigFile, IncludedFile};
use super::locate::Locations;
use super::report::Issue;
use glob::{MatchOptions, Pattern};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The most files the includes may name, all entries together.
pub(crate) const MAX_FILES: usize = 256;

/// How wildcards match file names: case-sensitive, and a leading `.` only literally.
const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// Where included files are found: the file system, or (for `gatehouse diff
/// git:REV:PATH`) a git revision, so that both sides of a review are whole trees.
pub trait IncludeSource {
    /// The names of the files (not directories) in `dir`.
    fn file_names(&self, dir: &Path) -> std::io::Result<Vec<String>>;
    /// The text of the file at `path`.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// What diagnostics call the file at `path` (`git:REV:PATH` for a revision).
    fn name(&self, path: &Path) -> PathBuf {
        path.to_owned()
    }
}

/// Included files read from the file system.
pub struct FileSystem;

impl IncludeSource for FileSystem {
    fn file_names(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        for item in std::fs::read_dir(dir)?.flatten() {
            if let Some(name) = item.file_name().to_str()
                && item.path().is_file()
            {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// A glob of `include`, as the reloader watches it: the directory it reads and the
/// file-name pattern, so that a file added there is picked up.
#[derive(Debug, Clone)]
pub struct IncludeGlob {
    dir: PathBuf,
    pattern: Pattern,
}

impl IncludeGlob {
    /// The directory the glob reads (`.` for the current one).
    pub(crate) fn dir(&self) -> &Path {
        if self.dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.dir
        }
    }

    /// True when a file named `name` in [`IncludeGlob::dir`] would be included.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.pattern.matches_with(name, OPTIONS)
    }
}

/// What the includes of a main file name: the files in order, each with the index of
/// the `include` entry that named it, and the globs to watch.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub(crate) files: Vec<(PathBuf, usize)>,
    pub(crate) globs: Vec<IncludeGlob>,
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Resolves the `include` entries of the main file `main` (whose directory is
/// `base_dir`); problems are issues at `include[i]` of the main file.
pub(crate) fn resolve(
    source: &dyn IncludeSource,
    main: &Path,
    base_dir: &Path,
    include: &[String],
    issues: &mut Vec<Issue>,
) -> Resolved {
    let mut out = Resolved::default();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    seen.insert(canonical(main));
    // Read from a revision or stdin, `main` is a name (`git:REV:PATH`); the file it
    // stands for is its name in `base_dir`, which a glob there would match.
    if let Some(name) = main.file_name() {
        seen.insert(canonical(&base_dir.join(name)));
    }
    for (i, entry) in include.iter().enumerate() {
        let path = format!("include[{i}]");
        let relative = Path::new(entry);
        let (Some(name), Some(parent)) = (
            relative.file_name().and_then(|n| n.to_str()),
            relative.parent(),
        ) else {
            issues.push(Issue::error(
                path,
                format!(
                    "{entry:?} names no file; write a path or a glob like \"clients.d/*.toml\""
                ),
            ));
            continue;
        };
        if has_wildcard(&parent.to_string_lossy()) {
            issues.push(Issue::error(
                path,
                format!(
                    "{entry:?}: wildcards may only be in the file name (\"clients.d/*.toml\"), so that the directory can be watched"
                ),
            ));
            continue;
        }
        let dir = base_dir.join(parent);
        let mut named = Vec::new();
        if has_wildcard(name) {
            let pattern = match Pattern::new(name) {
                Ok(p) => p,
                Err(e) => {
                    issues.push(Issue::error(path, format!("{entry:?} is not a glob: {e}")));
                    continue;
                }
            };
            let listing = match source.file_names(&dir) {
                Ok(listing) => listing,
                Err(e) => {
                    issues.push(Issue::error(
                        path,
                        format!("cannot read the directory {}: {e}", dir.display()),
                    ));
                    continue;
                }
            };
            let glob = IncludeGlob { dir, pattern };
            for name in listing.iter().filter(|n| glob.matches(n)) {
                named.push(glob.dir.join(name));
            }
            named.sort();
            out.globs.push(glob);
        } else {
            // A plain path is read as it is: if it is missing, reading it says so.
            named.push(dir.join(name));
        }
        for file in named {
            if !seen.insert(canonical(&file)) {
                continue;
            }
            if out.files.len() == MAX_FILES {
                issues.push(Issue::error(
                    path,
                    format!("the includes name more than {MAX_FILES} files"),
                ));
                return out;
            }
            out.files.push((file, i));
        }
    }
    out
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// The message for a key an included file may not hold, or `None` for another error.
pub(crate) fn misplaced_key(path: &str, message: &str) -> Option<String> {
    if path.is_empty() || path.contains(['.', '[']) || !message.starts_with("unknown field") {
        return None;
    }
    Some(if path == "include" {
        "an included file includes nothing: list every file or glob in the main file's include"
            .to_owned()
    } else {
        format!(
            "an included file holds only [[clients]], [[users]] and [[scopes]]; `{path}` belongs in the main file"
        )
    })
}

/// Where one merged entry was written: which file of the tree (0 is the main file)
/// and its index in that file's list.
#[derive(Debug, Clone, Copy)]
struct Origin {
    file: usize,
    index: usize,
}

/// The files of a config tree (the main file first) and where each merged entry of
/// the lists came from.
pub(crate) struct Tree {
    /// Each file and the index of where its fields are written.
    pub(crate) files: Vec<(PathBuf, Locations)>,
    clients: Vec<Origin>,
    users: Vec<Origin>,
    scopes: Vec<Origin>,
}

impl Tree {
    /// A tree of the main file alone, whose lists are `main`'s.
    pub(crate) fn new(main: PathBuf, locations: Locations, file: &ConfigFile) -> Self {
        let own = |n: usize| (0..n).map(|index| Origin { file: 0, index }).collect();
        Self {
            files: vec![(main, locations)],
            clients: own(file.clients.len()),
            users: own(file.users.len()),
            scopes: own(file.scopes.len()),
        }
    }

    /// Appends the lists of the included file at `path` (called `name` in diagnostics)
    /// to `merged`; relative paths of its clients then start from its own directory.
    pub(crate) fn merge(
        &mut self,
        merged: &mut ConfigFile,
        path: &Path,
        name: PathBuf,
        locations: Locations,
        included: IncludedFile,
    ) {
        let file = self.files.len();
        let origins = |n: usize| (0..n).map(move |index| Origin { file, index });
        self.clients.extend(origins(included.clients.len()));
        self.users.extend(origins(included.users.len()));
        self.scopes.extend(origins(included.scopes.len()));
        // One directory for all its clients, not a copy each.
        let dir: Option<std::sync::Arc<Path>> = path.parent().map(Into::into);
        for mut piece in included.clients.into_pieces() {
            for c in &mut piece {
                c.base_dir = dir.clone();
            }
            merged.clients.push_piece(piece);
        }
        merged.users.extend(included.users);
        merged.scopes.extend(included.scopes);
        self.files.push((name, locations));
    }

    /// The file (its index in [`Tree::files`]) and the field path within it of the
    /// merged config's field `path`: `clients[7].id` may be `clients[0].id` of an
    /// included file.
    pub(crate) fn place(&self, path: &str) -> (usize, String) {
        for (list, origins) in [
            ("clients", &self.clients),
            ("users", &self.users),
            ("scopes", &self.scopes),
        ] {
            let Some(rest) = path.strip_prefix(list).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some((n, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some(o) = n.parse::<usize>().ok().and_then(|n| origins.get(n)) {
                return (o.file, format!("{list}[{}]{tail}", o.index));
            }
        }
        (0, path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::include::{FileSystem, MAX_FILES, misplaced_key, resolve};

    #[test]
    fn globs_match_file_names_in_order_once_and_never_dot_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("clients.d")).expect("mkdir");
        std::fs::create_dir(d.join("empty.d")).expect("mkdir");
        for name in ["b.toml", "a.toml", ".#a.toml", "notes.md"] {
            std::fs::write(d.join("clients.d").join(name), "").expect("write");
        }
        std::fs::write(d.join("users.yaml"), "").expect("write");
        std::fs::write(d.join("main.toml"), "").expect("write");
        let include = [
            "clients.d/*.toml",
            "empty.d/*.yaml",
            "users.yaml",
            "clients.d/a.toml",
            "*.toml",
        ]
        .map(String::from);
        let mut issues = Vec::new();
        let resolved = resolve(&FileSystem, &d.join("main.toml"), d, &include, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        let names: Vec<(String, usize)> = resolved
            .files
            .iter()
            .map(|(p, i)| {
                let rel = p.strip_prefix(d).expect("inside");
                (rel.display().to_string(), *i)
            })
            .collect();
        assert_eq!(
            names,
            [
                ("clients.d/a.toml".to_owned(), 0),
                ("clients.d/b.toml".to_owned(), 0),
                ("users.yaml".to_owned(), 2),
            ]
        );
        assert_eq!(resolved.globs.len(), 3);
        assert!(resolved.globs[0].matches("new.toml") && !resolved.globs[0].matches(".x.toml"));
    }

    #[test]
    fn wildcards_in_directories_and_missing_directories_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let include = ["teams/*/clients.toml", "missing.d/*.toml", "", "[.toml"].map(String::from);
        let mut issues = Vec::new();
        let main = dir.path().join("main.toml");
        let resolved = resolve(&FileSystem, &main, dir.path(), &include, &mut issues);
        assert!(resolved.files.is_empty());
        let got: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            got,
            ["include[0]", "include[1]", "include[2]", "include[3]"]
        );
        assert!(issues[0].message.contains("only be in the file name"));
        assert!(issues[1].message.contains("cannot read the directory"));
    }

    #[test]
    fn no_more_than_the_cap_of_files_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..=MAX_FILES {
            std::fs::write(dir.path().join(format!("{i:04}.toml")), "").expect("write");
        }
        let mut issues = Vec::new();
        let main = dir.path().join("main.yaml");
        let include = ["*.toml".to_owned()];
        let resolved = resolve(&FileSystem, &main, dir.path(), &include, &mut issues);
        assert_eq!(resolved.files.len(), MAX_FILES);
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0].message.contains("more than 256 files"),
            "{issues:?}"
        );
    }

    #[test]
    fn keys_of_the_main_file_are_named_as_misplaced() {
        assert!(
            misplaced_key("issuer", "unknown field `issuer`, expected one of")
                .is_some_and(|m| m.contains("`issuer` belongs in the main file"))
        );
        assert!(
            misplaced_key("include", "unknown field `include`")
                .is_some_and(|m| m.contains("includes nothing"))
        );
        assert_eq!(misplaced_key("clients[0].x", "unknown field `x`"), None);
        assert_eq!(misplaced_key("issuer", "invalid type"), None);
    }
}
