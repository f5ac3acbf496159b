//! `[[client_metadata_documents]]`, validated: each `url_prefix` an https URL (http only
//! on loopback) ending in `/`, overlapping no other; its scopes declared (or built-in)
//! and its resources declared, each listed once; its `ca_file` a readable PEM file.
//! (How a change of them is classified: `diff::client_documents`.)

use super::report::Report;
use crate::config::file::ConfigFile;
use crate::config::report::Sources;
use crate::model::{BUILTIN_SCOPES, DocumentSource};
use crate::protocol::client_metadata::check_prefix;
use std::path::Path;

/// The entries of `[[client_metadata_documents]]`, each problem reported at its field.
pub(super) fn check(
    file: &ConfigFile,
    base_dir: &Path,
    sources: &mut Sources,
    r: &mut Report,
) -> Vec<DocumentSource> {
    let mut out = Vec::new();
    for (i, entry) in file.client_metadata_documents.iter().enumerate() {
        let path = format!("client_metadata_documents[{i}]");
        let loopback = match check_prefix(&entry.url_prefix) {
            Ok(loopback) => loopback,
            Err(e) => {
                r.error(format!("{path}.url_prefix"), e);
                false
            }
        };
        let earlier = &file.client_metadata_documents[..i];
        if let Some(j) = earlier.iter().position(|e| {
            e.url_prefix.starts_with(&entry.url_prefix)
                || entry.url_prefix.starts_with(&e.url_prefix)
        }) {
            r.error(
                format!("{path}.url_prefix"),
                format!(
                    "{:?} overlaps client_metadata_documents[{j}]'s prefix: a client_id must match one entry",
                    entry.url_prefix
                ),
            );
        }
        for c in file
            .clients
            .iter()
            .filter(|c| c.id.starts_with(&entry.url_prefix))
        {
            r.warn(
                format!("{path}.url_prefix"),
                format!(
                    "the configured client {:?} is under this prefix; its [[clients]] entry wins",
                    c.id
                ),
            );
        }
        for (j, scope) in entry.scopes.iter().enumerate() {
            let field = format!("{path}.scopes[{j}]");
            if !BUILTIN_SCOPES.contains(&scope.as_str())
                && !file.scopes.iter().any(|s| s.name == *scope)
            {
                r.error(
                    field,
                    format!("unknown scope {scope:?}; declare it in [[scopes]]"),
                );
            } else if entry.scopes[..j].contains(scope) {
                r.error(field, format!("{scope:?} is listed twice"));
            }
        }
        for (j, id) in entry.resources.iter().enumerate() {
            let field = format!("{path}.resources[{j}]");
            if !file.resources.iter().any(|res| res.id == *id) {
                r.error(
                    field,
                    format!("unknown resource {id:?}; declare it in [[resources]]"),
                );
            } else if entry.resources[..j].contains(id) {
                r.error(field, format!("{id:?} is listed twice"));
            }
        }
        let ca_pem = entry.ca_file.as_ref().and_then(|f| {
            let field = format!("{path}.ca_file");
            super::offline::ca_file(&base_dir.join(f), &field, sources, r)
        });
        out.push(DocumentSource {
            url_prefix: entry.url_prefix.clone(),
            loopback,
            scopes: entry.scopes.clone(),
            resources: entry.resources.clone(),
            ca_pem,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::load::check_text;
    use crate::load::diff::{Mark, Side, diff};

    fn changes_between(a: &str, b: &str) -> Vec<(Mark, String)> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .expect("ca");
        std::fs::write(
            dir.path().join("ca2.pem"),
            "-----BEGIN CERTIFICATE-----\nAB==\n-----END CERTIFICATE-----\n",
        )
        .expect("ca");
        let path = dir.path().join("g.toml");
        let load = |entries: &str| {
            let text = format!(
                "issuer = \"http://127.0.0.1:9\"\n[[scopes]]\nname = \"mcp:tools\"\n[[resources]]\nid = \"https://r.example.com/\"\n{entries}"
            );
            match check_text(&path, &text) {
                Ok(loaded) => loaded.config,
                Err(e) => panic!("invalid test config: {e}\n{text}"),
            }
        };
        let (old, new) = (load(a), load(b));
        diff(&Side::from(&old), &Side::from(&new))
            .into_iter()
            .map(|c| (c.mark, c.to_string()))
            .collect()
    }

    const ENTRY: &str =
        "[[client_metadata_documents]]\nurl_prefix = \"https://c.example.com/mcp/\"\n";

    #[test]
    fn entries_are_classified() {
        let added = changes_between("", ENTRY);
        assert_eq!(
            added,
            [(
                Mark::Widens,
                "widens   client_metadata_documents https://c.example.com/mcp/: added".to_owned()
            )]
        );
        let removed = changes_between(ENTRY, "");
        assert_eq!(removed[0].0, Mark::Narrows, "{removed:?}");
        let wider = ENTRY.replace("/mcp/", "/");
        let widened = changes_between(ENTRY, &wider);
        assert_eq!(widened.len(), 1, "{widened:?}");
        assert!(
            widened[0]
                .1
                .contains("prefix widened from \"https://c.example.com/mcp/\""),
            "{widened:?}"
        );
        assert_eq!(changes_between(&wider, ENTRY)[0].0, Mark::Narrows);
        let more = format!(
            "{ENTRY}scopes = [\"mcp:tools\"]\nresources = [\"https://r.example.com/\"]\nca_file = \"ca.pem\"\n"
        );
        let got = changes_between(ENTRY, &more);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|(m, _)| *m == Mark::Widens), "{got:?}");
        let back = changes_between(&more, ENTRY);
        assert!(back.iter().all(|(m, _)| *m == Mark::Narrows), "{back:?}");
        let other_ca = more.replace("ca.pem", "ca2.pem");
        assert_eq!(
            changes_between(&more, &other_ca),
            [(
                Mark::Neutral,
                "neutral  client_metadata_documents https://c.example.com/mcp/: extra CA replaced"
                    .to_owned()
            )]
        );
        assert!(changes_between(&more, &more).is_empty());
    }
}
