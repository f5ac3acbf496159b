//! The text log line, written by hand: the same bytes as `tracing-subscriber`'s
//! default format (`Full`) without colours, in about half the time. Every token
//! writes an audit line, and the generic field formatting (each field through
//! `core::fmt`, each string through its `Debug` escaper) was most of the audit log's
//! 3-5% of the CPU of client credentials (issue 28, bench/README.md "The audit line,
//! written by hand"). The test below formats the same events with both and compares
//! the bytes, so a `tracing-subscriber` upgrade that changes its format fails it.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::time::{Duration, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `gatehouse serve` when the log is not a terminal: a line
/// `<time>  INFO <spans:> <target>: <fields>` exactly as `tracing-subscriber` writes
/// it without colours (a terminal keeps its coloured format).
#[derive(Debug, Clone, Default)]
pub struct PlainLine<T = Rfc3339Micros> {
    timer: T,
}

impl PlainLine {
    /// A formatter stamping lines with the system's time, as `tracing-subscriber`'s.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T> PlainLine<T> {
    /// A formatter stamping lines with `timer`.
    pub fn with_timer(timer: T) -> Self {
        Self { timer }
    }
}

/// The time as `tracing-subscriber`'s `SystemTime` writes it (RFC 3339, UTC,
/// microseconds: `2026-12-07T03:17:11.913334Z`), its digits put in place by
/// `humantime` rather than through `core::fmt` field by field: the generic formatting
/// was a third of the audit line's instructions (issue 28); the date and time to the
/// second are kept per thread and written again only when the second changes
/// ([`stamp`]). A time `humantime` does not write (before 1970, after 9999) is
/// `tracing-subscriber`'s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rfc3339Micros;

thread_local! {
    /// The second this thread last stamped a line in, and its text up to the dot.
    static LAST_SECOND: Cell<Option<(u64, [u8; 20])>> = const { Cell::new(None) };
}

impl FormatTime for Rfc3339Micros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let stamped = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .filter(|since| since.as_secs() < YEAR_10000)
            .and_then(|since| LAST_SECOND.with(|last| stamp(since, last)));
        match stamped {
            // Digits, dashes, colons, a dot and letters: always UTF-8.
            Some(text) => w.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => SystemTime.format_time(w),
        }
    }
}

/// The text `humantime::format_rfc3339_micros` writes for `since` the epoch (before
/// [`YEAR_10000`]): the part up to the second's dot from `last` when it holds that
/// second (else written by `humantime` and kept there), then the microseconds; `None`
/// if `humantime`'s text is not of that shape.
fn stamp(since: Duration, last: &Cell<Option<(u64, [u8; 20])>>) -> Option<[u8; 27]> {
    let secs = since.as_secs();
    let head = match last.get() {
        Some((second, head)) if second == secs => head,
        _ => {
            let whole = humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_secs(secs))
                .to_string();
            let head: [u8; 20] = whole.as_bytes().get(..20)?.try_into().ok()?;
            last.set(Some((secs, head)));
            head
        }
    };
    let mut text = [0u8; 27];
    text[..20].copy_from_slice(&head);
    let mut micros = since.subsec_micros();
    for digit in text[20..26].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    text[26] = b'Z';
    Some(text)
}

/// 10000-01-01T00:00:00Z, where `humantime` stops.
const YEAR_10000: u64 = 253_402_300_800;

/// The level as `tracing-subscriber` pads it, with the spaces around it.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record's own target and level, not the bridge's.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(level(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes an event's fields as `name=value`, space-separated; the message bare.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// Starts a field: false when it is not written (an earlier write failed, or a
    /// `log` record's metadata, already in the line).
    fn begin(&mut self, name: &str) -> bool {
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.result = self.writer.write_char(' ');
        }
        self.result.is_ok()
    }

    /// `name=`, a raw identifier's without its `r#`.
    fn name(&mut self, name: &str) -> fmt::Result {
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')
    }
}

/// True when `s`'s `Debug` form is `s` in quotes: printable ASCII, no quote or
/// backslash.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.record_debug(field, &format_args!("{value}"));
        }
        if !self.begin(field.name()) {
            return;
        }
        self.result = self.name(field.name()).and_then(|()| {
            if plain(value) {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            } else {
                write!(self.writer, "{value:?}")
            }
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let name = field.name();
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!("{} {name}.sources={}", Escaped(value), Sources(source)),
            ),
            None => self.record_debug(field, &format_args!("{}", Escaped(value))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.begin(field.name()) {
            return;
        }
        self.result = if field.name() == "message" {
            write!(EscapingWriter(&mut *self.writer), "{value:?}")
        } else {
            self.name(field.name())
                .and_then(|()| write!(self.writer, "{value:?}"))
        };
    }
}

/// Writes through to `0` with the characters a terminal would act on escaped, as
/// `tracing-subscriber` escapes messages and errors.
struct EscapingWriter<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for EscapingWriter<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

