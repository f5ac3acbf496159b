//! Where each field of a config file is written: a map from field path
//! (`clients[2].redirect_uris[0]`) to its line and column, for TOML and YAML alike.
//!
//! Validation works on plain serde types and names the field path of each problem;
//! this index turns that path back into `FILE:LINE:COLUMN` for the operator.

use aws_lc_rs::digest;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Texts at least this long are released once parsed ([`Locations::release`]): a
/// file of 100,000 clients is 25 MB, held for nothing while a valid config is checked
/// and built; below this, keeping the text costs less than reading it again.
pub(crate) const RELEASE_AT: usize = 1 << 20;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Field path to the position of its key (or of its value, for sequence items).
///
/// Built on first use: a config that loads without a diagnostic never asks, and the
/// index (a second parse of the text, a path string per value) is the larger part of
/// a big config's load-time memory; so a `Locations` keeps the text until asked, or,
/// for a big file that can be read again, only its digest ([`Locations::release`]).
#[derive(Debug)]
pub(crate) struct Locations {
    text: String,
    /// The SHA-256 of the text while it is released (the text is then empty).
    released: Option<[u8; 32]>,
    yaml: bool,
    map: OnceLock<HashMap<String, Position>>,
}

impl Locations {
    /// Indexes a TOML document; an unparsable one gives an empty index.
    pub(crate) fn toml(text: String) -> Self {
        Self::of(text, false)
    }

    /// Indexes a YAML document; indexing stops at the first syntax error.
    pub(crate) fn yaml(text: String) -> Self {
        Self::of(text, true)
    }

    fn of(text: String, yaml: bool) -> Self {
        Self {
            text,
            released: None,
            yaml,
            map: OnceLock::new(),
        }
    }

    /// The document: the one copy of it a load holds (a big file's is megabytes);
    /// empty while released.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Gives the text back to the allocator, keeping its digest, if it is at least
    /// `at_least` bytes long and the index has not been built (a load passes
    /// [`RELEASE_AT`]). Until [`Locations::restore`] nothing in it can be found.
    pub(crate) fn release(&mut self, at_least: usize) {
        if self.text.len() >= at_least {
            drop(self.take());
        }
    }

    /// Takes the text out, keeping its digest, as [`Locations::release`] does
    /// (whatever its length); empty if it is released already or the index is built
    /// (then the text stays).
    pub(crate) fn take(&mut self) -> String {
        if self.released.is_some() || self.map.get().is_some() {
            return String::new();
        }
        self.released = Some(sha256(&self.text));
        std::mem::take(&mut self.text)
    }

    /// True while the text is released.
    pub(crate) fn is_released(&self) -> bool {
        self.released.is_some()
    }

