//! The issues validation collects, by field path.

use crate::config::report::Issue;

/// Collects issues while walking the config.
#[derive(Default)]
pub(super) struct Report(pub(super) Vec<Issue>);

impl Report {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue::error(path, message));
    }
    /// The issues collected.
    pub(super) fn into_issues(self) -> Vec<Issue> {
        self.0
    }
    pub(super) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue::warning(path, message));
    }
    /// A duplicate at `path` of what is first written at `first`.
    pub(super) fn duplicate(&mut self, path: String, message: String, first: String) {
        self.0.push(Issue::error(path, message).also_at(first));
    }
}
