//! `gatehouse serve`: the log subscriber (a lossy non-blocking writer), the runtime
//! and the server.

use anyhow::Context;
use clap::ValueEnum;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Lines the log buffer holds before new lines are dropped (and counted): about a
/// second of the token endpoint at full speed.
const LOG_BUFFER_LINES: usize = 128 * 1024;

/// The most the log writer gathers before one `write`.
const LOG_BATCH_BYTES: usize = 64 * 1024;

/// Serves `config` (on `bind` instead of `[server] bind` when given) until stopped.
pub(crate) fn serve(
    config: PathBuf,
    log_format: LogFormat,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Request threads hand their lines to a writer thread and never wait on stderr; a
    // full buffer drops lines rather than stall logins, and the drops are counted and
    // reported (telemetry::report_dropped_log_lines). The writer thread takes every
    // line waiting and writes them with one `write` (up to LOG_BATCH_BYTES at a time),
    // flushing as soon as none waits: under load one system call carries hundreds of
    // lines, idle each line goes out at once. Dropping `_flush_on_exit` (after the
    // server stopped) writes what is left, so a clean shutdown loses no line.
    let batched = std::io::BufWriter::with_capacity(LOG_BATCH_BYTES, std::io::stderr());
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("gatehouse-log")
        .finish(batched);
    let dropped = writer.error_counter();
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(gatehouse::telemetry::OneLinePerEvent::new(writer, ansi));
    match log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        gatehouse::telemetry::report_dropped_log_lines(dropped);
        let running = gatehouse::server::start_on(config.clone(), bind)
            .await
            .with_context(|| format!("cannot serve {}", config.display()))?;
        running.wait().await?;
        // The last line, written out with the rest when `_flush_on_exit` drops.
        tracing::info!(event = "stopped", "stopped");
        Ok(())
    })
}
