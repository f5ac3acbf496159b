//! Prometheus metrics: the process-wide recorder, the request-counting middleware, and
//! `GET /metrics`. Counters are named `gatehouse_*`; label values are endpoint patterns,
//! status codes, grant types and configured client ids, never anything a client makes up.

use crate::counters::{self, Counters};
use crate::registry::Registry;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

mod batch;
mod line;

pub use batch::{FlushOnDrop, LogBatch};
pub use line::PlainLine;

/// The recorder's handle. The recorder is global to the process, so it is installed
/// once however many servers the process starts (tests start many), with its upkeep.
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        spawn_upkeep(handle.clone());
        handle
    })
}

/// How often the recorder's pending histogram samples are folded into their
/// summaries.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The name of the thread that runs the recorder's upkeep (at most 15 bytes: what
/// Linux keeps of a thread's name).
const UPKEEP_THREAD: &str = "metrics-upkeep";

/// Runs the recorder's upkeep every [`UPKEEP_EVERY`] on a thread of its own for the
/// life of the process. A recorder made by `build_recorder` leaves that to its owner:
/// without it every `gatehouse_store_operation_seconds` sample stayed in memory until
/// /metrics was read, about 10 bytes a store operation for ever on a server nobody
/// scrapes (issue 28: RSS grew 225 KB/s under introspection at 22,000 requests/s).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name(UPKEEP_THREAD.to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the metrics upkeep thread: histogram samples will be kept until /metrics is read");
    }
}

/// How often dropped log lines are looked for.
const DROP_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Watches the log writer's count of dropped lines: each increase is added to
/// `gatehouse_log_lines_dropped_total` and said in the log, so a log that cannot keep
/// up never loses events silently. Needs a Tokio runtime.
pub fn report_dropped_log_lines(dropped: LogBatch) {
    tokio::spawn(async move {
        let mut seen = 0;
        let mut tick = tokio::time::interval(DROP_CHECK_EVERY);
        loop {
            tick.tick().await;
            let now = dropped.dropped_lines();
            if now > seen {
                let lost = now - seen;
                metrics::counter!("gatehouse_log_lines_dropped_total").increment(lost as u64);
                tracing::warn!(
                    dropped = lost,
                    total = now,
                    "the log writer could not keep up: {lost} log lines were dropped"
                );
                seen = now;
            }
        }
    });
}

thread_local! {
    /// `gatehouse_http_requests_total` by route (without parameters) and status.
    static REQUESTS: Counters<u16> = Counters::default();
}

/// Middleware: counts every request by route pattern and status.
pub(crate) async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let status = response.status().as_u16();
    let path = response.request().path();
    counters::count(&REQUESTS, path, status, || {
        let endpoint = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        // A route without parameters: its pattern is the path, and every later
        // request on that path counts under it. Only these are kept (a path a client
        // makes up, or a route's parameters, never reach the map).
        let keep = endpoint == path;
        let counter = metrics::counter!("gatehouse_http_requests_total", "endpoint" => endpoint, "status" => status.to_string());
        (counter, keep)
    });
    Ok(response)
}

/// `gatehouse_config_info{sha256="..."} 1`: which config serves. Rendered from the
/// snapshot rather than recorded, so that only the serving digest is ever listed.
fn config_info(registry: &Registry) -> String {
    match &registry.config_sha256 {
        Some(sha) => format!(
            "# HELP gatehouse_config_info The SHA-256 of the config inputs that serve.\n\
             # TYPE gatehouse_config_info gauge\n\
             gatehouse_config_info{{sha256=\"{sha}\"}} 1\n"
        ),
        None => String::new(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics_page(state: web::Data<AppState>) -> HttpResponse {
    let registry = state.snapshot();
    metrics::gauge!("gatehouse_config_generation").set(registry.generation as f64);
    metrics::gauge!("gatehouse_clients").set(registry.clients().len() as f64);
    match state.store.sizes().await {
        Ok(sizes) => {
            for (kind, count) in sizes {
                metrics::gauge!("gatehouse_store_entries", "kind" => kind).set(count as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read store sizes for /metrics"),
    }
    let mut text = handle().render();
    text.push_str(&config_info(&registry));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

/// A log writer that keeps one event on one line: control characters inside an event
/// (a newline in a client id someone posted, an escape sequence for the operator's
/// terminal) are written as `\n`, `\r`, `\x1b`, so nobody can forge a log line or
/// rewrite a terminal through a field value. The text format writes field values as
/// they are; JSON escapes them already. ANSI colours (`keep_escapes`, a terminal)
/// keep the escape character.
#[derive(Debug, Clone)]
pub struct OneLinePerEvent<W> {
    inner: W,
    keep_escapes: bool,
}

impl<W> OneLinePerEvent<W> {
    /// Wraps `inner`; `keep_escapes` when colours are on.
    pub fn new(inner: W, keep_escapes: bool) -> Self {
        Self {
            inner,
            keep_escapes,
        }
    }
}

impl<'a, W: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for OneLinePerEvent<W>
{
    type Writer = OneLinePerEvent<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLinePerEvent::new(self.inner.make_writer(), self.keep_escapes)
    }
}

impl<W: std::io::Write> std::io::Write for OneLinePerEvent<W> {
    /// The formatter hands over one whole event per call (its line and final newline).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = one_line(buf, self.keep_escapes);
        self.inner.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `event` with every control character but tab (and, with `keep_escapes`, ESC)
/// escaped, except one final newline.
pub(crate) fn one_line(event: &[u8], keep_escapes: bool) -> std::borrow::Cow<'_, [u8]> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    let escaped = |b: u8| b.is_ascii_control() && b != b'\t' && !(keep_escapes && b == 0x1b);
    // A fold without an early exit, so that the compiler checks many bytes at once:
    // every audit line passes here.
    if body.iter().fold(true, |plain, &b| plain & !escaped(b)) {
        return std::borrow::Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if escaped(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use crate::telemetry::{UPKEEP_THREAD, handle, one_line};

    /// The names of this process's threads.
    fn threads() -> Vec<String> {
        let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_owned())
            .collect()
    }

    #[test]
    fn the_recorder_comes_with_its_upkeep() {
        handle();
        handle();
        // A new thread names itself once it runs: wait for that, not for a time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let upkeep = loop {
            let upkeep = threads().iter().filter(|t| *t == UPKEEP_THREAD).count();
            if upkeep > 0 || std::time::Instant::now() > deadline {
                break upkeep;
            }
            std::thread::yield_now();
        };
        assert_eq!(upkeep, 1, "{:?}", threads());
    }

    #[test]
    fn an_event_stays_on_its_line() {
        assert_eq!(&*one_line(b"plain line\n", false), b"plain line\n");
        assert_eq!(
            &*one_line(b"client_id=a\nINFO forged remote=1\n", false),
            b"client_id=a\\nINFO forged remote=1\n"
        );
        assert_eq!(
            &*one_line(b"a\r\x1b[2Jb\tc\n", false),
            b"a\\r\\x1b[2Jb\tc\n"
        );
        assert_eq!(
            &*one_line(b"\x1b[33mWARN\x1b[0m x=\x07\n", true),
            b"\x1b[33mWARN\x1b[0m x=\\x07\n"
        );
    }
}
