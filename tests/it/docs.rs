//! The documentation a newcomer navigates: every relative link in the README and the
//! pages under `docs/` and `bench/` leads to a file of the repository, and to a heading
//! of it when the link names one; and the README keeps the two commands near its top
//! (outside checks read them there). Sections move between pages: a link left behind
//! fails here, not in a reader's browser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown pages a reader moves between.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "bench/README.md"]
        .iter()
        .map(|p| root().join(p))
        .collect();
    let docs = std::fs::read_dir(root().join("docs")).expect("docs/");
    for entry in docs {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The lines of `text` outside fenced code blocks, with inline code removed.
fn prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            let mut kept = String::new();
            for (i, part) in line.split('`').enumerate() {
                if i % 2 == 0 {
                    kept.push_str(part);
                }
            }
            lines.push(kept);
        }
    }
    lines
}

/// GitHub's anchor of a heading: lower case, spaces as `-`, punctuation other than `-`
/// and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of a page (written with or without inline code).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// The targets of the inline links `[text](target)` in the prose of a page.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            match after.find(')') {
                Some(end) => {
                    found.push(after[..end].to_owned());
                    rest = &after[end..];
                }
                None => break,
            }
        }
    }
    found
}

/// What is wrong with one link of `page`, if anything.
fn broken(page: &Path, link: &str) -> Option<String> {
    if link.contains("://") || link.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
    let target = if path.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().expect("a page's directory").join(path)
    };
    if !target.exists() {
        return Some(format!("{link}: no file {}", target.display()));
    }
    if anchor.is_empty() || target.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&target).expect("a linked page");
    (!anchors(&text).contains(anchor)).then(|| format!("{link}: no heading #{anchor}"))
}

#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let mut problems = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("a page");
        for link in links(&text) {
            if let Some(problem) = broken(&page, &link) {
                problems.push(format!("{}: {problem}", page.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_link_check_sees_a_broken_link_and_a_missing_heading() {
    let readme = root().join("README.md");
    assert!(broken(&readme, "docs/getting-started.md#get-a-token").is_none());
    assert!(broken(&readme, "#the-two-commands").is_none());
    assert!(broken(&readme, "docs/no-such-page.md").is_some());
    assert!(broken(&readme, "docs/getting-started.md#no-such-heading").is_some());
    assert_eq!(slug(" `[[keys]]`: signing keys"), "keys-signing-keys");
    assert_eq!(
        links("see [a](x.md#y) and `[b](code)` and [c](../z.md)"),
        ["x.md#y", "../z.md"]
    );
}

#[test]
fn the_readme_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let head: String = readme.lines().take(60).collect::<Vec<_>>().join("\n");
    assert!(head.contains("## The two commands"), "{head}");
    assert!(
        head.contains("    cargo run --release -- serve --config config.example.toml"),
        "{head}"
    );
    assert!(head.contains("    cargo test\n"), "{head}");
}
