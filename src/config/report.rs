//! What config loading reports and records: issues (errors and warnings by field
//! path), diagnostics (an issue placed at FILE:LINE:COLUMN), and the sources a config
//! was read from with their digest.

use super::locate::Position;
use aws_lc_rs::digest;
use std::fmt;
use std::path::{Path, PathBuf};

/// How bad an [`Issue`] is: errors reject the file, warnings only inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem with the config, named by field path.
#[derive(Debug, Clone)]
pub struct Issue {
    pub severity: Severity,
    pub path: String,
    pub message: String,
    /// Another field the problem involves (the first of two duplicates), by path:
    /// printed as the place it is written, in whichever file.
    pub also: Option<String>,
}

impl Issue {
    /// An error at `path`.
    pub(crate) fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            also: None,
        }
    }

    /// The same issue, naming `path` as the other place involved.
    pub(crate) fn also_at(mut self, path: impl Into<String>) -> Self {
        self.also = Some(path.into());
        self
    }

    /// A warning at `path`.
    pub(crate) fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            also: None,
        }
    }

    /// True for errors.
    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Where a field is written: its file and, when found, its line and column.
#[derive(Debug, Clone)]
pub struct Place {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The field path within that file.
    pub path: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Position { line, column } = self.position.unwrap_or(Position { line: 1, column: 1 });
        write!(f, "{}:{line}:{column}", self.file.display())?;
        // A syntax error, or a problem of the whole file, is of no field.
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        Ok(())
    }
}

/// An [`Issue`] placed in its file, ready to print. Its `issue.path` is the field path
/// within `file` (an included file's own `clients[0]`, not its place in the tree).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Option<Position>,
    pub issue: Issue,
    /// The other place the issue involves (see [`Issue::also`]), located.
    pub also: Option<Place>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let here = Place {
            file: self.file.clone(),
            position: self.position,
            path: self.issue.path.clone(),
        };
        let kind = match self.issue.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(f, "{here}: {kind}{}", self.issue.message)?;
        if let Some(also) = &self.also {
            write!(f, " (also at {also})")?;
        }
        Ok(())
    }
}

/// The files (and env values) a config was built from, and a digest of their content,
/// so that a reload can tell whether anything changed and what to watch.
pub struct Sources {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) digest: digest::Context,
    /// `--offline`: the files and environment values the config references (secrets,
    /// keys, certificates) are not read; the config and what it includes still are.
    offline: bool,
}

impl Sources {
    /// Nothing read yet.
    pub(crate) fn new() -> Self {
        Self {
            files: Vec::new(),
            digest: digest::Context::new(&digest::SHA256),
            offline: false,
        }
    }

    /// Nothing read yet, and referenced secrets, keys, certificates and environment
    /// values never will be (`gatehouse check --offline`): they are taken as present.
    pub(crate) fn offline() -> Self {
        Self {
            offline: true,
            ..Self::new()
        }
    }

    /// True when referenced files and environment values are taken as present.
    pub(crate) fn is_offline(&self) -> bool {
        self.offline
    }

    /// Reads a referenced file and records it.
    pub(crate) fn read(&mut self, path: &Path) -> std::io::Result<String> {
        self.files.push(path.to_owned());
        let text = std::fs::read_to_string(path)?;
        self.note(path.as_os_str().as_encoded_bytes(), text.as_bytes());
        Ok(text)
    }

    /// Records a file that is not there now but would change the config if it
    /// appeared (a template override): the reloader watches for it.
    pub(crate) fn may_appear(&mut self, path: PathBuf) {
        self.files.push(path);
    }

    /// Adds a named value (an env variable) to the digest.
    pub(crate) fn note(&mut self, name: &[u8], value: &[u8]) {
        for part in [name, value] {
            self.digest.update(&(part.len() as u64).to_be_bytes());
            self.digest.update(part);
        }
    }
}
