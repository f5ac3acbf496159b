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

/// Serves `config` (on `bind` instead of `[server] bind` when given) until stopped.
pub(crate) fn serve(
    config: PathBuf,
    log_format: LogFormat,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Request threads append their lines to one buffer and never wait on stderr; one
    // thread writes it out in batches (telemetry::LogBatch: at once when idle, at most
    // 100 ms late under load); a full buffer drops lines rather than stall logins, and
    // the drops are counted and reported (telemetry::report_dropped_log_lines).
    // Dropping `_flush_on_exit` (after the server stopped) writes what is left, so a
    // clean shutdown loses no line.
    let (writer, _flush_on_exit) = gatehouse::telemetry::LogBatch::spawn(std::io::stderr())
        .context("starting the log writer")?;
    let dropped = writer.clone();
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(gatehouse::telemetry::OneLinePerEvent::new(writer, ansi));
    // Without colours (a file, a pipe, a collector: how servers run) the text line is
    // written by `PlainLine`, the same bytes as the default format in half the time.
    match log_format {
        LogFormat::Text if ansi => builder.init(),
        LogFormat::Text => builder
            .event_format(gatehouse::telemetry::PlainLine::new())
            .init(),
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
