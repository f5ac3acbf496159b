//! A TOML file's `[[clients]]` parsed a few hundred at a time (issue 28).
//!
//! The `toml` crate holds a whole file's tokens and its spanned document while it
//! deserializes: about 14 times the file's size, 450 MB for 100,000 clients in one
//! 25 MB file, and a reload held that beside the serving registry. So the file is cut
//! where its tokens show a `[[clients]]` header at the top level: the rest is parsed as
//! the file without its clients, each piece as a list of clients, and the clients are
//! put back in file order. A file this cannot cut with certainty (a `clients` key
//! written any other way) is parsed whole, and so is any file whose pieces do not all
//! parse: its diagnostics are the whole parse's, exactly as before. What parses in
//! pieces is the model a whole parse gives.

use super::file::{ClientEntries, ClientEntry, ConfigFile, IncludedFile};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::ops::Range;
use toml_parser::Source;
use toml_parser::lexer::TokenKind;

/// Clients parsed at once: small enough that a piece's document is a few megabytes,
/// large enough that the pieces' own costs do not show.
const PER_PIECE: usize = 256;

/// The name of the list this module cuts out.
const CLIENTS: &str = "clients";

/// A file model that holds `[[clients]]`: the main file and an included file.
pub(crate) trait WithClients: DeserializeOwned {
    fn clients_mut(&mut self) -> &mut ClientEntries;
}

impl WithClients for ConfigFile {
    fn clients_mut(&mut self) -> &mut ClientEntries {
        &mut self.clients
    }
}

impl WithClients for IncludedFile {
    fn clients_mut(&mut self) -> &mut ClientEntries {
        &mut self.clients
    }
}

/// What one piece holds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Piece {
    clients: Vec<ClientEntry>,
}

/// `text` parsed as `T` with its clients parsed in pieces; `None` when it has no
/// `[[clients]]` table, cannot be cut with certainty, or does not parse (the caller
/// then parses it whole, for the diagnostics).
pub(crate) fn parse<T: WithClients>(text: &str) -> Option<T> {
    let cuts = cut(text)?;
    let pieces = cuts.pieces().into_iter().map(|piece| &text[piece]);
    assemble(&rest(text, &cuts), pieces)
}

/// What [`parse_owned`] made of a text.
pub(crate) enum Owned<T> {
    /// The file, its clients parsed in pieces; the text is gone.
    Parsed(T),
    /// Not cut (see [`parse`]): the text, given back, to be parsed whole.
    Uncut(String),
    /// Cut, but a piece does not parse; the text is gone.
    Failed,
}

/// [`parse`], freeing the text as it goes: each piece is copied out and the text
/// dropped before the first is parsed, and each piece's copy is dropped once it is.
/// A big file's text and all its parsed clients never exist at once (100,000 clients:
/// 25 MB of text beside 38 MB of entries and 22 MB of their strings).
pub(crate) fn parse_owned<T: WithClients>(text: String) -> Owned<T> {
    let Some(cuts) = cut(&text) else {
        return Owned::Uncut(text);
    };
    let rest = rest(&text, &cuts);
    let pieces: Vec<String> = cuts
        .pieces()
        .into_iter()
        .map(|piece| text[piece].to_owned())
        .collect();
    drop(text);
    crate::memory::collect();
    match assemble(&rest, pieces) {
        Some(file) => Owned::Parsed(file),
        None => Owned::Failed,
    }
}

/// Where `text`'s clients are, if it has any and can be cut.
fn cut(text: &str) -> Option<Cuts> {
    cuts(text).filter(|cuts| !cuts.starts.is_empty())
}

/// `text` without its runs of clients.
fn rest(text: &str, cuts: &Cuts) -> String {
    let mut rest = String::with_capacity(text.len() - cuts.in_runs());
    let mut from = 0;
    for run in &cuts.runs {
        rest.push_str(&text[from..run.start]);
        from = run.end;
    }
    rest.push_str(&text[from..]);
    rest
}

/// The file parsed from `rest` with the clients parsed from `pieces`, in order; each
/// piece is dropped once parsed.
fn assemble<T: WithClients, P: AsRef<str>>(
    rest: &str,
    pieces: impl IntoIterator<Item = P>,
) -> Option<T> {
    let mut file: T = toml::from_str(rest).ok()?;
    if !file.clients_mut().is_empty() {
        return None;
    }
    let mut clients = ClientEntries::default();
    for piece in pieces {
        let piece: Piece = toml::from_str(piece.as_ref()).ok()?;
        clients.push_piece(piece.clients);
    }
    *file.clients_mut() = clients;
    Some(file)
}

/// Where a file's clients are written.
#[derive(Debug, Default, PartialEq)]
struct Cuts {
    /// The runs of client tables (each from a `[[clients]]` header's line to the next
    /// header of another table, or the end), in file order.
    runs: Vec<Range<usize>>,
    /// Where each client's table begins (its header's line), in file order.
    starts: Vec<usize>,
}

impl Cuts {
    fn in_runs(&self) -> usize {
        self.runs.iter().map(|r| r.len()).sum()
    }