/// An error's `Display`, escaped.
struct Escaped<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An error and its sources, as a list.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&Escaped(error));
            next = error.source();
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::telemetry::line::PlainLine;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::FormatTime;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
            w.write_str("2026-12-06T20:00:00.123456Z")
        }
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading the \u{1b}[2Jfile")
        }
    }
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("disk \u{85}gone")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    /// Every kind of event and field the server writes, and some it might.
    fn events() {
        let remote: std::net::IpAddr = [203, 0, 113, 9].into();
        let client = String::from("svc-0");
        tracing::info!(
            event = "token_issued",
            remote = %remote,
            grant = "client_credentials",
            client_id = %client,
            user_id = None::<&str>,
            scope = %"api:read api:write",
        );
        tracing::info!(
            event = "login_succeeded",
            user_id = Some("alice"),
            method = "password"
        );
        tracing::warn!(
            dropped = 3u64,
            total = 10usize,
            "the log writer could not keep up: {} lines",
            3
        );
        tracing::info!(
            client_id = "a\"b\\c\n\td \u{e9} \u{1b}[2J \u{85} '",
            ok = true,
            n = -5i64,
            f = 1.5f64,
            list = ?["a", "b"],
        );
        tracing::error!("bad \u{1b}[31m \u{85} \u{7f} \u{7} done");
        tracing::debug!(r#type = "raw", "a raw identifier");
        let failure = Outer(Inner);
        tracing::error!(error = &failure as &dyn std::error::Error, "failed");
        tracing::trace!(error = &Inner as &dyn std::error::Error);
        let span = tracing::info_span!("request", id = 7, path = "/token");
        let _in = span.enter();
        let inner = tracing::info_span!("inner");
        let _also = inner.enter();
        tracing::info!(event = "in_spans");
        let args = format_args!("from the log crate");
        let record = tracing_log::log::Record::builder()
            .args(args)
            .level(tracing_log::log::Level::Warn)
            .target("some_dependency::pool")
            .module_path(Some("some_dependency::pool"))
            .file(Some("src/pool.rs"))
            .line(Some(42))
            .build();
        tracing_log::format_trace(&record).expect("log record");
    }

    fn written(format: bool) -> String {
        let sink = Sink::default();
        let out = sink.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_timer(Fixed)
            .with_writer(move || out.clone());
        if format {
            let subscriber = builder.event_format(PlainLine::with_timer(Fixed)).finish();
            tracing::subscriber::with_default(subscriber, events);
        } else {
            tracing::subscriber::with_default(builder.finish(), events);
        }
        let bytes = sink.0.lock().expect("sink").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    /// The time of a line has the shape of `tracing-subscriber`'s, and the same
    /// value when both are written in the same second.
    #[test]
    fn the_time_is_tracing_subscribers_own() {
        use crate::telemetry::line::Rfc3339Micros;
        use tracing_subscriber::fmt::time::SystemTime;
        let stamp = |timer: &dyn FormatTime| {
            let mut text = String::new();
            timer
                .format_time(&mut Writer::new(&mut text))
                .expect("time");
            text
        };
        for _ in 0..100 {
            let (theirs, ours) = (stamp(&SystemTime), stamp(&Rfc3339Micros));
            assert_eq!(ours.len(), 27, "{ours}");
            let shape = |t: &str| t.replace(|c: char| c.is_ascii_digit(), "0");
            assert_eq!(shape(&ours), shape(&theirs));
            if ours[..19] == theirs[..19] {
                let parsed = humantime::parse_rfc3339(&ours).expect("RFC 3339");
                assert!(parsed >= humantime::parse_rfc3339(&theirs).expect("RFC 3339"));
                return;
            }
        }
        panic!("never the same second in 100 tries");
    }

    proptest::proptest! {
        /// The time kept per second is `humantime`'s text for every instant, from a
        /// cold cache, from the same second's and from another second's.
        #[test]
        fn a_stamp_is_humantimes_text(secs in 0..crate::telemetry::line::YEAR_10000, nanos in 0u32..1_000_000_000, other in 0..crate::telemetry::line::YEAR_10000) {
            use crate::telemetry::line::stamp;
            use std::cell::Cell;
            use std::time::{Duration, UNIX_EPOCH};
            let since = Duration::new(secs, nanos);
            let expected = humantime::format_rfc3339_micros(UNIX_EPOCH + since).to_string();
            let last = Cell::new(None);
            for warm in [None, Some(Duration::new(secs, nanos / 3)), Some(Duration::from_secs(other))] {
                if let Some(before) = warm {
                    stamp(before, &last);
                }
                let text = stamp(since, &last).expect("a stamp");
                proptest::prop_assert_eq!(std::str::from_utf8(&text).ok(), Some(expected.as_str()));
            }
        }
    }

    #[test]
    fn the_line_is_tracing_subscribers_own() {
        let theirs = written(false);
        assert_eq!(theirs.lines().count(), 10, "{theirs}");
        assert!(
            theirs.contains("some_dependency::pool: from the log crate"),
            "{theirs}"
        );
        assert!(
            theirs.contains("request{id=7 path=\"/token\"}:inner: "),
            "{theirs}"
        );
        assert_eq!(written(true), theirs);
    }
}
