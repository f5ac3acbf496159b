//! Where each field of a config file is written: a map from field path
//! (`clients[2].redirect_uris[0]`) to its line and column, for TOML and YAML alike.
//!
//! Validation works on plain serde types and names the field path of each problem;
//! this index turns that path back into `FILE:LINE:COLUMN` for the operator.

use std::collections::HashMap;
use std::sync::OnceLock;

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
/// a big config's load-time memory; so a `Locations` keeps the text until asked.
#[derive(Debug)]
pub(crate) struct Locations {
    text: String,
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
            yaml,
            map: OnceLock::new(),
        }
    }

    /// The document: the one copy of it a load holds (a big file's is megabytes).
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The index, built from the text the first time it is asked for.
    fn map(&self) -> &HashMap<String, Position> {
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