    /// Takes `text`, the file read again, as the released text: true if it is the
    /// same text; false if the file changed since (it stays released: no position in
    /// it can be given, as the new text is not the one checked).
    pub(crate) fn restore(&mut self, text: String) -> bool {
        match self.released {
            Some(digest) if digest == sha256(&text) => {
                self.text = text;
                self.released = None;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The index, built from the text the first time it is asked for (and empty,
    /// not built, while the text is released).
    fn map(&self) -> &HashMap<String, Position> {
        static NONE: OnceLock<HashMap<String, Position>> = OnceLock::new();
        if self.released.is_some() {
            return NONE.get_or_init(HashMap::new);
        }
        self.map.get_or_init(|| {
            let mut map = HashMap::new();
            if self.yaml {
                walk_yaml(&self.text, &mut map);
            } else if let Ok(root) = toml::de::DeTable::parse(&self.text) {
                let lines = LineStarts::new(&self.text);
                walk_toml_table(root.get_ref(), "", &lines, &mut map);
            }
            map
        })
    }

    /// The position of `path`, or of its nearest indexed ancestor.
    pub(crate) fn find(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.map().get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// The path written at or last before `pos`, for errors that carry only a position.
    pub(crate) fn path_at(&self, pos: Position) -> Option<&str> {
        self.map()
            .iter()
            .filter(|(_, p)| **p <= pos)
            .max_by_key(|(path, p)| (**p, path.len()))
            .map(|(path, _)| path.as_str())
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
    out
}

/// Byte offsets of line starts, to turn a byte offset into a [`Position`].
struct LineStarts<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineStarts<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn at(&self, offset: usize) -> Position {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Position { line, column }
    }
}

/// Turns a byte offset into a position; used for parse errors that carry a byte span.
pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    LineStarts::new(text).at(offset)
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_toml_table(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    lines: &LineStarts<'_>,
    text_map: &mut HashMap<String, Position>,
) {
    for (key, value) in table {
        let path = join_key(prefix, key.get_ref());
        text_map.insert(path.clone(), lines.at(key.span().start));
        walk_toml_value(value, &path, lines, text_map);
    }
}

fn walk_toml_value(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    path: &str,
    lines: &LineStarts<'_>,
    text_map: &mut HashMap<String, Position>,
) {
    match value.get_ref() {
        toml::de::DeValue::Table(t) => walk_toml_table(t, path, lines, text_map),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                text_map
                    .entry(item_path.clone())
                    .or_insert_with(|| lines.at(item.span().start));
                walk_toml_value(item, &item_path, lines, text_map);
            }
        }
        _ => {}
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

fn walk_yaml(text: &str, map: &mut HashMap<String, Position>) {
    use serde_saphyr::granit_parser::{Event, Parser};

    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { return };
        let pos = Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        let starts_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        );
        let mut node_path = None;
        if starts_node {
            match stack.last_mut() {
                Some(Frame::Map { path, key }) => match key.take() {
                    None => {
                        if let Event::Scalar(name, ..) = &event {
                            let p = join_key(path, name);
                            map.entry(p.clone()).or_insert(pos);
                            *key = Some(p);
                        } else {
                            *key = Some(format!("{path}.?"));
                        }
                        continue;
                    }
                    Some(p) => node_path = Some(p),
                },
                Some(Frame::Seq { path, next }) => {
                    let p = format!("{path}[{next}]");
                    *next += 1;
                    map.entry(p.clone()).or_insert(pos);
                    node_path = Some(p);
                }
                None => node_path = Some(String::new()),
            }
        }
        match event {
            Event::MappingStart(..) => stack.push(Frame::Map {
                path: node_path.unwrap_or_default(),
                key: None,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq {
                path: node_path.unwrap_or_default(),
                next: 0,
            }),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::locate::{Locations, Position};

    const TEXT: &str = "issuer = \"http://127.0.0.1:9\"\n[[clients]]\nid = \"a\"\n";

    #[test]
    fn a_released_text_finds_nothing_until_the_same_text_is_restored() {
        let mut small = Locations::toml(TEXT.to_owned());
        small.release(TEXT.len() + 1);
        assert!(!small.is_released(), "shorter than the bound: kept");

        let mut locations = Locations::toml(TEXT.to_owned());
        locations.release(TEXT.len());
        assert!(locations.is_released());
        assert_eq!(locations.text(), "");
        assert_eq!(locations.find("clients[0].id"), None);
        assert!(!locations.restore(TEXT.replace("\"a\"", "\"b\"")));
        assert!(locations.is_released(), "another text is not taken");
        assert_eq!(locations.find("clients[0].id"), None);
        assert!(locations.restore(TEXT.to_owned()));
        assert_eq!(locations.text(), TEXT);
        let at = Position { line: 3, column: 1 };
        assert_eq!(locations.find("clients[0].id"), Some(at));
    }

    #[test]
    fn an_indexed_text_is_not_released() {
        let mut locations = Locations::yaml("issuer: x\n".to_owned());
        assert!(locations.find("issuer").is_some());
        locations.release(0);
        assert!(!locations.is_released());
    }
}