    /// Pieces of at most [`PER_PIECE`] clients, each within one run.
    fn pieces(&self) -> Vec<Range<usize>> {
        let mut pieces = Vec::new();
        let mut starts = self.starts.iter().copied().peekable();
        for run in &self.runs {
            let mut begun: Option<(usize, usize)> = None;
            while let Some(start) = starts.next_if(|s| run.contains(s)) {
                match begun {
                    Some((from, n)) if n == PER_PIECE => {
                        pieces.push(from..start);
                        begun = Some((start, 1));
                    }
                    Some((from, n)) => begun = Some((from, n + 1)),
                    None => begun = Some((start, 1)),
                }
            }
            if let Some((from, _)) = begun {
                pieces.push(from..run.end);
            }
        }
        pieces
    }
}

/// A table header, by what it names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Header {
    /// `[[clients]]`: a new client.
    Client,
    /// `[clients.…]` or `[[clients.…]]`: a part of the client before it.
    ClientPart,
    /// Any other table.
    Other,
}

/// Where `text`'s client tables are; `None` when a `clients` key is written in a way
/// this does not cut (at the top level, as a plain table, or before any client).
fn cuts(text: &str) -> Option<Cuts> {
    let source = Source::new(text);
    let mut tokens = source.lex().peekable();
    let mut cuts = Cuts::default();
    let mut run: Option<usize> = None;
    let mut line = 0;
    let mut line_begins = true;
    let mut in_value = false;
    let mut depth = 0usize;
    let mut root = true;
    while let Some(token) = tokens.next() {
        let span = token.span();
        match token.kind() {
            TokenKind::Whitespace | TokenKind::Comment => continue,
            TokenKind::Eof => break,
            TokenKind::Newline => {
                in_value &= depth > 0;
                line = span.end();
                line_begins = true;
                continue;
            }
            TokenKind::LeftSquareBracket if line_begins && !in_value => {
                root = false;
                let header = header(&source, &mut tokens)?;
                match (header, run) {
                    (Header::Client, None) => run = Some(line),
                    (Header::Client | Header::ClientPart, Some(_)) => {}
                    (Header::ClientPart, None) => return None,
                    (Header::Other, Some(start)) => {
                        cuts.runs.push(start..line);
                        run = None;
                    }
                    (Header::Other, None) => {}
                }
                if header == Header::Client {
                    cuts.starts.push(line);
                }
            }
            TokenKind::Equals if !in_value => in_value = true,
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket if in_value => {
                depth += 1;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket if in_value => {
                depth = depth.checked_sub(1)?;
            }
            kind if line_begins && !in_value && root && key(&source, kind, span)? == CLIENTS => {
                return None;
            }
            _ => {}
        }
        line_begins = false;
    }
    if let Some(start) = run {
        cuts.runs.push(start..text.len());
    }
    Some(cuts)
}

/// Reads the header whose first `[` was just read, to the end of its line.
fn header<I>(source: &Source<'_>, tokens: &mut std::iter::Peekable<I>) -> Option<Header>
where
    I: Iterator<Item = toml_parser::lexer::Token>,
{
    let array = tokens
        .next_if(|t| t.kind() == TokenKind::LeftSquareBracket)
        .is_some();
    let mut significant = std::iter::from_fn(|| {
        tokens.next_if(|t| t.kind() != TokenKind::Newline && t.kind() != TokenKind::Eof)
    })
    .filter(|t| !matches!(t.kind(), TokenKind::Whitespace | TokenKind::Comment));
    let first = significant.next()?;
    let named = key(source, first.kind(), first.span())?;
    let then = significant.next()?.kind();
    significant.for_each(drop);
    Some(match (named == CLIENTS, then, array) {
        (false, _, _) => Header::Other,
        (true, TokenKind::RightSquareBracket, true) => Header::Client,
        (true, TokenKind::Dot, _) => Header::ClientPart,
        // `[clients]`: a table where the list is; the whole parse reports it.
        (true, _, _) => return None,
    })
}

/// The key a token writes, when it is bare or quoted without escapes.
fn key(source: &Source<'_>, kind: TokenKind, span: toml_parser::Span) -> Option<String> {
    let raw = source.get(span)?.as_str();
    let quoted = |q: char| raw.strip_prefix(q).and_then(|r| r.strip_suffix(q));
    match kind {
        TokenKind::Atom => Some(raw.to_owned()),
        TokenKind::LiteralString => quoted('\'').map(str::to_owned),
        TokenKind::BasicString if !raw.contains('\\') => quoted('"').map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::file::{ClientEntries, ClientEntry, ConfigFile, IncludedFile};
    use crate::config::pieces::{Owned, PER_PIECE, cuts, parse, parse_owned};

    const HEAD: &str = "issuer = \"https://id.example.com\"\n";

    fn whole(text: &str) -> String {
        let file: ConfigFile = toml::from_str(text).expect("parses whole");
        format!("{file:?}")
    }

    fn in_pieces(text: &str) -> Option<String> {
        let borrowed = parse::<ConfigFile>(text).map(|f| format!("{f:?}"));
        let owned = match parse_owned::<ConfigFile>(text.to_owned()) {
            Owned::Parsed(f) => Some(format!("{f:?}")),
            Owned::Uncut(given) => {
                assert_eq!(given, text, "an uncut text is given back as it was");
                None
            }
            Owned::Failed => None,
        };
        assert_eq!(owned, borrowed, "owned or borrowed, the same file");
        borrowed
    }

    fn client(i: usize) -> String {
        format!(
            "[[clients]]\nid = \"c{i}\"\nredirect_uris = [\n  \"https://app.example.com/{i}\",\n]\ngrant_types = [\"authorization_code\"]\n"
        )
    }

    #[test]
    fn clients_in_pieces_are_the_clients_parsed_whole() {
        let many: String = (0..PER_PIECE * 2 + 3).map(client).collect();
        let cases = [
            format!("{HEAD}{}", client(1)),
            format!("{HEAD}{many}"),
            // Runs of clients between other tables, comments and a BOM.
            format!(
                "\u{feff}# top\n{HEAD}[server]\nbind = \"127.0.0.1:9\"\n{}# between\n[[scopes]]\nname = \"s\"\n{}{}",
                client(1),
                client(2),
                client(3)
            ),
            // Parts of a client under its header; quoted and spaced header keys.
            format!(
                "{HEAD}[[clients]]\nid = \"a\"\n[clients.jwks]\n[[clients.jwks.keys]]\nkty = \"EC\"\n[[ 'clients' ]]\nid = \"b\"\n[[\"clients\"]] # c\nid = \"c\"\n"
            ),
            // Header-like lines inside a string are not headers.
            format!(
                "{HEAD}{}name = \"\"\"\n[[clients]]\n[server]\n\"\"\"\n{}",
                client(1),
                client(2)
            ),
            format!("{HEAD}{}", client(1)).replace('\n', "\r\n"),
        ];
        for text in cases {
            assert_eq!(
                in_pieces(&text).as_deref(),
                Some(whole(&text).as_str()),
                "{text}"
            );
        }
        // Nor are lines of an array value that begin with `[`.
        let text = "x = [\n[1],\n[[2]],\n]\n[[clients]]\nid = 1\n[y]\n";
        let found = cuts(text).expect("cuts");
        let at = text.find("[[clients]]").expect("a client");
        let end = text.find("[y]").expect("a table");
        assert_eq!(found.starts, [at]);
        assert_eq!(
            (found.runs.len(), found.runs.first()),
            (1, Some(&(at..end)))
        );
    }

    #[test]
    fn clients_it_cannot_cut_with_certainty_are_left_to_the_whole_parse() {
        for text in [
            format!("{HEAD}clients = []\n{}", client(1)),
            format!("{HEAD}\"clients\".x = 1\n{}", client(1)),
            format!("{HEAD}[clients.x]\ny = 1\n{}", client(1)),
            format!("{HEAD}[clients]\n{}", client(1)),
            format!("{HEAD}[[\"client\\u0073\"]]\nid = \"a\"\n"),
        ] {
            assert!(cuts(&text).is_none(), "{text}");
            assert_eq!(in_pieces(&text), None);
        }
        // No client at all: nothing to gain.
        assert_eq!(in_pieces(HEAD), None);
        // A piece that does not parse leaves the file to the whole parse.
        assert_eq!(
            in_pieces(&format!("{HEAD}{}unknown = 1\n", client(1))),
            None
        );
    }

    #[test]
    fn pieces_hold_at_most_their_share_and_never_span_two_runs() {
        let text = format!(
            "{HEAD}{}[server]\n{}",
            (0..PER_PIECE + 1).map(client).collect::<String>(),
            client(9)
        );
        let cuts = cuts(&text).expect("cuts");
        assert_eq!(cuts.runs.len(), 2);
        let pieces = cuts.pieces();
        assert_eq!(pieces.len(), 3);
        assert!(text[pieces[1].clone()].matches("[[clients]]").count() == 1);
        assert!(!text[pieces[1].clone()].contains("[server]"));
        let included: IncludedFile = parse(&text.replace(HEAD, "").replace("[server]\n", ""))
            .expect("an included file in pieces");
        assert_eq!(included.clients.len(), PER_PIECE + 2);

        // Kept as the pieces they were parsed in, read as one list in file order.
        let file: ConfigFile = parse(&text).expect("a file in pieces");
        let ids: Vec<&str> = file.clients.iter().map(|c| &*c.id).collect();
        assert_eq!(ids.len(), PER_PIECE + 2);
        assert_eq!((ids[0], ids[PER_PIECE - 1]), ("c0", "c255"));
        assert_eq!(ids[PER_PIECE], format!("c{PER_PIECE}"));
        assert_eq!(ids[PER_PIECE + 1], "c9");
        let pieces = file.clients.into_pieces();
        assert_eq!(pieces.iter().map(Vec::len).sum::<usize>(), PER_PIECE + 2);
        let bytes = |p: &Vec<ClientEntry>| p.capacity() * size_of::<ClientEntry>();
        assert!(pieces.iter().all(|p| bytes(p) <= ClientEntries::PIECE));
        assert!(pieces.iter().all(|p| p.capacity() == p.len()));
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    }
}
